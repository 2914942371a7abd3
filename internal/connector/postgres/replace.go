package postgres

import (
	"context"
	"fmt"
	"strings"
)

// prepareReplace creates the table that mode replace loads, in the open
// transaction, and plans the swap that Commit runs.
//
// A new table for an existing one is made LIKE it, INCLUDING ALL (columns,
// defaults, NOT NULL, CHECK, unique and primary keys, indexes, identity,
// storage, column comments), then given the old table's foreign keys,
// grants and comment. At the swap the old table is locked, its serial
// sequences change owner, identity sequences carry on from the old ones'
// values, the old table is dropped, and the new one takes its name, its
// index names and its sequence names.
func (w *writer) prepareReplace(ctx context.Context) error {
	cfg := &w.s.cfg
	newName := cfg.Table + newSuffix
	newQ := qualified(cfg.DBSchema, newName)
	if !w.existed {
		if err := exec(ctx, w.conn, createSQL(newQ, w.schema, nil)); err != nil {
			return fmt.Errorf("create %s: %w", newQ, err)
		}
		w.swapSQL = []string{"ALTER TABLE " + newQ + " RENAME TO " + quoteIdent(cfg.Table)}
		return nil
	}
	rel, ok, err := lookupRelation(ctx, w.conn, cfg.DBSchema, cfg.Table)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("table %s disappeared", w.table)
	}
	if err := replaceBlockers(ctx, w.conn, rel.oid); err != nil {
		return err
	}
	w.renames = []string{newName, cfg.Table}
	stmts := []string{"CREATE TABLE " + newQ + " (LIKE " + w.table + " INCLUDING ALL)"}
	rows, err := query(ctx, w.conn, `SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = $1::oid AND contype = 'f' ORDER BY oid`, rel.oid)
	if err != nil {
		return err
	}
	for _, r := range rows {
		stmts = append(stmts, "ALTER TABLE "+newQ+" ADD CONSTRAINT "+quoteIdent(text(r[0]))+" "+text(r[1]))
	}
	rows, err = query(ctx, w.conn, `SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
		a.privilege_type, a.is_grantable FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) AS a WHERE c.oid = $1::oid`, rel.oid)
	if err != nil {
		return err
	}
	for _, r := range rows {
		g := "GRANT " + text(r[1]) + " ON " + newQ + " TO " + text(r[0])
		if text(r[2]) == "t" {
			g += " WITH GRANT OPTION"
		}
		stmts = append(stmts, g)
	}
	rows, err = query(ctx, w.conn, `SELECT obj_description($1::oid, 'pg_class')`, rel.oid)
	if err != nil {
		return err
	}
	if len(rows) == 1 && rows[0][0] != nil {
		stmts = append(stmts, "COMMENT ON TABLE "+newQ+" IS "+quoteLiteral(text(rows[0][0])))
	}
	if err := exec(ctx, w.conn, strings.Join(stmts, ";\n")); err != nil {
		return fmt.Errorf("create %s like %s: %w", newQ, w.table, err)
	}

	swap := []string{"LOCK TABLE " + w.table + " IN ACCESS EXCLUSIVE MODE"}
	if rel.owner != w.user {
		swap = append(swap, "ALTER TABLE "+newQ+" OWNER TO "+quoteIdent(rel.owner))
	}
	var after []string
	// Sequences: a serial's moves to the new table; an identity's new
	// sequence carries on from the old one and takes its name.
	rows, err = query(ctx, w.conn, `SELECT quote_ident(sn.nspname) || '.' || quote_ident(s.relname), s.relname, a.attname, d.deptype,
			pg_get_serial_sequence($2, a.attname)
		FROM pg_depend d
		JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
		JOIN pg_namespace sn ON sn.oid = s.relnamespace
		JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
		WHERE d.classid = 'pg_class'::regclass AND d.refobjid = $1::oid AND d.deptype IN ('a', 'i')`, rel.oid, newQ)
	if err != nil {
		return err
	}
	for _, r := range rows {
		seq, seqName, col, deptype, newSeq := text(r[0]), text(r[1]), text(r[2]), text(r[3]), text(r[4])
		switch deptype {
		case "a":
			swap = append(swap, "ALTER SEQUENCE "+seq+" OWNED BY "+newQ+"."+quoteIdent(col))
		case "i":
			if newSeq == "" {
				continue
			}
			swap = append(swap, "SELECT setval("+quoteLiteral(newSeq)+", last_value, is_called) FROM "+seq)
			after = append(after, "ALTER SEQUENCE "+newSeq+" RENAME TO "+quoteIdent(seqName))
		}
	}
	// Indexes: pair the new table's with the old one's by definition.
	rows, err = query(ctx, w.conn, `SELECT i.indrelid = $1::oid, c.relname, i.indisunique::text || regexp_replace(pg_get_indexdef(i.indexrelid), '^.* USING ', '')
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid IN ($1::oid, $2::regclass) ORDER BY i.indexrelid`, rel.oid, newQ)
	if err != nil {
		return err
	}
	fresh := map[string][]string{} // definition → new index names, in order
	for _, r := range rows {
		if text(r[0]) == "f" {
			fresh[text(r[2])] = append(fresh[text(r[2])], text(r[1]))
		}
	}
	for _, r := range rows {
		if text(r[0]) != "t" {
			continue
		}
		def, oldName := text(r[2]), text(r[1])
		if names := fresh[def]; len(names) > 0 {
			fresh[def] = names[1:]
			if names[0] != oldName {
				after = append(after, "ALTER INDEX "+qualified(cfg.DBSchema, names[0])+" RENAME TO "+quoteIdent(oldName))
				w.renames = append(w.renames, names[0], oldName)
			}
		}
	}
	swap = append(swap, "DROP TABLE "+w.table, "ALTER TABLE "+newQ+" RENAME TO "+quoteIdent(cfg.Table))
	w.swapSQL = append(swap, after...)
	return nil
}
