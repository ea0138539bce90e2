package rsqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rsqlite/rsqlite"
	"github.com/rsqlite/rsqlite/cluster"
	"github.com/rsqlite/rsqlite/internal/clustertest"
)

// waitAsleep waits until every node's replica of name is asleep (want) or
// awake, and for a sleeping one, that its raft group is stopped.
func waitAsleep(t *testing.T, c *clustertest.Cluster, name string, want bool, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok := true
		for i := range c.Nodes {
			db := c.LocalDB(i, name)
			if db == nil || db.Asleep() != want {
				ok = false
				continue
			}
			if want {
				for _, d := range cluster.Running(c.Nodes[i].Dir).Status().Databases {
					if d.Name == name && d.LeaderID != 0 {
						ok = false // still running
					}
				}
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not every node has it asleep=%v after %v", name, want, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHibernate: an idle database sleeps on every node and wakes on the
// first write, linearizable read or transaction through any node, with
// nothing lost; a database in use, or with a transaction open, stays awake;
// a stale read of a sleeping database does not wake it.
func TestHibernate(t *testing.T) {
	c := clustertest.New(t, 3)
	c.Params = "hibernate=1s&timeout=20s"
	dbs := c.OpenAll("h.db")
	busy := c.Open(0, "busy.db")
	mustExec(t, dbs[0], "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
	mustExec(t, busy, "CREATE TABLE b(id INTEGER PRIMARY KEY)")
	for i := range 10 {
		mustExec(t, dbs[i%3], "INSERT INTO t(v) VALUES (?)", fmt.Sprint(i))
	}

	// busy.db is written every 100ms while h.db falls asleep.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 600; i++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if _, err := busy.Exec("INSERT INTO b DEFAULT VALUES"); err != nil {
				t.Errorf("busy.db write: %v", err)
				return
			}
		}
	}()
	waitAsleep(t, c, "h.db", true, 20*time.Second)
	for i := range c.Nodes {
		if db := c.LocalDB(i, "busy.db"); db != nil && db.Asleep() {
			t.Errorf("node %d: busy.db fell asleep while written every 100ms", i)
		}
	}
	close(stop)
	wg.Wait()

	// A stale read serves the local file and leaves it asleep.
	stale, err := sql.Open("rsqlite", c.DSN(1, "h.db")+"&consistency=stale")
	if err != nil {
		t.Fatal(err)
	}
	defer stale.Close()
	if n := count(t, stale, "SELECT count(*) FROM t"); n != 10 {
		t.Errorf("stale read of the sleeping database: %d rows, want 10", n)
	}
	if !c.LocalDB(1, "h.db").Asleep() {
		t.Error("a stale read woke the database")
	}

	// A write through a follower wakes it everywhere.
	start := time.Now()
	mustExec(t, dbs[2], "INSERT INTO t(v) VALUES ('woken by a write')")
	t.Logf("first write after sleep took %v", time.Since(start))
	for i, db := range dbs {
		if n := count(t, db, "SELECT count(*) FROM t"); n != 11 {
			t.Errorf("node %d: %d rows after the waking write, want 11", i, n)
		}
	}
	waitAsleep(t, c, "h.db", false, 10*time.Second)

	// Asleep again; a linearizable read wakes it and sees every write.
	waitAsleep(t, c, "h.db", true, 20*time.Second)
	start = time.Now()
	if n := count(t, dbs[1], "SELECT count(*) FROM t"); n != 11 {
		t.Errorf("linearizable read after sleep: %d rows, want 11", n)
	}
	t.Logf("first linearizable read after sleep took %v", time.Since(start))

	// An open transaction keeps it awake past the idle time.
	tx, err := dbs[0].Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO t(v) VALUES ('in a tx')"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	for i := range c.Nodes {
		if c.LocalDB(i, "h.db").Asleep() {
			t.Errorf("node %d: asleep while node 0 has a transaction open", i)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("commit after 3s open: %v", err)
	}

	// And after another sleep, a transaction wakes it.
	waitAsleep(t, c, "h.db", true, 20*time.Second)
	tx, err = dbs[1].Begin()
	if err != nil {
		t.Fatalf("begin on a sleeping database: %v", err)
	}
	if _, err := tx.Exec("INSERT INTO t(v) VALUES ('tx after sleep')"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if n := count(t, dbs[0], "SELECT count(*) FROM t"); n != 13 {
		t.Errorf("%d rows at the end, want 13", n)
	}
	conv, err := c.Converged("h.db", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("replicas identical at applied index %d", conv.Applied)
}

// TestHibernateJoin: a node that joins while databases sleep receives them
// (the reconciler wakes each group to add it), votes like the others, and
// the databases sleep and wake again with four members.
func TestHibernateJoin(t *testing.T) {
	c := clustertest.New(t, 3)
	c.Params = "hibernate=1s&timeout=20s"
	admin := clustertest.FreeAddr(t)
	c.Nodes[0].Params = "admin=" + admin
	dbs := c.OpenAll("a.db")
	mustExec(t, dbs[0], "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
	mustExec(t, dbs[1], "INSERT INTO t(v) VALUES ('before the join')")
	waitAsleep(t, c, "a.db", true, 20*time.Second)

	dir4, raft4 := t.TempDir(), clustertest.FreeAddr(t)
	db4 := openJoiner(t, dir4, raft4, admin, "a.db", "&hibernate=1s")
	waitCount(t, db4, "SELECT count(*) FROM t", 1)
	node4 := cluster.Running(dir4)
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := node4.Status()
		var voters int
		for _, d := range st.Databases {
			if d.Name == "a.db" {
				voters = len(d.Voters)
			}
		}
		if voters == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a.db's group has %d voters on the new node, want 4", voters)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Four idle members: it sleeps on all of them, and a write through the
	// new node wakes it.
	deadline = time.Now().Add(20 * time.Second)
	for !node4.DB("a.db").Asleep() || !c.LocalDB(0, "a.db").Asleep() {
		if time.Now().After(deadline) {
			t.Fatal("a.db did not sleep again with four members")
		}
		time.Sleep(20 * time.Millisecond)
	}
	mustExec(t, db4, "INSERT INTO t(v) VALUES ('from the new node after sleep')")
	if n := count(t, dbs[2], "SELECT count(*) FROM t"); n != 2 {
		t.Errorf("node 2 sees %d rows, want 2", n)
	}
}

// TestHibernateChurn writes with pauses around the idle time, so writes
// land while a database falls asleep, while its replicas stop and while it
// wakes: every write succeeds exactly once and the replicas converge.
func TestHibernateChurn(t *testing.T) {
	c := clustertest.New(t, 3)
	c.Params = "hibernate=1s&timeout=30s"
	dbs := c.OpenAll("churn.db")
	mustExec(t, dbs[0], "CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, i INTEGER, UNIQUE(w, i))")
	// Pauses around the time a sleep takes (1 s idle, a vote round, the
	// stops), so writes meet every stage of it.
	gaps := []time.Duration{800, 1100, 1300, 1500, 1700, 2000, 2500}
	const writers, each = 2, 7
	var wg sync.WaitGroup
	start := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				time.Sleep(gaps[(i+3*w)%len(gaps)] * time.Millisecond)
				if _, err := dbs[(w+i)%3].Exec("INSERT INTO t(w, i) VALUES (?, ?)", w, i); err != nil {
					t.Errorf("writer %d, write %d: %v", w, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	slept := c.LocalDB(0, "churn.db").Sleeps()
	if slept == 0 {
		t.Error("the database never slept between the writes")
	}
	if n := count(t, dbs[1], "SELECT count(*) FROM t"); n != writers*each {
		t.Errorf("%d rows, want %d", n, writers*each)
	}
	if _, err := c.Converged("churn.db", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d writes over %v; %d sleeps", writers*each, time.Since(start).Round(time.Millisecond), slept)
}

// TestHibernateRestart: a node restarted while a database sleeps replays
// the catalog (which starts and stops nothing for it) and wakes it on
// first use; a node restarted after missing writes catches up on wake;
// with every node back, the database sleeps again.
func TestHibernateRestart(t *testing.T) {
	c := clustertest.New(t, 3)
	c.Params = "hibernate=1s&timeout=20s"
	dbs := c.OpenAll("r.db")
	mustExec(t, dbs[0], "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
	mustExec(t, dbs[0], "INSERT INTO t(v) VALUES ('one')")
	waitAsleep(t, c, "r.db", true, 20*time.Second)

	c.Stop(1)
	c.Restart(1, "r.db") // opening it there wakes it: the file never opened in this process
	if n := count(t, c.Open(1, "r.db"), "SELECT count(*) FROM t"); n != 1 {
		t.Errorf("restarted node reads %d rows, want 1", n)
	}

	// Writes while node 2 is down, then it comes back and catches up.
	c.Stop(2)
	for i := range 5 {
		mustExec(t, c.Open(i%2, "r.db"), "INSERT INTO t(v) VALUES ('while node 2 was down')")
	}
	time.Sleep(2500 * time.Millisecond) // idle, but node 2 cannot vote
	if c.LocalDB(0, "r.db").Asleep() {
		t.Error("r.db fell asleep while a member was down")
	}
	c.Restart(2, "r.db")
	if n := count(t, c.Open(2, "r.db"), "SELECT count(*) FROM t"); n != 6 {
		t.Errorf("node 2 reads %d rows after its restart, want 6", n)
	}
	waitAsleep(t, c, "r.db", true, 20*time.Second)
	if _, err := c.Converged("r.db", 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestHibernateWakeDeadline: a write to a sleeping database whose deadline
// passes during the wake reports a timeout, not a lost quorum (the catalog
// has a leader: the group is electing), and the next write succeeds.
func TestHibernateWakeDeadline(t *testing.T) {
	c := clustertest.New(t, 3)
	c.Params = "hibernate=1s&timeout=20s"
	dbs := c.OpenAll("d.db")
	mustExec(t, dbs[0], "CREATE TABLE t(id INTEGER PRIMARY KEY)")
	for round := range 3 {
		waitAsleep(t, c, "d.db", true, 20*time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(20+30*round)*time.Millisecond)
		_, err := dbs[1].ExecContext(ctx, "INSERT INTO t DEFAULT VALUES")
		cancel()
		if err == nil {
			continue // the wake beat the deadline
		}
		if errors.Is(err, rsqlite.ErrNoQuorum) || !errors.Is(err, rsqlite.ErrTimeout) {
			t.Errorf("round %d: %v; want ErrTimeout (all nodes are up)", round, err)
		}
		mustExec(t, dbs[2], "INSERT INTO t DEFAULT VALUES")
	}
}
