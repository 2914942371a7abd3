package step

import (
	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/expr"
)

// The steps tell which lookup fields they read (connector.LookupUser), so
// that a preloaded lookup loads only those.

func (s *filterStep) UsesLookups(u *connector.LookupUses) { expr.UsesLookups(s.cond.Expr, u) }

func (s *mapStep) UsesLookups(u *connector.LookupUses) {
	for _, e := range s.entries {
		expr.UsesLookups(e.Expr, u)
	}
}

func (s *validateStep) UsesLookups(u *connector.LookupUses) {
	for _, r := range s.rules {
		expr.UsesLookups(r.Check.Expr, u)
	}
}

// UsesLookups: without fields, enrich adds every field but the keys.
func (s *enrichStep) UsesLookups(u *connector.LookupUses) {
	if len(s.cfg.Fields) == 0 {
		u.Whole(s.cfg.Lookup)
		return
	}
	for _, f := range s.cfg.Fields {
		u.Field(s.cfg.Lookup, f.Name)
	}
}

// The other steps read no lookup.

func (s *dedupeStep) UsesLookups(*connector.LookupUses)  {}
func (s *projectStep) UsesLookups(*connector.LookupUses) {}
func (s *renameStep) UsesLookups(*connector.LookupUses)  {}
func (s *castStep) UsesLookups(*connector.LookupUses)    {}
