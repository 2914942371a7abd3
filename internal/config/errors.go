package config

import (
	"errors"
	"sort"
	"strings"

	"github.com/backbone-etl/backbone/internal/connector"
)

// Errors is every problem found in one or more pipeline files, each at its
// file:line:col. Loading never stops at the first one.
type Errors []*connector.PosError

func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, pe := range e {
		lines[i] = pe.Error()
	}
	return strings.Join(lines, "\n")
}

// Redacted renders the errors with secrets replaced.
func (e Errors) Redacted(r *Redactor) string {
	lines := make([]string, len(e))
	for i, pe := range e {
		lines[i] = r.Redact(pe.Error())
	}
	return strings.Join(lines, "\n")
}

// Sort orders the errors by file, line and column.
func (e Errors) Sort() {
	sort.SliceStable(e, func(i, j int) bool {
		a, b := e[i].Pos, e[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// collector gathers errors of one file.
type collector struct {
	file string
	errs Errors
	red  *Redactor
}

func (c *collector) at(p connector.Pos, format string, args ...any) {
	p.File = c.file
	c.errs = append(c.errs, connector.Errorf(p, format, args...))
}

// add records err, keeping its position when it has one and using p
// otherwise. Errors that hold several (Errors, errors.Join) are spread.
func (c *collector) add(p connector.Pos, err error) {
	if err == nil {
		return
	}
	var many Errors
	if errors.As(err, &many) {
		c.errs = append(c.errs, many...)
		return
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			c.add(p, e)
		}
		return
	}
	var pe *connector.PosError
	if errors.As(err, &pe) {
		cp := *pe
		if cp.Pos.File == "" {
			cp.Pos.File = c.file
		}
		if cp.Pos.Line == 0 {
			cp.Pos.Line, cp.Pos.Col = p.Line, p.Col
		}
		c.errs = append(c.errs, &cp)
		return
	}
	c.at(p, "%s", err.Error())
}

// DidYouMean renders " (did you mean "x"?)" or "" when nothing is close.
func DidYouMean(name string, candidates []string) string {
	if s, ok := connector.Closest(name, candidates); ok {
		return ` (did you mean "` + s + `"?)`
	}
	return ""
}
