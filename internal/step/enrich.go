package step

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/goccy/go-yaml/ast"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/expr"
	"github.com/backbone-etl/backbone/internal/record"
)

var enrichSpec = connector.Spec{
	Name:    "enrich",
	Summary: "Add fields from a lookup table, joined on key fields.",
	Doc: "For each record, the lookup's row whose key equals the record's `on` fields is read and the " +
		"chosen fields are added after the record's own, with the lookup's types. When there is no such " +
		"row (or a key field is null), `missing` decides: reject the record (the default), keep it with the " +
		"added fields null, or drop it (counted as filtered). A lookup that cannot be answered — a service " +
		"down, a timeout after its retries — fails the run, or rejects the record when the lookup's own policy " +
		"says so (`on_unavailable: reject`): a record is never enriched with nulls because of an outage.",
	Fields: []connector.FieldSpec{
		{Name: "lookup", Type: connector.TString, Required: true, Doc: "The lookup to read, by its name under `lookups:`."},
		{Name: "on", Type: connector.TList, Required: true, Doc: "The record's fields holding the key, matched to the lookup's key fields in order."},
		{Name: "fields", Type: connector.TList, Doc: "The lookup's fields to add; by default every field but its keys."},
		{Name: "prefix", Type: connector.TString, Doc: "Put before the name of each added field, to keep them apart from the record's own."},
		{Name: "missing", Type: connector.TEnum, Enum: []string{"reject", "null", "drop"}, Default: "reject",
			Doc: "What happens to a record without a row: reject it, add null fields, or drop it."},
	},
	Example: "- enrich: { lookup: customers, on: customer_id, fields: [region, tier], missing: reject }",
}

type enrichConfig struct {
	Lookup  string   `yaml:"lookup"`
	On      nameList `yaml:"on"`
	Fields  nameList `yaml:"fields"`
	Prefix  string   `yaml:"prefix"`
	Missing enumText `yaml:"missing"`
}

// enumText is an enum value as written: `missing: null` is the word null,
// not a YAML null.
type enumText string

// UnmarshalYAML implements yaml.NodeUnmarshaler.
func (e *enumText) UnmarshalYAML(n ast.Node) error {
	if _, ok := n.(*ast.NullNode); ok {
		*e = "null"
		return nil
	}
	if _, ok := n.(ast.ScalarNode); !ok {
		return &connector.PosError{Pos: nodePos(n), Msg: fmt.Sprintf("want one word, got a %s", n.Type())}
	}
	*e = enumText(scalarText(n))
	return nil
}

type enrichStep struct {
	where
	cfg                          enrichConfig
	lookupPos, onPos, missingPos connector.Pos

	name     string
	in, out  *record.Schema
	table    connector.Table
	onIdx    []int  // record fields of the key
	addIdx   []int  // table fields added, in order
	keyField string // the one key field, named in rejects

	combos atomic.Pointer[indexCombos] // of the added fields, for the index last read
	combMu sync.Mutex                  // serializes making combos
}

// indexCombos are the combinations of an index's added fields (nil when
// they are not fields of few texts).
type indexCombos struct {
	ix *connector.Index
	cb *connector.Combos
}

// combosOf returns the combinations of the added fields in ix, made once
// per index (a refreshed lookup is a new one).
func (s *enrichStep) combosOf(ix *connector.Index) *connector.Combos {
	if c := s.combos.Load(); c != nil && c.ix == ix {
		return c.cb
	}
	s.combMu.Lock()
	defer s.combMu.Unlock()
	if c := s.combos.Load(); c != nil && c.ix == ix {
		return c.cb
	}
	c := &indexCombos{ix: ix, cb: ix.Combos(s.addIdx)}
	s.combos.Store(c)
	return c.cb
}

func newEnrich(p connector.Params) (connector.Step, error) {
	// missing's default is set after decoding: YAML reads `missing: null`
	// as a null, which leaves the field as it was, and only its presence
	// tells it from an absent field.
	s := &enrichStep{where: whereOf("enrich", p)}
	if err := p.Decode(&s.cfg); err != nil {
		return nil, err
	}
	s.lookupPos, s.onPos = p.FieldPos("lookup"), p.FieldPos("on")
	s.missingPos = p.FieldPos("missing")
	if s.cfg.Missing == "" {
		s.cfg.Missing = "reject"
		if s.missingPos != p.Pos() {
			s.cfg.Missing = "null"
		}
	}
	switch s.cfg.Missing {
	case "reject", "null", "drop":
	default:
		return nil, s.errorf(s.missingPos, "missing: %q is not one of reject, null, drop", s.cfg.Missing)
	}
	if s.cfg.Lookup == "" {
		return nil, s.errorf(s.lookupPos, "lookup: name the lookup to read")
	}
	if len(s.cfg.On) == 0 {
		return nil, s.errorf(s.onPos, "on: name the fields holding the key")
	}
	return s, nil
}

