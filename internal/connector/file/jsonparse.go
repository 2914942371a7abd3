package file

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonParser is a strict RFC 8259 parser over a string. It decodes values
// the way encoding/json does with UseNumber (objects as map[string]any,
// arrays as []any, numbers as json.Number), except that invalid UTF-8 is an
// error rather than replaced. Strings without escapes are substrings of the
// input: no copy.
type jsonParser struct {
	s       string
	i       int
	scratch []byte
}

// maxJSONDepth bounds nesting, so that a hostile line cannot exhaust the
// stack.
const maxJSONDepth = 1000

type jsonError struct {
	off int
	msg string
}

func (e *jsonError) Error() string { return fmt.Sprintf("%s at column %d", e.msg, e.off+1) }

func (p *jsonParser) fail(format string, args ...any) error {
	return &jsonError{off: p.i, msg: fmt.Sprintf(format, args...)}
}

func (p *jsonParser) reset(s string) { p.s, p.i = s, 0 }

func (p *jsonParser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// end checks that only whitespace is left.
func (p *jsonParser) end() error {
	p.ws()
	if p.i < len(p.s) {
		return p.fail("unexpected %q after the value", p.s[p.i])
	}
	return nil
}

// objectStart consumes '{'; false means the input is not an object.
func (p *jsonParser) objectStart() bool {
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == '{' {
		p.i++
		return true
	}
	return false
}

// member reads the next key of an object whose '{' was consumed, and the
// ':' after it. done is true at the closing '}'. first says whether a
// member was read before (a ',' is then expected).
func (p *jsonParser) member(first bool) (key string, done bool, err error) {
	p.ws()
	if p.i >= len(p.s) {
		return "", false, p.fail("unexpected end of input in an object")
	}
	if p.s[p.i] == '}' {
		p.i++
		return "", true, nil
	}
	if !first {
		if p.s[p.i] != ',' {
			return "", false, p.fail("want ',' or '}' in an object, got %q", p.s[p.i])
		}
		p.i++
		p.ws()
	}
	if p.i >= len(p.s) || p.s[p.i] != '"' {
		return "", false, p.fail("want a key (a string) in an object")
	}
	if key, err = p.str(); err != nil {
		return "", false, err
	}
	p.ws()
	if p.i >= len(p.s) || p.s[p.i] != ':' {
		return "", false, p.fail("want ':' after an object key")
	}
	p.i++
	return key, false, nil
}

// kind of the next value: '"', '{', '[', 't', 'f', 'n', or '0' for a
// number; 0 at the end of input.
func (p *jsonParser) peek() byte {
	p.ws()
	if p.i >= len(p.s) {
		return 0
	}
	switch c := p.s[p.i]; c {
	case '"', '{', '[', 't', 'f', 'n':
		return c
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return '0'
	}
	return p.s[p.i]
}

// value decodes any value.
func (p *jsonParser) value(depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, p.fail("nesting deeper than %d", maxJSONDepth)
	}
	switch p.peek() {
	case '"':
		return p.str()
	case '0':
		n, err := p.number()
		return json.Number(n), err
	case 't':
		return true, p.literal("true")
	case 'f':
		return false, p.literal("false")
	case 'n':
		return nil, p.literal("null")
	case '{':
		p.i++
		m := map[string]any{}
		for first := true; ; first = false {
			k, done, err := p.member(first)
			if err != nil {
				return nil, err
			}
			if done {
				return m, nil
			}
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
	case '[':
		p.i++
		a := []any{}
		for first := true; ; first = false {
			p.ws()
			if p.i < len(p.s) && p.s[p.i] == ']' {
				p.i++
				return a, nil
			}
			if !first {
				if p.i >= len(p.s) || p.s[p.i] != ',' {
					return nil, p.fail("want ',' or ']' in an array")
				}
				p.i++
			}
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
	case 0:
		return nil, p.fail("unexpected end of input")
	}
	return nil, p.fail("unexpected %q", p.s[p.i])
}

func (p *jsonParser) literal(word string) error {
	if len(p.s)-p.i >= len(word) && p.s[p.i:p.i+len(word)] == word {
		p.i += len(word)
		return nil
	}
	return p.fail("invalid literal (want %s)", word)
}

// number reads a number and returns its text.
func (p *jsonParser) number() (string, error) {
	s, start := p.s, p.i
	i := p.i
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		p.i = i
		return "", p.fail("invalid number")
	}
	if i < len(s) && s[i] == '.' {
		i++
		d := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			p.i = i
			return "", p.fail("invalid number: no digit after the point")
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		d := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			p.i = i
			return "", p.fail("invalid number: no digit in the exponent")
		}
	}
	p.i = i
	return s[start:i], nil
}

