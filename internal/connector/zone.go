package connector

import "time"

// LoadZone reads a component's timezone field: nil for none, an error at
// the field for a name the system does not know.
func LoadZone(p Params, name string) (*time.Location, error) {
	if name == "" {
		return nil, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, Errorf(p.FieldPos("timezone"), "unknown timezone %q", name)
	}
	return loc, nil
}

// ZoneOf is the zone for timestamps written without one: the component's
// own, else the pipeline's, else UTC.
func ZoneOf(own *time.Location, env *Env) *time.Location {
	switch {
	case own != nil:
		return own
	case env != nil && env.Location != nil:
		return env.Location
	}
	return time.UTC
}
