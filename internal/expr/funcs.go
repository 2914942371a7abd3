package expr

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	exprlang "github.com/expr-lang/expr"
	"github.com/expr-lang/expr/builtin"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// FuncDoc documents a built-in function (or variable) for `backbone docs`.
type FuncDoc struct {
	Name      string
	Signature string
	Doc       string
	Example   string
}

// Functions lists the built-ins an expression can use beyond expr's
// language, in documentation order.
func Functions() []FuncDoc {
	docs := []FuncDoc{{
		Name:      RunTimeName,
		Signature: "run_time timestamp",
		Doc:       "A variable, not a function: the run's logical time, the same for every record of a run (and for a replay of it). The wall clock is never read inside a run.",
		Example:   `truncate_time(run_time, "day")`,
	}}
	for _, f := range funcDefs {
		docs = append(docs, f.FuncDoc)
	}
	return append(docs, languageDocs...)
}

// languageDocs document the parts of expr's own language pipelines use most.
var languageDocs = []FuncDoc{
	{Name: "contains", Signature: "s contains t bool", Doc: "An operator: whether the text s holds t. Also `startsWith`, `endsWith` and `matches` (a regular expression).", Example: `email endsWith "@example.com"`},
	{Name: "in", Signature: "v in list bool", Doc: "An operator: whether v is one of the list's elements.", Example: `status in ["new", "paid"]`},
	{Name: "??", Signature: "a ?? b any", Doc: "An operator: a, or b when a is null.", Example: `discount ?? 0`},
	{Name: "?.", Signature: "v?.field any", Doc: "An operator: the field of v, or null when v is null (a lookup miss).", Example: `lookup("fx", currency)?.rate`},
	{Name: "len", Signature: "len(v string|list|json) int", Doc: "The number of characters of a text, of elements of a list, of keys of an object.", Example: `len(trim(name)) > 0`},
	{Name: "min", Signature: "min(a, b, ...number) number", Doc: "The smallest of the numbers (ints and floats; use comparisons for decimals). Also `max`.", Example: `min(qty, 100)`},
	{Name: "duration", Signature: "duration(s string) duration", Doc: "A Go duration (\"1h30m\"), for add_duration or to compare with the difference of two timestamps.", Example: `ordered_at - created_at > duration("1h")`},
}

// exprBuiltins are expr's own functions still available (for suggestions).
var exprBuiltins = []string{
	"all", "none", "any", "one", "filter", "map", "find", "findIndex", "findLast", "findLastIndex",
	"count", "sum", "groupBy", "sortBy", "reduce", "len", "type", "int", "float", "string",
	"trimPrefix", "trimSuffix", "splitAfter", "repeat", "join", "indexOf", "lastIndexOf",
	"hasPrefix", "hasSuffix", "max", "min", "mean", "median", "toJSON", "fromJSON", "toBase64",
	"fromBase64", "duration", "first", "last", "get", "take", "keys", "values", "toPairs",
	"fromPairs", "reverse", "uniq", "flatten", "sort",
}

// funcEnv is what functions need from the compile environment.
type funcEnv struct {
	loc     *time.Location
	lookups map[string]connector.Table

	rowMaps     sync.Map     // indexRow, or *any (a looked-up row's first value) → its map, for lookup()
	rowMapCount atomic.Int64 // entries stored in rowMaps, bounded by maxRowMaps
}

// argClass is what a parameter accepts at compile time. A value whose type
// is only known at run time (json, any) is accepted by every class and
// checked when the function runs.
type argClass uint8

const (
	aAny argClass = iota
	aString
	aNumber // int, float or decimal
	aInt
	aTime     // timestamp or date
	aTimeText // timestamp, date or string
	aDuration // duration text ("1h") or duration
)

var classNames = [...]string{aAny: "any", aString: "string", aNumber: "number", aInt: "int",
	aTime: "timestamp", aTimeText: "timestamp, date or string", aDuration: "duration text"}

func isIntKind(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return t != durationType && t != dateType
	}
	return false
}

func isNumber(t reflect.Type) bool {
	return isIntKind(t) || t.Kind() == reflect.Float64 || t.Kind() == reflect.Float32 || t == decType
}

func accepts(c argClass, t reflect.Type) bool {
	if t == nil || t.Kind() == reflect.Interface {
		return true
	}
	switch c {
	case aString:
		return t.Kind() == reflect.String
	case aNumber:
		return isNumber(t)
	case aInt:
		return isIntKind(t)
	case aTime:
		return t == timeType || t == dateType
	case aTimeText:
		return t == timeType || t == dateType || t.Kind() == reflect.String
	case aDuration:
		return t == durationType || t.Kind() == reflect.String
	}
	return true
}

