package file

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

// parsed is one result of csvParser.next in a comparable form.
type parsed struct {
	Kind   string
	Line   int64
	Fields []string
	Quoted []bool
	Reason string
	Raw    string
}

var kindNames = map[recKind]string{recRow: "row", recReject: "reject", recBlank: "blank", recEOF: "eof"}

// parseAll parses input to its end, checking on the way that records are
// contiguous, that every byte is accounted for and that line numbers match
// the line breaks before each record.
func parseAll(t testing.TB, input string, delim byte, maxRec int, oneByte bool) []parsed {
	t.Helper()
	var r io.Reader = strings.NewReader(input)
	if oneByte {
		r = iotest.OneByteReader(r)
	}
	w := newWindow(r, maxRec+2)
	w.skipBOM()
	p := newCSVParser(w, delim, '"', maxRec)
	var out []parsed
	prev := w.off
	for n := 0; ; n++ {
		if n > len(input)+2 {
			t.Fatalf("parser does not end on %q", input)
		}
		rec, err := p.next()
		if err != nil {
			t.Fatalf("next: %v", err)
		}
		if rec.off != prev {
			t.Fatalf("record %d starts at %d, previous ended at %d (input %q)", n, rec.off, prev, input)
		}
		if rec.next < rec.off {
			t.Fatalf("record %d ends at %d before its start %d", n, rec.next, rec.off)
		}
		if want := 1 + int64(strings.Count(input[:rec.off], "\n")); rec.line != want {
			t.Fatalf("record %d at offset %d: line %d, want %d (input %q)", n, rec.off, rec.line, want, input)
		}
		if want := 1 + int64(strings.Count(input[:rec.next], "\n")); rec.nextLine != want {
			t.Fatalf("record %d ends at offset %d: next line %d, want %d (input %q)", n, rec.next, rec.nextLine, want, input)
		}
		prev = rec.next
		if rec.kind == recEOF {
			if rec.next != int64(len(input)) {
				t.Fatalf("EOF at %d, input has %d bytes", rec.next, len(input))
			}
			return out
		}
		pr := parsed{Kind: kindNames[rec.kind], Line: rec.line, Reason: rec.reason, Raw: string(rec.raw)}
		if rec.kind == recRow {
			for _, sp := range rec.fields {
				b := rec.raw
				if sp.esc {
					b = rec.unesc
				}
				pr.Fields = append(pr.Fields, string(b[sp.s:sp.e]))
				pr.Quoted = append(pr.Quoted, sp.quoted)
			}
		}
		out = append(out, pr)
	}
}

func row(line int64, raw string, fields ...string) parsed {
	return parsed{Kind: "row", Line: line, Raw: raw, Fields: fields, Quoted: make([]bool, len(fields))}
}

