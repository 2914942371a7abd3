package httpc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/jsonrec"
	"github.com/backbone-etl/backbone/internal/record"
)

// Source modes and pagination types.
const (
	modeFull        = "full"
	modeIncremental = "incremental"

	pageNone   = "none"
	pageCursor = "cursor"
	pageNumber = "page"
	pageLink   = "link"
)

type sourceConfig struct {
	URL        string              `yaml:"url"`
	Method     string              `yaml:"method"`
	Body       string              `yaml:"body"`
	Params     connector.Map       `yaml:"params"`
	Records    string              `yaml:"records"`
	Schema     connector.SchemaDef `yaml:"schema"`
	Paths      connector.Map       `yaml:"paths"`
	Pagination paginationConfig    `yaml:"pagination"`
	Mode       string              `yaml:"mode"`
	Cursor     string              `yaml:"cursor"`
	Key        connector.List      `yaml:"key"`
	SinceParam *string             `yaml:"since_param"`
	Retries    int                 `yaml:"retries"`
	Backoff    connector.Duration  `yaml:"backoff"`
	HTTPConfig `yaml:",inline"`
}

type paginationConfig struct {
	Type      string `yaml:"type"`
	Next      string `yaml:"next"`
	Param     string `yaml:"param"`
	Start     int    `yaml:"start"`
	SizeParam string `yaml:"size_param"`
	Size      int    `yaml:"size"`
}

