package main

// Crash test (issue 6, check 5): rsqlite node processes are SIGKILLed and
// restarted from their data directories, or paused with SIGSTOP and resumed
// with SIGCONT, under write load; no acknowledged write may be lost or
// applied twice, and every node catches up and ends with the same rows.

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/rsqlite/rsqlite/internal/clustertest"
)

func crashSoak() bool { return clustertest.Soak() }

func crashSeed(t *testing.T) uint64 { return clustertest.Seed(t, "./cmd/rsqlite/") }

// crashRestartNode starts old's node again: same name (with the
// incarnation), data directory, addresses and flags. Like startNodeFor, the
// process is killed at the end of the test and its output logged if the
// test failed.
func crashRestartNode(t *testing.T, old *nodeProc, base string, incarnation int, args []string) *nodeProc {
	t.Helper()
	p := &nodeProc{name: fmt.Sprintf("%s#%d", base, incarnation), dir: old.dir, raft: old.raft, admin: old.admin}
	launchNode(t, t, p, args)
	return p
}

// crashKill SIGKILLs p and waits until it is gone.
func crashKill(t *testing.T, p *nodeProc) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("SIGKILL %s: %v", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still running 10s after SIGKILL", p.name)
	}
}

// crashSignal sends sig (SIGSTOP, SIGCONT) to p.
func crashSignal(t *testing.T, p *nodeProc, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%v %s: %v", sig, p.name, err)
	}
}

