package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
)

// checkColumns opens a database read-only and verifies that the table or
// query can be read and has the declared columns.
func checkColumns(ctx context.Context, path, table, query string, want []string, busy time.Duration) error {
	db, err := openReadOnly(ctx, path, busy)
	if err != nil {
		return err
	}
	defer db.Close()
	cols, err := declaredColumns(ctx, db, table, query)
	if err != nil {
		return fmt.Errorf("sqlite: %s, %s: %w", path, what(table, query), classify(err))
	}
	have := map[string]bool{}
	for _, c := range cols {
		have[c.Name] = true
	}
	var missing []string
	for _, w := range want {
		if !have[w] {
			missing = append(missing, w)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("sqlite: %s, %s has no column %s", path, what(table, query), strings.Join(missing, ", "))
	}
	return nil
}

// Check implements connector.Checker: the database and the table or query
// are readable and have the cursor, key and declared columns.
func (s *source) Check(ctx context.Context, env *connector.Env) error {
	want := append(append([]string{}, s.cfg.Cursor...), s.cfg.Key...)
	if s.declared != nil {
		want = append(want, s.declared.Names()...)
	}
	return checkColumns(ctx, env.Path(s.cfg.Path), s.cfg.Table, s.cfg.Query, want, time.Duration(s.cfg.BusyTimeout))
}

// Check implements connector.Checker.
func (l *lookup) Check(ctx context.Context, env *connector.Env) error {
	want := append([]string{}, l.cfg.Key...)
	if l.declared != nil {
		want = append(want, l.declared.Names()...)
	}
	return checkColumns(ctx, env.Path(l.cfg.Path), l.cfg.Table, l.cfg.Query, want, time.Duration(l.cfg.BusyTimeout))
}

// Check implements connector.Checker: the table exists (or may be created
// in a directory that exists).
func (s *sink) Check(ctx context.Context, env *connector.Env) error {
	path := env.Path(s.cfg.Path)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if !s.cfg.Create {
			return connector.Unavailable(fmt.Errorf("sqlite: database %s does not exist (set create: true to make it)", path))
		}
		if _, err := os.Stat(filepath.Dir(path)); err != nil {
			return connector.Unavailable(fmt.Errorf("sqlite: directory of %s: %w", path, err))
		}
		return nil
	}
	err := checkColumns(ctx, path, s.cfg.Table, "", s.cfg.Key, time.Duration(s.cfg.BusyTimeout))
	if err != nil && s.cfg.Create && strings.Contains(err.Error(), "no such table") {
		return nil
	}
	return err
}