var sourceSpec = connector.Spec{
	Name:    "http",
	Summary: "Records from a JSON API, page after page, whole or incrementally by a field.",
	Doc: `Reads the records of a JSON API: each response holds a list of records at records (a path of
member names separated by dots; empty: the response is the list). Each record is a JSON object
whose members give the schema's fields (paths maps a field to another place in the record);
a value that does not convert to its field's type rejects the record, with the record as its
raw text.

Pagination follows the API: cursor reads the next page's cursor at pagination.next in each
response and sends it as the query parameter pagination.param (no cursor, or an empty page:
the end); page sends page numbers from pagination.start in pagination.param and stops at the
first empty page; link follows the Link header's rel="next" URL (RFC 8288). pagination.size
sets the page size through pagination.size_param.

mode incremental reads only records whose (cursor, key) comes after the last record read by
the previous run, in the order of (cursor, key) — the same guarantee as the SQL sources: the
cursor field grows with every new or changed record, and the key (unique) orders records
sharing a cursor value, so those straddling a run boundary are each read exactly once. Each
run sends the last cursor value as the query parameter since_param (the API should answer the
records whose cursor is at or after it, inclusive), and filters out client side the records
at or before the checkpoint, so an API that ignores the parameter is still read correctly,
only slower. The checkpoint keeps the greatest (cursor, key) read with full precision; a run
resumed after a failure re-reads its page from the checkpoint's place and skips what was
read. mode full reads everything each run.

Requests are bounded by timeout; one that fails because of the service (a refused
connection, a timeout, 408, 429 or 5xx) is retried retries times with exponential backoff and
jitter, honouring Retry-After; past them the engine reopens the task from its last position,
with backoff. Other 4xx statuses fail the run with the response's body. rate_limit spaces
requests out. Credentials come from environment variables (auth) and are never printed.`,
	Fields: append([]connector.FieldSpec{
		{Name: "url", Type: connector.TString, Required: true, Doc: "The endpoint of the first page."},
		{Name: "method", Type: connector.TEnum, Enum: []string{http.MethodGet, http.MethodPost}, Default: http.MethodGet, Doc: "GET, or POST with body."},
		{Name: "body", Type: connector.TString, Doc: "POST: the JSON body of every request."},
		{Name: "params", Type: connector.TMap, Doc: "Query parameters added to every request."},
		{Name: "records", Type: connector.TString, Doc: "Path of the list of records in a response, like data.items; empty: the response is the list."},
		{Name: "schema", Type: connector.TSchema, Required: true, Doc: "Fields and types of the records."},
		{Name: "paths", Type: connector.TMap, Doc: "Path of a field inside a record, like customer.id, when it is not the member of the field's name."},
		{Name: "pagination", Type: connector.TObject, Doc: "How to get the next page.", Fields: []connector.FieldSpec{
			{Name: "type", Type: connector.TEnum, Enum: []string{pageNone, pageCursor, pageNumber, pageLink}, Default: pageNone, Doc: "none: one request; cursor, page or link as described above."},
			{Name: "next", Type: connector.TString, Doc: "cursor: path of the next page's cursor in a response, like meta.next_cursor."},
			{Name: "param", Type: connector.TString, Doc: "cursor and page: the query parameter carrying the cursor (default cursor) or the page number (default page)."},
			{Name: "start", Type: connector.TInt, Default: "1", Doc: "page: the number of the first page."},
			{Name: "size_param", Type: connector.TString, Doc: "The query parameter of the page size."},
			{Name: "size", Type: connector.TInt, Doc: "The page size sent in size_param."},
		}},
		{Name: "mode", Type: connector.TEnum, Enum: []string{modeFull, modeIncremental}, Default: modeFull, Doc: "full reads everything every run; incremental resumes after the last (cursor, key) read."},
		{Name: "cursor", Type: connector.TString, Doc: "incremental: the field that grows with every new or changed record (a timestamp, a sequence)."},
		{Name: "key", Type: connector.TList, Doc: "incremental: unique field(s) ordering records that share a cursor value (a unique cursor may be its own key)."},
		{Name: "since_param", Type: connector.TString, Default: "since", Doc: "incremental: the query parameter carrying the last cursor value read; empty: none is sent."},
		{Name: "retries", Type: connector.TInt, Default: "5", Doc: "Retries of a request that failed because of the service."},
		{Name: "backoff", Type: connector.TDuration, Default: "200ms", Doc: "Wait before the first retry, doubled for each next one (at most 10s)."},
	}, httpFields("30s")...),
	Example: `source:
  type: http
  url: https://api.example.com/v1/orders
  auth: { type: bearer, token_env: ORDERS_API_TOKEN }
  records: data
  pagination: { type: cursor, next: meta.next_cursor, param: cursor, size_param: limit, size: 500 }
  mode: incremental
  cursor: updated_at
  key: id
  since_param: updated_since
  rate_limit: 10
  schema: { id: int, status: string, total: decimal, updated_at: timestamp }`,
}

func newSource(p connector.Params) (connector.Source, error) {
	cfg := sourceConfig{
		Method:     http.MethodGet,
		Mode:       modeFull,
		Pagination: paginationConfig{Type: pageNone, Start: 1},
		Retries:    5,
		Backoff:    connector.Duration(200 * time.Millisecond),
		HTTPConfig: HTTPConfig{Timeout: connector.Duration(30 * time.Second), MaxResponse: 64 << 20},
	}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	if err := cfg.HTTPConfig.check(p); err != nil {
		return nil, err
	}
	if _, err := checkURL(p, "url", cfg.URL); err != nil {
		return nil, err
	}
	s := &source{cfg: cfg, schema: cfg.Schema.Schema(), since: "since"}
	if s.schema == nil {
		return nil, connector.Errorf(p.FieldPos("schema"), "schema is required: the fields and types of the records")
	}
	if cfg.SinceParam != nil {
		s.since = *cfg.SinceParam
	}
	switch cfg.Method {
	case http.MethodGet:
		if cfg.Body != "" {
			return nil, connector.Errorf(p.FieldPos("body"), "body is sent with method POST only")
		}
	case http.MethodPost:
		if cfg.Body != "" && !json.Valid([]byte(cfg.Body)) {
			return nil, connector.Errorf(p.FieldPos("body"), "body is not valid JSON")
		}
	default:
		return nil, connector.Errorf(p.FieldPos("method"), "method %q: want GET or POST", cfg.Method)
	}
	var err error
	if s.records, err = jsonrec.ParsePath(cfg.Records); err != nil {
		return nil, connector.Errorf(p.FieldPos("records"), "records: %v", err)
	}
	if s.fields, err = jsonrec.NewReader(s.schema, cfg.Paths); err != nil {
		return nil, err
	}
	if err := s.checkPagination(p); err != nil {
		return nil, err
	}
	if err := s.checkMode(p); err != nil {
		return nil, err
	}
	if cfg.Retries < 0 || cfg.Retries > 20 {
		return nil, connector.Errorf(p.FieldPos("retries"), "retries must be between 0 and 20, got %d", cfg.Retries)
	}
	return s, nil
}