// crashReadyz waits up to timeout until p's /readyz answers 200; the
// process may not listen yet.
func crashReadyz(t *testing.T, p *nodeProc, timeout time.Duration) time.Duration {
	t.Helper()
	t0 := time.Now()
	c := http.Client{Timeout: 2 * time.Second}
	last := "nothing"
	for {
		if p.exited() {
			t.Fatalf("%s exited (%v) before it was ready", p.name, p.waitErr)
		}
		resp, err := c.Get("http://" + p.admin + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(t0)
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b)))
		} else {
			last = err.Error()
		}
		if time.Since(t0) > timeout {
			t.Fatalf("%s: /readyz not 200 within %v of the restart; last: %s", p.name, timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// crashTryApplied is db's applied index on the node serving admin, or
// false if the node does not answer or does not have db open.
func crashTryApplied(admin, db string) (uint64, bool) {
	d, ok := crashTryDB(admin, db)
	return d.Applied, ok
}

// crashDB is what a node's /status says about one database.
type crashDB struct {
	Name     string `json:"name"`
	Applied  uint64 `json:"applied_index"`
	Ready    bool   `json:"ready"`
	IsLeader bool   `json:"is_leader"`
	Leader   string `json:"leader"`
	Term     uint64 `json:"term"`
	// Catalog is the node's catalog leader.
	Catalog string `json:"-"`
}

// crashTryDB is db on the node serving admin, or false if the node does
// not answer or does not have db open.
func crashTryDB(admin, db string) (crashDB, bool) {
	c := http.Client{Timeout: 5 * time.Second}
	t0 := time.Now()
	defer func() { crashSlowestStatus.store(time.Since(t0), admin) }()
	resp, err := c.Get("http://" + admin + "/status")
	if err != nil {
		return crashDB{}, false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return crashDB{}, false
	}
	var st struct {
		Catalog struct {
			Leader string `json:"leader"`
		} `json:"catalog"`
		Databases []crashDB `json:"databases"`
	}
	if json.Unmarshal(b, &st) != nil {
		return crashDB{}, false
	}
	for _, d := range st.Databases {
		if d.Name == db && d.Ready {
			d.Catalog = st.Catalog.Leader
			return d, true
		}
	}
	return crashDB{}, false
}

// crashSlowestStatus is the longest a /status request took, and where.
var crashSlowestStatus slowest

type slowest struct {
	mu    sync.Mutex
	d     time.Duration
	where string
}

func (s *slowest) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d, s.where = 0, ""
}

func (s *slowest) store(d time.Duration, where string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d > s.d {
		s.d, s.where = d, where
	}
}

// crashNodeName names the node with raft address a.
func crashNodeName(raft []string, a string) string {
	if i := slices.Index(raft, a); i >= 0 {
		return fmt.Sprintf("node%d", i+1)
	}
	if a == "" {
		return "none"
	}
	return a
}

// crashBackup downloads db from the node serving admin (GET /backup) into
// a temporary file and returns its path.
func crashBackup(t *testing.T, admin, db string) string {
	t.Helper()
	c := http.Client{Timeout: 60 * time.Second}
	resp, err := c.Get("http://" + admin + "/backup?db=" + db)
	if err != nil {
		t.Fatalf("GET %s/backup: %v", admin, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s/backup: %d %s", admin, resp.StatusCode, b)
	}
	f, err := os.CreateTemp(t.TempDir(), "backup-*.db")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		t.Fatalf("GET %s/backup: %v", admin, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// crashKey is one insert: writer w's seq-th.
type crashKey struct{ writer, seq int64 }

// crashErr is a write that failed: its outcome is unknown until read back.
type crashErr struct {
	key        crashKey
	start, end time.Time
	err        string
}

// crashLog is what the writers learnt about their inserts.
type crashLog struct {
	mu      sync.Mutex
	acked   map[crashKey]bool
	failed  []crashErr
	dupErrs []string // UNIQUE violations on a fresh key: a write applied twice
	slowest time.Duration
	slow    []crashErr // acknowledged writes that took over 250ms (err empty)
}

// crashWindow is when a node was down: from its SIGKILL (or SIGSTOP) until
// its /readyz after the restart (or SIGCONT).
type crashWindow struct {
	node        string
	kill, ready time.Time
}

// TestCrashSIGKILL: a 3-voter cluster of rsqlite node processes and the
// test process as a non-voting application node. Four writers insert
// unique (writer, seq) keys while, each round, a random voter is SIGKILLed,
// restarted 0-500ms later from its data directory, and must be ready
// within 30s and catch up. Every third round pauses a voter instead: SIGSTOP
// for 1-3s, then SIGCONT (the leader of the database in every other pause
// round, the first included; a random voter in the others), and it too must
// be ready within 30s and catch up: a paused process keeps its connections,
// its clock stops, and it resumes with a stale view (a paused leader still
// believes it leads) and stale messages in its socket buffers. Afterwards
// every voter reaches the same applied index, every acknowledged key is
// present exactly once, and each voter's backup has the same rows (same
// SHA-256 of an ordered dump) and passes integrity_check. 5 rounds (4
// kills, 1 pause) by default, 20 (14 kills, 6 pauses) with RSQLITE_SOAK=1;
// RSQLITE_SEED reruns a schedule.
func TestCrashSIGKILL(t *testing.T) {
	rsqliteBinary(t) // skips under -short
	s := crashSeed(t)
	rng := rand.New(rand.NewPCG(s, 5))
	rounds := 5
	if crashSoak() {
		rounds = 20
	}
	t0 := time.Now()
	crashSlowestStatus.reset()

	raft, admin := freeAddrs(t, 3), freeAddrs(t, 3)
	peers := strings.Join(raft, ",")
	args := []string{"-peers", peers}
	var specs []nodeSpec
	for i := range 3 {
		specs = append(specs, nodeSpec{name: fmt.Sprintf("node%d", i+1), args: args})
	}
	nodes := startNodes(t, specs, raft, admin)
	incarnations := make([]int, 3)

	const dbName = "crash.db"
	me := joinTestNode(t, admin[0], "")
	db := me.open(t, dbName)
	mustExecSQL(t, db, `CREATE TABLE k(id INTEGER PRIMARY KEY, writer INTEGER NOT NULL, seq INTEGER NOT NULL, v TEXT NOT NULL, UNIQUE (writer, seq))`)
	t.Logf("cluster and test node ready in %v", time.Since(t0).Round(time.Millisecond))

	// Writers.
	const writers = 4
	log := &crashLog{acked: map[crashKey]bool{}}
	var acked atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	stopWriters := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopWriters() // also when the test fails part way
	for w := int64(1); w <= writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := int64(1); ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				key := crashKey{w, seq}
				start := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := db.ExecContext(ctx, "INSERT INTO k(writer, seq, v) VALUES (?, ?, ?)", w, seq, fmt.Sprintf("writer %d insert %d", w, seq))
				cancel()
				end := time.Now()
				var se sqlite3.Error
				log.mu.Lock()
				log.slowest = max(log.slowest, end.Sub(start))
				switch {
				case err == nil:
					log.acked[key] = true
					acked.Add(1)
					if end.Sub(start) > 250*time.Millisecond {
						log.slow = append(log.slow, crashErr{key: key, start: start, end: end})
					}
				case errors.As(err, &se) && se.Code == sqlite3.ErrConstraint, strings.Contains(err.Error(), "UNIQUE constraint failed"):
					log.dupErrs = append(log.dupErrs, fmt.Sprintf("writer %d seq %d: %v", w, seq, err))
				default:
					log.failed = append(log.failed, crashErr{key: key, start: start, end: end, err: err.Error()})
				}
				log.mu.Unlock()
			}
		}()
	}
	waitFor(t, 10*time.Second, "the first acknowledged writes", func() (bool, string) {
		return acked.Load() >= 20, fmt.Sprint(acked.Load(), " acknowledged")
	})

	// Rounds of SIGKILL and restart, every third one a SIGSTOP and SIGCONT.
	var windows []crashWindow
	var worstReady, worstCatchUp time.Duration
	kills, pauses, leaderKills, leaderPauses := 0, 0, 0, 0
	paused := make([]int, 3) // pauses per node
	for r := 1; r <= rounds; r++ {
		pauseRound := r%3 == 0
		i := rng.IntN(3)
		var down time.Duration // kill: until the restart; pause: until SIGCONT
		if pauseRound {
			down = time.Duration(1000+rng.IntN(2001)) * time.Millisecond
			if pauses%2 == 0 { // the leader in every other pause round
				for j, a := range admin {
					if d, ok := crashTryDB(a, dbName); ok && d.IsLeader {
						i = j
						break
					}
				}
			}
		} else {
			down = time.Duration(rng.IntN(501)) * time.Millisecond
		}
		old := nodes[i]
		role := "follower of " + dbName
		was, _ := crashTryDB(admin[i], dbName)
		if was.IsLeader {
			role = "leader of " + dbName
			if pauseRound {
				leaderPauses++
			} else {
				leaderKills++
			}
		}
		if was.Catalog == raft[i] {
			role += ", catalog leader"
		}
		base := specs[i].name
		kill := time.Now()
		var ready time.Duration
		what, how := "SIGKILL", fmt.Sprintf("restarted after %v", down)
		if pauseRound {
			what = "SIGSTOP"
			crashSignal(t, old, syscall.SIGSTOP)
			time.Sleep(down)
			crashSignal(t, old, syscall.SIGCONT)
			paused[i]++
			pauses++
			// What it believes as it wakes (it may have moved on by the
			// time /status answers).
			woke, _ := crashTryDB(admin[i], dbName)
			how = fmt.Sprintf("SIGCONT after %v (then it saw leader %s term %d)", down, crashNodeName(raft, woke.Leader), woke.Term)
			ready = crashReadyz(t, old, 30*time.Second)
		} else {
			crashKill(t, old)
			kills++
			time.Sleep(down)
			incarnations[i]++
			nodes[i] = crashRestartNode(t, old, base, incarnations[i], args)
			ready = crashReadyz(t, nodes[i], 30*time.Second)
		}
		windows = append(windows, crashWindow{node: base, kill: kill, ready: time.Now()})
		worstReady = max(worstReady, ready)

		// It catches up: its applied index reaches what the other two had
		// applied when it became ready.
		var target uint64
		ts := time.Now()
		for j, a := range admin {
			if j != i {
				if ap, ok := crashTryApplied(a, dbName); ok {
					target = max(target, ap)
				}
			}
		}
		statusTook := time.Since(ts)
		tc := time.Now()
		var applied uint64
		waitFor(t, 30*time.Second, base+" to catch up to index "+fmt.Sprint(target), func() (bool, string) {
			ap, ok := crashTryApplied(admin[i], dbName)
			applied = ap
			return ok && ap >= target, fmt.Sprintf("applied %d (open: %v)", ap, ok)
		})
		catchUp := time.Since(tc)
		worstCatchUp = max(worstCatchUp, catchUp)
		// And the writers go on.
		before := acked.Load()
		waitFor(t, 10*time.Second, "writes after the "+what+" of "+base, func() (bool, string) {
			return acked.Load() >= before+20, fmt.Sprintf("%d acknowledged, %d when it had caught up", acked.Load(), before)
		})
		now, _ := crashTryDB(admin[(i+1)%3], dbName) // a survivor's view
		leaders := fmt.Sprintf("leader %s term %d -> %s term %d", crashNodeName(raft, was.Leader), was.Term, crashNodeName(raft, now.Leader), now.Term)
		log.mu.Lock()
		var stall time.Duration
		for _, w := range log.slow {
			if w.end.After(kill) {
				stall = max(stall, w.end.Sub(w.start))
			}
		}
		log.mu.Unlock()
		t.Logf("round %d: %s %s (%s; %s), writes stalled up to %v, %s, ready in %v, caught up to index %d (read in %v; now at %d) in %v; %d writes acknowledged so far",
			r, what, base, role, leaders, stall.Round(time.Millisecond), how, ready.Round(time.Millisecond), target, statusTook.Round(time.Millisecond), applied, catchUp.Round(time.Millisecond), acked.Load())
	}
	roundsTook := time.Since(t0)
	stopWriters()

	// Every voter reaches the same applied index.
	var final []uint64
	waitFor(t, 30*time.Second, "the same applied index on every voter", func() (bool, string) {
		final = final[:0]
		for _, a := range admin {
			ap, ok := crashTryApplied(a, dbName)
			if !ok {
				return false, a + " does not answer or has not opened " + dbName
			}
			final = append(final, ap)
		}
		return final[0] > 0 && final[0] == final[1] && final[1] == final[2], fmt.Sprint(final)
	})
	t.Logf("every voter at applied index %d", final[0])

	// Every acknowledged key is present exactly once (read through the
	// test node: a linearizable read).
	log.mu.Lock()
	defer log.mu.Unlock()
	present := map[crashKey]int{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, "SELECT writer, seq, count(*) FROM k GROUP BY writer, seq")
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for rows.Next() {
		var k crashKey
		var n int
		if err := rows.Scan(&k.writer, &k.seq, &n); err != nil {
			t.Fatal(err)
		}
		present[k] = n
		total += n
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	failedKeys := map[crashKey]bool{}
	for _, f := range log.failed {
		failedKeys[f.key] = true
	}
	var lost, twice, phantom []crashKey
	for k := range log.acked {
		if present[k] == 0 {
			lost = append(lost, k)
		}
	}
	for k, n := range present {
		if n > 1 {
			twice = append(twice, k)
		}
		if !log.acked[k] && !failedKeys[k] {
			phantom = append(phantom, k)
		}
	}
	cmpKey := func(a, b crashKey) int {
		if a.writer != b.writer {
			return int(a.writer - b.writer)
		}
		return int(a.seq - b.seq)
	}
	slices.SortFunc(lost, cmpKey)
	slices.SortFunc(twice, cmpKey)
	slices.SortFunc(phantom, cmpKey)
	duplicated := len(twice) + len(log.dupErrs)
	if len(lost) > 0 {
		t.Errorf("%d acknowledged writes lost: %v", len(lost), lost[:min(len(lost), 10)])
	}
	if len(twice) > 0 {
		t.Errorf("%d keys present more than once: %v", len(twice), twice[:min(len(twice), 10)])
	}
	if len(log.dupErrs) > 0 {
		t.Errorf("%d fresh inserts failed on the UNIQUE key, so they were applied twice: %v", len(log.dupErrs), log.dupErrs[:min(len(log.dupErrs), 10)])
	}
	if len(phantom) > 0 {
		t.Errorf("%d keys present that no writer attempted or was still attempting: %v", len(phantom), phantom[:min(len(phantom), 10)])
	}

	// Failed writes: their outcome, and only while a node was down (the call
	// overlapped the time from a SIGKILL or SIGSTOP to the node's /readyz
	// after its restart or SIGCONT, plus a second).
	failedApplied := 0
	var outside []string
	for _, f := range log.failed {
		if present[f.key] > 0 {
			failedApplied++
		}
		during := false
		for _, w := range windows {
			if f.start.Before(w.ready.Add(time.Second)) && f.end.After(w.kill) {
				during = true
			}
		}
		if !during {
			outside = append(outside, fmt.Sprintf("writer %d seq %d at +%v (%v): %s",
				f.key.writer, f.key.seq, f.start.Sub(t0).Round(time.Millisecond), f.end.Sub(f.start).Round(time.Millisecond), f.err))
		}
	}
	for i, f := range log.failed {
		if i == 5 {
			t.Logf("... and %d more failed writes", len(log.failed)-i)
			break
		}
		t.Logf("failed write: writer %d seq %d at +%v after %v: %s (applied: %v)",
			f.key.writer, f.key.seq, f.start.Sub(t0).Round(time.Millisecond), f.end.Sub(f.start).Round(time.Millisecond), f.err, present[f.key] > 0)
	}
	if len(outside) > 0 {
		t.Errorf("%d writes failed while every node was up: %v", len(outside), outside[:min(len(outside), 10)])
	}
	if len(log.acked) == 0 {
		t.Fatal("no write was acknowledged")
	}

	// Every voter's copy: integrity_check ok, and the same rows.
	sumTestNode := sha256.Sum256([]byte(logicalDump(t, db)))
	var sums []string
	var counts []int
	for i, a := range admin {
		f := crashBackup(t, a, dbName)
		fdb, err := sql.Open("sqlite3", "file:"+f+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		var ic string
		if err := fdb.QueryRow("PRAGMA integrity_check").Scan(&ic); err != nil || ic != "ok" {
			t.Errorf("%s's backup: integrity_check %q %v", specs[i].name, ic, err)
		}
		n := countRows(t, fdb, "SELECT count(*) FROM k")
		sum := sha256.Sum256([]byte(logicalDump(t, fdb)))
		fdb.Close()
		counts = append(counts, n)
		sums = append(sums, fmt.Sprintf("%x", sum))
		if n != total {
			t.Errorf("%s's backup has %d rows, the test node reads %d", specs[i].name, n, total)
		}
		if sum != sumTestNode {
			t.Errorf("%s's backup dump (SHA-256 %x) differs from the test node's (%x)", specs[i].name, sum, sumTestNode)
		}
	}
	if counts[0] != counts[1] || counts[1] != counts[2] || sums[0] != sums[1] || sums[1] != sums[2] {
		t.Errorf("the voters' backups differ: rows %v, SHA-256 %v", counts, sums)
	}

	t.Logf("%d rounds: %d SIGKILL (per node %v, %d of %s's leader), %d SIGSTOP (per node %v, %d of the leader); %d acknowledged writes, lost %d, duplicated %d; %d writes failed (%d of them applied), %d rows; slowest write %v, slowest ready %v, slowest catch-up %v",
		rounds, kills, incarnations, leaderKills, dbName, pauses, paused, leaderPauses, len(log.acked), len(lost), duplicated, len(log.failed), failedApplied, total,
		log.slowest.Round(time.Millisecond), worstReady.Round(time.Millisecond), worstCatchUp.Round(time.Millisecond))
	t.Logf("slowest /status: %v (%s)", crashSlowestStatus.d.Round(time.Millisecond), crashSlowestStatus.where)
	t.Logf("every voter: %d rows, SHA-256 %s, integrity ok; rounds took %v, the whole test %v",
		counts[0], sums[0][:16], roundsTook.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
}
