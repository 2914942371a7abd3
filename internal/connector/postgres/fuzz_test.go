package postgres

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/record"
)

// numericBody strips the length that appendNumeric puts first.
func numericBody(t *testing.T, enc []byte) []byte {
	t.Helper()
	if len(enc) < 4 || int(binary.BigEndian.Uint32(enc)) != len(enc)-4 {
		t.Fatalf("bad length prefix in % x", enc)
	}
	return enc[4:]
}

func TestNumericBinaryRoundTrip(t *testing.T) {
	for _, s := range []string{"0", "0.00", "-0.0001", "1", "10000", "9999.9999", "12.5000", "-123456789012345678901234567890.000000001",
		"0.00000000001", "100000000000000000000", "9223372036854775807", "-9223372036854775808", "92233720368547758.08", "1.1", "0.1"} {
		d := record.MustDec(s)
		enc, err := appendNumeric(nil, d.AppendText(nil))
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if u, ok := d.Unscaled(); ok { // from the integer, the same bytes
			if small, ok := appendNumericSmall(nil, u, d.Scale()); ok && !bytes.Equal(small, enc) {
				t.Fatalf("%q: from the integer % x, from the text % x", s, small, enc)
			}
		}
		body := numericBody(t, enc)
		if got := string(appendNumericText(nil, body)); got != d.String() {
			t.Errorf("%s: text %q", s, got)
		}
		v, err := decodeNumeric(body)
		if err != nil || v.String() != d.String() {
			t.Errorf("%s: decoded %v (%v)", s, v, err)
		}
	}
}

func FuzzNumericRoundTrip(f *testing.F) {
	for _, s := range []string{"0", "-0.0001", "12.5000", "1e3", "123456789012345678901234567890.000000001", "0.00000000001", "-5",
		"-9223372036854775808", "9223372036854775807", "922337203685477580.7", "0.000", "-12.3400", "10000", "5295.409455"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := record.ParseDec(s)
		if err != nil || d.Scale() > 1000 || len(d.String()) > 2000 {
			return
		}
		enc, err := appendNumeric(nil, d.AppendText(nil))
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if u, ok := d.Unscaled(); ok { // from the integer, the same bytes
			if small, ok := appendNumericSmall(nil, u, d.Scale()); ok && !bytes.Equal(small, enc) {
				t.Fatalf("%q: from the integer % x, from the text % x", s, small, enc)
			}
		}
		body := numericBody(t, enc)
		if got := string(appendNumericText(nil, body)); got != d.String() {
			t.Fatalf("%q: text %q, want %q", s, got, d.String())
		}
		v, err := decodeNumeric(body)
		if err != nil || v.String() != d.String() {
			t.Fatalf("%q: decoded %v (%v), want %s", s, v, err, d)
		}
	})
}

func FuzzDecodeBinary(f *testing.F) {
	f.Add(uint8(kNumeric), []byte{0, 1, 0, 0, 0, 0, 0, 2, 0, 5})
	f.Add(uint8(kTimestamptz), []byte{0, 0, 0, 0, 0, 0, 0, 1})
	f.Add(uint8(kDate), []byte{0x7f, 0xff, 0xff, 0xff})
	f.Add(uint8(kJSONB), []byte{1, '[', ']'})
	f.Add(uint8(kUUID), bytes.Repeat([]byte{0xab}, 16))
	f.Fuzz(func(t *testing.T, k uint8, b []byte) {
		kk := kind(k % (uint8(kTimestamptz) + 1))
		want, err := decode(kk, b, time.UTC) // must not panic
		posText(kk, b)
		// A batch's boxer decodes what it takes as decode does, and
		// leaves decode the values it refuses.
		f := &fieldReader{kind: kk, ftype: kk.recordType()}
		if got, ok := newBoxer(1).decode(f, b, time.UTC); ok && (err != nil || !reflect.DeepEqual(got, want)) {
			t.Fatalf("kind %d % x: boxed %#v, decode %#v (%v)", kk, b, got, want, err)
		} else if !ok && err == nil && (kk == kInt2 || kk == kInt4 || kk == kInt8 || kk == kNumeric || kk == kTimestamp || kk == kTimestamptz) {
			t.Fatalf("kind %d % x: decode gives %#v, the boxer nothing", kk, b, want)
		}
	})
}

func FuzzUUID(f *testing.F) {
	for _, s := range []string{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "{A0EEBC99-9C0B4EF8-BB6D6BB9-BD380A11}", "a0eebc999c0b4ef8bb6d6bb9bd380a11", "x", "--"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := appendUUIDBytes(nil, s)
		if err != nil {
			return
		}
		canon := string(appendUUID(nil, b))
		again, err := appendUUIDBytes(nil, canon)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("%q -> %s -> %x (%v)", s, canon, again, err)
		}
	})
}

func FuzzDecodePos(f *testing.F) {
	f.Add([]byte(`{"v":1,"order":["at","id"],"last":[{"type":"bigint","v":"1"},{"type":"bigint","v":null}]}`))
	f.Add([]byte(`{"v":1,"offset":3}`))
	f.Add([]byte(`{"v":1,"order":["a"],"last":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodePos(b)
		if err == nil && p != nil && len(p.Last) != len(p.Order) {
			t.Fatalf("accepted %q with %d values for %d columns", b, len(p.Last), len(p.Order))
		}
	})
}

// unescapeCopy reads one value of COPY text format.
func unescapeCopy(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func FuzzCopyTextEscape(f *testing.F) {
	for _, s := range []string{"plain", "tab\there", "back\\slash", "new\nline\r", `\N`, "\\."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := string(appendEscapedString(nil, s))
		if strings.ContainsAny(out, "\t\n\r") {
			t.Fatalf("%q escaped to %q, which holds a separator", s, out)
		}
		if out == `\N` {
			t.Fatalf("%q escaped to the NULL marker", s)
		}
		if got := unescapeCopy(out); got != s {
			t.Fatalf("%q -> %q -> %q", s, out, got)
		}
		if got := string(appendEscaped(nil, []byte(s))); got != out {
			t.Fatalf("appendEscaped %q, appendEscapedString %q", got, out)
		}
	})
}
