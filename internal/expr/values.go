package expr

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// ToRecord converts an expression result to the representation rows hold
// (see record.Type): int becomes int64, float32 float64, a list of strings
// a json list, a duration its text. Values already in record form are
// returned as they are.
func ToRecord(v any) any {
	switch x := v.(type) {
	case nil, string, int64, float64, bool, record.Dec, time.Time, record.LocalDate, []byte, json.Number:
		return v
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case int16:
		return int64(x)
	case int8:
		return int64(x)
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case uint:
		if uint64(x) <= math.MaxInt64 {
			return int64(x)
		}
		return json.Number(strconv.FormatUint(uint64(x), 10))
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x)
		}
		return json.Number(strconv.FormatUint(x, 10))
	case float32:
		return float64(x)
	case time.Duration:
		return x.String()
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out
	case map[string]any:
		if !needsRecord(x) {
			return x
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = ToRecord(e)
		}
		return out
	case []any:
		if !needsRecord(x) {
			return x
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = ToRecord(e)
		}
		return out
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = ToRecord(rv.Index(i).Interface())
		}
		return out
	case reflect.Map:
		if rv.Type().Key().Kind() == reflect.String {
			out := make(map[string]any, rv.Len())
			it := rv.MapRange()
			for it.Next() {
				out[it.Key().String()] = ToRecord(it.Value().Interface())
			}
			return out
		}
	}
	return v
}

// needsRecord reports whether a json tree holds values ToRecord changes.
func needsRecord(v any) bool {
	switch x := v.(type) {
	case nil, string, int64, float64, bool, record.Dec, time.Time, record.LocalDate, []byte, json.Number:
		return false
	case map[string]any:
		for _, e := range x {
			if needsRecord(e) {
				return true
			}
		}
		return false
	case []any:
		for _, e := range x {
			if needsRecord(e) {
				return true
			}
		}
		return false
	}
	return true
}

// jsonForExpr gives a json value to an expression with its numbers as
// numbers: json.Number (text kept for exactness in rows) becomes int when
// it is one, float64 otherwise. The row's value is never modified: a tree
// holding numbers is copied.
func jsonForExpr(v any) any {
	switch x := v.(type) {
	case json.Number:
		if n, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return int(n)
		}
		if f, err := strconv.ParseFloat(string(x), 64); err == nil {
			return f
		}
		return string(x)
	case map[string]any:
		if !hasNumber(x) {
			return x
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonForExpr(e)
		}
		return out
	case []any:
		if !hasNumber(x) {
			return x
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonForExpr(e)
		}
		return out
	}
	return v
}

func hasNumber(v any) bool {
	switch x := v.(type) {
	case json.Number:
		return true
	case map[string]any:
		for _, e := range x {
			if hasNumber(e) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if hasNumber(e) {
				return true
			}
		}
	}
	return false
}

// staticCheck finds, in the checked tree, the mistakes the type checker
// cannot see: an undeclared lookup, a wrong number of key values, a field
// the lookup table does not have, an unknown zone or unit written as a
// literal, a bare $env.
func staticCheck(root ast.Node, env Env) error {
	c := &staticChecker{env: env}
	ast.Walk(&root, c)
	if c.err != nil {
		return c.err
	}
	return nil
}

type staticChecker struct {
	env Env
	err *file.Error
}

func (c *staticChecker) fail(n ast.Node, format string, args ...any) {
	if c.err == nil {
		c.err = &file.Error{Location: n.Location(), Message: fmt.Sprintf(format, args...)}
	}
}

func literal(n ast.Node) (string, bool) {
	s, ok := n.(*ast.StringNode)
	if !ok {
		return "", false
	}
	return s.Value, true
}

