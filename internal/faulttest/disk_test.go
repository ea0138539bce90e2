package faulttest

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/rsqlite/rsqlite"
	"github.com/rsqlite/rsqlite/cluster"
	"github.com/rsqlite/rsqlite/internal/clustertest"
	"github.com/rsqlite/rsqlite/internal/detvfs"
	"github.com/rsqlite/rsqlite/internal/raftdisk"
)

// diskFault is one fault of TestDiskFaults: where it hits and how.
type diskFault struct {
	layer string // "sqlite" (the database file) or "raft" (the raft log)
	kind  string // "ENOSPC" or "EIO"
}

func (f diskFault) inject(dir string) {
	prefix := dir + string(filepath.Separator)
	switch {
	case f.layer == "sqlite" && f.kind == "ENOSPC":
		detvfs.InjectFault(prefix, detvfs.NoSpace)
	case f.layer == "sqlite":
		detvfs.InjectFault(prefix, detvfs.IOError)
	case f.kind == "ENOSPC":
		raftdisk.Inject(prefix, raftdisk.NoSpace)
	default:
		raftdisk.Inject(prefix, raftdisk.IOError)
	}
}

func (f diskFault) clear(dir string) {
	prefix := dir + string(filepath.Separator)
	detvfs.InjectFault(prefix, detvfs.NoFault)
	raftdisk.Inject(prefix, raftdisk.NoFault)
}

// wantCode is the SQLite code plain go-sqlite3 reports on such a disk.
func (f diskFault) wantCode() sqlite3.ErrNo {
	if f.kind == "ENOSPC" {
		return sqlite3.ErrFull
	}
	return sqlite3.ErrIoErr
}

