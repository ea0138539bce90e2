package faulttest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/rsqlite/rsqlite/internal/clustertest"
)

// writeLog is what writers learnt about their inserts.
type writeLog struct {
	mu      sync.Mutex
	acked   map[int64]bool
	unknown map[int64]bool
	dupErrs []string // UNIQUE violations on a first insert: a write applied twice
}

func newWriteLog() *writeLog {
	return &writeLog{acked: map[int64]bool{}, unknown: map[int64]bool{}}
}

func (w *writeLog) add(v int64, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var se sqlite3.Error
	switch {
	case err == nil:
		w.acked[v] = true
	case errors.As(err, &se) && se.Code == sqlite3.ErrConstraint:
		w.dupErrs = append(w.dupErrs, fmt.Sprintf("value %d: %v", v, err))
	default:
		w.unknown[v] = true
	}
}

// runWriters starts perNode writers on every node that insert fresh values
// (writer<<32 | seq) with query until stop closes.
func runWriters(h *handles, nodes, perNode int, query string, log *writeLog, stop <-chan struct{}, wg *sync.WaitGroup) {
	for w := 0; w < nodes*perNode; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := w % nodes
			for seq := int64(1); ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				db := h.get(node)
				if db == nil {
					time.Sleep(20 * time.Millisecond)
					seq--
					continue
				}
				v := int64(w+1)<<32 | seq
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err := db.ExecContext(ctx, query, v>>32, v&(1<<32-1), v)
				cancel()
				log.add(v, err)
			}
		}()
	}
}

// checkSet verifies on every node that each acknowledged value is present
// exactly once and that nothing is present that was never written.
func checkSet(t *testing.T, h *handles, nodes int, table string, log *writeLog) {
	t.Helper()
	for i := 0; i < nodes; i++ {
		ctx, cancel := ctxFor(10 * time.Second)
		rows, err := h.get(i).QueryContext(ctx, fmt.Sprintf("SELECT val, count(*) FROM %s GROUP BY val", table))
		if err != nil {
			cancel()
			t.Fatalf("node %d: %v", i, err)
		}
		present := map[int64]int{}
		for rows.Next() {
			var v int64
			var n int
			if err := rows.Scan(&v, &n); err != nil {
				t.Fatal(err)
			}
			present[v] = n
		}
		rows.Close()
		cancel()
		var lost, twice, phantom []int64
		for v := range log.acked {
			if present[v] == 0 {
				lost = append(lost, v)
			}
		}
		extra := 0
		for v, n := range present {
			if n > 1 {
				twice = append(twice, v)
			}
			if !log.acked[v] {
				if log.unknown[v] {
					extra++
				} else {
					phantom = append(phantom, v)
				}
			}
		}
		if len(lost)+len(twice)+len(phantom) > 0 {
			t.Errorf("node %d: %d acknowledged writes lost %v, %d values present more than once %v, %d values never written %v",
				i, len(lost), head(lost), len(twice), head(twice), len(phantom), head(phantom))
		}
		if i == 0 {
			t.Logf("%d acknowledged writes all present once; %d of %d writes with unknown outcome were applied", len(log.acked), extra, len(log.unknown))
		}
	}
}

func head(v []int64) []int64 { return v[:min(len(v), 5)] }

func faultCount() int {
	if soak() {
		return 12 // every kind twice (faultDeck)
	}
	return 4
}