func (c *staticChecker) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		if n.Value == "$env" {
			c.fail(n, `$env can only be used as $env["field name"]`)
		}
	case *ast.MemberNode:
		call, ok := n.Node.(*ast.CallNode)
		if !ok {
			return
		}
		t := c.lookupTable(call)
		prop, isLit := literal(n.Property)
		if t == nil || !isLit {
			return
		}
		if _, ok := t.Schema().Index(prop); !ok {
			names := t.Schema().Names()
			if s, ok := connector.Closest(prop, names); ok {
				c.fail(n.Property, "lookup %q has no field %q (did you mean %q?)", c.lookupName(call), prop, s)
			} else {
				c.fail(n.Property, "lookup %q has no field %q (fields: %s)", c.lookupName(call), prop, listNames(names, 12))
			}
		}
	case *ast.CallNode:
		id, ok := n.Callee.(*ast.IdentifierNode)
		if !ok {
			return
		}
		args := n.Arguments
		arg := func(i int) (string, ast.Node, bool) {
			if i >= len(args) {
				return "", nil, false
			}
			s, ok := literal(args[i])
			return s, args[i], ok
		}
		switch strings.TrimPrefix(id.Value, "$fn_") {
		case "lookup":
			c.checkLookup(n)
		case "parse_time", "format_time":
			if z, at, ok := arg(2); ok {
				c.checkZone(at, z)
			}
		case "truncate_time":
			if u, at, ok := arg(1); ok {
				if _, err := truncate(time.Time{}, u, time.UTC); err != nil {
					c.fail(at, "%v", err)
				}
			}
			if z, at, ok := arg(2); ok {
				c.checkZone(at, z)
			}
		case "to_date":
			if z, at, ok := arg(1); ok {
				c.checkZone(at, z)
			}
		case "add_duration":
			if d, at, ok := arg(1); ok {
				if _, err := wantDuration("add_duration", 1, d); err != nil {
					c.fail(at, "%v", err)
				}
			}
		case "date_diff":
			if u, at, ok := arg(2); ok {
				switch u {
				case "second", "minute", "hour", "day", "week":
				default:
					c.fail(at, "date_diff: unknown unit %q (want second, minute, hour, day or week)", u)
				}
			}
		}
	}
}

func (c *staticChecker) checkZone(at ast.Node, z string) {
	if _, err := loadZone(z); err != nil {
		c.fail(at, "%v", err)
	}
}

// lookupName is the literal table name of a lookup() call, "" otherwise.
func (c *staticChecker) lookupName(call *ast.CallNode) string {
	id, ok := call.Callee.(*ast.IdentifierNode)
	if !ok || strings.TrimPrefix(id.Value, "$fn_") != "lookup" || len(call.Arguments) < 2 {
		return ""
	}
	s, _ := literal(call.Arguments[1]) // [0] is the context
	return s
}

func (c *staticChecker) lookupTable(call *ast.CallNode) connector.Table {
	name := c.lookupName(call)
	if name == "" {
		return nil
	}
	return c.env.Lookups[name]
}

func (c *staticChecker) checkLookup(call *ast.CallNode) {
	name := c.lookupName(call)
	if name == "" {
		return
	}
	at := call.Arguments[1]
	t, ok := c.env.Lookups[name]
	if !ok {
		declared := make([]string, 0, len(c.env.Lookups))
		for k := range c.env.Lookups {
			declared = append(declared, k)
		}
		switch s, near := connector.Closest(name, declared); {
		case near:
			c.fail(at, "lookup %q is not declared (did you mean %q?)", name, s)
		case len(declared) == 0:
			c.fail(at, "lookup %q is not declared (the pipeline declares no lookups)", name)
		default:
			sort.Strings(declared)
			c.fail(at, "lookup %q is not declared (declared: %s)", name, strings.Join(declared, ", "))
		}
		return
	}
	if keys, got := t.Keys(), len(call.Arguments)-2; got != len(keys) {
		c.fail(call, "lookup %q takes %d key value(s) (%s), got %d", name, len(keys), strings.Join(keys, ", "), got)
	}
}