func (s *source) checkPagination(p connector.Params) error {
	pg := &s.cfg.Pagination
	pos := p.FieldPos("pagination")
	switch pg.Type {
	case pageNone, pageLink:
		if pg.Next != "" || pg.Param != "" {
			return connector.Errorf(pos, "pagination: next and param are for types cursor and page")
		}
	case pageCursor:
		if pg.Next == "" {
			return connector.Errorf(pos, "pagination: type cursor needs next, the path of the next cursor in a response")
		}
		if pg.Param == "" {
			pg.Param = "cursor"
		}
		var err error
		if s.next, err = jsonrec.ParsePath(pg.Next); err != nil || len(s.next) == 0 {
			return connector.Errorf(pos, "pagination.next: %q is not a path in the response", pg.Next)
		}
	case pageNumber:
		if pg.Next != "" {
			return connector.Errorf(pos, "pagination: next is for type cursor")
		}
		if pg.Param == "" {
			pg.Param = "page"
		}
	default:
		return connector.Errorf(pos, "pagination.type %q: want none, cursor, page or link", pg.Type)
	}
	if (pg.SizeParam == "") != (pg.Size == 0) || pg.Size < 0 {
		return connector.Errorf(pos, "pagination: size_param and a positive size go together")
	}
	return nil
}

func (s *source) checkMode(p connector.Params) error {
	switch s.cfg.Mode {
	case modeFull:
		if s.cfg.Cursor != "" || len(s.cfg.Key) > 0 {
			return connector.Errorf(p.FieldPos("cursor"), "cursor and key are only used in mode incremental")
		}
		return nil
	case modeIncremental:
	default:
		return connector.Errorf(p.FieldPos("mode"), "mode %q: want full or incremental", s.cfg.Mode)
	}
	if s.cfg.Cursor == "" {
		return connector.Errorf(p.FieldPos("mode"), "mode incremental needs a cursor: the field whose values grow with every new or changed record")
	}
	if len(s.cfg.Key) == 0 {
		return connector.Errorf(p.FieldPos("mode"), "mode incremental needs a key: unique field(s) ordering records that share a cursor value")
	}
	for _, n := range append([]string{s.cfg.Cursor}, s.cfg.Key...) {
		i, ok := s.schema.Index(n)
		if !ok {
			return connector.Errorf(p.FieldPos("cursor"), "%q is not a field of the schema (%s)", n, strings.Join(s.schema.Names(), ", "))
		}
		switch t := s.schema.Field(i).Type; t {
		case record.JSON, record.Any, record.Bytes:
			return connector.Errorf(p.FieldPos("cursor"), "field %q is a %s: a cursor or key must be ordered (int, decimal, string, timestamp, date…)", n, t)
		}
		if !slices.Contains(s.order, i) { // a unique cursor may be its own key
			s.order = append(s.order, i)
		}
	}
	return nil
}

type source struct {
	cfg     sourceConfig
	schema  *record.Schema
	records jsonrec.Path
	next    jsonrec.Path
	fields  *jsonrec.Reader
	since   string // the query parameter of the last cursor value
	order   []int  // incremental: the cursor then the key fields
}

