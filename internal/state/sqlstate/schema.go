package sqlstate

import (
	"context"
	"fmt"
	"runtime/debug"
	"strconv"
	"time"
)

// A Migration brings a store from version To-1 to version To. A store runs
// the migrations it lacks in one transaction, which Migrate ends by
// recording the new schema_version: a crash leaves the store at the old or
// the new version, never in between. To add a version: append a Migration
// and raise the store's SchemaVersion; never edit a released migration.
type Migration struct {
	To     int
	Stmts  []string
	Tables []string // tables that exist once the migration ran
}

// Latest is the version a store has once ms all ran.
func Latest(ms []Migration) int { return ms[len(ms)-1].To }

// RequiredTables lists the tables a store at Latest(ms) has.
func RequiredTables(ms []Migration) []string {
	var ts []string
	for _, m := range ms {
		ts = append(ts, m.Tables...)
	}
	return ts
}

// Exec runs one statement in the transaction of a migration.
type Exec func(ctx context.Context, stmt string, args ...any) error

// Migrate brings the store from version from to Latest(ms), running each
// statement with exec, and records the version in its meta table; a new
// store (from 0) also gets who created it and when. mark is as for
// RunsQuery.
func Migrate(ctx context.Context, exec Exec, mark func(n int) string, from int, ms []Migration) error {
	for _, m := range ms {
		if m.To <= from {
			continue
		}
		for _, stmt := range m.Stmts {
			if err := exec(ctx, stmt); err != nil {
				return fmt.Errorf("migrate to schema version %d: %w", m.To, err)
			}
		}
	}
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000000Z")
	if from == 0 {
		if err := exec(ctx,
			`INSERT INTO meta (key, value) VALUES ('created_by', `+mark(1)+`), ('created_at', `+mark(2)+`)`,
			createdBy(), now); err != nil {
			return fmt.Errorf("write meta: %w", err)
		}
	}
	err := exec(ctx, `
		INSERT INTO meta (key, value) VALUES ('schema_version', `+mark(1)+`), ('migrated_at', `+mark(2)+`)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
		strconv.Itoa(Latest(ms)), now)
	if err != nil {
		return fmt.Errorf("write meta: %w", err)
	}
	return nil
}

// createdBy names this binary in the meta table.
func createdBy() string {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	return "backbone " + v
}
