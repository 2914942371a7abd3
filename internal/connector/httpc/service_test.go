package httpc

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// CustomerService is a JSON service of customers on 127.0.0.1, the kind an
// http lookup asks: GET /customers/{id} answers {"data": {...}} or 404, and
// POST /customers/batch takes {"ids": [...]} and answers {"results":
// [...]}. Customer n exists when Exists(n). It can go down (its listener
// and connections closed, so that clients are refused), come back on the
// same address, answer slowly, or answer the next requests with given
// statuses. It is exported for the pipeline tests of package httpc_test.
type CustomerService struct {
	t     testing.TB
	addr  string
	mu    sync.Mutex
	srv   *http.Server
	delay time.Duration
	fail  []int // statuses of the next requests
	retry string

	waits []reqWait // WhenRequests

	Exists   func(id int64) bool
	Requests atomic.Int64 // requests answered
	Keys     atomic.Int64 // keys asked, per key or in batches
	inflight atomic.Int64
	Peak     atomic.Int64 // requests in flight at most
	perKey   sync.Map     // id -> *atomic.Int64
}

// NewCustomerService starts a service where customers whose id is not a
// multiple of 7 exist.
func NewCustomerService(t testing.TB) *CustomerService {
	s := &CustomerService{t: t, Exists: func(id int64) bool { return id > 0 && id%7 != 0 }}
	s.start("127.0.0.1:0")
	t.Cleanup(s.Down)
	return s
}

// URL is the service's base URL.
func (s *CustomerService) URL() string { return "http://" + s.addr }

func (s *CustomerService) start(addr string) {
	var ln net.Listener
	var err error
	for range 50 { // the address may still be held for a moment after Down
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("listen on %s: %v", addr, err)
	}
	s.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go srv.Serve(ln)
}

// Down closes the listener and every connection: clients are refused.
func (s *CustomerService) Down() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// Up starts the service again on the same address.
func (s *CustomerService) Up() { s.start(s.addr) }

// Slow delays every answer by d (0: none).
func (s *CustomerService) Slow(d time.Duration) {
	s.mu.Lock()
	s.delay = d
	s.mu.Unlock()
}

// FailNext answers the next requests with statuses, with a Retry-After
// header when retryAfter is not empty.
func (s *CustomerService) FailNext(retryAfter string, statuses ...int) {
	s.mu.Lock()
	s.fail = append(s.fail, statuses...)
	s.retry = retryAfter
	s.mu.Unlock()
}

type reqWait struct {
	n  int64
	ch chan struct{}
}

// WhenRequests returns a channel closed once n requests (a multiple of
// 100) were answered.
func (s *CustomerService) WhenRequests(n int64) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{})
	s.waits = append(s.waits, reqWait{n, ch})
	return ch
}

func (s *CustomerService) notify(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := s.waits[:0]
	for _, w := range s.waits {
		if n >= w.n {
			close(w.ch)
		} else {
			keep = append(keep, w)
		}
	}
	s.waits = keep
}

// Asked is how many times key id was asked.
func (s *CustomerService) Asked(id int64) int64 {
	if c, ok := s.perKey.Load(id); ok {
		return c.(*atomic.Int64).Load()
	}
	return 0
}

func (s *CustomerService) count(id int64) {
	s.Keys.Add(1)
	c, ok := s.perKey.Load(id)
	if !ok {
		c, _ = s.perKey.LoadOrStore(id, new(atomic.Int64))
	}
	c.(*atomic.Int64).Add(1)
}

var regions = []string{"eu", "us", "apac"}

// Customer is the record of customer id.
func Customer(id int64) map[string]any {
	return map[string]any{
		"customer_id": id,
		"region":      regions[id%3],
		"tier":        fmt.Sprintf("tier-%d", id%5),
		"credit":      json.Number(fmt.Sprintf("%d.%02d", id*3, id%100)),
	}
}

func (s *CustomerService) serve(w http.ResponseWriter, r *http.Request) {
	if v := s.inflight.Add(1); v > s.Peak.Load() {
		s.Peak.Store(v) // racy maximum, good enough for a bound
	}
	defer s.inflight.Add(-1)
	s.mu.Lock()
	delay := s.delay
	var status int
	retry := s.retry
	if len(s.fail) > 0 {
		status, s.fail = s.fail[0], s.fail[1:]
	}
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if n := s.Requests.Add(1); n%100 == 0 {
		s.notify(n)
	}
	if status != 0 {
		if retry != "" {
			w.Header().Set("Retry-After", retry)
		}
		http.Error(w, `{"error":"unavailable"}`, status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/customers/"):
		id, err := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/customers/"), 10, 64)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"error":"not a customer id: %q"}`, strings.TrimPrefix(r.URL.Path, "/customers/"))
			return
		}
		s.count(id)
		switch {
		case id == 0:
			w.Write([]byte(`{"data":null}`))
		case id < 0:
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"who are you"}`))
		case !s.Exists(id):
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":"no such customer"}`))
		default:
			w.Write(customerJSON(id))
		}
	case r.Method == http.MethodPost && r.URL.Path == "/customers/batch":
		var req struct {
			IDs []int64 `json:"ids"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, `{"error":"bad body"}`, http.StatusBadRequest)
			return
		}
		res := []any{}
		for _, id := range req.IDs {
			s.count(id)
			if s.Exists(id) {
				res = append(res, Customer(id))
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"results": res})
	case r.Method == http.MethodPost && r.URL.Path == "/customers/by-id":
		// The same as batch, answering an object keyed by id.
		var ids []int64
		if err := json.NewDecoder(r.Body).Decode(&ids); err != nil {
			http.Error(w, `{"error":"bad body"}`, http.StatusBadRequest)
			return
		}
		res := map[string]any{}
		for _, id := range ids {
			s.count(id)
			if s.Exists(id) {
				res[strconv.FormatInt(id, 10)] = Customer(id)
			}
		}
		json.NewEncoder(w).Encode(res)
	default:
		http.NotFound(w, r)
	}
}

// customerJSON is {"data": Customer(id)} without reflection: a cheap
// server leaves the benchmark's cores to the client.
func customerJSON(id int64) []byte {
	b := make([]byte, 0, 128)
	b = append(b, `{"data":{"customer_id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"region":"`...)
	b = append(b, regions[id%3]...)
	b = append(b, `","tier":"tier-`...)
	b = strconv.AppendInt(b, id%5, 10)
	b = append(b, `","credit":`...)
	b = strconv.AppendInt(b, id*3, 10)
	b = append(b, '.', byte('0'+id%100/10), byte('0'+id%10))
	return append(b, "}}\n"...)
}