// Schema implements connector.Schemer.
func (s *source) Schema() *record.Schema { return s.schema }

// taskKey names the task: the endpoint without its query, which may hold
// secrets.
func (s *source) taskKey(env *connector.Env) string {
	u, _ := url.Parse(s.cfg.URL)
	key := u.Host + u.EscapedPath()
	if s.cfg.Mode == modeFull {
		key += "@" + env.RunID // a full read starts over every run
	}
	return key
}

// Plan implements connector.Source: one task. It makes no request.
func (s *source) Plan(_ context.Context, env *connector.Env) ([]connector.Task, error) {
	return []connector.Task{{Key: s.taskKey(env)}}, nil
}

// Check implements connector.Checker: one request for the first page.
func (s *source) Check(ctx context.Context, env *connector.Env) error {
	r, err := s.Open(ctx, env, connector.Task{Key: s.taskKey(env)}, nil)
	if err != nil {
		return err
	}
	defer r.Close()
	rd := r.(*reader)
	return rd.fetch(ctx, rd.st.Req)
}

// Open implements connector.Source. The first request is made by Next.
func (s *source) Open(ctx context.Context, env *connector.Env, t connector.Task, pos record.Position) (connector.Reader, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st, err := s.decodePos(pos)
	if err != nil {
		return nil, fmt.Errorf("http source %s: %w", t.Key, err)
	}
	c, err := newClient(&s.cfg.HTTPConfig, 1)
	if err != nil {
		return nil, fmt.Errorf("http source %s: %w", t.Key, err)
	}
	loc := env.Location
	if loc == nil {
		loc = time.UTC
	}
	fr := s.fields.In(loc)
	limits := env.Limits
	if limits.BatchRows <= 0 {
		limits = record.DefaultLimits
	}
	r := &reader{s: s, c: c, fields: fr, loc: loc, limits: limits, st: st, origin: s.cfg.Method + " " + redactURL(s.cfg.URL), sleep: sleepCtx}
	if r.since, err = s.parseMark(st.Since, loc); err == nil {
		r.max, err = s.parseMark(st.Max, loc)
	}
	if err != nil {
		c.close()
		return nil, fmt.Errorf("http source %s: position: %w", t.Key, err)
	}
	if r.emitted, err = r.encodedPos(); err != nil {
		c.close()
		return nil, fmt.Errorf("http source %s: position: %w", t.Key, err)
	}
	switch {
	case st.Req != nil:
		r.pending = true
	case s.cfg.Mode == modeIncremental:
		// The last run read to the end: a new traversal after its greatest
		// (cursor, key).
		r.st.Req, r.st.Skip, r.st.Seq, r.pending = s.firstPage(), 0, 0, true
	default:
		r.ended = true // the end of a full read
	}
	return r, nil
}

// reader reads the pages of one traversal.
type reader struct {
	s      *source
	c      *client
	fields *jsonrec.Reader
	loc    *time.Location
	limits record.Limits
	origin string
	sleep  func(context.Context, time.Duration) error

	st      posState // the position after the last record consumed
	page    []any    // records of the page at st.Req
	next    *pageReq // the page after it; nil: none
	pending bool     // st.Req is not fetched yet
	ended   bool     // the traversal is over
	since   []any    // decoded st.Since: records at or before it are skipped
	max     []any    // decoded st.Max
	emitted string   // the last position returned
}

// Schema implements connector.Reader.
func (r *reader) Schema() *record.Schema { return r.s.schema }

// Close implements connector.Reader.
func (r *reader) Close() error {
	r.c.close()
	return nil
}

