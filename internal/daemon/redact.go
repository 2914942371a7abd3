package daemon

import (
	"sort"
	"strings"
	"sync"
)

// secrets is the union of the secrets the daemon knows: every pipeline
// version loaded (kept after a version goes, since its values may still sit
// in history), the API tokens and the webhook headers.
type secrets struct {
	mu   sync.RWMutex
	set  map[string]bool
	repl *strings.Replacer
}

func newSecrets() *secrets { return &secrets{set: map[string]bool{}} }

// add remembers values; values shorter than 3 bytes are ignored, as they
// would redact ordinary words (config.Redactor keeps the same rule).
func (s *secrets) add(values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for _, v := range values {
		if len(v) >= 3 && !s.set[v] {
			s.set[v] = true
			changed = true
		}
	}
	if !changed {
		return
	}
	// Longest first, so a secret containing another is replaced whole.
	all := make([]string, 0, len(s.set))
	for v := range s.set {
		all = append(all, v)
	}
	sort.Slice(all, func(i, j int) bool { return len(all[i]) > len(all[j]) })
	pairs := make([]string, 0, 2*len(all))
	for _, v := range all {
		pairs = append(pairs, v, "[redacted]")
	}
	s.repl = strings.NewReplacer(pairs...)
}

// Redact replaces every known secret in str.
func (s *secrets) Redact(str string) string {
	s.mu.RLock()
	r := s.repl
	s.mu.RUnlock()
	if r == nil {
		return str
	}
	return r.Replace(str)
}
