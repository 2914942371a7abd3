package record

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// AppendInt writes what strconv writes, for the edges of every number of
// digits and for random values, after text already in the buffer.
func TestAppendIntAsStrconv(t *testing.T) {
	vals := []int64{0, 1, -1, 9, 10, 99, 100, math.MaxInt64, math.MinInt64, math.MinInt64 + 1}
	for p := int64(1); p <= 1e18; p *= 10 {
		vals = append(vals, p, p-1, p+1, -p, -(p - 1))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		vals = append(vals, int64(rng.Uint64()), rng.Int64N(1_000_000), int64(rng.Uint64())>>rng.IntN(63))
	}
	for _, v := range vals {
		got := string(AppendInt([]byte("x:"), v))
		if want := "x:" + strconv.FormatInt(v, 10); got != want {
			t.Fatalf("AppendInt(%d) = %q, want %q", v, got, want)
		}
	}
}
