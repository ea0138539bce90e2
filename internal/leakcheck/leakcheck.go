// Package leakcheck fails a test binary whose tests leave a node running.
//
// Every test that starts a node (a dragonboat NodeHost, its pebble log and
// rsqlite's goroutines around them) must stop it: a leaked node keeps ports,
// files and CPU, and usually means a Close path that does not stop
// everything it started. Main runs the tests and then waits a few seconds
// for such goroutines to end, failing the run with their stacks if any
// remain. Goroutines of other libraries are not checked.
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// watched are the packages whose goroutines belong to a node.
var watched = []string{
	"github.com/lni/dragonboat/",
	"github.com/cockroachdb/pebble",
	"github.com/rsqlite/rsqlite/cluster.",
	"github.com/rsqlite/rsqlite/statemachine.",
}

// Main runs m's tests; when they pass, it fails the run if a node's
// goroutines are still running 10 s later. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(leakcheck.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if code != 0 {
		return code
	}
	if leaked := Wait(10 * time.Second); len(leaked) > 0 {
		fmt.Fprintf(os.Stderr, "leakcheck: %d goroutines of nodes still run after the tests:\n\n%s\n",
			len(leaked), strings.Join(leaked, "\n\n"))
		return 1
	}
	return 0
}

// Wait waits up to d for every node goroutine to end and returns the
// stacks of those still running.
func Wait(d time.Duration) []string {
	deadline := time.Now().Add(d)
	for {
		leaked := nodeGoroutines()
		if len(leaked) == 0 || time.Now().After(deadline) {
			return leaked
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func nodeGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	// The first stack is this goroutine's (from TestMain, which may be in a
	// watched package).
	for _, g := range strings.Split(string(buf), "\n\n")[1:] {
		for _, pkg := range watched {
			if strings.Contains(g, pkg) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}
