package sqlite

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/sqlkit/sqlkittest"
)

// kit builds this package's components from YAML.
var kit = sqlkittest.Kit{Name: "sqlite", Register: Register}

// testDB opens (creating) a database for the test's own statements.
func testDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", dsn(path, false, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func mustExec(t testing.TB, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func dbPath(env *connector.Env, name string) string { return filepath.Join(env.Dir, name) }