// TestDiskFaults: a full disk (ENOSPC) and a failing one (EIO), under the
// SQLite file and under the raft log of one node at a time, while every
// node takes writes. The faulty node's callers get a clear error that says
// so, with the SQLite code plain SQLite gives on that disk; the other nodes
// go on; once the disk is fixed the node catches up by itself; at the end
// every acknowledged write is there exactly once and the replicas are
// identical and pass integrity_check.
func TestDiskFaults(t *testing.T) {
	c := clustertest.New(t, 3)
	const name = "disk.db"
	dbs := c.OpenAll(name)
	if _, err := dbs[0].Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, node INT, n INT)"); err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		next    = map[int]int{}
		acked   = map[[2]int]bool{}
		unknown = map[[2]int]bool{}
	)
	// write inserts one row through node i and records the outcome.
	write := func(i int, timeout time.Duration) error {
		mu.Lock()
		n := next[i]
		next[i]++
		mu.Unlock()
		ctx, cancel := ctxFor(timeout)
		defer cancel()
		_, err := dbs[i].ExecContext(ctx, "INSERT INTO t(node, n) VALUES (?, ?)", i, n)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			acked[[2]int{i, n}] = true
		case !errors.As(err, new(*cluster.DiskFaultError)):
			unknown[[2]int{i, n}] = true // a timeout: it may have been applied
		}
		return err
	}

	faults := []diskFault{{"sqlite", "ENOSPC"}, {"sqlite", "EIO"}, {"raft", "ENOSPC"}, {"raft", "EIO"}}
	if soak() {
		faults = slices.Repeat(faults, 3)
	}
	for k, f := range faults {
		victim := k % 3
		if f.layer == "raft" && k%4 == 2 {
			victim = c.Leader(name) // the leader's log fails: another must take over
		}
		dir := c.Nodes[victim].Dir
		t.Run(f.layer+"-"+f.kind, func(t *testing.T) {
			defer f.clear(dir)
			f.inject(dir)
			// The victim's callers get the disk error within a few
			// writes: one in flight when the disk failed ends with a
			// timeout that names the disk (its outcome is unknown); the
			// next are refused before anything is proposed.
			var got error
			for attempt := 0; attempt < 20 && got == nil; attempt++ {
				err := write(victim, 3*time.Second)
				switch {
				case errors.As(err, new(*cluster.DiskFaultError)):
					got = err
				case err != nil && errors.Is(err, cluster.ErrDiskFault) && errors.Is(err, cluster.ErrTimeout):
					t.Logf("in flight when the disk failed (outcome unknown): %v", err)
				case err != nil:
					t.Errorf("write through the faulty node %d: the error does not name the disk: %v", victim, err)
				}
			}
			if got == nil {
				t.Fatalf("20 writes through node %d with a %s %s fault: none refused with a disk error", victim, f.layer, f.kind)
			}
			var se sqlite3.Error
			if !errors.As(got, &se) || se.Code != f.wantCode() {
				t.Errorf("error %q: sqlite3 code %v, want %v", got, se.Code, f.wantCode())
			}
			if !rsqlite.IsRetryable(got) {
				t.Errorf("a write refused before proposing is not retryable: %v", got)
			}
			if !strings.Contains(got.Error(), "cannot write to its disk") {
				t.Errorf("error does not say what is wrong: %v", got)
			}
			t.Logf("node %d: %v", victim, got)
			if err := cluster.Running(dir).Ready(); err == nil || !strings.Contains(err.Error(), "failing since") {
				t.Errorf("node %d's /readyz during the fault: %v", victim, err)
			}
			// The others go on: a majority of disks is fine.
			for i := range 3 {
				if i == victim {
					continue
				}
				for range 10 {
					if err := write(i, 15*time.Second); err != nil {
						t.Fatalf("write through healthy node %d during the fault on node %d: %v", i, victim, err)
					}
				}
			}
			// The disk is fixed: the node resumes by itself.
			f.clear(dir)
			start := time.Now()
			var err error
			for time.Since(start) < 15*time.Second {
				if err = write(victim, 3*time.Second); err == nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				t.Fatalf("node %d still cannot write 15 s after its disk was fixed: %v", victim, err)
			}
			t.Logf("node %d wrote again %v after the fix", victim, time.Since(start).Round(time.Millisecond))
		})
	}
	if t.Failed() {
		return
	}
	conv, err := c.Converged(name, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := dbs[1].Query("SELECT node, n, count(*) FROM t GROUP BY node, n")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	present := map[[2]int]bool{}
	for rows.Next() {
		var node, n, count int
		if err := rows.Scan(&node, &n, &count); err != nil {
			t.Fatal(err)
		}
		present[[2]int{node, n}] = true
		if count != 1 {
			t.Errorf("row %v is present %d times", [2]int{node, n}, count)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var lost []string
	for w := range acked {
		if !present[w] {
			lost = append(lost, fmt.Sprint(w))
		}
	}
	for w := range present {
		if !acked[w] && !unknown[w] {
			t.Errorf("row %v is present but its write was refused", w)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d acknowledged writes lost: %v", len(lost), lost)
	}
	t.Logf("%d faults; %d writes acknowledged, %d unknown outcome, %d rows; replicas identical at applied index %d",
		len(faults), len(acked), len(unknown), len(present), conv.Applied)
}

// TestRaftLogFsyncFailure: after a failed fsync the kernel may have dropped
// the data it could not write, so the node stops writing its raft log (it
// cannot know what is on disk) and says so to every caller until it is
// restarted; the others go on, and the restarted node catches up.
func TestRaftLogFsyncFailure(t *testing.T) {
	c := clustertest.New(t, 3)
	const name = "fsync.db"
	dbs := c.OpenAll(name)
	if _, err := dbs[0].Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v)"); err != nil {
		t.Fatal(err)
	}
	victim := c.Leader(name)
	prefix := c.Nodes[victim].Dir + string(filepath.Separator)
	raftdisk.Inject(prefix, raftdisk.SyncIOError)
	defer raftdisk.Inject(prefix, raftdisk.NoFault)
	acked, unknown := 0, 0 // unknown: in flight when the fsync failed
	var refused error
	for attempt := 0; attempt < 20 && refused == nil; attempt++ {
		ctx, cancel := ctxFor(3 * time.Second)
		_, err := dbs[victim].ExecContext(ctx, "INSERT INTO t(v) VALUES ('victim')")
		cancel()
		switch {
		case errors.As(err, new(*cluster.DiskFaultError)):
			refused = err
		case err == nil:
			acked++
		default:
			unknown++
		}
	}
	if refused == nil || !strings.Contains(refused.Error(), "restart the process") {
		t.Fatalf("writes through node %d after its raft log fsync failed: want a refusal that says to restart, got %v", victim, refused)
	}
	t.Logf("node %d: %v", victim, refused)
	if se := (sqlite3.Error{}); !errors.As(refused, &se) || se.ExtendedCode != sqlite3.ErrIoErrFsync {
		t.Errorf("a failed fsync maps to sqlite3 code %v/%v, want SQLITE_IOERR_FSYNC", se.Code, se.ExtendedCode)
	}
	// The fault stays after the disk recovers: only a restart clears it.
	raftdisk.Inject(prefix, raftdisk.NoFault)
	time.Sleep(500 * time.Millisecond)
	ctx, cancel := ctxFor(3 * time.Second)
	_, err := dbs[victim].ExecContext(ctx, "INSERT INTO t(v) VALUES ('victim')")
	cancel()
	if !errors.As(err, new(*cluster.DiskFaultError)) {
		t.Fatalf("node %d wrote again without a restart after a failed fsync: %v", victim, err)
	}
	for i := range 3 {
		if i == victim {
			continue
		}
		for range 5 {
			ctx, cancel := ctxFor(15 * time.Second)
			_, err := dbs[i].ExecContext(ctx, "INSERT INTO t(v) VALUES ('other')")
			cancel()
			if err != nil {
				t.Fatalf("write through healthy node %d: %v", i, err)
			}
			acked++
		}
	}
	c.Stop(victim)
	c.Restart(victim, name)
	dbs[victim] = c.Open(victim, name)
	ctx, cancel = ctxFor(15 * time.Second)
	defer cancel()
	if _, err := dbs[victim].ExecContext(ctx, "INSERT INTO t(v) VALUES ('victim after restart')"); err != nil {
		t.Fatalf("node %d after restart: %v", victim, err)
	}
	acked++
	conv, err := c.Converged(name, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := dbs[victim].QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n < acked || n > acked+unknown {
		t.Fatalf("%d rows (err %v), %d writes acknowledged and %d of unknown outcome", n, err, acked, unknown)
	}
	t.Logf("restarted node caught up; %d rows for %d acknowledged and %d unknown writes; replicas identical at applied index %d", n, acked, unknown, conv.Applied)
}
