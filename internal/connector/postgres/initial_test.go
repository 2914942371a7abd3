package postgres

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// firstRead creates ev with n rows whose cursor is stored in no
// particular order, and a source reading it incrementally by (at, id), 100
// rows a batch.
func firstRead(t *testing.T, n int) (*pg, connector.Source, *connector.Env) {
	p := newPG(t)
	unorderedEvents(p, n)
	return p, buildSource(t, p.yaml("table: ev\nmode: incremental\ncursor: at\nkey: id\nbatch_rows: 100")), testEnv(t)
}

// unorderedEvents creates ev with n rows whose cursor is stored in no
// particular order, indexed by (at, id).
func unorderedEvents(p *pg, n int) {
	p.exec(`CREATE TABLE ev (id bigint PRIMARY KEY, at timestamptz NOT NULL, note text);
		INSERT INTO ev SELECT i, timestamptz '2026-01-01' + (hashint8(i) % 100000) * interval '1 second', 'n' || i
			FROM generate_series(1, ` + strconv.Itoa(n) + `) i;
		CREATE INDEX ON ev (at, id); ANALYZE ev`)
}

func decodePosition(t *testing.T, pos record.Position) *posJSON {
	t.Helper()
	p, err := decodePos(pos)
	if err != nil || p == nil {
		t.Fatalf("position %s: %v", pos, err)
	}
	return p
}

// readBatches opens the task at pos and reads up to n batches (all when
// n < 0), returning the rows' ids and the position of every batch.
func readBatches(t *testing.T, s connector.Source, env *connector.Env, pos record.Position, n int) ([]int64, []record.Position) {
	t.Helper()
	r, err := s.Open(context.Background(), env, connector.Task{Key: "ev"}, pos)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()
	var got []int64
	var poss []record.Position
	for i := 0; n < 0 || i < n; i++ {
		res := drain(t, r, 1)
		if res.Batches == 0 {
			break
		}
		got = append(got, ids(res.Rows)...)
		poss = append(poss, res.Pos)
	}
	return got, poss
}

// The first read of a table goes through it as stored, each batch's
// position the physical row number of its last row; resumed from any of
// them it reads every row once; its last position is the last row in
// (cursor, key) order, from which the next run goes on in order.
func TestFirstReadGoesInPhysicalOrder(t *testing.T) {
	p, s, env := firstRead(t, 3000)

	var stored []int64
	for _, r := range p.rows("SELECT id FROM ev ORDER BY ctid") {
		id, _ := strconv.ParseInt(r[0].(string), 10, 64)
		stored = append(stored, id)
	}
	// Resume from every position in turn: one batch per reader.
	var got []int64
	var pos record.Position
	for {
		rows, poss := readBatches(t, s, env, pos, 1)
		if len(poss) == 0 {
			break
		}
		got = append(got, rows...)
		pos = poss[0]
		if pj := decodePosition(t, pos); len(got) < 3000 && (pj.Initial == nil || pj.Initial.After == "" || pj.Last != nil) {
			t.Fatalf("after %d rows: position %s, want a physical one", len(got), pos)
		}
	}
	if diff := cmp.Diff(stored, got); diff != "" {
		t.Fatalf("ids, against the table's physical order (-want +got):\n%s", diff)
	}
	last := p.rows("SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00', id::text FROM ev ORDER BY at DESC, id DESC LIMIT 1")[0]
	pj := decodePosition(t, pos)
	if pj.Initial != nil || len(pj.Last) != 2 || *pj.Last[0].V != last[0].(string) || *pj.Last[1].V != last[1].(string) {
		t.Fatalf("last position %s, want the last row in order %v", pos, last)
	}
	// Later rows come in order.
	p.exec(`INSERT INTO ev VALUES (5002, '2027-01-02', 'b'), (5001, '2027-01-01', 'a'), (5000, '2027-01-02', 'c')`)
	if rows, _ := readBatches(t, s, env, pos, -1); !slices.Equal(rows, []int64{5001, 5000, 5002}) {
		t.Fatalf("the next run read %v, want [5001 5000 5002]", rows)
	}
}

// Rows added or changed while a first read goes on: those whose cursor
// grew past the read's max come after it, in order; every row present
// throughout is read once, a row changed after it was read twice (as
// it was and as it is), one changed before it was read once as it is.
func TestFirstReadTakesChangesMadeMeanwhile(t *testing.T) {
	p, s, env := firstRead(t, 2000)

	got, poss := readBatches(t, s, env, nil, 3)
	if len(got) != 300 {
		t.Fatalf("read %d rows, want 300", len(got))
	}
	read := got[0]
	unread, _ := strconv.ParseInt(p.one("SELECT id FROM ev ORDER BY ctid DESC LIMIT 1").(string), 10, 64)
	p.exec(`UPDATE ev SET at = '2030-01-01', note = 'changed' WHERE id IN (` + strconv.Itoa(int(read)) + `, ` + strconv.Itoa(int(unread)) + `);
		INSERT INTO ev VALUES (9001, '2029-01-01', 'new'), (9000, '2031-01-01', 'new');
		UPDATE ev SET note = 'same cursor' WHERE id = 1500`)
	rest, _ := readBatches(t, s, env, poss[len(poss)-1], -1)
	all := append(got, rest...)
	count := map[int64]int{}
	for _, id := range all {
		count[id]++
	}
	for id := int64(1); id <= 2000; id++ {
		want := 1
		if id == read {
			want = 2
		}
		if count[id] != want {
			t.Errorf("row %d read %d times, want %d", id, count[id], want)
		}
	}
	if count[9000] != 1 || count[9001] != 1 {
		t.Errorf("new rows read %d and %d times, want once", count[9000], count[9001])
	}
	// The rows whose cursor grew come last, in (cursor, key) order.
	tail := all[len(all)-4:]
	want := []int64{9001, min(read, unread), max(read, unread), 9000}
	if !slices.Equal(tail, want) {
		t.Errorf("last rows %v, want %v", tail, want)
	}
}