type funcDef struct {
	FuncDoc
	args     []argClass // parameters; the last one repeats when variadic
	required int
	variadic bool
	result   func(args []reflect.Type) reflect.Type
	call     func(env *funcEnv, args []any) (any, error)
}

func (f *funcDef) builtin(name string, env *funcEnv) *builtin.Function {
	return &builtin.Function{
		Name:     name,
		Func:     func(args ...any) (any, error) { return f.call(env, args) },
		Validate: f.validate,
	}
}

func (f *funcDef) validate(args []reflect.Type) (reflect.Type, error) {
	n := len(args)
	if f.Name == "lookup" && n > 0 { // the compiler passed the context first
		n--
		args = args[1:]
	}
	if n < f.required || (!f.variadic && n > len(f.args)) {
		return nil, fmt.Errorf("%s: wrong number of arguments (%d); usage: %s", f.Name, n, f.Signature)
	}
	for i, t := range args {
		c := f.args[min(i, len(f.args)-1)]
		if !accepts(c, t) {
			return nil, fmt.Errorf("%s: argument %d is %s, want %s; usage: %s", f.Name, i+1, typeName(t), classNames[c], f.Signature)
		}
	}
	return f.result(args), nil
}

func returns(t reflect.Type) func([]reflect.Type) reflect.Type {
	return func([]reflect.Type) reflect.Type { return t }
}

// sameAsFirst is the result type of functions that keep their argument's
// type (round, abs).
func sameAsFirst(args []reflect.Type) reflect.Type {
	if len(args) == 0 || unknown(args[0]) {
		return nil
	}
	return args[0]
}

func functionOptions(env *funcEnv, aliases map[string]string) []exprlang.Option {
	opts := make([]exprlang.Option, 0, len(funcDefs))
	for _, f := range funcDefs {
		opts = append(opts, withFunction(f, f.Name, env))
		if alias, ok := aliases[f.Name]; ok {
			opts = append(opts, withFunction(f, alias, env))
		}
	}
	return opts
}

