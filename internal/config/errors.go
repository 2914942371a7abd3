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

// suggest returns the candidate closest to name when it is close enough to
// be a likely typo.
func suggest(name string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if len(c) >= 3 && len(name) >= 3 && (strings.HasPrefix(strings.ToLower(name), strings.ToLower(c)) || strings.HasPrefix(strings.ToLower(c), strings.ToLower(name))) {
			return c // "jsonlines" → "jsonl"
		}
		d := distance(strings.ToLower(name), strings.ToLower(c))
		if d < bestD {
			best, bestD = c, d
		}
	}
	limit := len(name) / 3
	if limit < 2 {
		limit = 2
	}
	if bestD <= limit {
		return best
	}
	return ""
}

// DidYouMean renders " (did you mean "x"?)" or "" when nothing is close.
func DidYouMean(name string, candidates []string) string {
	if s := suggest(name, candidates); s != "" {
		return ` (did you mean "` + s + `"?)`
	}
	return ""
}

// distance is the Levenshtein distance.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
