package pgstate

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// expire makes the lease name expired, as if its ttl had passed: the test
// does not wait for the clock.
func expire(t *testing.T, s *Store, name string) {
	t.Helper()
	exec(t, s.Schema(), `UPDATE leases SET expires_at = now() - interval '1 second' WHERE name = '`+name+`'`)
}

// TestLeaseSteps walks two holders through a lease's life: each step says
// what the call must return; tokens are checked to increase on every
// acquisition and to stay put on a holder's renewal.
func TestLeaseSteps(t *testing.T) {
	s := mustOpen(t, newSchema(t))
	ctx := t.Context()
	const ttl = time.Minute
	tokens := map[string]int64{} // holder -> token of its latest acquisition
	var last int64               // greatest token seen

	type step struct {
		name   string
		do     string // try, renew, release, expire
		holder string
		token  string // for renew and release: whose token to present
		ok     bool   // try: acquired; renew: still held
		newTok bool   // try: a new token, greater than every one before
	}
	steps := []step{
		{name: "a acquires a free lease", do: "try", holder: "a", ok: true, newTok: true},
		{name: "b cannot take a's lease", do: "try", holder: "b", ok: false},
		{name: "a tries again and keeps its token", do: "try", holder: "a", ok: true},
		{name: "a renews", do: "renew", holder: "a", token: "a", ok: true},
		{name: "b cannot renew a's lease", do: "renew", holder: "b", token: "a", ok: false},
		{name: "a cannot renew with a forged token", do: "renew", holder: "a", token: "forged", ok: false},
		{name: "b's release changes nothing", do: "release", holder: "b", token: "a"},
		{name: "b still cannot take it", do: "try", holder: "b", ok: false},
		{name: "a's lease expires", do: "expire"},
		{name: "a cannot renew an expired lease", do: "renew", holder: "a", token: "a", ok: false},
		{name: "b takes the expired lease with a greater token", do: "try", holder: "b", ok: true, newTok: true},
		{name: "a cannot take b's lease", do: "try", holder: "a", ok: false},
		{name: "a's release of its lost lease changes nothing", do: "release", holder: "a", token: "a"},
		{name: "a still cannot take it", do: "try", holder: "a", ok: false},
		{name: "b releases", do: "release", holder: "b", token: "b"},
		{name: "a takes the released lease with a greater token", do: "try", holder: "a", ok: true, newTok: true},
		{name: "a's lease expires again", do: "expire"},
		{name: "a takes its own expired lease with a greater token", do: "try", holder: "a", ok: true, newTok: true},
	}
	for _, st := range steps {
		switch st.do {
		case "try":
			tok, ok, err := s.TryLease(ctx, "sched", st.holder, ttl)
			if err != nil {
				t.Fatalf("%s: TryLease: %v", st.name, err)
			}
			if ok != st.ok {
				t.Fatalf("%s: TryLease ok = %v, want %v", st.name, ok, st.ok)
			}
			switch {
			case !ok && tok != 0:
				t.Errorf("%s: TryLease refused with token %d, want 0", st.name, tok)
			case ok && st.newTok && tok <= last:
				t.Errorf("%s: token %d, want one greater than %d", st.name, tok, last)
			case ok && !st.newTok && tok != tokens[st.holder]:
				t.Errorf("%s: token %d, want the held one %d", st.name, tok, tokens[st.holder])
			}
			if ok {
				tokens[st.holder], last = tok, max(last, tok)
			}
		case "renew":
			tok := tokens[st.token]
			if st.token == "forged" {
				tok = last + 1000
			}
			err := s.RenewLease(ctx, "sched", st.holder, tok, ttl)
			if st.ok && err != nil {
				t.Errorf("%s: RenewLease: %v", st.name, err)
			}
			if !st.ok && !errors.Is(err, ErrLeaseLost) {
				t.Errorf("%s: RenewLease: %v, want ErrLeaseLost", st.name, err)
			}
		case "release":
			if err := s.ReleaseLease(ctx, "sched", st.holder, tokens[st.token]); err != nil {
				t.Errorf("%s: ReleaseLease: %v", st.name, err)
			}
		case "expire":
			expire(t, s, "sched")
		}
	}
}

