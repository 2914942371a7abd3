package record

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestNewSchema(t *testing.T) {
	tests := []struct {
		name    string
		fields  []Field
		wantErr string
	}{
		{name: "empty", fields: nil},
		{name: "fields", fields: []Field{{"id", Int}, {"name", String}}},
		{name: "same type twice is fine", fields: []Field{{"a", Int}, {"b", Int}}},
		{name: "duplicate name", fields: []Field{{"id", Int}, {"name", String}, {"id", String}}, wantErr: `field "id" appears twice`},
		{name: "duplicate with another type", fields: []Field{{"a", Int}, {"a", Int}}, wantErr: `field "a" appears twice`},
		{name: "empty name", fields: []Field{{"id", Int}, {"", String}}, wantErr: `field 2 has no name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSchema(tt.fields...)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("NewSchema error = %v, want %q", err, tt.wantErr)
				}
				if s != nil {
					t.Errorf("NewSchema returned a schema with its error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.fields, s.Fields()); diff != "" && len(tt.fields) > 0 {
				t.Errorf("Fields() (-want +got):\n%s", diff)
			}
			if s.Len() != len(tt.fields) {
				t.Errorf("Len() = %d, want %d", s.Len(), len(tt.fields))
			}
		})
	}
}

func TestMustSchemaPanicsOnDuplicate(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), `"a" appears twice`) {
			t.Errorf("recovered %v, want the duplicate error", r)
		}
	}()
	MustSchema(Field{"a", Int}, Field{"a", String})
}

func TestSchemaAccessors(t *testing.T) {
	in := []Field{{"id", Int}, {"name", String}, {"price", Decimal}}
	s := MustSchema(in...)

	in[0].Name = "changed" // the schema keeps its own copy
	if got := s.Field(0).Name; got != "id" {
		t.Errorf("schema changed with the caller's slice: field 0 = %q", got)
	}
	fs := s.Fields()
	fs[1].Name = "changed"
	if got := s.Field(1).Name; got != "name" {
		t.Errorf("schema changed through Fields(): field 1 = %q", got)
	}

	for i, name := range []string{"id", "name", "price"} {
		got, ok := s.Index(name)
		if !ok || got != i {
			t.Errorf("Index(%q) = %d, %v; want %d, true", name, got, ok, i)
		}
	}
	if _, ok := s.Index("missing"); ok {
		t.Errorf("Index(missing) found a field")
	}
	if _, ok := s.Index("ID"); ok {
		t.Errorf("Index is case-insensitive; want exact names")
	}
	if diff := cmp.Diff([]string{"id", "name", "price"}, s.Names()); diff != "" {
		t.Errorf("Names() (-want +got):\n%s", diff)
	}
	if got, want := s.String(), "id int, name string, price decimal"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestSchemaEqual(t *testing.T) {
	base := MustSchema(Field{"a", Int}, Field{"b", String})
	tests := []struct {
		name  string
		a, b  *Schema
		equal bool
	}{
		{name: "same pointer", a: base, b: base, equal: true},
		{name: "same fields", a: base, b: MustSchema(Field{"a", Int}, Field{"b", String}), equal: true},
		{name: "other type", a: base, b: MustSchema(Field{"a", Int}, Field{"b", Decimal})},
		{name: "other name", a: base, b: MustSchema(Field{"a", Int}, Field{"c", String})},
		{name: "other order", a: base, b: MustSchema(Field{"b", String}, Field{"a", Int})},
		{name: "fewer fields", a: base, b: MustSchema(Field{"a", Int})},
		{name: "more fields", a: base, b: MustSchema(Field{"a", Int}, Field{"b", String}, Field{"c", Int})},
		{name: "nil other", a: base, b: nil},
		{name: "nil receiver", a: nil, b: base},
		{name: "both nil", a: nil, b: nil, equal: true},
		{name: "both empty", a: MustSchema(), b: MustSchema(), equal: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.Equal(tt.b); got != tt.equal {
				t.Errorf("Equal = %v, want %v", got, tt.equal)
			}
		})
	}
}

var batchSchema = MustSchema(Field{"id", Int}, Field{"name", String})

// newBatch makes a batch of n rows with ids 0..n-1, lines 10, 20, ... and
// raw text "r0", "r1", ...
func newBatch(n int, withLines, withRaw bool) *Batch {
	b := &Batch{Schema: batchSchema, Origin: "in.csv", Read: n}
	for i := 0; i < n; i++ {
		b.Rows = append(b.Rows, Row{int64(i), fmt.Sprintf("n%d", i)})
		if withLines {
			b.Lines = append(b.Lines, int64(10*(i+1)))
		}
		if withRaw {
			b.Raw = append(b.Raw, []byte(fmt.Sprintf("r%d", i)))
		}
	}
	return b
}

func TestBatchCompact(t *testing.T) {
	type op struct {
		reject bool // else drop
		row    int
	}
	tests := []struct {
		name      string
		n         int
		lines     bool
		raw       bool
		ops       []op
		wantIDs   []int64
		wantLines []int64
		wantRaw   []string
		rejects   []Reject
		filtered  int
	}{
		{
			name: "nothing marked", n: 3, lines: true, raw: true,
			wantIDs: []int64{0, 1, 2}, wantLines: []int64{10, 20, 30}, wantRaw: []string{"r0", "r1", "r2"},
		},
		{
			name: "drop and reject keep order", n: 6, lines: true, raw: true,
			ops:     []op{{false, 1}, {true, 3}, {false, 5}, {true, 0}},
			wantIDs: []int64{2, 4}, wantLines: []int64{30, 50}, wantRaw: []string{"r2", "r4"},
			rejects: []Reject{
				{Line: 40, Step: "step", Field: "id", Err: "bad 3", Raw: []byte("r3")},
				{Line: 10, Step: "step", Field: "id", Err: "bad 0", Raw: []byte("r0")},
			},
			filtered: 2,
		},
		{
			name: "everything dropped", n: 3, lines: true, raw: true,
			ops:       []op{{false, 0}, {false, 1}, {false, 2}},
			wantIDs:   []int64{},
			wantLines: []int64{},
			wantRaw:   []string{},
			filtered:  3,
		},
		{
			name: "everything rejected", n: 2, lines: true,
			ops:       []op{{true, 1}, {true, 0}},
			wantIDs:   []int64{},
			wantLines: []int64{},
			rejects: []Reject{
				{Line: 20, Step: "step", Field: "id", Err: "bad 1", Raw: []byte(`{"id":1,"name":"n1"}`)},
				{Line: 10, Step: "step", Field: "id", Err: "bad 0", Raw: []byte(`{"id":0,"name":"n0"}`)},
			},
		},
		{
			name: "first and last", n: 4, lines: true, raw: true,
			ops:     []op{{true, 0}, {false, 3}},
			wantIDs: []int64{1, 2}, wantLines: []int64{20, 30}, wantRaw: []string{"r1", "r2"},
			rejects:  []Reject{{Line: 10, Step: "step", Field: "id", Err: "bad 0", Raw: []byte("r0")}},
			filtered: 1,
		},
		{
			name: "no lines and no raw: the row as JSON at line 0", n: 3,
			ops:      []op{{true, 1}},
			wantIDs:  []int64{0, 2},
			rejects:  []Reject{{Line: 0, Step: "step", Field: "id", Err: "bad 1", Raw: []byte(`{"id":1,"name":"n1"}`)}},
			filtered: 0,
		},
		{
			name: "empty batch", n: 0, lines: true, raw: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBatch(tt.n, tt.lines, tt.raw)
			for _, o := range tt.ops {
				if o.reject {
					b.RejectRow(o.row, "step", "id", fmt.Sprintf("bad %d", o.row))
				} else {
					b.Drop(o.row)
				}
			}
			if len(tt.ops) > 0 && b.Len() != tt.n {
				t.Errorf("marks took effect before Compact: Len() = %d, want %d", b.Len(), tt.n)
			}
			b.Compact()

			var ids []int64
			for _, r := range b.Rows {
				ids = append(ids, r[0].(int64))
			}
			if diff := cmp.Diff(tt.wantIDs, ids, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			if tt.lines {
				if diff := cmp.Diff(tt.wantLines, b.Lines, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("Lines (-want +got):\n%s", diff)
				}
			} else if b.Lines != nil {
				t.Errorf("Lines = %v, want nil", b.Lines)
			}
			if tt.raw {
				var raw []string
				for _, r := range b.Raw {
					raw = append(raw, string(r))
				}
				if diff := cmp.Diff(tt.wantRaw, raw, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("Raw (-want +got):\n%s", diff)
				}
			} else if b.Raw != nil {
				t.Errorf("Raw = %v, want nil", b.Raw)
			}
			if diff := cmp.Diff(tt.rejects, b.Rejects, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Rejects (-want +got):\n%s", diff)
			}
			if b.Filtered != tt.filtered {
				t.Errorf("Filtered = %d, want %d", b.Filtered, tt.filtered)
			}
			if got := b.Len() + len(b.Rejects) + b.Filtered; got != b.Read {
				t.Errorf("rows %d + rejects %d + filtered %d = %d, want read = %d", b.Len(), len(b.Rejects), b.Filtered, got, b.Read)
			}
		})
	}
}

func TestBatchCompactClearsTail(t *testing.T) {
	b := newBatch(4, true, true)
	rows, raw := b.Rows, b.Raw
	b.Drop(0)
	b.Drop(2)
	b.Compact()
	// The slots past the end no longer hold rows or text, for the GC.
	for i := b.Len(); i < len(rows); i++ {
		if rows[i] != nil || raw[i] != nil {
			t.Errorf("slot %d still holds row %v, raw %q", i, rows[i], raw[i])
		}
	}
}

func TestBatchSeveralSteps(t *testing.T) {
	// Two steps in a row, each compacting: indexes are those of the
	// compacted batch, and the counts add up.
	b := newBatch(10, true, true)
	for i := 0; i < b.Len(); i += 2 { // step 1 drops the even ids
		b.Drop(i)
	}
	b.Compact()
	for i, r := range b.Rows { // step 2 rejects ids 3 and 7
		if id := r[0].(int64); id == 3 || id == 7 {
			b.RejectRow(i, "validate[2]", "id", fmt.Sprintf("id %d", id))
		}
	}
	b.Compact()

	var ids []int64
	for _, r := range b.Rows {
		ids = append(ids, r[0].(int64))
	}
	if diff := cmp.Diff([]int64{1, 5, 9}, ids); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{20, 60, 100}, b.Lines); diff != "" {
		t.Errorf("Lines (-want +got):\n%s", diff)
	}
	want := []Reject{
		{Line: 40, Step: "validate[2]", Field: "id", Err: "id 3", Raw: []byte("r3")},
		{Line: 80, Step: "validate[2]", Field: "id", Err: "id 7", Raw: []byte("r7")},
	}
	if diff := cmp.Diff(want, b.Rejects); diff != "" {
		t.Errorf("Rejects (-want +got):\n%s", diff)
	}
	if b.Len()+len(b.Rejects)+b.Filtered != b.Read {
		t.Errorf("rows %d + rejects %d + filtered %d != read %d", b.Len(), len(b.Rejects), b.Filtered, b.Read)
	}
}

func TestBatchRejectWithoutRawForOneRow(t *testing.T) {
	// A source may keep raw text for some rows only.
	b := newBatch(2, true, true)
	b.Raw[1] = nil
	b.RejectRow(1, "map[1]", "", "boom")
	b.Compact()
	if got := string(b.Rejects[0].Raw); got != `{"id":1,"name":"n1"}` {
		t.Errorf("Raw = %s, want the row as JSON", got)
	}
}

func TestBatchLoc(t *testing.T) {
	tests := []struct {
		origin string
		line   int64
		want   string
	}{
		{"data/orders.csv", 12, "data/orders.csv:12"},
		{"customers", 0, "customers:0"},
		{"", 7, "#7"},
	}
	for _, tt := range tests {
		b := &Batch{Origin: tt.origin}
		if got := b.Loc(tt.line); got != tt.want {
			t.Errorf("Loc(%d) with origin %q = %q, want %q", tt.line, tt.origin, got, tt.want)
		}
	}
}

func TestSize(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want int
	}{
		{name: "nil", in: nil, want: 16},
		{name: "int", in: int64(1), want: 16},
		{name: "string", in: "abcd", want: 20},
		{name: "bytes", in: []byte("ab"), want: 26},
		{name: "map", in: map[string]any{"k": "v"}, want: 48 + 16 + 1 + 17},
		{name: "list", in: []any{"ab", int64(1)}, want: 24 + 18 + 16},
	}
	for _, tt := range tests {
		if got := Size(tt.in); got != tt.want {
			t.Errorf("Size(%s) = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestDefaultLimits(t *testing.T) {
	l := DefaultLimits
	if l.BatchRows <= 0 || l.BatchBytes <= 0 || l.MaxRecordBytes < l.BatchBytes {
		t.Errorf("DefaultLimits = %+v: want positive sizes and records allowed to fill a batch", l)
	}
}

func TestRowCapFollowsDerivedSchemas(t *testing.T) {
	f := func(names ...string) []Field {
		out := make([]Field, len(names))
		for i, n := range names {
			out[i] = Field{Name: n, Type: String}
		}
		return out
	}
	src := MustSchema(f("a", "b", "c")...)
	other := MustSchema(f("a", "b", "c")...)
	if src.RowCap() != 3 {
		t.Fatalf("RowCap of a new schema = %d, want its length 3", src.RowCap())
	}
	narrow, err := src.Derive(f("a")...)
	if err != nil {
		t.Fatal(err)
	}
	wide, _ := narrow.Derive(f("a", "x", "y", "z", "w")...)
	wider, _ := wide.Derive(f("a", "x", "y", "z", "w", "v")...)
	for name, s := range map[string]*Schema{"source": src, "narrow": narrow, "wide": wide, "wider": wider} {
		if s.RowCap() != 6 {
			t.Errorf("RowCap of %s = %d, want 6: the widest schema of the chain", name, s.RowCap())
		}
	}
	if other.RowCap() != 3 {
		t.Errorf("RowCap of an unrelated schema = %d, want 3", other.RowCap())
	}
	if _, err := src.Derive(f("a", "a")...); err == nil {
		t.Error("Derive accepted a repeated name")
	}
	if src.RowCap() != 6 {
		t.Errorf("a failed Derive changed RowCap to %d", src.RowCap())
	}
	var none *Schema
	if s, err := none.Derive(f("q")...); err != nil || s.RowCap() != 1 {
		t.Errorf("Derive from nil: %v, %v", s, err)
	}
}
