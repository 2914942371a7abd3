package sqlite

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/sqlkit"
	"github.com/backbone-etl/backbone/internal/record"
)

type lookupConfig struct {
	Path        string              `yaml:"path"`
	Table       string              `yaml:"table"`
	Query       string              `yaml:"query"`
	Key         connector.List      `yaml:"key"`
	Schema      connector.SchemaDef `yaml:"schema"`
	BusyTimeout connector.Duration  `yaml:"busy_timeout"`
}

var lookupSpec = connector.Spec{
	Name:    "sqlite",
	Summary: "Reference data from a table or a query of an SQLite database, preloaded into memory.",
	Doc: `Reads a table or the result of a query from an SQLite database file (opened read-only)
into memory when the run starts, indexed by key: only the key and the fields the pipeline's
steps read. A later row with the same key replaces an earlier one.

Without a schema the fields are the columns, typed from their declared types as for the
sqlite source. A row with a value that does not convert to its field's type is left out of
the index and logged: records looking up its key then follow the enrichment's missing policy.`,
	Fields: []connector.FieldSpec{
		{Name: "path", Type: connector.TString, Required: true, Doc: "Database file, relative to the pipeline file."},
		{Name: "table", Type: connector.TString, Doc: "Table (or view) to read. Exactly one of table and query."},
		{Name: "query", Type: connector.TString, Doc: "SELECT to read. Exactly one of table and query."},
		{Name: "key", Type: connector.TList, Required: true, Doc: "Field(s) that lookups give, in order."},
		{Name: "schema", Type: connector.TSchema, Doc: "Fields and types to read; default: every column, typed from its declared type."},
		{Name: "busy_timeout", Type: connector.TDuration, Default: "5s", Doc: "How long to wait for a lock held by a writer."},
	},
	Example: `lookups:
  customers:
    type: sqlite
    path: data/crm.db
    table: customers
    key: customer_id`,
}

func newLookup(p connector.Params) (connector.Lookup, error) {
	cfg := lookupConfig{BusyTimeout: connector.Duration(defaultBusyTimeout)}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	if err := checkTarget(p, cfg.Path, cfg.Table, cfg.Query); err != nil {
		return nil, err
	}
	if len(cfg.Key) == 0 {
		return nil, connector.Errorf(p.FieldPos("key"), "key is required: the field(s) that lookups give")
	}
	if err := sqlkit.CheckNames(p, "key", cfg.Key); err != nil {
		return nil, err
	}
	if cfg.BusyTimeout < 0 {
		return nil, connector.Errorf(p.FieldPos("busy_timeout"), "busy_timeout must not be negative")
	}
	l := &lookup{cfg: cfg, declared: cfg.Schema.Schema()}
	if l.declared != nil {
		for _, k := range cfg.Key {
			if _, ok := l.declared.Index(k); !ok {
				return nil, connector.Errorf(p.FieldPos("key"), "key field %q is not in the schema (%s)", k, strings.Join(l.declared.Names(), ", "))
			}
		}
		return &schemedLookup{l}, nil
	}
	return l, nil
}

type lookup struct {
	cfg      lookupConfig
	declared *record.Schema
}

// schemedLookup is a lookup with a declared schema.
type schemedLookup struct{ *lookup }

// Schema implements connector.Schemer.
func (l *schemedLookup) Schema() *record.Schema { return l.declared }

// Open implements connector.Lookup: it reads every row into an index.
func (l *lookup) Open(ctx context.Context, env *connector.Env) (connector.Table, error) {
	return l.open(ctx, env, nil)
}

// OpenFields implements connector.FieldLoader: it selects only the key
// fields and fields.
func (l *lookup) OpenFields(ctx context.Context, env *connector.Env, fields []string) (connector.Table, error) {
	return l.open(ctx, env, fields)
}

// open loads only the key fields and fields unless fields is nil.
func (l *lookup) open(ctx context.Context, env *connector.Env, only []string) (connector.Table, error) {
	path := env.Path(l.cfg.Path)
	db, err := openReadOnly(ctx, path, time.Duration(l.cfg.BusyTimeout))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	ix, err := l.load(ctx, env, db, only)
	if err != nil {
		return nil, fmt.Errorf("sqlite: lookup %s, %s: %w", path, what(l.cfg.Table, l.cfg.Query), classify(err))
	}
	return ix, nil
}

func (l *lookup) load(ctx context.Context, env *connector.Env, db querier, only []string) (*connector.Index, error) {
	schema, err := resolveSchema(ctx, db, l.declared, l.cfg.Table, l.cfg.Query)
	if err != nil {
		return nil, err
	}
	ix, err := connector.NewIndex(schema, l.cfg.Key)
	if err != nil {
		return nil, err
	}
	if only != nil {
		ix.Only(only)
	}
	rows, err := db.QueryContext(ctx, "SELECT "+sqlkit.SelectLoaded(ix, quoteIdent, "+s.", schema.Names())+" FROM "+fromClause(l.cfg.Table, l.cfg.Query))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	raw := make([]any, schema.Len())
	ptrs := make([]any, len(raw))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	var n, bad int64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		n++
		row := make(record.Row, len(raw))
		if _, err := convertRow(schema, raw, row, env.Location); err != nil {
			bad++
			if env.Logger != nil && bad <= 10 {
				env.Logger.Warn("sqlite lookup: row left out", "lookup", what(l.cfg.Table, l.cfg.Query), "row", n, "error", err.Error())
			}
			continue
		}
		ix.Add(row)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if bad > 0 && env.Logger != nil {
		env.Logger.Warn("sqlite lookup: rows left out because a value does not convert", "lookup", what(l.cfg.Table, l.cfg.Query), "rows", bad, "of", n)
	}
	return ix, nil
}
