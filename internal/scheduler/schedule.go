package scheduler

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule is when a pipeline runs. Its fire times are the runs' logical
// times: a run's data window comes from them, never from the wall clock.
type Schedule interface {
	// Next returns the first fire time strictly after after, in the
	// schedule's zone, or the zero time when the schedule never fires again.
	// It is a pure function of after: the same after gives the same time.
	Next(after time.Time) time.Time
	// String returns the spec the schedule was parsed from, with its zone.
	String() string
}

// SpecError is a schedule that cannot be parsed. The caller reports it as a
// configuration error at the position of the pipeline's `schedule` field.
type SpecError struct {
	Spec   string // as written
	Reason string // what is wrong with it
	Err    error  // the underlying error, if any
}

func (e *SpecError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("schedule %q: %s: %v", e.Spec, e.Reason, e.Err)
	}
	return fmt.Sprintf("schedule %q: %s", e.Spec, e.Reason)
}

func (e *SpecError) Unwrap() error { return e.Err }

// MinInterval is the shortest `every` interval: a run per second is already
// more often than any source needs, and shorter ones would only measure the
// scheduler.
const MinInterval = time.Second

// cronParser takes the five classic fields and the descriptors (@hourly,
// @daily, ...). Seconds are not accepted: cron time is minute-grained, which
// also bounds how many fire times a catch-up can find (see due.go).
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Parse parses a schedule:
//
//   - a cron expression of five fields (minute hour day-of-month month
//     day-of-week), or a descriptor (@yearly, @monthly, @weekly, @daily,
//     @midnight, @hourly), evaluated in zone; a "CRON_TZ=Area/City " or
//     "TZ=Area/City " prefix overrides zone;
//   - "every D" (or "@every D") with D a Go duration of at least a second
//     ("every 30s", "every 5m"): a fixed interval aligned to the Unix epoch,
//     so that a restart keeps the same grid of fire times.
//
// A nil zone means UTC. Daylight saving time follows robfig/cron: a wall
// time that a spring-forward transition skips does not fire that day (a job
// at 02:30 does not run on the day 02:00 jumps to 03:00, and an hourly job
// has no 02:00 run), and a wall time that a fall-back transition repeats
// fires at both instants (a job at 01:30 runs at 01:30 daylight time and
// again at 01:30 standard time). Each of those is a distinct logical time.
//
// Errors are *SpecError; Parse never panics.
func Parse(spec string, zone *time.Location) (s Schedule, err error) {
	if zone == nil {
		zone = time.UTC
	}
	text := strings.TrimSpace(spec)
	if text == "" {
		return nil, &SpecError{Spec: spec, Reason: "empty"}
	}
	if rest, ok := cutEvery(text); ok {
		return parseEvery(spec, rest, zone)
	}
	if name, rest, ok := cutZone(text); ok {
		if rest == "" {
			return nil, &SpecError{Spec: spec, Reason: "a time zone prefix needs a schedule after it"}
		}
		if _, _, again := cutZone(rest); again {
			return nil, &SpecError{Spec: spec, Reason: "more than one time zone prefix"}
		}
		if _, every := cutEvery(rest); every {
			return nil, &SpecError{Spec: spec, Reason: "an `every` interval is aligned to the Unix epoch and takes no time zone"}
		}
		loc, lerr := loadZone(name)
		if lerr != nil {
			return nil, &SpecError{Spec: spec, Reason: fmt.Sprintf("unknown time zone %q", name), Err: lerr}
		}
		zone, text = loc, rest
	}
	// The parser has panicked on some inputs in the past (a zone prefix with
	// nothing after it); ours never must, whatever the input.
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, &SpecError{Spec: spec, Reason: fmt.Sprintf("not a cron expression (%v)", r)}
		}
	}()
	parsed, perr := cronParser.Parse(text)
	if perr != nil {
		return nil, &SpecError{Spec: spec, Reason: "not a cron expression", Err: perr}
	}
	ss, ok := parsed.(*cron.SpecSchedule)
	if !ok { // only @every returns another type, and it was handled above
		return nil, &SpecError{Spec: spec, Reason: "not a cron expression"}
	}
	ss.Location = zone
	c := &cronSchedule{spec: text, zone: zone, s: ss}
	// robfig/cron gives up after five years; a schedule that never fires in
	// five years from a fixed reference (such as "0 0 30 2 *", or an empty
	// list) is a mistake to report now, not a pipeline that silently never
	// runs.
	if c.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, &SpecError{Spec: spec, Reason: "never fires (no matching date)"}
	}
	return c, nil
}

func cutEvery(s string) (string, bool) {
	for _, p := range []string{"every ", "@every "} {
		if len(s) > len(p) && strings.EqualFold(s[:len(p)], p) {
			return strings.TrimSpace(s[len(p):]), true
		}
	}
	if strings.EqualFold(s, "every") || strings.EqualFold(s, "@every") {
		return "", true
	}
	return "", false
}

// cutZone splits "CRON_TZ=Area/City rest" (or "TZ=...").
func cutZone(s string) (zone, rest string, ok bool) {
	var after string
	switch {
	case strings.HasPrefix(s, "CRON_TZ="):
		after = s[len("CRON_TZ="):]
	case strings.HasPrefix(s, "TZ="):
		after = s[len("TZ="):]
	default:
		return "", "", false
	}
	zone, rest, _ = strings.Cut(after, " ")
	return zone, strings.TrimSpace(rest), true
}

func loadZone(name string) (*time.Location, error) {
	if name == "" {
		return nil, errors.New("empty zone name")
	}
	// time.LoadLocation("Local") would make the schedule depend on the
	// machine's setting, which a config file should not.
	if name == "Local" {
		return nil, errors.New(`"Local" depends on the machine; name a zone such as "Europe/Paris" or "UTC"`)
	}
	return time.LoadLocation(name)
}

func parseEvery(spec, d string, zone *time.Location) (Schedule, error) {
	if d == "" {
		return nil, &SpecError{Spec: spec, Reason: `"every" needs an interval such as "every 30s" or "every 5m"`}
	}
	iv, err := time.ParseDuration(d)
	if err != nil {
		return nil, &SpecError{Spec: spec, Reason: fmt.Sprintf("bad interval %q (write it like 30s, 5m or 1h30m)", d)}
	}
	if iv < MinInterval {
		return nil, &SpecError{Spec: spec, Reason: fmt.Sprintf("interval %v is shorter than %v", iv, MinInterval)}
	}
	return &interval{d: iv, zone: zone, spec: "every " + iv.String()}, nil
}

// cronSchedule is a robfig/cron schedule pinned to a zone.
type cronSchedule struct {
	spec string
	zone *time.Location
	s    *cron.SpecSchedule
}

func (c *cronSchedule) Next(after time.Time) time.Time {
	// SpecSchedule.Next returns its result in the location of its argument.
	return c.s.Next(after.In(c.zone))
}

func (c *cronSchedule) String() string {
	if c.zone == time.UTC {
		return c.spec
	}
	return "CRON_TZ=" + c.zone.String() + " " + c.spec
}

// interval fires every d, at the instants that are whole multiples of d
// since the Unix epoch.
type interval struct {
	d    time.Duration
	zone *time.Location
	spec string
}

func (iv *interval) Next(after time.Time) time.Time {
	// UnixNano is exact for years 1678 to 2262, well beyond any run.
	n, d := after.UnixNano(), int64(iv.d)
	k := n / d
	if n%d < 0 { // floor for instants before the epoch
		k--
	}
	return time.Unix(0, (k+1)*d).In(iv.zone)
}

func (iv *interval) String() string { return iv.spec }