// A table rewritten between a stop and the resumption of its first read
// has new row numbers: the read refuses to resume, and says why.
func TestFirstReadRefusesARewrittenTable(t *testing.T) {
	p, s, env := firstRead(t, 1000)
	_, poss := readBatches(t, s, env, nil, 2)
	p.exec("CLUSTER ev USING ev_pkey") // rewrites the table in key order
	_, err := s.Open(context.Background(), env, connector.Task{Key: "ev"}, poss[1])
	if err == nil || !strings.Contains(err.Error(), "rewritten") || !strings.Contains(err.Error(), "reset the checkpoint") {
		t.Fatalf("Open after CLUSTER: %v, want the table named rewritten", err)
	}
}

// A table with inheritance children, whose row numbers repeat across
// them, is read in order from its first read.
func TestFirstReadOfAParentTableGoesInOrder(t *testing.T) {
	p := newPG(t)
	unorderedEvents(p, 500)
	p.exec(`CREATE TABLE ev_child () INHERITS (ev);
		INSERT INTO ev_child SELECT i, timestamptz '2026-01-01' + (hashint8(i) % 100000) * interval '1 second', 'c'
			FROM generate_series(501, 800) i`)
	env := testEnv(t)
	s := buildSource(t, p.yaml("table: ev\nmode: incremental\ncursor: at\nkey: id\nbatch_rows: 100"))
	res := readAll(t, s, env, connector.Task{Key: "ev"}, nil)
	if len(res.Rows) != 800 {
		t.Fatalf("read %d rows, want 800", len(res.Rows))
	}
	for i := 1; i < len(res.Rows); i++ {
		a, b := res.Rows[i-1], res.Rows[i]
		at, bt := a[1].(time.Time), b[1].(time.Time)
		if bt.Before(at) || bt.Equal(at) && b[0].(int64) < a[0].(int64) {
			t.Fatalf("row %d (%v, %v) comes before row %d (%v, %v)", i, bt, b[0], i-1, at, a[0])
		}
	}
}

// An empty table's first read reads nothing and leaves no position; its
// rows are then read by the next first read.
func TestFirstReadOfAnEmptyTable(t *testing.T) {
	p := newPG(t)
	unorderedEvents(p, 0)
	env := testEnv(t)
	s := buildSource(t, p.yaml("table: ev\nmode: incremental\ncursor: at\nkey: id"))
	if res := readAll(t, s, env, connector.Task{Key: "ev"}, nil); res.Batches != 0 {
		t.Fatalf("read %d batches of an empty table", res.Batches)
	}
	p.exec(`INSERT INTO ev VALUES (1, '2026-01-01', 'a'), (2, '2025-01-01', 'b')`)
	res := readAll(t, s, env, connector.Task{Key: "ev"}, nil)
	if got := ids(res.Rows); len(got) != 2 || decodePosition(t, res.Pos).Initial != nil {
		t.Fatalf("read %v with position %s, want both rows and an ordered position", got, res.Pos)
	}
}

func TestTidOrderAndText(t *testing.T) {
	for _, s := range []string{"(0,1)", "(4294967295,65535)", "(1234,7)"} {
		v, ok := parseTid(s)
		if !ok || v.String() != s {
			t.Errorf("parseTid(%q) = %v %v", s, v, ok)
		}
	}
	for _, s := range []string{"", "(1,2", "1,2)", "(1;2)", "(-1,2)", "(1,65536)", "(4294967296,1)"} {
		if _, ok := parseTid(s); ok {
			t.Errorf("parseTid(%q) accepted", s)
		}
	}
	bin := func(block uint32, item uint16) []byte {
		return []byte{byte(block >> 24), byte(block >> 16), byte(block >> 8), byte(block), byte(item >> 8), byte(item)}
	}
	var ir initialRead
	for _, step := range []struct {
		b  []byte
		ok bool
	}{{bin(0, 1), true}, {bin(0, 2), true}, {bin(1, 1), true}, {bin(0, 9), false}, {bin(1, 1), false}, {bin(7, 3)[:5], false}} {
		if err := ir.checkTid(step.b); (err == nil) != step.ok {
			t.Errorf("checkTid(%v) after %s: %v, want ok %v", step.b, ir.after, err, step.ok)
		}
	}
}

func TestFirstReadPositionsDecode(t *testing.T) {
	good := `{"v":1,"n":5,"order":["at","id"],"initial":{"max":[{"type":"bigint","v":"1"},{"type":"bigint","v":null}],"after":"(3,4)","file":"123"}}`
	if p, err := decodePos(record.Position(good)); err != nil || p.Initial.After != "(3,4)" {
		t.Fatalf("decodePos(%s): %+v %v", good, p, err)
	}
	for _, bad := range []string{
		`{"v":1,"order":["at","id"],"initial":{"max":[{"type":"bigint","v":"1"}],"file":"1"}}`,
		`{"v":1,"order":["at"],"initial":{"max":[{"type":"bigint","v":"1"}],"after":"(x,1)","file":"1"}}`,
		`{"v":1,"order":["at"],"last":[{"type":"bigint","v":"1"}],"initial":{"max":[{"type":"bigint","v":"1"}],"file":"1"}}`,
	} {
		if _, err := decodePos(record.Position(bad)); err == nil {
			t.Errorf("decodePos(%s) accepted", bad)
		}
	}
}
