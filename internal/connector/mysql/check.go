package mysql

import (
	"context"
	"fmt"
	"strings"

	"github.com/backbone-etl/backbone/internal/connector"
)

// checkColumns connects and verifies that the table or query exists and has
// the named columns.
func checkColumns(ctx context.Context, srv *server, table, query string, want []string) error {
	db, err := srv.connect(ctx, 1)
	if err != nil {
		return fmt.Errorf("mysql: %w", err)
	}
	defer db.Close()
	cols, err := describe(ctx, db, table, query)
	if err != nil {
		return fmt.Errorf("mysql: %s, %s: %w", srv.where, what(table, query), classify(ctx, srv.redact(err)))
	}
	have := map[string]bool{}
	for _, c := range cols {
		have[c.name] = true
	}
	var missing []string
	for _, w := range want {
		if !have[w] {
			missing = append(missing, w)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("mysql: %s, %s has no column %s", srv.where, what(table, query), strings.Join(missing, ", "))
	}
	return nil
}

// Check implements connector.Checker: the server answers and the table or
// query has the cursor, key and declared columns.
func (s *source) Check(ctx context.Context, env *connector.Env) error {
	want := append(append([]string{}, s.cfg.Cursor...), s.cfg.Key...)
	if s.declared != nil {
		want = append(want, s.declared.Names()...)
	}
	return checkColumns(ctx, s.srv, s.cfg.Table, s.cfg.Query, want)
}

// Check implements connector.Checker.
func (l *lookup) Check(ctx context.Context, env *connector.Env) error {
	want := append([]string{}, l.cfg.Key...)
	if l.declared != nil {
		want = append(want, l.declared.Names()...)
	}
	return checkColumns(ctx, l.srv, l.cfg.Table, l.cfg.Query, want)
}

// Check implements connector.Checker: the server answers, and the table
// exists with the key columns unless it is to be created.
func (s *sink) Check(ctx context.Context, env *connector.Env) error {
	err := checkColumns(ctx, s.srv, s.cfg.Table, "", s.cfg.Key)
	if err != nil && s.cfg.Create && strings.Contains(err.Error(), "does not exist") {
		return nil
	}
	return err
}
