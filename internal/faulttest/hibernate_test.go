package faulttest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rsqlite/rsqlite/internal/clustertest"
)

// TestLinearizableHibernate checks linearizability across sleeps and wakes:
// with hibernate=1s, clients on all three nodes go quiet together for
// seeded pauses around the time a sleep takes (1 s idle, a vote round, the
// replicas stopping), then resume at jittered times, so operations meet
// the database awake, falling asleep, stopping, asleep and waking.
func TestLinearizableHibernate(t *testing.T) {
	rounds, clients, keys := 10, 6, 8
	if soak() {
		rounds = 60
	}
	s := seed(t)
	rng := newRand(s, 0)
	c := clustertest.New(t, 3)
	c.Params = "hibernate=1s&timeout=20s"
	const name = "linh.db"
	dbs := c.OpenAll(name)
	if _, err := dbs[0].Exec(registersSQL(keys)); err != nil {
		t.Fatal(err)
	}

	// Each round: a seeded quiet gap, then every client waits its jitter
	// and runs one to three operations.
	gaps := make([]time.Duration, rounds)
	for i := range gaps {
		gaps[i] = time.Duration(700+rng.IntN(1900)) * time.Millisecond
	}
	hist := newHistory()
	var wg sync.WaitGroup
	for cl := 0; cl < clients; cl++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := newRand(s, uint64(cl+1))
			db := dbs[cl%len(dbs)]
			seen := make([]int64, keys)
			seq := int64(0)
			at := hist.start
			for _, gap := range gaps {
				at = at.Add(gap)
				time.Sleep(time.Until(at.Add(time.Duration(r.IntN(400)) * time.Millisecond)))
				for range 1 + r.IntN(3) {
					seq++
					hist.record(runOp(db, cl, randomInput(r, cl, seq, keys, seen), seen, hist.now))
				}
			}
		}()
	}
	wg.Wait()
	sleeps := c.LocalDB(0, name).Sleeps()
	t.Logf("%d rounds, the database slept %d times (node 0)", rounds, sleeps)
	if sleeps == 0 {
		t.Error("the database never slept: the test exercised nothing")
	}
	hist.check(t, s, rounds*clients, fmt.Sprintf("%d sleeps", sleeps), nil)
	if len(hist.errKind) > 0 {
		t.Errorf("operations failed across sleeps and wakes: %v", hist.errKind)
	}
	if _, err := c.Converged(name, 10*time.Second); err != nil {
		t.Error(err)
	}
}
