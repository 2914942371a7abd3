package connectortest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// The suite's own paths for unbounded sources are not taken by any
// connector yet (the brokers come later), so the suite runs here against an
// in-memory stream: the contracts' reference behaviour, not a service.

// memStream is an append-only log of rows in two partitions (odd and even
// ids). A reader waits for rows past its position until its context ends.
// As a broker, its readers are Ackers: a reader starts at the partition's
// acknowledged floor (or at its position when that is further), so what
// was read and not acknowledged is delivered again.
type memStream struct {
	broker  bool
	mu      sync.Mutex
	parts   [2][]record.Row
	floor   [2]int        // broker: rows acknowledged per partition
	changed chan struct{} // closed and replaced at every append
}

func newMemStream() *memStream { return &memStream{changed: make(chan struct{})} }

func (m *memStream) add(rows []record.Row) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range rows {
		p := rowID(r) % 2
		m.parts[p] = append(m.parts[p], r)
	}
	close(m.changed)
	m.changed = make(chan struct{})
}

func (m *memStream) Plan(context.Context, *connector.Env) ([]connector.Task, error) {
	return []connector.Task{{Key: "partition-0"}, {Key: "partition-1"}}, nil
}

func (m *memStream) Open(ctx context.Context, _ *connector.Env, t connector.Task, pos record.Position) (connector.Reader, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var part int
	if _, err := fmt.Sscanf(t.Key, "partition-%d", &part); err != nil || part < 0 || part > 1 {
		return nil, fmt.Errorf("no task %q", t.Key)
	}
	next := 0
	if len(pos) > 0 {
		n, err := strconv.Atoi(string(pos))
		if err != nil {
			return nil, fmt.Errorf("position %q: %w", pos, err)
		}
		next = n
	}
	if !m.broker {
		return &memReader{m: m, part: part, next: next}, nil
	}
	m.mu.Lock()
	next = max(next, m.floor[part])
	m.mu.Unlock()
	return &memAckReader{memReader{m: m, part: part, next: next}}, nil
}

type memAckReader struct{ memReader }

func (r *memAckReader) Ack(ctx context.Context, pos record.Position) error {
	n, err := strconv.Atoi(string(pos))
	if err != nil {
		return err
	}
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	r.m.floor[r.part] = max(r.m.floor[r.part], n)
	return nil
}

type memReader struct {
	m    *memStream
	part int
	next int
}

func (r *memReader) Schema() *record.Schema { return Schema }
func (r *memReader) Close() error           { return nil }

func (r *memReader) Next(ctx context.Context) (*record.Batch, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r.m.mu.Lock()
		rows := r.m.parts[r.part]
		changed := r.m.changed
		r.m.mu.Unlock()
		if r.next < len(rows) {
			end := min(r.next+BatchRows/2, len(rows))
			b := &record.Batch{Schema: Schema, Origin: "partition-" + strconv.Itoa(r.part), Read: end - r.next}
			for i := r.next; i < end; i++ {
				b.Rows = append(b.Rows, append(record.Row(nil), rows[i]...))
				b.Lines = append(b.Lines, int64(i+1))
			}
			r.next = end
			b.Pos = record.Position(strconv.Itoa(end))
			return b, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-changed:
		}
	}
}

func TestUnboundedSource(t *testing.T) {
	for _, broker := range []bool{false, true} {
		t.Run(fmt.Sprintf("Broker=%v", broker), func(t *testing.T) {
			RunSource(t, SourceHarness{
				Unbounded: true,
				Quiet:     200 * time.Millisecond,
				New: func(t testing.TB, env *connector.Env, rows []record.Row, _ int) *SourceTarget {
					m := newMemStream()
					m.broker = broker
					m.add(rows)
					return &SourceTarget{
						Source: func(testing.TB) connector.Source { return m },
						Add:    func(_ testing.TB, rows []record.Row) { m.add(rows) },
					}
				},
			})
		})
	}
}

func TestBoundedSource(t *testing.T) {
	RunSource(t, SourceHarness{
		New: func(t testing.TB, env *connector.Env, rows []record.Row, tasks int) *SourceTarget {
			return &SourceTarget{
				Source: func(testing.TB) connector.Source { return newRowsSource(rows, tasks, BatchRows) },
			}
		},
	})
}

func TestRowsRoundTripThroughText(t *testing.T) {
	for _, r := range Rows(40) {
		texts := make([]*string, len(r))
		for i, v := range r {
			if v != nil {
				s := Text(v)
				texts[i] = &s
			}
		}
		got, err := FromText(texts)
		if err != nil {
			t.Fatal(err)
		}
		if d := diffRows([]record.Row{got}, []record.Row{r}, exactlyOnce); d != "" {
			t.Fatal(d)
		}
	}
}

func TestDiffRowsReportsEveryKindOfDifference(t *testing.T) {
	want := Rows(5)
	changed := append(record.Row(nil), want[2]...)
	changed[ColAmount] = record.MustDec("99")
	got := []record.Row{want[0], want[0], changed, want[3], Row(9)}
	d := diffRows(got, want, exactlyOnce)
	for _, part := range []string{"unexpected row {id: int64(9)", "id 3: got", "2 rows missing, ids 2, 5", "1 rows more than once, ids 1"} {
		if !strings.Contains(d, part) {
			t.Errorf("the report lacks %q:\n%s", part, d)
		}
	}
	if d := diffRows([]record.Row{want[1], want[0], want[0]}, want[:2], atLeastOnce); d != "" {
		t.Errorf("at least once: a repeat is fine, got %s", d)
	}
	if d := diffRows(nil, nil, exactlyOnce); d != "" {
		t.Errorf("no rows: %s", d)
	}
}
