package jsonrec

import (
	"strings"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

func TestPath(t *testing.T) {
	doc, err := Decode([]byte(`{"data": {"items": [{"id": 1}, {"id": 2}]}, "n": null}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path  string
		want  string
		found bool
	}{
		{"data.items.1.id", "2", true},
		{"$.data.items.0.id", "1", true},
		{"data.items.2.id", "", false},
		{"data.items.x", "", false},
		{"n", "", true},
		{"n.x", "", false},
		{"missing", "", false},
	} {
		v, ok := MustPath(tc.path).Get(doc)
		if ok != tc.found || (v != nil && record.FormatText(v) != tc.want) {
			t.Errorf("%s: %v %v, want %q %v", tc.path, v, ok, tc.want, tc.found)
		}
	}
	if v, ok := MustPath("").Get(doc); !ok || v == nil {
		t.Error("the empty path is not the document")
	}
	for _, bad := range []string{"a..b", ".a", "a."} {
		if _, err := ParsePath(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestDecode(t *testing.T) {
	for in, want := range map[string]string{
		``:           "empty",
		`{"a": 1} 2`: "more than one JSON value",
		`{"a": }`:    "not JSON",
	} {
		if _, err := Decode([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}

func TestReaderRow(t *testing.T) {
	schema := record.MustSchema(
		record.Field{Name: "id", Type: record.Int},
		record.Field{Name: "amount", Type: record.Decimal},
		record.Field{Name: "at", Type: record.Timestamp},
		record.Field{Name: "city", Type: record.String},
		record.Field{Name: "tags", Type: record.String},
		record.Field{Name: "raw", Type: record.JSON},
	)
	p, err := connector.ParamsFromYAML("paths: { city: address.city }")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Paths connector.Map `yaml:"paths"`
	}
	if err := p.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	rd, err := NewReader(schema, cfg.Paths)
	if err != nil {
		t.Fatal(err)
	}
	paris, _ := time.LoadLocation("Europe/Paris")
	rd = rd.In(paris)
	doc, _ := Decode([]byte(`{"id": 9007199254740993, "amount": 12345678901234567.89, "at": "2024-03-30 02:30:00",
		"address": {"city": "Lyon"}, "tags": ["a", "b"], "raw": {"k": [1, 2.5]}}`))
	row, err := rd.Row(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"9007199254740993", "12345678901234567.89", "2024-03-30T02:30:00+01:00", "Lyon", `["a","b"]`, `{"k":[1,2.5]}`}
	for i, w := range want {
		if got := record.FormatText(row[i]); got != w {
			t.Errorf("field %s: %q, want %q", schema.Field(i).Name, got, w)
		}
	}
	for in, msg := range map[string]string{
		`{"id": 1.5}`:         "field id",
		`{"id": "x"}`:         "field id",
		`{"amount": [1]}`:     "a JSON array is not a decimal",
		`[1]`:                 "must be a JSON object, got array",
		`{"at": "yesterday"}`: "field at",
	} {
		doc, _ := Decode([]byte(in))
		if _, err := rd.Row(doc); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: %v, want %q", in, err, msg)
		}
	}
	row, err = rd.Row(map[string]any{"id": nil})
	if err != nil || row[0] != nil {
		t.Errorf("a null: %v %v", row, err)
	}
}

func FuzzReaderRow(f *testing.F) {
	schema := record.MustSchema(
		record.Field{Name: "id", Type: record.Int},
		record.Field{Name: "amount", Type: record.Decimal},
		record.Field{Name: "at", Type: record.Timestamp},
		record.Field{Name: "name", Type: record.String},
		record.Field{Name: "raw", Type: record.JSON},
	)
	rd, err := NewReader(schema, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"id": 1, "amount": 2.50, "at": "2024-01-01T00:00:00Z", "name": "x", "raw": {}}`))
	f.Add([]byte(`[{"id": "1e400"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := Decode(data)
		if err != nil {
			return
		}
		if list, ok := doc.([]any); ok && len(list) > 0 {
			doc = list[0]
		}
		row, err := rd.Row(doc)
		if err == nil && len(row) != schema.Len() {
			t.Fatalf("a row of %d values", len(row))
		}
	})
}
