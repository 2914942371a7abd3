package httpc

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/backbone-etl/backbone/internal/record"
)

// posVersion is the version of the position format: a newer one is
// refused rather than taken for a first read.
const posVersion = 1

// pageReq says which page to ask for: the API's cursor, a page number or
// the link the API gave.
type pageReq struct {
	Cursor string `json:"cursor,omitempty"`
	Page   int    `json:"page,omitempty"`
	URL    string `json:"url,omitempty"`
}

// posState is a position: the page being read and how many of its records
// were consumed, or (Req nil) the end of a traversal. In mode incremental,
// Since is the (cursor, key) the traversal started after — sent to the API
// and filtered out — and Max the greatest one read so far, which becomes
// the next traversal's Since. Values are kept as text with full precision.
type posState struct {
	V     int      `json:"v"`
	Since []string `json:"since,omitempty"`
	Max   []string `json:"max,omitempty"`
	Req   *pageReq `json:"req,omitempty"`
	Skip  int      `json:"skip,omitempty"`
	Seq   int64    `json:"seq,omitempty"` // records consumed in the traversal: the place of the next
}

func (s *source) firstPage() *pageReq {
	if s.cfg.Pagination.Type == pageNumber {
		return &pageReq{Page: s.cfg.Pagination.Start}
	}
	return &pageReq{}
}

func (s *source) decodePos(pos record.Position) (posState, error) {
	if len(pos) == 0 {
		return posState{V: posVersion, Req: s.firstPage()}, nil
	}
	var st posState
	if err := json.Unmarshal(pos, &st); err != nil {
		return st, fmt.Errorf("the checkpoint %q is not a position of this source: %v", pos, err)
	}
	switch {
	case st.V > posVersion:
		return st, fmt.Errorf("the checkpoint was written by a newer version (format %d; this one reads %d)", st.V, posVersion)
	case st.V < 1:
		return st, fmt.Errorf("the checkpoint %q is not a position of this source", pos)
	case (len(st.Since) > 0 || len(st.Max) > 0) && s.cfg.Mode != modeIncremental:
		return st, fmt.Errorf("the checkpoint is of mode incremental; the source is now in mode %s", s.cfg.Mode)
	}
	return st, nil
}

// parseMark reads the texts of a (cursor, key) back into values.
func (s *source) parseMark(texts []string, loc *time.Location) ([]any, error) {
	if len(texts) == 0 {
		return nil, nil
	}
	if len(texts) != len(s.order) {
		return nil, fmt.Errorf("it holds %d cursor and key values; the source orders by %d (%s): the cursor or key changed since it was written", len(texts), len(s.order), strings.Join(s.orderNames(), ", "))
	}
	m := make([]any, len(texts))
	for i, t := range texts {
		f := s.schema.Field(s.order[i])
		v, err := record.ParseText(t, f.Type, loc)
		if err != nil {
			return nil, fmt.Errorf("field %s: %v", f.Name, err)
		}
		m[i] = v
	}
	return m, nil
}

func (s *source) orderNames() []string {
	names := make([]string, len(s.order))
	for i, idx := range s.order {
		names[i] = s.schema.Field(idx).Name
	}
	return names
}

func markTexts(m []any) []string {
	if m == nil {
		return nil
	}
	out := make([]string, len(m))
	for i, v := range m {
		out[i] = record.FormatText(v)
	}
	return out
}

// encodedPos is the reader's position as stored.
func (r *reader) encodedPos() (string, error) {
	st := r.st
	st.V = posVersion
	st.Since, st.Max = markTexts(r.since), markTexts(r.max)
	b, err := json.Marshal(st)
	return string(b), err
}

// compareMarks orders two (cursor, key) tuples of the same fields.
func compareMarks(a, b []any) int {
	for i := range a {
		if c := compareValues(a[i], b[i]); c != 0 {
			return c
		}
	}
	return 0
}

// compareValues orders two values of one field's type.
func compareValues(a, b any) int {
	switch x := a.(type) {
	case int64:
		return cmp3(x, b.(int64))
	case float64:
		return cmp3(x, b.(float64))
	case string:
		return strings.Compare(x, b.(string))
	case record.Dec:
		return x.Cmp(b.(record.Dec))
	case time.Time:
		return x.Compare(b.(time.Time))
	case record.LocalDate:
		return cmp3(x, b.(record.LocalDate))
	case bool:
		switch y := b.(bool); {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	}
	return strings.Compare(record.FormatText(a), record.FormatText(b))
}

func cmp3[T int64 | float64 | record.LocalDate](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
