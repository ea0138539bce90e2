package faulttest

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
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

// Fault kinds, as the nemesis names them in its counts.
const (
	kindIsolateLeader = "isolate-leader"     // the leader ends up alone, in the minority
	kindPartition     = "partition-follower" // a follower ends up alone: {a,b} | {c}
	kindNoQuorum      = "no-quorum"          // every node alone: no majority anywhere
	kindOneWay        = "one-way"            // the leader sends but hears nothing back
	kindStop          = "stop"               // a node (the leader half the time) stops, then restarts
	kindPause         = "pause"              // a node (the leader half the time) is paused 0.5-3s, then resumed
)

// faultDeck is the kinds the nemesis deals, in the order its counts are
// logged.
var faultDeck = []string{kindIsolateLeader, kindPartition, kindNoQuorum, kindOneWay, kindStop, kindPause}

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
	kinds    map[string]int // faults by kind
	deck     []string       // kinds still to deal before the next shuffle
	lastHeal time.Time
}

func (n *nemesis) logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	n.injected = append(n.injected, msg)
	n.t.Logf("nemesis: %s", msg)
}

// summary is the number of faults and their kinds, e.g. "6 faults (2
// isolate-leader, 1 stop, 3 pause)".
func (n *nemesis) summary() string {
	var parts []string
	for _, k := range faultDeck {
		if n.kinds[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n.kinds[k], k))
		}
	}
	return fmt.Sprintf("%d faults (%s)", n.faults, strings.Join(parts, ", "))
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

// deal returns the next fault kind, dealt from faultDeck shuffled with the
// seed: each run of len(faultDeck) faults has every kind once.
func (n *nemesis) deal() string {
	if len(n.deck) == 0 {
		n.deck = slices.Clone(faultDeck)
		n.rng.Shuffle(len(n.deck), func(i, j int) { n.deck[i], n.deck[j] = n.deck[j], n.deck[i] })
	}
	k := n.deck[0]
	n.deck = n.deck[1:]
	return k
}

// fault injects one random fault and returns the function that undoes it
// and how long to wait before calling it: hold, the caller's choice, except
// for a pause, which picks its own seeded 0.5-3s.
func (n *nemesis) fault(hold time.Duration) (heal func(), wait time.Duration) {
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
	// pick is the leader half the time (if there is one), else any node.
	pick := func() (int, string) {
		i := n.rng.IntN(nodes)
		if n.rng.IntN(2) == 0 {
			if l := n.leader(); l >= 0 {
				return l, "leader"
			}
		}
		return i, "node"
	}
	if n.kinds == nil {
		n.kinds = map[string]int{}
	}
	kind := n.deal()
	n.faults++
	n.kinds[kind]++
	healNet := func() {
		n.net.Heal()
		n.lastHeal = time.Now()
		n.logf("heal")
	}
	switch kind {
	case kindIsolateLeader:
		l := n.leader()
		if l < 0 {
			l = n.rng.IntN(nodes)
		}
		n.net.Isolate(l)
		n.logf("isolate leader %d", l)
		return healNet, hold
	case kindPartition:
		i := n.rng.IntN(nodes)
		n.net.Partition(others(i), []int{i})
		n.logf("partition %v | [%d]", others(i), i)
		return healNet, hold
	case kindNoQuorum:
		n.net.Partition()
		n.logf("partition every node from every other (no quorum)")
		return healNet, hold
	case kindOneWay:
		l := n.leader()
		if l < 0 {
			l = n.rng.IntN(nodes)
		}
		for _, j := range others(l) {
			n.net.Block(j, l)
		}
		n.logf("block links into leader %d (it still sends)", l)
		return healNet, hold
	case kindPause:
		i, what := pick()
		d := time.Duration(500+n.rng.IntN(2501)) * time.Millisecond
		n.net.Pause(i)
		n.logf("pause %s %d for %v", what, i, d)
		return func() {
			n.net.Resume(i)
			n.lastHeal = time.Now()
			n.logf("resume node %d", i)
		}, d
	default: // kindStop
		i, what := pick()
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
		}, hold
	}
}

// liveness waits until a write succeeds through every node, and fails the
// test if that takes more than livenessBound (5 s without the race
// detector) after the last heal.
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
			if time.Since(since) > livenessBound {
				t.Errorf("liveness: node %d cannot write %v after the heal: %v", i, time.Since(since).Round(time.Millisecond), err)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		worst = max(worst, time.Since(since))
	}
	return worst
}
