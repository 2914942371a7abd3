package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
)

// A read of a whole table ordered by a column stored in no particular
// order sorts the table instead of walking an index (the session says so),
// and still returns every row once, in that order; a column stored in its
// order keeps the index.
func TestWholeTableReadSortsAnUnorderedCursor(t *testing.T) {
	p := newPG(t)
	p.exec(`CREATE TABLE ev (id bigint NOT NULL, at timestamptz NOT NULL, seq bigint NOT NULL);
		INSERT INTO ev SELECT i, timestamptz '2026-01-01' + (hashint8(i) % 1000000) * interval '1 second', i
			FROM generate_series(1, 20000) i;
		CREATE INDEX ON ev (at, id); CREATE INDEX ON ev (seq, id); ANALYZE ev`)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rel, ok, err := lookupRelation(ctx, p.conn, p.schema, "ev")
	if err != nil || !ok {
		t.Fatalf("lookupRelation: %v %v", ok, err)
	}
	for _, tc := range []struct{ cursor, want string }{{"seq", "on"}, {"at", "off"}} {
		if err := exec(ctx, p.conn, "RESET enable_indexscan"); err != nil {
			t.Fatal(err)
		}
		if err := sortWholeTable(ctx, p.conn, &layout{rel: rel}, tc.cursor); err != nil {
			t.Fatalf("sortWholeTable(%s): %v", tc.cursor, err)
		}
		if got := p.one("SHOW enable_indexscan"); got != tc.want {
			t.Errorf("cursor %s: enable_indexscan %v, want %s", tc.cursor, got, tc.want)
		}
	}

	s := buildSource(t, p.yaml("table: ev\nkey: [at, id]"))
	res := readAll(t, s, testEnv(t), connector.Task{Key: "ev@run1"}, nil)
	if len(res.Rows) != 20000 {
		t.Fatalf("read %d rows, want 20000", len(res.Rows))
	}
	seen := map[int64]bool{}
	for i, r := range res.Rows {
		id := r[0].(int64)
		if seen[id] {
			t.Fatalf("row %d read twice", id)
		}
		seen[id] = true
		if i == 0 {
			continue
		}
		prev, at := res.Rows[i-1][1].(time.Time), r[1].(time.Time)
		if at.Before(prev) || at.Equal(prev) && id < res.Rows[i-1][0].(int64) {
			t.Fatalf("row %d (%v, %d) comes before row %d (%v, %d)", i, at, id, i-1, prev, res.Rows[i-1][0])
		}
	}
}