// TestSetSurvivesFaults: inserts from every node under partitions, node
// stops and node pauses; after the heal every node accepts writes within 5s, converges
// within 10s, and holds every acknowledged insert exactly once.
func TestSetSurvivesFaults(t *testing.T) {
	s := seed(t)
	rng := newRand(s, 0)
	c, fnet := clustertest.NewWithNet(t, 3)
	const name = "set.db"
	dbs := c.OpenAll(name)
	h := &handles{dbs: dbs}
	// No UNIQUE constraint on val: a value applied twice shows as two rows.
	if _, err := dbs[0].Exec("CREATE TABLE probe(id INTEGER PRIMARY KEY, node INTEGER, at INTEGER); CREATE TABLE s(id INTEGER PRIMARY KEY, writer INTEGER, seq INTEGER, val INTEGER NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	log := newWriteLog()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	runWriters(h, 3, 2, "INSERT INTO s(writer, seq, val) VALUES (?, ?, ?)", log, stop, &wg)
	nem := &nemesis{t: t, c: c, net: fnet, h: h, name: name, rng: rng, stopped: map[int]bool{}}
	for f := 0; f < faultCount(); f++ {
		time.Sleep(time.Duration(200+rng.IntN(500)) * time.Millisecond)
		heal, hold := nem.fault(time.Duration(800+rng.IntN(1500)) * time.Millisecond)
		time.Sleep(hold)
		heal()
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	took := liveness(t, h, 3, nem.lastHeal)
	t.Logf("%s; every node wrote within %v of the last heal; %v", nem.summary(), took.Round(time.Millisecond), fnet.Stats())
	conv, err := c.Converged(name, max(10*time.Second-time.Since(nem.lastHeal), time.Second))
	if err != nil {
		t.Fatalf("%v\nfaults: %s", err, strings.Join(nem.injected, "; "))
	}
	t.Logf("converged at index %d %v after the last heal (%s)", conv.Applied, time.Since(nem.lastHeal).Round(time.Millisecond), strings.SplitN(conv.Dump, "\n", 2)[0])
	checkSet(t, h, 3, "s", log)
	if len(log.dupErrs) > 0 {
		t.Errorf("constraint errors on fresh inserts: %v", log.dupErrs)
	}
	if len(log.acked) == 0 {
		t.Error("no write was acknowledged")
	}
}

// TestExactlyOnceLeaderStop stops the leader while many writers have
// inserts in flight (proposed through it and not yet answered), restarts
// it, and repeats. The (writer, seq) key is UNIQUE: a retried proposal
// applied twice would fail its second apply with a constraint error, which
// the writer would see, and an acknowledged insert must be present once.
func TestExactlyOnceLeaderStop(t *testing.T) {
	s := seed(t)
	rng := newRand(s, 0)
	rounds := 3
	if soak() {
		rounds = 10
	}
	c := clustertest.New(t, 3)
	const name = "once.db"
	dbs := c.OpenAll(name)
	h := &handles{dbs: dbs}
	if _, err := dbs[0].Exec("CREATE TABLE u(id INTEGER PRIMARY KEY, writer INTEGER, seq INTEGER, val INTEGER NOT NULL, UNIQUE (writer, seq))"); err != nil {
		t.Fatal(err)
	}
	log := newWriteLog()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	runWriters(h, 3, 4, "INSERT INTO u(writer, seq, val) VALUES (?, ?, ?)", log, stop, &wg)
	for r := 0; r < rounds; r++ {
		time.Sleep(time.Duration(150+rng.IntN(400)) * time.Millisecond)
		l := c.Leader(name)
		h.set(l, nil)
		c.Stop(l)
		time.Sleep(time.Duration(700+rng.IntN(800)) * time.Millisecond)
		c.Restart(l, name)
		h.set(l, c.Open(l, name))
		t.Logf("round %d: stopped and restarted leader %d", r, l)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if _, err := c.Converged(name, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	checkSet(t, h, 3, "u", log)
	if len(log.dupErrs) > 0 {
		t.Errorf("%d fresh inserts failed on the UNIQUE key, so they were applied twice: %v", len(log.dupErrs), log.dupErrs[:min(5, len(log.dupErrs))])
	}
	var n int
	if err := dbs[0].QueryRow("SELECT count(*) FROM u").Scan(&n); err != nil {
		t.Fatal(err)
	}
	_ = sql.ErrNoRows
	t.Logf("%d rows: %d acknowledged, %d with unknown outcome", n, len(log.acked), len(log.unknown))
}
