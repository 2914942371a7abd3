package postgres

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// The first read of a table in mode incremental (no checkpoint yet) reads
// every row, and in the order of (cursor, key) that costs a sort of the
// whole table on the server before the first row comes (a cursor such as
// updated_at is stored in no particular order), or an index scan that
// fetches a page at random for every row: at a million rows, reading the
// table in order took 0.6-0.66 s where reading it as stored took 0.39.
//
// So the first read goes in two parts, one task and one checkpoint:
//
//  1. The rows not after max, the last row in (cursor, key) order when the
//     read begins (one indexed query), in their physical order (ctid): one
//     pass over the table, no sort. Each batch's position is the ctid of
//     its last row, and a read that stops resumes after it (a TID range
//     scan), so a crash or a restart of the server loses no more than in
//     order.
//  2. The rows after max, in order, as any later run reads: rows added or
//     changed while part 1 went on, whose cursor has grown past max.
//
// The two conditions are complements ("after max" and "not after max"),
// so each row is read once. A row committed late with a cursor value at or
// below max behaves as it does for a read in order: lookback is the remedy.
//
// The physical order must hold for positions to resume: the session turns
// off synchronized scans (a scan that joins another one mid-table) and
// parallel plans, and every row's ctid is checked to grow. A table whose
// storage was rewritten (VACUUM FULL, CLUSTER, ALTER TABLE … TYPE) between
// a stop and its resumption has new row numbers: the read refuses to
// resume. Tables with inheritance children or partitions, views and
// queries are read in order, as before.

// oidTid is the type OID of tid.
const oidTid = 27

// readsPhysically reports whether a first read of rel in mode incremental
// goes in physical order: a plain table, no children.
func readsPhysically(rel relation) bool {
	return rel.kind == "r" && !rel.parent && rel.file != ""
}

// lastInOrder returns the ordering values of the last row of from in the
// order of ORDER BY order (ascending, NULLs last), as positions keep them;
// ok is false for an empty table.
func lastInOrder(ctx context.Context, c *pgconn.PgConn, from string, cols []column, order []int) ([]posVal, bool, error) {
	exprs := make([]string, len(order))
	desc := make([]string, len(order))
	formats := make([]int16, len(order))
	for i, at := range order {
		exprs[i] = "s." + quoteIdent(cols[at].name)
		desc[i] = exprs[i] + " DESC NULLS FIRST"
		formats[i] = cols[at].kind.format()
	}
	res := c.ExecParams(ctx, "SELECT "+strings.Join(exprs, ", ")+" FROM "+from+" ORDER BY "+strings.Join(desc, ", ")+" LIMIT 1",
		nil, nil, nil, formats).Read()
	if res.Err != nil {
		return nil, false, res.Err
	}
	if len(res.Rows) == 0 {
		return nil, false, nil
	}
	out := make([]posVal, len(order))
	for i, at := range order {
		out[i].Type = cols[at].typeName
		if v := res.Rows[0][i]; v != nil {
			s := posText(cols[at].kind, v)
			out[i].V = &s
		}
	}
	return out, true, nil
}

// tid is a physical row number, block and item, comparable as a number.
type tid uint64

// decodeTid reads a tid in binary format.
func decodeTid(b []byte) (tid, bool) {
	if len(b) != 6 {
		return 0, false
	}
	return tid(binary.BigEndian.Uint32(b))<<16 | tid(binary.BigEndian.Uint16(b[4:])), true
}

func (t tid) String() string {
	return "(" + strconv.FormatUint(uint64(t>>16), 10) + "," + strconv.FormatUint(uint64(t&0xffff), 10) + ")"
}

// parseTid reads a tid's text form, "(block,item)".
func parseTid(s string) (tid, bool) {
	in, ok1 := strings.CutPrefix(s, "(")
	in, ok2 := strings.CutSuffix(in, ")")
	if !ok1 || !ok2 {
		return 0, false
	}
	bs, is, ok := strings.Cut(in, ",")
	if !ok {
		return 0, false
	}
	b, err1 := strconv.ParseUint(bs, 10, 32)
	i, err2 := strconv.ParseUint(is, 10, 16)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return tid(b)<<16 | tid(i), true
}

func validTid(s string) bool {
	_, ok := parseTid(s)
	return ok
}

// initialRead is part 1 of a first read: its position, and the query of
// part 2 the reader goes on with.
type initialRead struct {
	pos     posInitial
	after   tid  // ctid of the last row read
	started bool // after holds a row's ctid
	ctidAt  int  // result column of the ctid

	nextSQL    string
	nextParams [][]byte
	nextOIDs   []uint32
}

// startInitial turns r, set up for the ordered read after in.Max (part 2),
// into part 1: the rows not after in.Max in physical order, after
// in.After. sel, the result columns, ends with the ctid.
func (r *reader) startInitial(ctx context.Context, c *pgconn.PgConn, from string, sel []string, in posInitial) error {
	if err := exec(ctx, c, "SET synchronize_seqscans = off; SET max_parallel_workers_per_gather = 0"); err != nil {
		return err
	}
	ir := &initialRead{pos: in, ctidAt: len(r.cols) - 1, nextSQL: r.sql, nextParams: r.params, nextOIDs: r.paramOIDs}
	if in.After != "" {
		ir.after, _ = parseTid(in.After)
		ir.started = true
	}

	var where []string
	var params [][]byte
	var oids []uint32
	if ir.started {
		where = append(where, "s.ctid > $1::tid")
		params = append(params, []byte(in.After))
		oids = append(oids, 0)
	}
	cond, args, argOIDs := afterCondition(r.cols, r.order, in.Max, len(params))
	where = append(where, "("+cond+") IS NOT TRUE")
	r.sql = "SELECT " + strings.Join(sel, ", ") + " FROM " + from + " WHERE " + strings.Join(where, " AND ")
	r.params = append(params, args...)
	r.paramOIDs = append(oids, argOIDs...)
	r.initial = ir
	return nil
}

// checkTid takes the ctid of the next row of part 1: it must come after
// the last one, or the position would not resume.
func (ir *initialRead) checkTid(v []byte) error {
	t, ok := decodeTid(v)
	if !ok {
		return fmt.Errorf("the server sent a row number (ctid) of %d bytes", len(v))
	}
	if ir.started && t <= ir.after {
		return fmt.Errorf("the table's rows came out of their physical order (row %s after %s): its first read cannot keep a position to resume from", t, ir.after)
	}
	ir.after, ir.started = t, true
	return nil
}