// Next implements connector.Reader.
func (r *reader) Next(ctx context.Context) (*record.Batch, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.ended {
		return nil, io.EOF
	}
	b := &record.Batch{Schema: r.s.schema, Origin: r.origin}
	for b.Read < r.limits.BatchRows {
		if r.pending {
			// Fetch the page of the position, then skip what was read.
			if err := r.fetch(ctx, r.st.Req); err != nil {
				return nil, err
			}
			r.pending = false
		}
		if r.st.Skip >= len(r.page) {
			if !r.advance() {
				break
			}
			continue
		}
		rec := r.page[r.st.Skip]
		r.st.Skip++
		r.st.Seq++
		r.add(b, rec)
	}
	// Learn whether more follows the page just finished, so that the
	// position after the traversal's last record says the traversal ended:
	// the next run then starts a new one from the greatest cursor read.
	for !r.ended && r.st.Skip >= len(r.page) {
		if r.pending {
			if err := r.fetch(ctx, r.st.Req); err != nil {
				return nil, err
			}
			r.pending = false
			continue
		}
		r.advance()
	}
	if r.ended {
		r.finish()
	}
	pos, err := r.encodedPos()
	if err != nil {
		return nil, err
	}
	if b.Read == 0 && pos == r.emitted {
		return nil, io.EOF
	}
	r.emitted = pos
	b.Pos = record.Position(pos)
	return b, nil
}

// advance moves to the page after the current one; false when there is
// none (the traversal ended).
func (r *reader) advance() bool {
	if r.next == nil {
		r.ended = true
		return false
	}
	r.st.Req, r.st.Skip = r.next, 0
	r.page, r.next, r.pending = nil, nil, true
	return true
}

// finish turns the state into the end of the traversal.
func (r *reader) finish() {
	r.st.Req, r.st.Skip, r.st.Seq, r.page, r.pending = nil, 0, 0, nil, false
	if r.s.cfg.Mode == modeIncremental && r.max != nil {
		r.since, r.max = r.max, nil
	}
}

// add converts one record into b: a row, a reject, or nothing when an
// incremental read has it already.
func (r *reader) add(b *record.Batch, rec any) {
	row, err := r.fields.Row(rec)
	if err == nil && r.s.cfg.Mode == modeIncremental {
		var mark []any
		if mark, err = r.mark(row); err == nil {
			if r.since != nil && compareMarks(mark, r.since) <= 0 {
				return // read by an earlier run
			}
			if r.max == nil || compareMarks(mark, r.max) > 0 {
				r.max = mark
			}
		}
	}
	b.Read++
	if err != nil {
		raw, _ := json.Marshal(rec)
		b.Rejects = append(b.Rejects, record.Reject{Line: r.st.Seq, Step: "source", Err: err.Error(), Raw: raw})
		return
	}
	b.Rows = append(b.Rows, row)
	b.Lines = append(b.Lines, r.st.Seq)
}

// mark is a row's (cursor, key) values; a null one is an error.
func (r *reader) mark(row record.Row) ([]any, error) {
	m := make([]any, len(r.s.order))
	for i, idx := range r.s.order {
		if row[idx] == nil {
			return nil, fmt.Errorf("field %s is null: an incremental read orders records by it", r.s.schema.Field(idx).Name)
		}
		m[i] = row[idx]
	}
	return m, nil
}