// TestLeaseExpiry checks that the expiry moves with ttl, judged by the
// database's clock.
func TestLeaseExpiry(t *testing.T) {
	s := mustOpen(t, newSchema(t))
	ctx := t.Context()
	remaining := func() time.Duration {
		t.Helper()
		var d time.Duration
		if err := s.pool.QueryRow(ctx, `SELECT expires_at - now() FROM leases WHERE name = 'x'`).Scan(&d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	tok, ok, err := s.TryLease(ctx, "x", "a", time.Hour)
	if err != nil || !ok {
		t.Fatalf("TryLease: %v, %v", ok, err)
	}
	if d := remaining(); d <= 59*time.Minute || d > time.Hour {
		t.Errorf("after TryLease for an hour, %v remain", d)
	}
	if err := s.RenewLease(ctx, "x", "a", tok, 10*time.Hour); err != nil {
		t.Fatal(err)
	}
	if d := remaining(); d <= 9*time.Hour || d > 10*time.Hour {
		t.Errorf("after RenewLease for 10 hours, %v remain", d)
	}
	// Another lease name is independent.
	if _, ok, err := s.TryLease(ctx, "y", "b", time.Hour); err != nil || !ok {
		t.Errorf("TryLease of another name: %v, %v", ok, err)
	}
}

// TestLeaseConcurrent has holders race for one lease: exactly one wins;
// then each takes its own lease, and all tokens differ.
func TestLeaseConcurrent(t *testing.T) {
	s := mustOpen(t, newSchema(t))
	ctx := t.Context()
	const holders = 8
	var (
		wg     sync.WaitGroup
		oks    [holders]bool
		toks   [holders]int64
		errs   [holders]error
		names  = [holders]string{"h0", "h1", "h2", "h3", "h4", "h5", "h6", "h7"}
		unique = map[int64]bool{}
	)
	for i := range holders {
		wg.Go(func() { toks[i], oks[i], errs[i] = s.TryLease(ctx, "one", names[i], time.Minute) })
	}
	wg.Wait()
	won := 0
	for i := range holders {
		if errs[i] != nil {
			t.Errorf("holder %d: %v", i, errs[i])
		}
		if oks[i] {
			won++
			unique[toks[i]] = true
		}
	}
	if won != 1 {
		t.Errorf("%d holders got the lease, want 1", won)
	}
	for i := range holders {
		wg.Go(func() { toks[i], oks[i], errs[i] = s.TryLease(ctx, names[i], names[i], time.Minute) })
	}
	wg.Wait()
	for i := range holders {
		if errs[i] != nil || !oks[i] {
			t.Errorf("holder %d on its own lease: %v, %v", i, oks[i], errs[i])
		}
		if unique[toks[i]] {
			t.Errorf("token %d handed out twice", toks[i])
		}
		unique[toks[i]] = true
	}
}

func TestLeaseArguments(t *testing.T) {
	s := mustOpen(t, newSchema(t))
	ctx := t.Context()
	cases := []struct {
		name, lease, holder string
		ttl                 time.Duration
		wantMsg             string
	}{
		{"empty name", "", "a", time.Second, "empty lease name"},
		{"empty holder", "x", "", time.Second, "empty holder"},
		{"zero ttl", "x", "a", 0, "shorter than a microsecond"},
		{"nanosecond ttl", "x", "a", time.Nanosecond, "shorter than a microsecond"},
		{"invalid holder", "x", "a\xff", time.Second, "not valid UTF-8"},
	}
	for _, c := range cases {
		if _, _, err := s.TryLease(ctx, c.lease, c.holder, c.ttl); err == nil || !strings.Contains(err.Error(), c.wantMsg) {
			t.Errorf("%s: TryLease: %v, want %q", c.name, err, c.wantMsg)
		}
		if err := s.RenewLease(ctx, c.lease, c.holder, 1, c.ttl); err == nil || !strings.Contains(err.Error(), c.wantMsg) {
			t.Errorf("%s: RenewLease: %v, want %q", c.name, err, c.wantMsg)
		}
	}
}
