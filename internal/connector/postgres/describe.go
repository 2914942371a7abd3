package postgres

import (
	"context"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// column is one column of a table or of a query's result, as the server
// describes it.
type column struct {
	name     string
	oid      uint32 // type OID; the base type of a domain
	typeName string // format_type(oid, NULL): "timestamp with time zone"
	kind     kind
	notNull  bool // known NOT NULL (a table column declared so)
	maxChars int  // varchar(n), char(n): n; 0 for any other type
	scaled   bool // numeric(p, s): values are rounded to its scale
}

// describe returns the columns of `SELECT * FROM from` without running it.
func describe(ctx context.Context, c *pgconn.PgConn, from string) ([]column, error) {
	sd, err := c.Prepare(ctx, "", "SELECT * FROM "+from, nil)
	if err != nil {
		return nil, err
	}
	cols := make([]column, len(sd.Fields))
	var oids []string
	seen := map[uint32]bool{}
	var rels, nums []string
	for i, f := range sd.Fields {
		cols[i] = column{name: f.Name, oid: f.DataTypeOID, kind: kindOf(f.DataTypeOID)}
		cols[i].scaled = f.DataTypeOID == oidNumeric && f.TypeModifier >= 0
		if (f.DataTypeOID == oidVarchar || f.DataTypeOID == oidBpchar) && f.TypeModifier > 4 {
			cols[i].maxChars = int(f.TypeModifier) - 4 // the type modifier counts its own 4 bytes
		}
		if !seen[f.DataTypeOID] {
			seen[f.DataTypeOID] = true
			oids = append(oids, strconv.FormatUint(uint64(f.DataTypeOID), 10))
		}
		if f.TableOID != 0 && f.TableAttributeNumber > 0 {
			rels = append(rels, strconv.FormatUint(uint64(f.TableOID), 10))
			nums = append(nums, strconv.Itoa(int(f.TableAttributeNumber)))
		}
	}
	rows, err := query(ctx, c, `SELECT oid::int8, format_type(oid, NULL) FROM pg_type WHERE oid = ANY($1::oid[])`, "{"+strings.Join(oids, ",")+"}")
	if err != nil {
		return nil, err
	}
	names := map[uint32]string{}
	for _, r := range rows {
		oid, _ := strconv.ParseUint(text(r[0]), 10, 32)
		names[uint32(oid)] = text(r[1])
	}
	for i := range cols {
		cols[i].typeName = names[cols[i].oid]
		if cols[i].typeName == "" {
			cols[i].typeName = "oid " + strconv.FormatUint(uint64(cols[i].oid), 10)
		}
	}
	if len(rels) == 0 {
		return cols, nil
	}
	rows, err = query(ctx, c, `SELECT a.attrelid::int8, a.attnum, a.attnotnull FROM pg_attribute a
		JOIN unnest($1::oid[], $2::int2[]) AS k(rel, num) ON a.attrelid = k.rel AND a.attnum = k.num`,
		"{"+strings.Join(rels, ",")+"}", "{"+strings.Join(nums, ",")+"}")
	if err != nil {
		return nil, err
	}
	notNull := map[[2]string]bool{}
	for _, r := range rows {
		notNull[[2]string{text(r[0]), text(r[1])}] = text(r[2]) == "t"
	}
	for i, f := range sd.Fields {
		if f.TableOID != 0 && f.TableAttributeNumber > 0 {
			cols[i].notNull = notNull[[2]string{strconv.FormatUint(uint64(f.TableOID), 10), strconv.Itoa(int(f.TableAttributeNumber))}]
		}
	}
	return cols, nil
}

// findColumn returns the index of the column named name: the exact name,
// else the only one equal to it ignoring case.
func findColumn(cols []column, name string) (int, bool) {
	for i, c := range cols {
		if c.name == name {
			return i, true
		}
	}
	found := -1
	for i, c := range cols {
		if strings.EqualFold(c.name, name) {
			if found >= 0 {
				return 0, false
			}
			found = i
		}
	}
	return found, found >= 0
}

func columnNames(cols []column) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

// relation is a table as the catalog knows it.
type relation struct {
	oid   string // as text, for parameters
	kind  string // pg_class.relkind
	rows  int64  // estimate, -1 when unknown
	owner string
	// parent: the table has inheritance children or partitions, whose rows
	// share its physical row numbers (ctid).
	parent bool
	file   string // pg_relation_filenode: changes when the table is rewritten
}

// lookupRelation finds schema.table; ok is false when it does not exist.
func lookupRelation(ctx context.Context, c *pgconn.PgConn, schema, table string) (relation, bool, error) {
	rows, err := query(ctx, c, `SELECT c.oid::int8, c.relkind, c.reltuples::int8, pg_get_userbyid(c.relowner),
		c.relhassubclass, pg_relation_filenode(c.oid)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`, schema, table)
	if err != nil || len(rows) == 0 {
		return relation{}, false, err
	}
	n, _ := strconv.ParseInt(text(rows[0][2]), 10, 64)
	return relation{oid: text(rows[0][0]), kind: text(rows[0][1]), rows: n, owner: text(rows[0][3]),
		parent: text(rows[0][4]) == "t", file: text(rows[0][5])}, true, nil
}

// primaryKey returns the columns of a table's primary key, in key order.
func primaryKey(ctx context.Context, c *pgconn.PgConn, relOID string) ([]string, error) {
	rows, err := query(ctx, c, `SELECT a.attname FROM pg_index i
		CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(num, ord)
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.num
		WHERE i.indrelid = $1::oid AND i.indisprimary ORDER BY k.ord`, relOID)
	if err != nil {
		return nil, err
	}
	cols := make([]string, len(rows))
	for i, r := range rows {
		cols[i] = text(r[0])
	}
	return cols, nil
}

// uniqueKeys returns the column lists of a table's unique indexes that an
// ON CONFLICT clause can name: not partial, no expressions, valid.
func uniqueKeys(ctx context.Context, c *pgconn.PgConn, relOID string) ([][]string, error) {
	rows, err := query(ctx, c, `SELECT i.indexrelid::int8, a.attname FROM pg_index i
		CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(num, ord)
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.num
		WHERE i.indrelid = $1::oid AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
		ORDER BY i.indexrelid, k.ord`, relOID)
	if err != nil {
		return nil, err
	}
	var out [][]string
	prev := ""
	for _, r := range rows {
		if id := text(r[0]); id != prev {
			out = append(out, nil)
			prev = id
		}
		out[len(out)-1] = append(out[len(out)-1], text(r[1]))
	}
	return out, nil
}

// what names a table or a query in messages.
func what(schema, table, query string) string {
	if query != "" {
		return "query"
	}
	if schema == "" || schema == defaultDBSchema {
		return "table " + strconv.Quote(table)
	}
	return "table " + strconv.Quote(schema+"."+table)
}

// fromClause is the FROM target of a table or a query, aliased s.
func fromClause(schema, table, query string) string {
	if query != "" {
		return "(" + strings.TrimRight(strings.TrimSpace(query), "; \t\n") + ") AS s"
	}
	return qualified(schema, table) + " AS s"
}
