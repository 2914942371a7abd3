package broker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

func TestCheck(t *testing.T) {
	p, err := connector.ParamsFromYAML("queue: q\nlinger: 0s\ntimezone: Mars/Olympus")
	if err != nil {
		t.Fatal(err)
	}
	err = Check(p, []Rule{
		{Field: "queue", Bad: false, Msg: "unused"},
		{Field: "linger", Bad: true, Msg: "linger must be positive"},
		{Field: "queue", Bad: true, Msg: "second"},
	})
	if err == nil || !strings.Contains(err.Error(), "2:") || !strings.Contains(err.Error(), "linger must be positive") {
		t.Errorf("Check: %v; want the first bad rule, at line 2", err)
	}
	if err := Check(p, []Rule{{Field: "queue", Msg: "unused"}}); err != nil {
		t.Errorf("Check of good settings: %v", err)
	}
}

func TestPoison(t *testing.T) {
	if _, ok := Poison(5, 5, 1, nil); ok {
		t.Error("a message delivered max_deliver times is a reject")
	}
	rej, ok := Poison(6, 5, 42, []byte("body"))
	if !ok || rej.Line != 42 || rej.Step != "source" || string(rej.Raw) != "body" || !strings.Contains(rej.Err, "delivered 6 times, more than max_deliver 5") {
		t.Errorf("Poison(6, 5): %+v, %v", rej, ok)
	}
}

func TestBatchSize(t *testing.T) {
	env := &connector.Env{Limits: record.Limits{BatchRows: 7}}
	for _, tc := range []struct {
		name string
		size int
		env  *connector.Env
		want int
	}{
		{"Own", 3, env, 3},
		{"Run's", 0, env, 7},
		{"Default", 0, &connector.Env{}, record.DefaultLimits.BatchRows},
	} {
		if got := BatchSize(tc.size, tc.env); got != tc.want {
			t.Errorf("%s: BatchSize %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestDecodePosition(t *testing.T) {
	type position struct {
		V   int    `json:"v"`
		Tag uint64 `json:"tag"`
	}
	for _, tc := range []struct {
		name, pos, wants string // wants: part of the error, "" for none
	}{
		{"Current", `{"v": 1, "tag": 9}`, ""},
		{"Newer", `{"v": 2, "tag": 9}`, "has version 2; this version of backbone reads version 1"},
		{"NotJSON", `9`, "is not one of this source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p position
			err := DecodePosition(record.Position(tc.pos), &p, &p.V, 1)
			if tc.wants == "" {
				if err != nil || p.Tag != 9 {
					t.Errorf("%+v, %v", p, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wants) {
				t.Errorf("error %v, want one with %q", err, tc.wants)
			}
		})
	}
}

func TestSettleWait(t *testing.T) {
	s := NewSettle()
	stop := make(chan struct{})
	idle := make(chan bool, 1)
	idle <- false
	done := make(chan bool)
	checks := 0
	go func() {
		done <- s.Wait(stop, time.Minute, func() bool {
			checks++
			select {
			case v := <-idle:
				return v
			default:
				return false
			}
		})
	}()
	idle <- true // read at the next check, which a Signal brings on
	s.Signal()
	if !<-done {
		t.Fatal("Wait reported closing")
	}
	if checks < 2 {
		t.Errorf("%d checks of idle, want one before the Signal and one after", checks)
	}

	if !s.Wait(stop, time.Millisecond, func() bool { return false }) {
		t.Error("Wait reported closing once its limit passed")
	}
	close(stop)
	if s.Wait(stop, time.Minute, func() bool { return false }) {
		t.Error("Wait reported settled while the reader closes")
	}
}

func TestBatcher(t *testing.T) {
	msgs := make(chan int, 10)
	errs := make(chan error, 1)
	recoverable := errors.New("recoverable")
	b := &Batcher[int]{Size: 3, Linger: time.Hour, Msgs: msgs, Errs: errs, Failed: func(err error) error {
		if errors.Is(err, recoverable) {
			return nil
		}
		return err
	}}
	ctx := context.Background()

	// Full: cut at Size, whatever Linger.
	errs <- recoverable
	for i := range 4 {
		msgs <- i
	}
	if got, err := b.Next(ctx); err != nil || len(got) != 3 || got[2] != 2 {
		t.Fatalf("full batch: %v, %v", got, err)
	}

	// Ended midway: what was received stays for the next call.
	cctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := b.Next(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ended: %v", err)
	}
	if n := len(b.Held()) + len(msgs); n != 1 {
		t.Fatalf("%d messages held or waiting after an ended Next, want 1", n)
	}
	b.Linger = time.Millisecond
	msgs <- 4
	if got, err := b.Next(ctx); err != nil || len(got) != 2 || got[0] != 3 || got[1] != 4 {
		t.Fatalf("after linger: %v, %v; want [3 4]", got, err)
	}
	if len(b.Held()) != 0 {
		t.Errorf("held %v after Next", b.Held())
	}

	// A failure that Failed keeps ends Next.
	broken := errors.New("broken")
	errs <- broken
	if _, err := b.Next(ctx); !errors.Is(err, broken) {
		t.Fatalf("failure: %v", err)
	}
}
