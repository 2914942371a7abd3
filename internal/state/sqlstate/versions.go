package sqlstate

import (
	"time"

	"github.com/backbone-etl/backbone/internal/state"
)

// VersionColumns are the columns of versions, in the order ScanVersion
// reads them.
const VersionColumns = `pipeline, hash, content, first_seen, last_seen, status, reason`

// ScanVersion scans a row of VersionColumns; T and toTime are as for
// ScanRun.
func ScanVersion[T any](row Scanner, toTime func(T) (time.Time, error)) (state.Version, error) {
	var (
		v           state.Version
		first, last T
	)
	if err := row.Scan(&v.Pipeline, &v.Hash, &v.Content, &first, &last, &v.Status, &v.Reason); err != nil {
		return v, err
	}
	var err error
	if v.FirstSeen, err = toTime(first); err != nil {
		return v, err
	}
	v.LastSeen, err = toTime(last)
	return v, err
}

// NewVersion is v as SaveVersion inserts it: LastSeen now when zero,
// FirstSeen LastSeen when zero, and an empty, non-nil Content for none.
func NewVersion(v state.Version) state.Version {
	if v.LastSeen.IsZero() {
		v.LastSeen = Now()
	}
	if v.FirstSeen.IsZero() {
		v.FirstSeen = v.LastSeen
	}
	if v.Content == nil {
		v.Content = []byte{}
	}
	return v
}