var funcDefs = []*funcDef{
	{
		FuncDoc: FuncDoc{Name: "lookup", Signature: "lookup(name string, key ...any) json",
			Doc:     "The row of the lookup table `name` (declared under `lookups:`) for the key values, in the order of the table's key fields, as an object; null when there is none or a key value is null. A lookup that cannot be answered (a service down) fails the run. Read a field with `?.` when a miss is possible.",
			Example: `lookup("fx", currency)?.rate ?? 1`},
		args: []argClass{aString, aAny}, required: 2, variadic: true,
		result: returns(nil), call: callLookup,
	},
	{
		FuncDoc: FuncDoc{Name: "coalesce", Signature: "coalesce(a, b, ...any) any",
			Doc:     "The first argument that is neither null nor the empty string; null when there is none.",
			Example: `coalesce(nickname, first_name, "anonymous")`},
		args: []argClass{aAny}, required: 1, variadic: true,
		result: commonType, call: callCoalesce,
	},
	{
		FuncDoc: FuncDoc{Name: "parse_time", Signature: "parse_time(s string, layout string[, zone string]) timestamp",
			Doc:     "Parses s with a Go layout (`2006-01-02 15:04:05`) or \"rfc3339\". A text without a zone is read in zone (an IANA name like \"America/Chicago\"), by default the pipeline's zone. Null or \"\" gives null.",
			Example: `parse_time(created, "01/02/2006 15:04", "America/Chicago")`},
		args: []argClass{aString, aString, aString}, required: 2,
		result: returns(timeType), call: callParseTime,
	},
	{
		FuncDoc: FuncDoc{Name: "format_time", Signature: "format_time(t timestamp, layout string[, zone string]) string",
			Doc:     "Formats t with a Go layout, \"rfc3339\" or \"date\", as seen in zone (default: the pipeline's zone). A date is formatted as is.",
			Example: `format_time(ordered_at, "2006-01-02 15:04", "Europe/Paris")`},
		args: []argClass{aTime, aString, aString}, required: 2,
		result: returns(stringType), call: callFormatTime,
	},
	{
		FuncDoc: FuncDoc{Name: "truncate_time", Signature: "truncate_time(t timestamp, unit string[, zone string]) timestamp",
			Doc:     "The start of the second, minute, hour, day, week (Monday), month or year holding t, on the wall clock of zone (default: the pipeline's zone), so a day is a local day even across a daylight-saving change.",
			Example: `truncate_time(ordered_at, "day", "America/Chicago")`},
		args: []argClass{aTime, aString, aString}, required: 2,
		result: returns(timeType), call: callTruncateTime,
	},
	{
		FuncDoc: FuncDoc{Name: "to_date", Signature: "to_date(t timestamp|string[, zone string]) date",
			Doc:     "The calendar date of t in zone (default: the pipeline's zone). A string is parsed as a date or a timestamp.",
			Example: `to_date(ordered_at, "America/Chicago")`},
		args: []argClass{aTimeText, aString}, required: 1,
		result: returns(dateType), call: callToDate,
	},
	{
		FuncDoc: FuncDoc{Name: "add_duration", Signature: "add_duration(t timestamp, d string) timestamp",
			Doc:     "t plus an elapsed duration (\"90s\", \"1h30m\", \"-15m\", \"2d\" = 48h). A date counts from its midnight UTC.",
			Example: `add_duration(ordered_at, "36h")`},
		args: []argClass{aTime, aDuration}, required: 2,
		result: returns(timeType), call: callAddDuration,
	},
	{
		FuncDoc: FuncDoc{Name: "date_diff", Signature: "date_diff(a timestamp, b timestamp, unit string) int",
			Doc:     "The number of whole seconds, minutes, hours, days or weeks from b to a (negative when a is earlier). Dates count calendar days.",
			Example: `date_diff(shipped_at, ordered_at, "hour")`},
		args: []argClass{aTime, aTime, aString}, required: 3,
		result: returns(int64Type), call: callDateDiff,
	},
	{
		FuncDoc: FuncDoc{Name: "lower", Signature: "lower(s string) string", Doc: "s in lower case.", Example: `lower(email)`},
		args:    []argClass{aString}, required: 1, result: returns(stringType),
		call: stringFunc(strings.ToLower),
	},
	{
		FuncDoc: FuncDoc{Name: "upper", Signature: "upper(s string) string", Doc: "s in upper case.", Example: `upper(currency)`},
		args:    []argClass{aString}, required: 1, result: returns(stringType),
		call: stringFunc(strings.ToUpper),
	},
	{
		FuncDoc: FuncDoc{Name: "trim", Signature: "trim(s string) string", Doc: "s without leading and trailing white space.", Example: `trim(name)`},
		args:    []argClass{aString}, required: 1, result: returns(stringType),
		call: stringFunc(strings.TrimSpace),
	},
	{
		FuncDoc: FuncDoc{Name: "concat", Signature: "concat(a, b, ...any) string",
			Doc:     "The text of the arguments joined; null arguments are skipped.",
			Example: `concat(first_name, " ", last_name)`},
		args: []argClass{aAny}, required: 1, variadic: true, result: returns(stringType), call: callConcat,
	},
	{
		FuncDoc: FuncDoc{Name: "substr", Signature: "substr(s string, start int[, length int]) string",
			Doc:     "The characters of s from start (0 is the first; negative counts from the end), at most length of them.",
			Example: `substr(sku, 0, 3)`},
		args: []argClass{aString, aInt, aInt}, required: 2, result: returns(stringType), call: callSubstr,
	},
	{
		FuncDoc: FuncDoc{Name: "replace", Signature: "replace(s string, old string, new string) string",
			Doc: "s with every old replaced by new.", Example: `replace(phone, "-", "")`},
		args: []argClass{aString, aString, aString}, required: 3, result: returns(stringType), call: callReplace,
	},
	{
		FuncDoc: FuncDoc{Name: "split", Signature: "split(s string, sep string) list",
			Doc: "The parts of s between the separators.", Example: `split(tags, ",")[0]`},
		args: []argClass{aString, aString}, required: 2, result: returns(stringsType), call: callSplit,
	},
	{
		FuncDoc: FuncDoc{Name: "pad_left", Signature: "pad_left(v any, n int[, pad string]) string",
			Doc:     "The text of v, padded on the left with pad (default a space) to n characters.",
			Example: `pad_left(store_id, 5, "0")`},
		args: []argClass{aAny, aInt, aString}, required: 2, result: returns(stringType), call: callPadLeft,
	},
	{
		FuncDoc: FuncDoc{Name: "to_string", Signature: "to_string(v any) string",
			Doc:     "The text of v as a CSV file would hold it: decimals exactly, timestamps in RFC 3339, json compactly. Null stays null.",
			Example: `to_string(order_id)`},
		args: []argClass{aAny}, required: 1, result: returns(stringType), call: callToString,
	},
	{
		FuncDoc: FuncDoc{Name: "round", Signature: "round(x number[, places int]) number",
			Doc:     "x rounded half away from zero to places digits after the point (default 0); exact for decimals.",
			Example: `round(qty * unit_price, 2)`},
		args: []argClass{aNumber, aInt}, required: 1, result: sameAsFirst, call: callRound,
	},
	{
		FuncDoc: FuncDoc{Name: "floor", Signature: "floor(x number) number", Doc: "The largest whole number not above x.", Example: `floor(score)`},
		args:    []argClass{aNumber}, required: 1, result: sameAsFirst, call: callFloor,
	},
	{
		FuncDoc: FuncDoc{Name: "ceil", Signature: "ceil(x number) number", Doc: "The smallest whole number not below x.", Example: `ceil(weight_kg)`},
		args:    []argClass{aNumber}, required: 1, result: sameAsFirst, call: callCeil,
	},
	{
		FuncDoc: FuncDoc{Name: "abs", Signature: "abs(x number) number", Doc: "The absolute value of x.", Example: `abs(balance)`},
		args:    []argClass{aNumber}, required: 1, result: sameAsFirst, call: callAbs,
	},
	{
		FuncDoc: FuncDoc{Name: "to_int", Signature: "to_int(v any) int",
			Doc:     "v as an integer: text is parsed, a fraction is cut toward zero, true is 1.",
			Example: `to_int(qty_text)`},
		args: []argClass{aAny}, required: 1, result: returns(int64Type), call: callToInt,
	},
	{
		FuncDoc: FuncDoc{Name: "to_float", Signature: "to_float(v any) float", Doc: "v as a floating-point number; text is parsed.", Example: `to_float(score)`},
		args:    []argClass{aAny}, required: 1, result: returns(floatType), call: callToFloat,
	},
	{
		FuncDoc: FuncDoc{Name: "to_decimal", Signature: "to_decimal(v any) decimal",
			Doc:     "v as an exact decimal: text is parsed exactly, a float by its shortest text (0.1 is 0.1).",
			Example: `to_decimal("0.1") + to_decimal("0.2") == to_decimal("0.3")`},
		args: []argClass{aAny}, required: 1, result: returns(decType), call: callToDecimal,
	},
	{
		FuncDoc: FuncDoc{Name: "sha256", Signature: "sha256(v any) string",
			Doc: "The SHA-256 of the text of v (see to_string), in hex. Null stays null.", Example: `sha256(lower(email))`},
		args: []argClass{aAny}, required: 1, result: returns(stringType), call: callSHA256,
	},
}

