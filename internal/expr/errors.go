package expr

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/expr-lang/expr/file"

	"github.com/backbone-etl/backbone/internal/connector"
)

// compileError turns an error of the expression library (or of the static
// checks) into a *connector.PosError at the offending place in the file.
func compileError(e connector.Expr, text string, err error, env Env) error {
	var fe *file.Error
	if !errors.As(err, &fe) {
		return connector.Errorf(e.Pos, "expression `%s`: %s", text, cleanMessage(err.Error()))
	}
	msg := fe.Message
	if name, ok := strings.CutPrefix(msg, "unknown name "); ok {
		msg = unknownName(e.Src, fe.Location, name, env)
	} else {
		msg = cleanMessage(msg)
	}
	return &connector.PosError{Pos: position(e, fe.From), Msg: fmt.Sprintf("expression `%s`: %s", text, msg)}
}

// position is the place in the pipeline file of the character at rune
// offset off of the expression. Expr.Pos is the place of the expression's
// first character; later lines of a block scalar start at the same column.
func position(e connector.Expr, off int) connector.Pos {
	p := e.Pos
	if p.Line == 0 {
		return p
	}
	line, col := 0, 0
	n := 0
	for _, r := range e.Src {
		if n == off {
			break
		}
		n++
		if r == '\n' {
			line++
			col = 0
			continue
		}
		col++
	}
	p.Line += line
	p.Col += col
	return p
}

// unknownName explains a name the checker did not know: a field, or a
// function when a call follows it.
func unknownName(src string, loc file.Location, name string, env Env) string {
	isCall := false
	if rest, ok := runeSuffix(src, loc.To); ok {
		isCall = strings.HasPrefix(strings.TrimLeft(rest, " \t\r\n"), "(")
	}
	if isCall {
		names := make([]string, 0, len(funcDefs))
		for _, f := range funcDefs {
			names = append(names, f.Name)
		}
		if s, ok := connector.Closest(name, append(names, exprBuiltins...)); ok {
			return fmt.Sprintf("unknown function %q (did you mean %q?)", name, s)
		}
		return fmt.Sprintf("unknown function %q", name)
	}
	var fields []string
	if env.Schema != nil {
		fields = env.Schema.Names()
	}
	if s, ok := connector.Closest(name, append(fields, RunTimeName)); ok {
		return fmt.Sprintf("unknown field %q (did you mean %q?)", name, s)
	}
	if len(fields) == 0 {
		return fmt.Sprintf("unknown field %q (no fields flow into this step)", name)
	}
	return fmt.Sprintf("unknown field %q (fields: %s)", name, listNames(fields, 12))
}

func runeSuffix(s string, off int) (string, bool) {
	n := 0
	for i := range s {
		if n == off {
			return s[i:], true
		}
		n++
	}
	return "", n == off
}

func listNames(names []string, most int) string {
	if len(names) > most {
		return strings.Join(names[:most], ", ") + fmt.Sprintf(", … (%d more)", len(names)-most)
	}
	return strings.Join(names, ", ")
}

var (
	mismatched2 = regexp.MustCompile(`^invalid operation: (\S+) \(mismatched types (.+) and (.+)\)$`)
	mismatched1 = regexp.MustCompile(`^invalid operation: (\S+) \(mismatched type (.+)\)$`)
	typeWords   = strings.NewReplacer(
		"map[string]interface {}", "json",
		"[]interface {}", "list",
		"interface {}", "any",
		"record.Dec", "decimal",
		"record.LocalDate", "date",
		"time.Time", "timestamp",
		"time.Duration", "duration",
		"float64", "float",
		"int64", "int",
		"[]uint8", "bytes",
		"<nil>", "null",
	)
)

// cleanMessage rewrites an expression library message in pipeline terms:
// record type names instead of Go ones, "null" instead of "<nil>".
func cleanMessage(msg string) string {
	if strings.Contains(msg, "interface conversion: interface {} is nil") {
		return "a value is null where it cannot be (use ?? or coalesce to give a default)"
	}
	if m := mismatched2.FindStringSubmatch(msg); m != nil {
		msg = fmt.Sprintf("invalid operation: %s %s %s", m[2], m[1], m[3])
	} else if m := mismatched1.FindStringSubmatch(msg); m != nil {
		msg = fmt.Sprintf("invalid operation: %s%s", m[1], m[2])
	}
	return strings.TrimSpace(typeWords.Replace(msg))
}
