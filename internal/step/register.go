package step

import "github.com/backbone-etl/backbone/internal/connector"

// Register adds the built-in steps to r.
func Register(r *connector.Registry) {
	r.AddStep(filterSpec, newFilter)
	r.AddStep(mapSpec, newMap)
	r.AddStep(selectSpec, newSelect)
	r.AddStep(dropSpec, newDrop)
	r.AddStep(renameSpec, newRename)
	r.AddStep(castSpec, newCast)
	r.AddStep(validateSpec, newValidate)
	r.AddStep(enrichSpec, newEnrich)
	r.AddStep(dedupeSpec, newDedupe)
}