// ---- argument helpers

func wantString(fn string, i int, v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return string(x), nil
	}
	return "", fmt.Errorf("%s: argument %d is a %s (%s), want a string", fn, i+1, kindName(v), shortText(v))
}

func wantInt(fn string, i int, v any) (int, error) {
	switch x := v.(type) {
	case int:
		return x, nil
	case int64:
		return int(x), nil
	case int32:
		return int(x), nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int(x), nil
		}
	case record.Dec:
		if n, ok := x.Int64(); ok && x.Cmp(record.DecFromInt(n)) == 0 {
			return int(n), nil
		}
	}
	return 0, fmt.Errorf("%s: argument %d is a %s (%s), want an int", fn, i+1, kindName(v), shortText(v))
}

func shortText(v any) string {
	s := record.FormatText(v)
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return strconv.Quote(s)
}

// zone returns the location named by args[i], or the default.
func (env *funcEnv) zone(fn string, args []any, i int) (*time.Location, error) {
	if i >= len(args) || args[i] == nil {
		return env.loc, nil
	}
	name, err := wantString(fn, i, args[i])
	if err != nil {
		return nil, err
	}
	return loadZone(name)
}

var zones sync.Map // zone name → *time.Location: loading reads the zone database

func loadZone(name string) (*time.Location, error) {
	if l, ok := zones.Load(name); ok {
		return l.(*time.Location), nil
	}
	if name == "" || strings.EqualFold(name, "local") {
		return nil, fmt.Errorf("zone %q: name a zone such as \"UTC\" or \"America/Chicago\" (the machine's zone is not used)", name)
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	zones.Store(name, l)
	return l, nil
}

// ---- lookup and coalesce

func callLookup(env *funcEnv, args []any) (any, error) {
	ctx, _ := args[0].(context.Context)
	if ctx == nil {
		ctx = context.Background()
	}
	name, err := wantString("lookup", 0, args[1])
	if err != nil {
		return nil, err
	}
	t, ok := env.lookups[name]
	if !ok {
		return nil, fmt.Errorf("lookup %q is not declared", name)
	}
	keys := args[2:]
	if want := t.Keys(); len(keys) != len(want) {
		return nil, fmt.Errorf("lookup %q takes %d key value(s) (%s), got %d", name, len(want), strings.Join(want, ", "), len(keys))
	}
	for _, k := range keys {
		if k == nil {
			return nil, nil
		}
	}
	// The object of a row seen before is reused: a preloaded index's row by
	// its position, another table's by its storage.
	var seen any
	var row record.Row
	if ix := connector.IndexOf(t); ix != nil {
		p, found, err := ix.Pos(keys)
		if err != nil {
			return nil, &LookupError{Name: name, Err: err}
		}
		if !found {
			return nil, nil
		}
		seen = indexRow{ix, p}
		if m, ok := env.rowMaps.Load(seen); ok {
			return m, nil
		}
		if row, _, err = ix.Get(ctx, keys); err != nil {
			return nil, &LookupError{Name: name, Err: err}
		}
	} else {
		var found bool
		var err error
		row, found, err = t.Get(ctx, keys) // Get does not keep keys
		if err != nil {
			return nil, &LookupError{Name: name, Err: err}
		}
		if !found {
			return nil, nil
		}
		if len(row) > 0 {
			seen = &row[0]
			if m, ok := env.rowMaps.Load(seen); ok {
				return m, nil
			}
		}
	}
	s := t.Schema()
	m := make(map[string]any, s.Len())
	for i := 0; i < s.Len() && i < len(row); i++ {
		f := s.Field(i)
		v := row[i]
		if f.Type == record.JSON || f.Type == record.Any {
			v = jsonForExpr(v)
		}
		m[f.Name] = v
	}
	if seen != nil && env.rowMapCount.Add(1) <= maxRowMaps {
		env.rowMaps.Store(seen, m)
	}
	return m, nil
}

// indexRow names a row of a preloaded index, whose rows are made anew by
// each Get.
type indexRow struct {
	ix  *connector.Index
	pos int
}

// maxRowMaps bounds the maps lookup() keeps for rows it has seen (rows of a
// table are immutable; a preloaded table returns the same row every time).
const maxRowMaps = 1 << 16

// commonType is the type shared by every argument that is not the literal
// nil; unknown when they differ or one is only known at run time.
func commonType(args []reflect.Type) reflect.Type {
	var t reflect.Type
	for _, a := range args {
		switch {
		case a == nil: // nil literal
		case a.Kind() == reflect.Interface:
			return nil
		case t == nil:
			t = a
		case a != t:
			return nil
		}
	}
	return t
}

func callCoalesce(_ *funcEnv, args []any) (any, error) {
	for _, v := range args {
		if v == nil {
			continue
		}
		if s, ok := v.(string); ok && s == "" {
			continue
		}
		return v, nil
	}
	return nil, nil
}

// ---- time

func timeLayout(s string) string {
	switch strings.ToLower(s) {
	case "rfc3339", "rfc3339nano":
		return time.RFC3339Nano
	case "date":
		return time.DateOnly
	}
	return s
}

func callParseTime(env *funcEnv, args []any) (any, error) {
	if args[0] == nil {
		return nil, nil
	}
	s, err := wantString("parse_time", 0, args[0])
	if err != nil || s == "" {
		return nil, err
	}
	layout, err := wantString("parse_time", 1, args[1])
	if err != nil {
		return nil, err
	}
	loc, err := env.zone("parse_time", args, 2)
	if err != nil {
		return nil, err
	}
	t, perr := time.ParseInLocation(timeLayout(layout), strings.TrimSpace(s), loc)
	if perr != nil {
		return nil, fmt.Errorf("parse_time: %q does not match layout %q", s, layout)
	}
	return t, nil
}

func wantTime(fn string, i int, v any) (time.Time, bool, error) {
	switch x := v.(type) {
	case time.Time:
		return x, false, nil
	case record.LocalDate:
		return x.Time(), true, nil
	}
	return time.Time{}, false, fmt.Errorf("%s: argument %d is a %s (%s), want a timestamp", fn, i+1, kindName(v), shortText(v))
}

func callFormatTime(env *funcEnv, args []any) (any, error) {
	if args[0] == nil {
		return nil, nil
	}
	t, isDate, err := wantTime("format_time", 0, args[0])
	if err != nil {
		return nil, err
	}
	layout, err := wantString("format_time", 1, args[1])
	if err != nil {
		return nil, err
	}
	loc, err := env.zone("format_time", args, 2)
	if err != nil {
		return nil, err
	}
	if !isDate {
		t = t.In(loc)
	}
	return t.Format(timeLayout(layout)), nil
}

func truncate(t time.Time, unit string, loc *time.Location) (time.Time, error) {
	t = t.In(loc)
	switch unit {
	case "second":
		return t.Truncate(time.Second), nil
	case "minute", "hour":
		// Subtract the wall clock's minutes and seconds rather than building
		// a wall time: in the repeated hour of a daylight-saving change the
		// wall time is ambiguous, the instant is not.
		d := time.Duration(t.Second())*time.Second + time.Duration(t.Nanosecond())
		if unit == "hour" {
			d += time.Duration(t.Minute()) * time.Minute
		}
		return t.Add(-d), nil
	}
	y, m, d := t.Date()
	switch unit {
	case "day":
	case "week":
		d -= (int(t.Weekday()) + 6) % 7 // weeks start on Monday
	case "month":
		d = 1
	case "year":
		m, d = time.January, 1
	default:
		return time.Time{}, fmt.Errorf("truncate_time: unknown unit %q (want second, minute, hour, day, week, month or year)", unit)
	}
	return time.Date(y, m, d, 0, 0, 0, 0, loc), nil
}

func callTruncateTime(env *funcEnv, args []any) (any, error) {
	if args[0] == nil {
		return nil, nil
	}
	t, isDate, err := wantTime("truncate_time", 0, args[0])
	if err != nil {
		return nil, err
	}
	unit, err := wantString("truncate_time", 1, args[1])
	if err != nil {
		return nil, err
	}
	loc, err := env.zone("truncate_time", args, 2)
	if err != nil {
		return nil, err
	}
	if isDate { // a date's midnight is on no particular clock
		loc = time.UTC
	}
	r, err := truncate(t, unit, loc)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func callToDate(env *funcEnv, args []any) (any, error) {
	if args[0] == nil {
		return nil, nil
	}
	loc, err := env.zone("to_date", args, 1)
	if err != nil {
		return nil, err
	}
	switch x := args[0].(type) {
	case record.LocalDate:
		return x, nil
	case time.Time:
		return record.LocalDateOf(x.In(loc)), nil
	case string:
		if x == "" {
			return nil, nil
		}
		if d, err := record.ParseDate(x); err == nil {
			return d, nil
		}
		t, err := record.ParseTimestamp(x, loc)
		if err != nil {
			return nil, fmt.Errorf("to_date: %q is neither a date (YYYY-MM-DD) nor a timestamp", x)
		}
		return record.LocalDateOf(t.In(loc)), nil
	}
	return nil, fmt.Errorf("to_date: argument 1 is a %s (%s), want a timestamp", kindName(args[0]), shortText(args[0]))
}

func wantDuration(fn string, i int, v any) (time.Duration, error) {
	switch x := v.(type) {
	case time.Duration:
		return x, nil
	case string:
		neg := strings.HasPrefix(strings.TrimSpace(x), "-")
		d, err := connector.ParseDuration(strings.TrimPrefix(strings.TrimSpace(x), "-"))
		if err != nil {
			return 0, fmt.Errorf("%s: %v", fn, err)
		}
		if neg {
			d = -d
		}
		return d, nil
	}
	return 0, fmt.Errorf("%s: argument %d is a %s (%s), want a duration like \"1h\"", fn, i+1, kindName(v), shortText(v))
}

func callAddDuration(_ *funcEnv, args []any) (any, error) {
	if args[0] == nil || args[1] == nil {
		return nil, nil
	}
	t, _, err := wantTime("add_duration", 0, args[0])
	if err != nil {
		return nil, err
	}
	d, err := wantDuration("add_duration", 1, args[1])
	if err != nil {
		return nil, err
	}
	return t.Add(d), nil
}

func callDateDiff(_ *funcEnv, args []any) (any, error) {
	if args[0] == nil || args[1] == nil {
		return nil, nil
	}
	a, _, err := wantTime("date_diff", 0, args[0])
	if err != nil {
		return nil, err
	}
	b, _, err := wantTime("date_diff", 1, args[1])
	if err != nil {
		return nil, err
	}
	unit, err := wantString("date_diff", 2, args[2])
	if err != nil {
		return nil, err
	}
	var per time.Duration
	switch unit {
	case "second":
		per = time.Second
	case "minute":
		per = time.Minute
	case "hour":
		per = time.Hour
	case "day":
		per = 24 * time.Hour
	case "week":
		per = 7 * 24 * time.Hour
	default:
		return nil, fmt.Errorf("date_diff: unknown unit %q (want second, minute, hour, day or week)", unit)
	}
	return int64(a.Sub(b) / per), nil
}

// ---- strings

func stringFunc(f func(string) string) func(*funcEnv, []any) (any, error) {
	return func(_ *funcEnv, args []any) (any, error) {
		if args[0] == nil {
			return nil, nil
		}
		s, ok := args[0].(string)
		if !ok {
			return nil, fmt.Errorf("argument 1 is a %s (%s), want a string", kindName(args[0]), shortText(args[0]))
		}
		return f(s), nil
	}
}

func callConcat(_ *funcEnv, args []any) (any, error) {
	var b strings.Builder
	for _, v := range args {
		if v != nil {
			b.WriteString(text(v))
		}
	}
	return b.String(), nil
}

// text is the text of a value, as to_string renders it.
func text(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	case []string:
		return record.FormatText(ToRecord(x))
	}
	return record.FormatText(v)
}

func callSubstr(_ *funcEnv, args []any) (any, error) {
	if args[0] == nil {
		return nil, nil
	}
	s, err := wantString("substr", 0, args[0])
	if err != nil {
		return nil, err
	}
	start, err := wantInt("substr", 1, args[1])
	if err != nil {
		return nil, err
	}
	n := utf8.RuneCountInString(s)
	if start < 0 {
		start = max(0, n+start)
	}
	if start >= n {
		return "", nil
	}
	end := n
	if len(args) > 2 && args[2] != nil {
		l, err := wantInt("substr", 2, args[2])
		if err != nil {
			return nil, err
		}
		if l < 0 {
			return nil, fmt.Errorf("substr: negative length %d", l)
		}
		end = min(n, start+l)
	}
	if n == len(s) { // ASCII
		return s[start:end], nil
	}
	r := []rune(s)
	return string(r[start:end]), nil
}

func callReplace(_ *funcEnv, args []any) (any, error) {
	if args[0] == nil {
		return nil, nil
	}
	var p [3]string
	for i := range p {
		s, err := wantString("replace", i, args[i])
		if err != nil {
			return nil, err
		}
		p[i] = s
	}
	return strings.ReplaceAll(p[0], p[1], p[2]), nil
}

func callSplit(_ *funcEnv, args []any) (any, error) {
	if args[0] == nil {
		return nil, nil
	}
	s, err := wantString("split", 0, args[0])
	if err != nil {
		return nil, err
	}
	sep, err := wantString("split", 1, args[1])
	if err != nil {
		return nil, err
	}
	return strings.Split(s, sep), nil
}

func callPadLeft(_ *funcEnv, args []any) (any, error) {
	if args[0] == nil {
		return nil, nil
	}
	s := text(args[0])
	n, err := wantInt("pad_left", 1, args[1])
	if err != nil {
		return nil, err
	}
	if n > 1<<16 {
		return nil, fmt.Errorf("pad_left: length %d is too large", n)
	}
	pad := " "
	if len(args) > 2 && args[2] != nil {
		if pad, err = wantString("pad_left", 2, args[2]); err != nil {
			return nil, err
		}
		if pad == "" {
			return nil, fmt.Errorf("pad_left: empty pad text")
		}
	}
	have := utf8.RuneCountInString(s)
	if have >= n {
		return s, nil
	}
	var b strings.Builder
	pr := []rune(pad)
	for i := 0; i < n-have; i++ {
		b.WriteRune(pr[i%len(pr)])
	}
	b.WriteString(s)
	return b.String(), nil
}

func callToString(_ *funcEnv, args []any) (any, error) {
	if args[0] == nil {
		return nil, nil
	}
	return text(args[0]), nil
}

func callSHA256(_ *funcEnv, args []any) (any, error) {
	if args[0] == nil {
		return nil, nil
	}
	sum := sha256.Sum256([]byte(text(args[0])))
	return hex.EncodeToString(sum[:]), nil
}

// ---- numbers

func callRound(_ *funcEnv, args []any) (any, error) {
	places := 0
	if len(args) > 1 && args[1] != nil {
		p, err := wantInt("round", 1, args[1])
		if err != nil {
			return nil, err
		}
		if p < -18 || p > record.MaxDecimalScale {
			return nil, fmt.Errorf("round: places %d out of range", p)
		}
		places = p
	}
	switch x := args[0].(type) {
	case nil:
		return nil, nil
	case record.Dec:
		if places < 0 {
			scale := record.DecFromInt(int64(math.Pow10(-places)))
			q, _ := x.Div(scale)
			return q.Round(0).Mul(scale), nil
		}
		return x.Round(int32(places)), nil
	case float64:
		p := math.Pow10(places)
		r := math.Round(x*p) / p
		if math.IsInf(x*p, 0) {
			r = x
		}
		return r, nil
	case int, int64:
		if places >= 0 {
			return x, nil
		}
		d, _ := decOf(x)
		r, _ := callRound(nil, []any{d, places})
		n, _ := r.(record.Dec).Int64()
		if _, ok := x.(int); ok {
			return int(n), nil
		}
		return n, nil
	}
	return nil, fmt.Errorf("round: argument 1 is a %s (%s), want a number", kindName(args[0]), shortText(args[0]))
}

func decFloor(d record.Dec) record.Dec {
	t := d.Round(0)
	if d.Scale() <= 0 {
		return d
	}
	// Round(0) rounds half away from zero; step back when it went up.
	if t.Cmp(d) > 0 {
		t = t.Sub(record.DecFromInt(1))
	}
	return t
}

func callFloor(_ *funcEnv, args []any) (any, error) {
	switch x := args[0].(type) {
	case nil:
		return nil, nil
	case record.Dec:
		return decFloor(x), nil
	case float64:
		return math.Floor(x), nil
	case int, int64:
		return x, nil
	}
	return nil, fmt.Errorf("floor: argument 1 is a %s (%s), want a number", kindName(args[0]), shortText(args[0]))
}

func callCeil(_ *funcEnv, args []any) (any, error) {
	switch x := args[0].(type) {
	case nil:
		return nil, nil
	case record.Dec:
		return decFloor(x.Neg()).Neg(), nil
	case float64:
		return math.Ceil(x), nil
	case int, int64:
		return x, nil
	}
	return nil, fmt.Errorf("ceil: argument 1 is a %s (%s), want a number", kindName(args[0]), shortText(args[0]))
}

func callAbs(_ *funcEnv, args []any) (any, error) {
	switch x := args[0].(type) {
	case nil:
		return nil, nil
	case record.Dec:
		if x.Sign() < 0 {
			return x.Neg(), nil
		}
		return x, nil
	case float64:
		return math.Abs(x), nil
	case int:
		if x < 0 {
			return -x, nil
		}
		return x, nil
	case int64:
		if x < 0 {
			return -x, nil
		}
		return x, nil
	}
	return nil, fmt.Errorf("abs: argument 1 is a %s (%s), want a number", kindName(args[0]), shortText(args[0]))
}

func callToInt(_ *funcEnv, args []any) (any, error) {
	switch x := args[0].(type) {
	case nil:
		return nil, nil
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case float64:
		if math.IsNaN(x) || x >= math.MaxInt64 || x < math.MinInt64 {
			return nil, fmt.Errorf("to_int: %v is out of range for an int", x)
		}
		return int64(x), nil
	case record.Dec:
		n, ok := x.Int64()
		if !ok {
			return nil, fmt.Errorf("to_int: %s is out of range for an int", x)
		}
		return n, nil
	case bool:
		if x {
			return int64(1), nil
		}
		return int64(0), nil
	case string, json.Number:
		s := strings.TrimSpace(text(x))
		if s == "" {
			return nil, nil
		}
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n, nil
		}
		d, err := record.ParseDec(s)
		if err != nil {
			return nil, fmt.Errorf("to_int: %q is not a number", s)
		}
		n, ok := d.Int64()
		if !ok {
			return nil, fmt.Errorf("to_int: %q is out of range for an int", s)
		}
		return n, nil
	}
	v, err := record.Convert(ToRecord(args[0]), record.Int, nil)
	if err != nil {
		return nil, fmt.Errorf("to_int: %v", err)
	}
	return v, nil
}

