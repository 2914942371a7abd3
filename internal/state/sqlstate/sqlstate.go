package sqlstate

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
)

// Scanner is a row to scan: a database/sql or a pgx row.
type Scanner interface {
	Scan(dest ...any) error
}

// Rows is a result to read row by row: *sql.Rows or pgx.Rows. The caller
// closes it.
type Rows interface {
	Scanner
	Next() bool
	Err() error
}

// Collect scans every row of rows with scan, in order.
func Collect[T any](rows Rows, scan func(Scanner) (T, error)) ([]T, error) {
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// Now is the time stored for "now": in UTC, to the microsecond.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// CheckTimes refuses times outside the years 1 to 9999: SQLite stores
// times as sortable text of four-digit years, and both stores refuse the
// same times so that a store can be copied to the other without loss.
func CheckTimes(ts ...time.Time) error {
	for _, t := range ts {
		if y := t.UTC().Year(); !t.IsZero() && (y < 1 || y > 9999) {
			return fmt.Errorf("time %v is outside the years 1 to 9999", t)
		}
	}
	return nil
}

// WhereClause joins conds with AND into a WHERE clause, "" for none.
func WhereClause(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

// ScanCheckpoints reads rows of (task, pos IS NULL, pos, done, fingerprint)
// into checkpoints by task. A position round-trips exactly: NULL is nil and
// an empty position is empty, not nil.
func ScanCheckpoints(rows Rows) (map[string]connector.Checkpoint, error) {
	cps := make(map[string]connector.Checkpoint)
	for rows.Next() {
		var (
			cp            connector.Checkpoint
			isNull        bool
			task, pos, fp []byte
		)
		if err := rows.Scan(&task, &isNull, &pos, &cp.Done, &fp); err != nil {
			return nil, err
		}
		cp.Task, cp.Fingerprint = string(task), string(fp)
		if !isNull {
			cp.Pos = bytes.Clone(pos) // a driver may reuse pos for the next row
			if cp.Pos == nil {
				cp.Pos = []byte{}
			}
		}
		cps[cp.Task] = cp
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return cps, nil
}
