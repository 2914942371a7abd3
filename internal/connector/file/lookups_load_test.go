package file

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// Loading a CSV lookup parses, decodes and indexes at once: a bad line far
// into the file still fails the load with its line, a cancelled load stops
// with the context's error, and every row is there otherwise; no goroutine
// of a load stays behind.
func TestCSVLookupLoadsAcrossBatches(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	env := testEnv(t)
	env.Limits.BatchRows = 50
	good := customersCSV(1000)
	write := func(content string) {
		if err := os.WriteFile(filepath.Join(env.Dir, "customers.csv"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	write(good)
	tbl, err := openLookup(t, env, customersLookup)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []int64{1, 500, 1000} {
		row, ok, err := tbl.Get(context.Background(), []any{k})
		if err != nil || !ok || row[1] != fmt.Sprint("Customer ", k) {
			t.Errorf("Get(%d) = %v, %v, %v", k, row, ok, err)
		}
	}

	lines := strings.SplitAfter(good, "\n")
	lines[900] = "x900,Customer 900,emea,gold\n" // line 901 of the file
	write(strings.Join(lines, ""))
	if _, err := openLookup(t, env, customersLookup); err == nil || !strings.Contains(err.Error(), "customers.csv:901:") {
		t.Errorf("a bad line far into the file: error %v, want it with its line", err)
	}

	write(good)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e, _ := registry().Get(connector.KindLookup, typeOf(t, customersLookup))
	l, err := e.Lookup(params(t, customersLookup))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Open(ctx, env); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled load: error %v, want context.Canceled", err)
	}
}

// A file larger than partsMin is read in parts, one per core: the index is
// the one a single reader makes (every row, the later of two rows with one
// key), a bad line in a later part fails the load with its line in the
// file, and a file with quoted fields holding line breaks, where a part may
// begin inside a field, is read again as one part, its records whole.
func TestCSVLookupLoadsInParts(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	env := testEnv(t)
	n := partsMin/20 + 20_000                                         // past partsMin at about 30 bytes a line
	good := customersCSV(n) + fmt.Sprintf("%d,Again,latam,gold\n", 7) // key 7 twice: the last row wins
	if len(good) < partsMin {
		t.Fatalf("the file is %d bytes, not past partsMin", len(good))
	}
	write := func(content string) {
		if err := os.WriteFile(filepath.Join(env.Dir, "customers.csv"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	partsOf := func(n int) int { // how many parts the file is cut into
		t.Helper()
		o, err := fileSet{kind: "csv"}.openTask(env, connector.Task{Key: "customers.csv"})
		if err != nil {
			t.Fatal(err)
		}
		defer o.f.Close()
		r := &csvReader{key: "customers.csv", file: o, lim: limits(env)}
		r.w = newWindow(o.r, r.lim.MaxRecordBytes+2)
		r.p = newCSVParser(r.w, ',', '"', r.lim.MaxRecordBytes)
		if err := r.bind(csvFormat{header: true, delim: ',', quote: '"'}); err != nil {
			t.Fatal(err)
		}
		fi, err := o.f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		ps, err := parts(o, r, fi.Size(), '"', n)
		if err != nil {
			t.Fatal(err)
		}
		return len(ps)
	}
	write(good)
	if got := partsOf(2); got != 2 {
		t.Fatalf("%d parts, want 2", got)
	}
	if got := partsOf(5); got != 5 {
		t.Fatalf("%d parts, want 5", got)
	}

	tbl, err := openLookup(t, env, customersLookup)
	if err != nil {
		t.Fatal(err)
	}
	if tbl.(*connector.Index).Len() != n {
		t.Errorf("%d keys, want %d", tbl.(*connector.Index).Len(), n)
	}
	for _, k := range []int64{1, 7, int64(n / 2), int64(n/2 + 1), int64(n)} {
		row, ok, err := tbl.Get(context.Background(), []any{k})
		want := fmt.Sprint("Customer ", k)
		if k == 7 {
			want = "Again"
		}
		if err != nil || !ok || row[1] != want {
			t.Errorf("Get(%d) = %v, %v, %v; want %s", k, row, ok, err, want)
		}
	}

	lines := strings.SplitAfter(good, "\n")
	bad := n - 10 // in the second part
	lines[bad] = "x,Customer,emea,gold\n"
	write(strings.Join(lines, ""))
	if _, err := openLookup(t, env, customersLookup); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("customers.csv:%d:", bad+1)) {
		t.Errorf("a bad line in the second part: error %v, want line %d", err, bad+1)
	}

	// Every name quoted, with a line break, and the name of the middle
	// record holding half the file in lines: wherever a share of the file
	// ends (at half the file, at a third, ...), it is inside a field, and
	// the cut goes after the field.
	var quoted strings.Builder
	quoted.WriteString("customer_id,name,region,tier\n")
	for i := 1; i <= n; i++ {
		name := fmt.Sprint("Customer\n", i)
		if i == n/2 {
			name = strings.Repeat("a long\nname ", 4*n) + name
		}
		fmt.Fprintf(&quoted, "%d,\"%s\",emea,gold\n", i, name)
	}
	write(quoted.String())
	if got := partsOf(2); got != 2 {
		t.Fatalf("quoted fields: %d parts, want 2", got)
	}
	text := quoted.String()
	header := int64(strings.Index(text, "\n") + 1)
	for _, parts := range []int{2, 3, 5} {
		cuts, err := cutsOf(strings.NewReader(text), header, int64(len(text)), '"', parts)
		if err != nil || len(cuts) != parts+1 {
			t.Fatalf("quoted fields: cuts %v, %v; want %d parts", cuts, err, parts)
		}
		for _, c := range cuts[1 : len(cuts)-1] {
			if !strings.HasSuffix(text[:c], ",emea,gold\n") {
				t.Errorf("quoted fields, %d parts: a cut at %d, inside a record: %q", parts, c, text[c-20:c+20])
			}
		}
	}
	if tbl, err = openLookup(t, env, customersLookup); err != nil {
		t.Fatal(err)
	}
	if row, ok, err := tbl.Get(context.Background(), []any{int64(n/2 + 1)}); err != nil || !ok || row[1] != fmt.Sprint("Customer\n", n/2+1) {
		t.Errorf("a quoted record: %v, %v, %v", row, ok, err)
	}
	if row, ok, err := tbl.Get(context.Background(), []any{int64(n / 2)}); err != nil || !ok || !strings.HasPrefix(row[1].(string), "a long\nname a long\n") {
		t.Errorf("the long quoted record: %.40q, %v, %v", row, ok, err)
	}
	if tbl.(*connector.Index).Len() != n {
		t.Errorf("quoted line breaks: %d keys, want %d", tbl.(*connector.Index).Len(), n)
	}

	// A quote inside the unquoted name of the first record, an ordinary
	// character, makes every count of quotes after it odd: the cuts fall
	// inside quoted fields, and the file is read again as one part.
	var stray strings.Builder
	stray.WriteString("customer_id,name,region,tier\n")
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("\"Customer\n%d\"", i)
		if i == 1 {
			name = `The 5" one`
		}
		fmt.Fprintf(&stray, "%d,%s,emea,gold\n", i, name)
	}
	write(stray.String())
	if tbl, err = openLookup(t, env, customersLookup); err != nil {
		t.Fatal(err)
	}
	for _, k := range []int64{1, 2, int64(n / 2), int64(n)} {
		want := fmt.Sprint("Customer\n", k)
		if k == 1 {
			want = `The 5" one`
		}
		if row, ok, err := tbl.Get(context.Background(), []any{k}); err != nil || !ok || row[1] != want {
			t.Errorf("a stray quote: Get(%d) = %q, %v, %v; want %q", k, row, ok, err, want)
		}
	}
	if tbl.(*connector.Index).Len() != n {
		t.Errorf("a stray quote: %d keys, want %d", tbl.(*connector.Index).Len(), n)
	}
}

// A JSON Lines lookup with a schema, decoded into chunks (in parts when the
// file is large), holds what decoding each object whole gives: every type,
// values that take the conversions' slow paths, escapes, nulls, fields
// missing, repeated or unknown, blank and CRLF lines; and a bad line is
// named by its line in the file, in whichever part it falls.
func TestJSONLLookupChunksMatchObjects(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	env := testEnv(t)
	const schema = "{ id: int, name: string, n: int, price: decimal, at: timestamp, day: date, ok: bool, f: float, raw: bytes }"
	lines := []string{
		`{"id": 1, "name": "Ann", "n": 7, "price": 1.25, "at": "2024-01-02T03:04:05.123456789+02:00", "day": "2024-01-02", "ok": true, "f": 1.5, "raw": "aGk="}`,
		`{"id": 2, "name": "B\"ob\u00e9", "n": 42.0, "price": "3.10", "at": "2024-01-02 03:04:05", "ok": "true", "f": 2}`,
		`{"n": "17", "id": 3, "name": 42, "extra": {"deep": [1, {"x": null}]}, "price": 1e2}`,
		`{"id": 4, "name": null, "n": null, "price": null}`,
		`{"id": 5, "name": "first", "name": "second", "n": 1, "n": null}`,
		``,
		"{\"id\": 6, \"name\": \"crlf\"}\r",
		`{"id": 7, "n": -9007199254740993, "name": "Zoë ✓"}`,
		`  {"id": 8}  `,
	}
	var text strings.Builder
	text.WriteString("\ufeff")
	for round := 0; text.Len() < partsMin+partsMin/2; round++ {
		for _, l := range lines {
			text.WriteString(l + "\n")
		}
		// the first line's key differs from round to round; the others repeat (the last wins)
		lines[0] = strings.Replace(lines[0], fmt.Sprintf(`"id": %d,`, max(round*10, 1)), fmt.Sprintf(`"id": %d,`, (round+1)*10), 1)
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(env.Dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	yaml := func(name string) string {
		return "type: jsonl\npath: " + name + "\nkey: id\nschema: " + schema
	}
	lookupOf := func(name string) *jsonLookup {
		t.Helper()
		e, _ := registry().Get(connector.KindLookup, "jsonl")
		l, err := e.Lookup(params(t, yaml(name)))
		if err != nil {
			t.Fatal(err)
		}
		return l.(lookupWithSchema).Lookup.(*jsonLookup)
	}
	write("c.jsonl", text.String())
	if cuts, err := cutsOf(strings.NewReader(text.String()), 3, int64(text.Len()), 0, 2); err != nil || len(cuts) != 3 {
		t.Fatalf("the file is not cut in two: %v, %v", cuts, err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(text.String()))
	zw.Close()
	write("c.jsonl.gz", gz.String())
	for _, name := range []string{"c.jsonl", "c.jsonl.gz"} {
		for _, fields := range [][]string{nil, {"name", "price"}} {
			l := lookupOf(name)
			want, err := l.loadObjects(context.Background(), env, fields)
			if err != nil {
				t.Fatal(err)
			}
			got, err := l.OpenFields(context.Background(), env, fields)
			if err != nil {
				t.Fatal(err)
			}
			if !l.fastLines(got.(*connector.Index)) {
				t.Fatal("the lookup does not load in chunks")
			}
			wi, gi := want.(*connector.Index), got.(*connector.Index)
			if wi.Len() != gi.Len() || wi.Len() < 8 {
				t.Fatalf("%s: %d keys, want %d", name, gi.Len(), wi.Len())
			}
			for _, k := range []int64{1, 2, 3, 4, 5, 6, 7, 8, 10, 250, 999_999} {
				wr, wok, _ := wi.Get(context.Background(), []any{k})
				gr, gok, _ := gi.Get(context.Background(), []any{k})
				if wok != gok || !cmp.Equal(wr, gr, cmp.Comparer(func(a, b record.Dec) bool { return a.Cmp(b) == 0 })) {
					t.Errorf("%s, fields %v, key %d: %#v, want %#v", name, fields, k, gr, wr)
				}
			}
		}
	}

	// A bad line in the second part, and one in the first.
	all := strings.SplitAfter(text.String(), "\n")
	for i, bad := range []int{len(all) - 20, 3, len(all) / 2, 1} {
		broken := slices.Clone(all)
		broken[bad-1] = []string{`{"id": "x"}`, `{"id": }`, `[1]`, `{"id": 1} x`}[i] + "\n"
		write("bad.jsonl", strings.Join(broken, ""))
		l := lookupOf("bad.jsonl")
		_, err := l.Open(context.Background(), env)
		_, want := l.loadObjects(context.Background(), env, nil)
		if err == nil || want == nil || err.Error() != want.Error() || !strings.HasPrefix(err.Error(), fmt.Sprintf(`jsonl: bad.jsonl:%d: `, bad)) {
			t.Errorf("a bad line %d: %v, want %v", bad, err, want)
		}
	}
}