func callToFloat(_ *funcEnv, args []any) (any, error) {
	switch x := args[0].(type) {
	case nil:
		return nil, nil
	case float64:
		return x, nil
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case record.Dec:
		return x.Float64(), nil
	case string, json.Number:
		s := strings.TrimSpace(text(x))
		if s == "" {
			return nil, nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("to_float: %q is not a number", s)
		}
		return f, nil
	}
	v, err := record.Convert(ToRecord(args[0]), record.Float, nil)
	if err != nil {
		return nil, fmt.Errorf("to_float: %v", err)
	}
	return v, nil
}

func callToDecimal(_ *funcEnv, args []any) (any, error) {
	switch x := args[0].(type) {
	case nil:
		return nil, nil
	case record.Dec:
		return x, nil
	case string, json.Number:
		s := strings.TrimSpace(text(x))
		if s == "" {
			return nil, nil
		}
		d, err := record.ParseDec(s)
		if err != nil {
			return nil, fmt.Errorf("to_decimal: %q is not a decimal number", s)
		}
		return d, nil
	case float64:
		d, err := record.DecFromFloat(x)
		if err != nil {
			return nil, fmt.Errorf("to_decimal: %v", err)
		}
		return d, nil
	}
	if d, ok := decOf(args[0]); ok {
		return d, nil
	}
	return nil, fmt.Errorf("to_decimal: cannot convert a %s (%s)", kindName(args[0]), shortText(args[0]))
}