func (s *enrichStep) Bind(in *record.Schema, env *connector.StepEnv) (*record.Schema, error) {
	var lookups map[string]connector.Table
	if env != nil {
		lookups = env.Lookups
	}
	t, ok := lookups[s.cfg.Lookup]
	if !ok || t == nil {
		return nil, s.errorf(s.lookupPos, "%s", undeclared(s.cfg.Lookup, lookups))
	}
	keys, ts := t.Keys(), t.Schema()
	if len(s.cfg.On) != len(keys) {
		return nil, s.errorf(s.onPos, "lookup %q is keyed by %s (%d field(s)); on names %d", s.cfg.Lookup, strings.Join(keys, ", "), len(keys), len(s.cfg.On))
	}
	s.onIdx = s.onIdx[:0]
	for _, n := range s.cfg.On {
		i, err := s.fieldIndex(in, n)
		if err != nil {
			return nil, err
		}
		s.onIdx = append(s.onIdx, i)
	}
	if len(s.cfg.On) == 1 {
		s.keyField = s.cfg.On[0].Name
	}

	chosen := s.cfg.Fields
	if len(chosen) == 0 {
		isKey := map[string]bool{}
		for _, k := range keys {
			isKey[k] = true
		}
		for _, f := range ts.Fields() {
			if !isKey[f.Name] {
				chosen = append(chosen, name{Name: f.Name})
			}
		}
		if len(chosen) == 0 {
			return nil, s.errorf(s.lookupPos, "lookup %q has no fields besides its keys; name them in fields", s.cfg.Lookup)
		}
	}
	fields := in.Fields()
	s.addIdx = s.addIdx[:0]
	for _, n := range chosen {
		i, ok := ts.Index(n.Name)
		if !ok {
			if near, ok := connector.Closest(n.Name, ts.Names()); ok {
				return nil, s.errorf(n.Pos, "lookup %q has no field %q (did you mean %q?)", s.cfg.Lookup, n.Name, near)
			}
			return nil, s.errorf(n.Pos, "lookup %q has no field %q (fields: %s)", s.cfg.Lookup, n.Name, listNames(ts.Names()))
		}
		if ix := connector.IndexOf(t); ix != nil && !ix.Loaded(i) {
			return nil, s.errorf(n.Pos, "lookup %q was loaded without its field %q", s.cfg.Lookup, n.Name)
		}
		out := s.cfg.Prefix + n.Name
		if _, clash := in.Index(out); clash {
			return nil, s.errorf(n.Pos, "field %q already flows into the step; set a prefix (or select fewer fields)", out)
		}
		for _, f := range fields[in.Len():] {
			if f.Name == out {
				return nil, s.errorf(n.Pos, "field %q is named twice", n.Name)
			}
		}
		fields = append(fields, record.Field{Name: out, Type: ts.Field(i).Type})
		s.addIdx = append(s.addIdx, i)
	}
	s.name, s.in, s.table = label(env, "enrich"), in, t
	out, err := in.Derive(fields...)
	if err != nil {
		return nil, s.errorf(s.pos, "%v", err)
	}
	s.out = out
	return s.out, nil
}

// undeclared explains a lookup name that the pipeline does not declare.
func undeclared(n string, lookups map[string]connector.Table) string {
	declared := make([]string, 0, len(lookups))
	for k := range lookups {
		declared = append(declared, k)
	}
	sort.Strings(declared)
	switch near, ok := connector.Closest(n, declared); {
	case ok:
		return fmt.Sprintf("lookup %q is not declared (did you mean %q? declared: %s)", n, near, strings.Join(declared, ", "))
	case len(declared) == 0:
		return fmt.Sprintf("lookup %q is not declared (the pipeline declares no lookups)", n)
	}
	return fmt.Sprintf("lookup %q is not declared (declared: %s)", n, strings.Join(declared, ", "))
}