var errJSONUTF8 = errors.New("invalid UTF-8 in a string")

// str reads a string whose opening quote is at p.i.
func (p *jsonParser) str() (string, error) {
	s := p.s
	p.i++ // the quote
	start := p.i
	i := start
	ascii := true
	for i < len(s) {
		c := s[i]
		if c == '"' {
			p.i = i + 1
			v := s[start:i]
			if !ascii && !utf8.ValidString(v) {
				p.i = start
				return "", p.fail("%v", errJSONUTF8)
			}
			return v, nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			p.i = i
			return "", p.fail("control character %q in a string", c)
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
		i++
	}
	if i >= len(s) {
		p.i = i
		return "", p.fail("unterminated string")
	}
	// Escapes: decode into scratch.
	b := append(p.scratch[:0], s[start:i]...)
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			p.i = i + 1
			p.scratch = b
			if !utf8.Valid(b) {
				p.i = start
				return "", p.fail("%v", errJSONUTF8)
			}
			return string(b), nil
		case c < 0x20:
			p.i = i
			return "", p.fail("control character %q in a string", c)
		case c != '\\':
			b = append(b, c)
			i++
			continue
		}
		if i+1 >= len(s) {
			break
		}
		e := s[i+1]
		i += 2
		switch e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := hex4(s, i)
			if !ok {
				p.i = i
				return "", p.fail("invalid \\u escape")
			}
			i += 4
			if utf16.IsSurrogate(r) {
				// A pair makes one rune; a lone half is U+FFFD, as in
				// encoding/json.
				if r2, ok := hex4(s, i+2); ok && i+1 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						i += 6
						b = utf8.AppendRune(b, dec)
						continue
					}
				}
				r = utf8.RuneError
			}
			b = utf8.AppendRune(b, r)
		default:
			p.i = i - 1
			return "", p.fail("invalid escape %q", "\\"+string(e))
		}
	}
	p.i = len(s)
	return "", p.fail("unterminated string")
}

func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	v, err := strconv.ParseUint(s[i:i+4], 16, 32)
	if err != nil {
		return 0, false
	}
	for k := i; k < i+4; k++ { // ParseUint takes "+" and "_"
		c := s[k]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return 0, false
		}
	}
	return rune(v), true
}

// skip validates and skips one value.
func (p *jsonParser) skip(depth int) error {
	_, err := p.value(depth)
	return err
}

// orderedObject decodes an object keeping its keys in the order written
// (later duplicates replace earlier values in place). It is for reference
// data, where field order makes the schema.
func (p *jsonParser) orderedObject() (keys []string, vals []any, err error) {
	if !p.objectStart() {
		return nil, nil, p.fail("not a JSON object")
	}
	at := map[string]int{}
	for first := true; ; first = false {
		k, done, err := p.member(first)
		if err != nil {
			return nil, nil, err
		}
		if done {
			return keys, vals, nil
		}
		v, err := p.value(1)
		if err != nil {
			return nil, nil, err
		}
		if i, dup := at[k]; dup {
			vals[i] = v
			continue
		}
		at[k] = len(keys)
		keys = append(keys, k)
		vals = append(vals, v)
	}
}
