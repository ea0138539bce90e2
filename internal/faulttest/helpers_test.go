package faulttest

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/rsqlite/rsqlite/internal/clustertest"
)

func soak() bool { return clustertest.Soak() }

func seed(t *testing.T) uint64 { return clustertest.Seed(t, "./internal/faulttest/") }

func newRand(s uint64, stream uint64) *rand.Rand { return rand.New(rand.NewPCG(s, stream)) }

func ctxFor(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// handles gives clients the current *sql.DB of each node: nil while the
// node is stopped. The test goroutine swaps them around Stop and Restart.
type handles struct {
	mu  sync.RWMutex
	dbs []*sql.DB
}

func (h *handles) get(i int) *sql.DB {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.dbs[i]
}

func (h *handles) set(i int, db *sql.DB) {
	h.mu.Lock()
	h.dbs[i] = db
	h.mu.Unlock()
}

// nemesis applies faults to a cluster, from the test goroutine only.
type nemesis struct {
	t    *testing.T
	c    *clustertest.Cluster
	net  *clustertest.Net
	h    *handles
	name string
	rng  *rand.Rand

	stopped  map[int]bool
	injected []string // faults and heals, in order
	faults   int
	lastHeal time.Time
}

func (n *nemesis) logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	n.injected = append(n.injected, msg)
	n.t.Logf("nemesis: %s", msg)
}

// leader returns the index of the current leader, or -1 if none within 5s.
func (n *nemesis) leader() int {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for i := range n.c.Nodes {
			if n.stopped[i] {
				continue
			}
			db := n.c.LocalDB(i, n.name)
			if db == nil {
				continue
			}
			if addr, ok := db.LeaderAddress(); ok {
				for j, m := range n.c.Nodes {
					if m.Raft == addr && !n.stopped[j] {
						return j
					}
				}
			}
		}
	}
	return -1
}

// fault injects one random fault and returns the function that undoes it.
func (n *nemesis) fault() (heal func()) {
	nodes := len(n.c.Nodes)
	others := func(i int) []int {
		var r []int
		for j := 0; j < nodes; j++ {
			if j != i {
				r = append(r, j)
			}
		}
		return r
	}
	n.faults++
	healNet := func() {
		n.net.Heal()
		n.lastHeal = time.Now()
		n.logf("heal")
	}
	switch k := n.rng.IntN(6); k {
	case 0, 1: // the leader ends up in the minority
		l := n.leader()
		if l < 0 {
			l = n.rng.IntN(nodes)
		}
		n.net.Isolate(l)
		n.logf("isolate leader %d", l)
		return healNet
	case 2: // a follower ends up in the minority: {a,b} | {c}
		i := n.rng.IntN(nodes)
		n.net.Partition(others(i), []int{i})
		n.logf("partition %v | [%d]", others(i), i)
		return healNet
	case 3: // no majority anywhere
		n.net.Partition()
		n.logf("partition every node from every other (no quorum)")
		return healNet
	case 4: // the leader can send but not hear back: a one-way fault
		l := n.leader()
		if l < 0 {
			l = n.rng.IntN(nodes)
		}
		for _, j := range others(l) {
			n.net.Block(j, l)
		}
		n.logf("block links into leader %d (it still sends)", l)
		return healNet
	default: // stop a node (the leader half the time) and restart it
		i := n.rng.IntN(nodes)
		what := "node"
		if n.rng.IntN(2) == 0 {
			if l := n.leader(); l >= 0 {
				i, what = l, "leader"
			}
		}
		n.h.set(i, nil)
		n.c.Stop(i)
		n.stopped[i] = true
		n.logf("stop %s %d", what, i)
		return func() {
			n.c.Restart(i, n.name)
			n.h.set(i, n.c.Open(i, n.name))
			delete(n.stopped, i)
			n.lastHeal = time.Now()
			n.logf("restart node %d", i)
		}
	}
}

// liveness waits until a write succeeds through every node, and fails the
// test if that takes more than 5s after the last heal.
func liveness(t *testing.T, h *handles, nodes int, since time.Time) time.Duration {
	t.Helper()
	var worst time.Duration
	for i := 0; i < nodes; i++ {
		db := h.get(i)
		for {
			ctx, cancel := ctxFor(time.Second)
			_, err := db.ExecContext(ctx, "INSERT INTO probe(node, at) VALUES (?, ?)", i, time.Now().UnixNano())
			cancel()
			if err == nil {
				break
			}
			if time.Since(since) > 5*time.Second {
				t.Errorf("liveness: node %d cannot write %v after the heal: %v", i, time.Since(since).Round(time.Millisecond), err)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		worst = max(worst, time.Since(since))
	}
	return worst
}
