package step

import (
	"context"
	"hash/maphash"
	"sync"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

var dedupeSpec = connector.Spec{
	Name:    "dedupe",
	Summary: "Keep the first record of each key within a run.",
	Doc: "Records are compared on the key fields; the first of each key, in source order, goes on and " +
		"later ones are dropped (counted as filtered). Decimals compare by value (1.50 is 1.5) and null " +
		"is a value like any other. The step remembers 16 bytes (a 128-bit hash) per distinct key for the " +
		"length of the run, so a run of 10 million distinct keys needs about 400 MB; it forgets them when " +
		"the run ends. It makes this step and every step after it run in one goroutine, in source order.",
	Fields: []connector.FieldSpec{
		{Name: "key", Type: connector.TList, Required: true, Doc: "The fields that identify a record. `dedupe: [a, b]` is short for `dedupe: { key: [a, b] }`."},
	},
	Example: "- dedupe: { key: [order_id] }",
}

type dedupeConfig struct {
	Key nameList `yaml:"key"`
}

type dedupeStep struct {
	where
	cfg dedupeConfig

	name string
	in   *record.Schema
	idx  []int

	mu     sync.Mutex
	seeds  [2]maphash.Seed
	seen   map[[16]byte]struct{}
	keyBuf []byte
}

func newDedupe(p connector.Params) (connector.Step, error) {
	s := &dedupeStep{where: whereOf("dedupe", p)}
	if err := p.Decode(&s.cfg); err != nil {
		// The shorthand `dedupe: [a, b]` names the key alone.
		s.cfg.Key = nil
		if p.Decode(&s.cfg.Key) != nil {
			return nil, err
		}
	}
	if len(s.cfg.Key) == 0 {
		return nil, s.errorf(p.FieldPos("key"), "key: name the fields that identify a record")
	}
	return s, nil
}

// Ordered implements connector.Ordered: the first record of a key is the
// first in source order.
func (s *dedupeStep) Ordered() bool { return true }

func (s *dedupeStep) Bind(in *record.Schema, env *connector.StepEnv) (*record.Schema, error) {
	idx := make([]int, 0, len(s.cfg.Key))
	for _, n := range s.cfg.Key {
		i, err := s.fieldIndex(in, n)
		if err != nil {
			return nil, err
		}
		idx = append(idx, i)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.name, s.in, s.idx = label(env, "dedupe"), in, idx
	s.seeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}
	s.seen = map[[16]byte]struct{}{} // a new run forgets the last one's keys
	return in, nil
}

func (s *dedupeStep) Process(_ context.Context, b *record.Batch) error {
	if err := sameSchema(s.name, b, s.in); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, row := range b.Rows {
		s.keyBuf = s.keyBuf[:0]
		for _, idx := range s.idx {
			s.keyBuf = appendKey(s.keyBuf, row[idx])
		}
		var h [16]byte
		putUint64(h[:8], maphash.Bytes(s.seeds[0], s.keyBuf))
		putUint64(h[8:], maphash.Bytes(s.seeds[1], s.keyBuf))
		if _, dup := s.seen[h]; dup {
			b.Drop(i)
			continue
		}
		s.seen[h] = struct{}{}
	}
	b.Compact()
	return nil
}

// appendKey appends an unambiguous encoding of a key value: the JSON of
// the value (strings quoted, so "null" is not null), decimals by value.
func appendKey(dst []byte, v any) []byte {
	if d, ok := v.(record.Dec); ok {
		v = d.Trim()
	}
	dst = record.AppendJSON(dst, v)
	return append(dst, 0x1f)
}

func putUint64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (8 * i))
	}
}