func (s *enrichStep) Process(ctx context.Context, b *record.Batch) error {
	if err := sameSchema(s.name, b, s.in); err != nil {
		return err
	}
	if ix := connector.IndexOf(s.table); ix != nil {
		return s.processIndex(b, ix) // one index for the whole batch, even if a refresh replaces it
	}
	n, nk, width := len(b.Rows), len(s.onIdx), s.in.Len()
	w := newWidener(b, s.out)
	// One slab for every key: a table may keep the key it was given.
	keys := make([]any, n*nk)
	var answers []connector.Answer
	if bt, ok := s.table.(connector.BatchTable); ok {
		answers = s.getBatch(ctx, bt, b) // one call for the batch: concurrent or batched requests
	}
	for i, row := range b.Rows {
		key := keys[i*nk : (i+1)*nk : (i+1)*nk]
		null := false
		for k, idx := range s.onIdx {
			key[k] = row[idx]
			null = null || row[idx] == nil
		}
		var found record.Row
		ok := false
		if !null {
			var err error
			if answers != nil {
				found, ok, err = answers[i].Row, answers[i].OK, answers[i].Err
			} else {
				found, ok, err = s.table.Get(ctx, key)
			}
			if err != nil && errors.Is(err, connector.ErrReject) {
				b.RejectRow(i, s.name, s.keyField, fmt.Sprintf("lookup %q for %s: %v", s.cfg.Lookup, s.describe(key), err))
				continue
			}
			if err != nil {
				return fmt.Errorf("%s: lookup %q: %w", s.name, s.cfg.Lookup, err)
			}
		}
		if !ok {
			switch s.cfg.Missing {
			case "drop":
				b.Drop(i)
				continue
			case "reject":
				b.RejectRow(i, s.name, s.keyField, fmt.Sprintf("no %s row for %s", s.cfg.Lookup, s.describe(key)))
				continue
			}
		}
		nr := w.widen(row, n-i) // the added fields null
		if ok {
			for k, ti := range s.addIdx {
				if ti < len(found) {
					nr[width+k] = found[ti]
				}
			}
		}
		b.Rows[i] = nr
	}
	w.done(b)
	b.Schema = s.out
	b.Compact()
	return nil
}

// processIndex is Process for a preloaded index, which is read field by
// field, without a row made per record. It works in passes over the batch:
// find every row's position, then widen the rows and add the fields. Added
// texts of few values (regions, tiers) are read as combinations of their
// values (see connector.Combos), one small code per record; other fields
// are read one field at a time, so that the reads of the index, which land
// at random places, do not wait for each other.
func (s *enrichStep) processIndex(b *record.Batch, ix *connector.Index) error {
	const gone = -2 // rejected or dropped
	n, width := len(b.Rows), s.in.Len()
	pos := make([]int32, n) // -1: no row, its fields null
	key := make([]any, len(s.onIdx))
	for i, row := range b.Rows {
		null := false
		for k, idx := range s.onIdx {
			key[k] = row[idx]
			null = null || row[idx] == nil
		}
		p, ok := -1, false
		switch {
		case null:
		case len(key) == 1:
			p, ok = ix.PosOf(key[0])
		default:
			var err error
			if p, ok, err = ix.Pos(key); err != nil {
				return fmt.Errorf("%s: lookup %q: %w", s.name, s.cfg.Lookup, err)
			}
		}
		pos[i] = int32(p)
		if ok {
			continue
		}
		pos[i] = -1
		switch s.cfg.Missing {
		case "drop":
			b.Drop(i)
			pos[i] = gone
		case "reject":
			b.RejectRow(i, s.name, s.keyField, fmt.Sprintf("no %s row for %s", s.cfg.Lookup, s.describe(key)))
			pos[i] = gone
		}
	}
	clear(key)
	w := newWidener(b, s.out)
	if cb := s.combosOf(ix); cb != nil {
		// One pass: each row's added fields are one combination's values.
		k := len(s.addIdx)
		for i, row := range b.Rows {
			p := pos[i]
			if p == gone {
				continue
			}
			nr := w.widen(row, n-i) // the added fields null
			if p >= 0 {
				for j, v := range cb.Values[cb.Codes[p]][:k] {
					nr[width+j] = v
				}
			}
			b.Rows[i] = nr
		}
	} else {
		for i, row := range b.Rows {
			if pos[i] != gone {
				b.Rows[i] = w.widen(row, n-i) // the added fields null
			}
		}
		for k, ti := range s.addIdx {
			ix.Fill(ti, pos, b.Rows, width+k)
		}
	}
	w.done(b)
	b.Schema = s.out
	b.Compact()
	return nil
}

// getBatch asks a table that answers many keys at once for the key of every
// row of b; a row with a null key field gets no answer.
func (s *enrichStep) getBatch(ctx context.Context, bt connector.BatchTable, b *record.Batch) []connector.Answer {
	nk := len(s.onIdx)
	slab := make([]any, len(b.Rows)*nk)
	keys := make([][]any, len(b.Rows))
	for i, row := range b.Rows {
		key := slab[i*nk : (i+1)*nk : (i+1)*nk]
		for k, idx := range s.onIdx {
			if key[k] = row[idx]; key[k] == nil {
				key = nil
				break
			}
		}
		keys[i] = key
	}
	out := make([]connector.Answer, len(b.Rows))
	bt.GetBatch(ctx, keys, out)
	return out
}

// describe renders a key as "customer_id=42, region=\"eu\"".
func (s *enrichStep) describe(key []any) string {
	parts := make([]string, len(key))
	for k, v := range key {
		parts[k] = s.cfg.On[k].Name + "=" + expr.ValueText(v)
	}
	return strings.Join(parts, ", ")
}
