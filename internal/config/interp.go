package config

import (
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"github.com/backbone-etl/backbone/internal/connector"
)

// LookupEnv reads an environment variable; os.LookupEnv in production.
type LookupEnv func(name string) (string, bool)

// secretNamePattern marks environment variables whose values are secrets
// even when a pipeline does not list them in secret_env.
var secretNamePattern = regexp.MustCompile(`(?i)(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE|CREDENTIAL|DSN)`)

// Redactor replaces secret values in text meant for people: logs, errors,
// run history, dead letters, API responses.
type Redactor struct {
	secrets []string // longest first, so a secret containing another is replaced whole
}

// Add registers a secret value. Values shorter than 3 bytes are ignored:
// replacing them would garble every message. The value is also known as
// %q writes it inside quotes, since messages quote values.
func (r *Redactor) Add(v string) {
	if len(v) < 3 {
		return
	}
	r.add(v)
	if q := strconv.Quote(v); q[1:len(q)-1] != v {
		r.add(q[1 : len(q)-1])
	}
}

func (r *Redactor) add(v string) {
	for _, s := range r.secrets {
		if s == v {
			return
		}
	}
	r.secrets = append(r.secrets, v)
	sort.Slice(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
}

// Redact returns s with every secret replaced by "[redacted]".
func (r *Redactor) Redact(s string) string {
	if r == nil {
		return s
	}
	for _, v := range r.secrets {
		if strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	return s
}

// Values returns the secrets known, for a component that redacts the text
// of many pipelines at once (the daemon). Never print them.
func (r *Redactor) Values() []string {
	if r == nil {
		return nil
	}
	return append([]string(nil), r.secrets...)
}

// Len is the number of secrets known.
func (r *Redactor) Len() int {
	if r == nil {
		return 0
	}
	return len(r.secrets)
}

// interpolator expands ${VAR} and ${VAR:-default} in the scalar values of a
// parsed document. Expansion happens after parsing, so a value cannot change
// the document's structure; a plain (unquoted) scalar is re-typed after
// expansion, so `batch_rows: ${ROWS}` is an int.
type interpolator struct {
	env       LookupEnv
	secretEnv map[string]bool
	redactor  *Redactor
	c         *collector
}

func (in *interpolator) walk(n ast.Node) ast.Node {
	switch v := n.(type) {
	case *ast.DocumentNode:
		v.Body = in.walk(v.Body)
	case *ast.MappingNode:
		for _, mv := range v.Values {
			in.walk(mv)
		}
	case *ast.MappingValueNode:
		v.Value = in.walk(v.Value)
	case *ast.SequenceNode:
		for i := range v.Values {
			v.Values[i] = in.walk(v.Values[i])
		}
	case *ast.TagNode:
		v.Value = in.walk(v.Value)
	case *ast.AnchorNode:
		v.Value = in.walk(v.Value)
	case *ast.LiteralNode:
		if v.Value != nil && strings.Contains(v.Value.Value, "$") {
			// The block's text has no column of its own: point at its | or >.
			v.Value.Value = in.expand(v.Value.Value, posOf(v))
		}
	case *ast.StringNode:
		if !strings.Contains(v.Value, "$") {
			return v
		}
		out := in.expand(v.Value, posOf(v))
		tk := v.GetToken()
		if tk != nil && tk.Type == token.StringType && out != v.Value {
			if typed := retype(out, tk); typed != nil {
				return typed
			}
		}
		v.Value = out
	}
	return n
}

// retype parses an expanded plain scalar as YAML, so that "42" becomes an
// int node at the original position. Anything but a number, a bool or a
// null stays the string it was.
func retype(text string, orig *token.Token) ast.Node {
	if strings.ContainsAny(text, "\n#:{}[],&*!|>'\"%@`") {
		return nil
	}
	f, err := parser.ParseBytes([]byte(text), 0)
	if err != nil || len(f.Docs) != 1 || f.Docs[0].Body == nil {
		return nil
	}
	body := f.Docs[0].Body
	switch body.(type) {
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.NullNode:
	default:
		return nil // a string keeps the expanded text whole, spaces included
	}
	if tk := body.GetToken(); tk != nil {
		tk.Position = orig.Position
	}
	return body
}

// expand replaces ${NAME} and ${NAME:-default}; $${ is a literal ${.
func (in *interpolator) expand(s string, p connector.Pos) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		if i > 0 && s[i-1] == '$' { // $${ escapes
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			in.c.at(p, "unterminated ${ in %q", s)
			b.WriteString(s[i:])
			return b.String()
		}
		ref := s[i+2 : i+end]
		s = s[i+end+1:]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !validEnvName(name) {
			in.c.at(p, "invalid environment variable name %q in ${%s}", name, ref)
			continue
		}
		val, ok := in.env(name)
		if !ok || (val == "" && hasDef) {
			if !hasDef {
				in.c.at(p, "environment variable %s is not set (write ${%s:-default} for a default)", name, name)
				continue
			}
			val = def
		}
		if in.secretEnv[name] || secretNamePattern.MatchString(name) {
			in.redactor.Add(val)
		}
		b.WriteString(val)
	}
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (i > 0 && c >= '0' && c <= '9') {
			continue
		}
		return false
	}
	return true
}