func TestCSVParser(t *testing.T) {
	tests := []struct {
		name   string
		input  string
		delim  byte
		maxRec int
		want   []parsed
	}{
		{name: "plain", input: "a,b\n1,2\n", want: []parsed{row(1, "a,b", "a", "b"), row(2, "1,2", "1", "2")}},
		{name: "no final line break", input: "a,b\n1,2", want: []parsed{row(1, "a,b", "a", "b"), row(2, "1,2", "1", "2")}},
		{name: "crlf", input: "a,b\r\n1,2\r\n", want: []parsed{row(1, "a,b", "a", "b"), row(2, "1,2", "1", "2")}},
		{name: "cr at eof", input: "1,2\r", want: []parsed{row(1, "1,2", "1", "2")}},
		{name: "cr inside a field stays", input: "a\rb,c\n", want: []parsed{row(1, "a\rb,c", "a\rb", "c")}},
		{name: "empty fields", input: ",,\n", want: []parsed{row(1, ",,", "", "", "")}},
		{
			name:  "quoted delimiter and escaped quote",
			input: `"a,b","say ""hi""",c` + "\n",
			want: []parsed{{Kind: "row", Line: 1, Raw: `"a,b","say ""hi""",c`,
				Fields: []string{"a,b", `say "hi"`, "c"}, Quoted: []bool{true, true, false}}},
		},
		{
			name:  "quoted newline keeps line numbers",
			input: "1,\"two\nlines\"\n2,x\n",
			want: []parsed{
				{Kind: "row", Line: 1, Raw: "1,\"two\nlines\"", Fields: []string{"1", "two\nlines"}, Quoted: []bool{false, true}},
				row(3, "2,x", "2", "x"),
			},
		},
		{
			name:  "quoted crlf kept inside",
			input: "\"a\r\nb\"\r\nc\r\n",
			want: []parsed{
				{Kind: "row", Line: 1, Raw: "\"a\r\nb\"", Fields: []string{"a\r\nb"}, Quoted: []bool{true}},
				row(3, "c", "c"),
			},
		},
		{name: "quoted empty", input: `"",x` + "\n", want: []parsed{{Kind: "row", Line: 1, Raw: `"",x`, Fields: []string{"", "x"}, Quoted: []bool{true, false}}}},
		{name: "bare quote in unquoted field is text", input: `5" pipe,x` + "\n", want: []parsed{row(1, `5" pipe,x`, `5" pipe`, "x")}},
		{name: "bom stripped", input: "\xEF\xBB\xBFa,b\n", want: []parsed{row(1, "a,b", "a", "b")}},
		{name: "semicolon", input: "a;b,c\n", delim: ';', want: []parsed{row(1, "a;b,c", "a", "b,c")}},
		{name: "tab", input: "a\tb\n", delim: '\t', want: []parsed{row(1, "a\tb", "a", "b")}},
		{
			name:  "blank lines",
			input: "a\n\n\r\nb\n",
			want:  []parsed{row(1, "a", "a"), {Kind: "blank", Line: 2}, {Kind: "blank", Line: 3}, row(4, "b", "b")},
		},
		{
			name:  "unbalanced quote takes the rest",
			input: "1,2\n3,\"open\nmore\n",
			want: []parsed{
				row(1, "1,2", "1", "2"),
				{Kind: "reject", Line: 2, Raw: "3,\"open\nmore",
					Reason: "unbalanced quote: field 2 opens a quote at line 2 that is not closed before the end of the file"},
			},
		},
		{
			name:  "text after closing quote",
			input: "\"ab\"c,d\nok\n",
			want: []parsed{
				{Kind: "reject", Line: 1, Raw: "\"ab\"c,d", Reason: `unexpected 'c' after the closing quote of field 1`},
				row(2, "ok", "ok"),
			},
		},
		{
			name:   "record over the cap",
			input:  "short\n" + strings.Repeat("x", 40) + "\nok\n",
			maxRec: 16,
			want: []parsed{
				row(1, "short", "short"),
				{Kind: "reject", Line: 2, Raw: strings.Repeat("x", 16+2), Reason: "record exceeds 16 bytes"},
				row(3, "ok", "ok"),
			},
		},
		{
			name:   "quoted record over the cap with line breaks",
			input:  "\"" + strings.Repeat("a\n", 20) + "\",b\nok\n",
			maxRec: 16,
			want: []parsed{
				{Kind: "reject", Line: 1, Raw: "\"" + strings.Repeat("a\n", 8) + "a", Reason: "record exceeds 16 bytes"},
				row(22, "ok", "ok"),
			},
		},
		{
			name:   "exactly at the cap",
			input:  strings.Repeat("y", 16) + "\r\n",
			maxRec: 16,
			want:   []parsed{row(1, strings.Repeat("y", 16), strings.Repeat("y", 16))},
		},
		{
			name:   "one over the cap, found whole",
			input:  strings.Repeat("y", 17) + "\n",
			maxRec: 16,
			want:   []parsed{{Kind: "reject", Line: 1, Raw: strings.Repeat("y", 17), Reason: "record exceeds 16 bytes"}},
		},
	}
	for _, tc := range tests {
		for _, oneByte := range []bool{false, true} {
			name := tc.name
			if oneByte {
				name += "/one byte reads"
			}
			t.Run(name, func(t *testing.T) {
				delim, maxRec := tc.delim, tc.maxRec
				if delim == 0 {
					delim = ','
				}
				if maxRec == 0 {
					maxRec = 1 << 20
				}
				got := parseAll(t, tc.input, delim, maxRec, oneByte)
				for i := range got {
					if got[i].Kind != "row" {
						got[i].Fields, got[i].Quoted = nil, nil
					}
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("records differ (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestWindowReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	w := newWindow(io.MultiReader(strings.NewReader("a,b\n1,"), iotest.ErrReader(boom)), 1<<10)
	p := newCSVParser(w, ',', '"', 1<<10)
	if rec, err := p.next(); err != nil || rec.kind != recRow {
		t.Fatalf("first record: %v %v", rec.kind, err)
	}
	if _, err := p.next(); !errors.Is(err, boom) {
		t.Fatalf("second record: err = %v, want %v", err, boom)
	}
}

// FuzzCSVParse checks that the parser never panics, that records, rejects
// and blank lines cover the input exactly with increasing offsets, and
// that where encoding/csv reads the input without error, the rows agree.
func FuzzCSVParse(f *testing.F) {
	for _, s := range []string{
		"a,b\n1,2\n",
		"\"a,b\",\"c\"\"d\"\r\n",
		"x,\"multi\nline\"\n",
		"\xEF\xBB\xBFh\n1\n",
		"\"open",
		"\"ab\"c\n",
		"\n\n,\n",
		strings.Repeat("z", 70) + "\n1\n",
		"\"q\"\r",
		"a;b\n",
	} {
		f.Add(s, uint8(8))
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, input string, capSel uint8) {
		maxRec := 1 << 20
		if capSel%4 == 1 {
			maxRec = int(capSel)%64 + 1
		}
		got := parseAll(t, input, ',', maxRec, capSel%2 == 0)
		if maxRec < 1<<20 || strings.ContainsRune(input, '\r') || strings.HasPrefix(input, "\xEF\xBB\xBF") {
			return
		}
		cr := csv.NewReader(strings.NewReader(input))
		cr.FieldsPerRecord = -1
		want, err := cr.ReadAll()
		if err != nil {
			return
		}
		var rows [][]string
		for _, p := range got {
			switch p.Kind {
			case "row":
				rows = append(rows, p.Fields)
			case "reject":
				t.Fatalf("encoding/csv reads %q but the parser rejects %+v", input, p)
			}
		}
		if diff := cmp.Diff(want, rows, cmp.Comparer(func(a, b []string) bool {
			return strings.Join(a, "\x00") == strings.Join(b, "\x00") && len(a) == len(b)
		})); diff != "" {
			t.Fatalf("rows differ from encoding/csv on %q (-csv +parser):\n%s", input, diff)
		}
	})
}

func TestAppendUnquoted(t *testing.T) {
	got := string(appendUnquoted(nil, []byte(`a""b""`), '"'))
	if got != `a"b"` {
		t.Fatalf("got %q", got)
	}
	if !bytes.Equal(appendUnquoted([]byte("x"), []byte("plain"), '"'), []byte("xplain")) {
		t.Fatal("plain content changed")
	}
}

// A plain line is split eight bytes at a time: a delimiter or a quote at
// every offset of a word, and lines of every length around a word's, split
// as encoding/csv splits them.
func TestCSVParseEveryOffset(t *testing.T) {
	for n := 0; n <= 40; n++ {
		for at := 0; at < n; at++ {
			for _, c := range []byte{',', '"'} {
				b := []byte(strings.Repeat("x", n))
				b[at] = c
				line := string(b)
				if c == '"' {
					line = `"` + line[:at] + `""` + line[at+1:] + `"` // a quoted field with its quote doubled
				}
				input := line + "\nlast,row\n"
				cr := csv.NewReader(strings.NewReader(input))
				cr.FieldsPerRecord = -1
				want, err := cr.ReadAll()
				if err != nil {
					t.Fatal(err)
				}
				var got [][]string
				for _, p := range parseAll(t, input, ',', 1<<20, false) {
					if p.Kind != "row" {
						t.Fatalf("%q: %+v", input, p)
					}
					got = append(got, p.Fields)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%q: got %q, want %q", input, got, want)
				}
			}
		}
	}
}
