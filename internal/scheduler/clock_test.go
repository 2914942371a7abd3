package scheduler

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestFakeClockFiresInOrder(t *testing.T) {
	c := NewFakeClock(at(10, 0, 0))
	var fired []string
	fire := func(name string) func() {
		return func() { fired = append(fired, name+" at "+c.Now().Format("15:04:05")) }
	}
	c.AfterFunc(3*time.Second, fire("3s"))
	c.AfterFunc(1*time.Second, func() {
		fire("1s")()
		// Time passes through each timer's time; the timers a callback
		// sets fire in the same Advance when they are due before its end.
		c.AfterFunc(0, fire("1s+0"))
		c.AfterFunc(time.Second, fire("1s+1s"))
		c.AfterFunc(time.Hour, fire("not due"))
	})
	stopped := c.AfterFunc(2*time.Second, func() { fired = append(fired, "stopped") })
	ch := c.NewTimer(2 * time.Second)
	if !stopped.Stop() {
		t.Error("Stop of a pending timer reported false")
	}
	if c.Pending() != 3 {
		t.Errorf("Pending = %d, want 3", c.Pending())
	}
	c.Advance(5 * time.Second)
	want := []string{"1s at 10:00:01", "1s+0 at 10:00:01", "1s+1s at 10:00:02", "3s at 10:00:03"}
	if diff := cmp.Diff(want, fired); diff != "" {
		t.Errorf("fired (-want +got):\n%s", diff)
	}
	select {
	case v := <-ch.C():
		if !v.Equal(at(10, 0, 2)) {
			t.Errorf("timer sent %v, want its time %v", v, at(10, 0, 2))
		}
	default:
		t.Error("channel timer did not fire")
	}
	if c.Pending() != 1 || !c.Now().Equal(at(10, 0, 5)) {
		t.Errorf("Pending = %d at %v, want the one not due at 10:00:05", c.Pending(), c.Now())
	}
}

func TestFakeClockSetJumps(t *testing.T) {
	c := NewFakeClock(at(10, 0, 0))
	var fired []string
	for _, d := range []time.Duration{2 * time.Second, time.Second} {
		c.AfterFunc(d, func() { fired = append(fired, d.String()+" at "+c.Now().Format("15:04:05")) })
	}
	c.Set(at(11, 0, 0))
	want := []string{"1s at 11:00:00", "2s at 11:00:00"}
	if diff := cmp.Diff(want, fired); diff != "" {
		t.Errorf("fired (-want +got):\n%s", diff)
	}
}

func TestFakeClockSetBackDelaysTimers(t *testing.T) {
	c := NewFakeClock(at(10, 0, 0))
	n := 0
	tm := c.AfterFunc(time.Minute, func() { n++ })
	c.Set(at(9, 0, 0))
	c.Advance(59 * time.Minute)
	if n != 0 {
		t.Fatal("a timer fired before the clock came back to its time")
	}
	c.Set(at(10, 1, 0))
	if n != 1 {
		t.Fatalf("fired %d times, want 1", n)
	}
	if tm.Stop() {
		t.Error("Stop of a fired timer reported true")
	}
	tm.Reset(time.Second)
	c.Advance(time.Second)
	if n != 2 {
		t.Fatalf("Reset timer: fired %d times, want 2", n)
	}
}

func TestFakeClockStopDrainsChannel(t *testing.T) {
	c := NewFakeClock(at(10, 0, 0))
	tm := c.NewTimer(time.Second)
	c.Advance(time.Second)
	tm.Reset(time.Minute) // as time.Timer since Go 1.23: no stale value after Reset
	select {
	case <-tm.C():
		t.Fatal("stale value received after Reset")
	default:
	}
	c.Advance(time.Minute)
	<-tm.C()
}

func TestFakeClockBlockUntil(t *testing.T) {
	c := NewFakeClock(at(10, 0, 0))
	done := make(chan error, 1)
	go func() { done <- c.BlockUntil(context.Background(), 2) }()
	c.NewTimer(time.Second)
	select {
	case err := <-done:
		t.Fatalf("BlockUntil(2) returned %v with one timer pending", err)
	default:
	}
	c.AfterFunc(time.Second, func() {})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.BlockUntil(ctx, 5); err == nil {
		t.Fatal("BlockUntil with a cancelled context returned nil")
	}
}
