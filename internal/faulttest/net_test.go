package faulttest

import (
	"errors"
	"testing"
	"time"

	"github.com/rsqlite/rsqlite"
	"github.com/rsqlite/rsqlite/internal/clustertest"
)

// TestPartitionMachinery checks the fault network itself: isolating the
// leader elects another among the majority, which accepts writes while the
// old leader cannot serve them; a node with no quorum reports it; healing
// brings every node back within 5s and the replicas converge.
func TestPartitionMachinery(t *testing.T) {
	c, fnet := clustertest.NewWithNet(t, 3)
	const name = "net.db"
	dbs := c.OpenAll(name)
	h := &handles{dbs: dbs}
	if _, err := dbs[0].Exec("CREATE TABLE probe(id INTEGER PRIMARY KEY, node INTEGER, at INTEGER); CREATE TABLE t(v)"); err != nil {
		t.Fatal(err)
	}
	old := c.Leader(name)
	fnet.Isolate(old)
	start := time.Now()
	var leader int = -1
	for time.Since(start) < 5*time.Second && leader < 0 {
		for i := range dbs {
			if i == old {
				continue
			}
			if id, ok := c.LocalDB(i, name).Leader(); ok && int(id) != 0 {
				if addr, ok := c.LocalDB(i, name).LeaderAddress(); ok && addr != c.Nodes[old].Raft {
					leader = i
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if leader < 0 {
		t.Fatalf("no new leader 5s after isolating leader %d (%v)", old, fnet.Stats())
	}
	t.Logf("isolated leader %d; new leader after %v", old, time.Since(start).Round(time.Millisecond))
	for i := range dbs {
		ctx, cancel := ctxFor(time.Second)
		_, err := dbs[i].ExecContext(ctx, "INSERT INTO t VALUES (?)", i)
		cancel()
		if i == old {
			if err == nil {
				t.Errorf("isolated old leader %d accepted a write", i)
			} else if !errors.Is(err, rsqlite.ErrNoQuorum) && !errors.Is(err, rsqlite.ErrTimeout) {
				t.Errorf("isolated node %d: unclear error %v", i, err)
			} else {
				t.Logf("isolated node %d: %v", i, err)
			}
		} else if err != nil {
			t.Errorf("majority node %d: %v", i, err)
		}
	}
	ctx, cancel := ctxFor(time.Second)
	var n int
	err := dbs[old].QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n)
	cancel()
	if err == nil {
		t.Errorf("isolated node %d served a linearizable read (count %d)", old, n)
	}
	fnet.Heal()
	healed := time.Now()
	if d := liveness(t, h, 3, healed); !t.Failed() {
		t.Logf("every node wrote %v after the heal", d.Round(time.Millisecond))
	}
	conv, err := c.Converged(name, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("converged at index %d in %v; %v", conv.Applied, conv.Took.Round(time.Millisecond), fnet.Stats())
}