// fetch gets the page req asks for into r.page and learns the next one.
func (r *reader) fetch(ctx context.Context, req *pageReq) error {
	u, err := r.requestURL(req)
	if err != nil {
		return err
	}
	var body []byte
	if r.s.cfg.Method == http.MethodPost {
		body = []byte(r.s.cfg.Body)
		if len(body) == 0 {
			body = []byte("{}")
		}
	}
	resp, err := r.c.doRetry(ctx, r.s.cfg.Method, u, body, nil, r.s.cfg.Retries, time.Duration(r.s.cfg.Backoff), true, r.sleep)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("http source: %w", err)
	}
	doc, err := jsonrec.Decode(resp.body)
	if err != nil {
		return fmt.Errorf("http source: %s %s: %w", r.s.cfg.Method, redactURL(u), err)
	}
	list, found := r.s.records.Get(doc)
	switch x := list.(type) {
	case []any:
		r.page = x
	case nil:
		if !found {
			// A typo in records must not read as an empty API.
			return fmt.Errorf("http source: %s %s: the response has nothing at %s (%s)", r.s.cfg.Method, redactURL(u), r.s.records, jsonrec.Members(doc))
		}
		r.page = nil // null: an empty page
	default:
		return fmt.Errorf("http source: %s %s: %s holds a JSON %s, not a list of records", r.s.cfg.Method, redactURL(u), r.s.records, jsonrec.Kind(list))
	}
	r.next = nil
	if len(r.page) == 0 {
		return nil // an empty page ends every kind of traversal
	}
	switch r.s.cfg.Pagination.Type {
	case pageCursor:
		v, _ := r.s.next.Get(doc)
		switch x := v.(type) {
		case string:
			if x != "" {
				if x == req.Cursor {
					return fmt.Errorf("http source: %s %s: the next cursor is the current one (%q): the API would be read forever", r.s.cfg.Method, redactURL(u), x)
				}
				r.next = &pageReq{Cursor: x}
			}
		case json.Number:
			r.next = &pageReq{Cursor: x.String()}
		case nil:
		default:
			return fmt.Errorf("http source: %s %s: the next cursor at %s is a JSON %s", r.s.cfg.Method, redactURL(u), r.s.next, jsonrec.Kind(v))
		}
	case pageNumber:
		r.next = &pageReq{Page: req.Page + 1}
	case pageLink:
		if next := linkNext(resp.header, u); next != "" {
			if next == u {
				return fmt.Errorf("http source: %s %s: the next link is the current page: the API would be read forever", r.s.cfg.Method, redactURL(u))
			}
			r.next = &pageReq{URL: next}
		}
	}
	return nil
}

// requestURL builds the URL of a page.
func (r *reader) requestURL(req *pageReq) (string, error) {
	if req.URL != "" {
		return req.URL, nil // a link given by the API: its query says it all
	}
	u, err := url.Parse(r.s.cfg.URL)
	if err != nil {
		return "", fmt.Errorf("http source: url: %w", err)
	}
	q := u.Query()
	for _, kv := range r.s.cfg.Params {
		q.Set(kv.Key, kv.Value)
	}
	pg := r.s.cfg.Pagination
	switch pg.Type {
	case pageCursor:
		if req.Cursor != "" {
			q.Set(pg.Param, req.Cursor)
		}
	case pageNumber:
		q.Set(pg.Param, strconv.Itoa(req.Page))
	}
	if pg.SizeParam != "" {
		q.Set(pg.SizeParam, strconv.Itoa(pg.Size))
	}
	if r.s.cfg.Mode == modeIncremental && r.s.since != "" && r.since != nil {
		q.Set(r.s.since, record.FormatText(r.since[0]))
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// linkNext returns the rel="next" target of the Link headers (RFC 8288),
// resolved against the request's URL.
func linkNext(h http.Header, base string) string {
	for _, line := range h.Values("Link") {
		for _, link := range splitLinks(line) {
			target, params, ok := strings.Cut(link, ";")
			target = strings.TrimSpace(target)
			if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				continue
			}
			for _, p := range strings.Split(params, ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
				if !strings.EqualFold(strings.TrimSpace(k), "rel") {
					continue
				}
				for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(v), `"`)) {
					if strings.EqualFold(rel, "next") {
						b, err := url.Parse(base)
						t, err2 := url.Parse(target[1 : len(target)-1])
						if err != nil || err2 != nil {
							return ""
						}
						return b.ResolveReference(t).String()
					}
				}
			}
		}
	}
	return ""
}

// splitLinks splits a Link header at the commas between links, not those
// inside <…> or quotes.
func splitLinks(s string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '<':
			depth++
		case c == '>':
			depth--
		case c == ',' && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
