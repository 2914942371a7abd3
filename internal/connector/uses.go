package connector

import (
	"context"
	"sort"
)

// A preloaded lookup holds every row it loads for the whole run, and its
// unused fields cost the most: a customer's name, unique per row, is a text
// to convert, to keep and for the collector to walk, while the pipeline
// reads only the region. So before the lookups load, the engine asks the
// steps which fields they read (LookupUser), and a lookup that can
// (FieldLoader) loads only those and its keys.
//
// The answer must never be short: a field read that was not loaded would be
// null. So a step that cannot tell reads every lookup whole, a field read
// through a name or a row the step cannot see at once reads its lookup
// whole, and what reads a preloaded Index checks, when it binds, that the
// fields it reads were loaded (Index.Loaded).

// LookupUser is implemented by steps that can tell, from their
// configuration alone, which fields of which lookups they read. A step that
// does not implement it is taken to read every lookup whole.
type LookupUser interface {
	UsesLookups(u *LookupUses)
}

// FieldLoader is implemented by lookups that can load only some of their
// fields. OpenFields is Open, loading only the key fields and fields (not
// nil, maybe empty): the others are null in every row, and the Index a
// preload answers from tells them apart (Index.Loaded). A lookup that keeps
// no Index may load them all.
type FieldLoader interface {
	Lookup
	OpenFields(ctx context.Context, env *Env, fields []string) (Table, error)
}

// LookupUses is which fields of which lookups a pipeline's steps read.
type LookupUses struct {
	fields map[string]map[string]bool
	whole  map[string]bool
	all    bool
}

// Field records that lookup's field is read.
func (u *LookupUses) Field(lookup, field string) {
	if u.fields == nil {
		u.fields = map[string]map[string]bool{}
	}
	if u.fields[lookup] == nil {
		u.fields[lookup] = map[string]bool{}
	}
	u.fields[lookup][field] = true
}

// Whole records that lookup's rows are read whole.
func (u *LookupUses) Whole(lookup string) {
	if u.whole == nil {
		u.whole = map[string]bool{}
	}
	u.whole[lookup] = true
}

// All records that any lookup may be read whole.
func (u *LookupUses) All() { u.all = true }

// Of returns the fields of lookup that are read, sorted and not nil; whole
// is true when it may be read whole (and fields is then nil).
func (u *LookupUses) Of(lookup string) (fields []string, whole bool) {
	if u.all || u.whole[lookup] {
		return nil, true
	}
	fields = []string{}
	for f := range u.fields[lookup] {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	return fields, false
}

// OpenLookup opens l for a pipeline whose steps read uses of it: only those
// fields when l can load part of its rows, all of them otherwise.
func OpenLookup(ctx context.Context, l Lookup, env *Env, name string, uses *LookupUses) (Table, error) {
	if fl, ok := l.(FieldLoader); ok && uses != nil {
		if fields, whole := uses.Of(name); !whole {
			return fl.OpenFields(ctx, env, fields)
		}
	}
	return l.Open(ctx, env)
}
