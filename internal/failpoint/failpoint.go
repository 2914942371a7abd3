// Package failpoint lets fault tests kill the process at a named point of
// the engine, such as inside a sink commit. It is inert unless the
// environment variable BACKBONE_FAILPOINT is set, as NAME:N (the Nth time
// the point is reached, counting from 1, the process kills itself with
// SIGKILL: no deferred function, no flush, like a power cut of the process).
//
//	failpoint.Hit("sink-commit") // in the engine, just inside a commit
package failpoint

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

var (
	name  string
	at    int64
	count atomic.Int64
)

func init() {
	v := os.Getenv("BACKBONE_FAILPOINT")
	if v == "" {
		return
	}
	n, c, ok := strings.Cut(v, ":")
	if !ok {
		return
	}
	i, err := strconv.ParseInt(c, 10, 64)
	if err != nil || i < 1 {
		return
	}
	name, at = n, i
}

// Hit marks that point p was reached; it kills the process when p is the
// configured point and this is the configured hit.
func Hit(p string) {
	if at == 0 || p != name {
		return
	}
	if count.Add(1) == at {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
