package detvfs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// openIn opens dir/x.db in WAL mode on a fresh shim, one connection.
func openIn(t *testing.T, dir string) *sql.DB {
	t.Helper()
	v, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // registered first, so it runs after db.Close
		if err := v.Close(); err != nil {
			t.Errorf("VFS.Close: %v", err)
		}
	})
	db := openDSN(t, fmt.Sprintf("file:%s/x.db?vfs=%s&_journal_mode=WAL", dir, v.Name()))
	mustExec(t, db, `CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, b BLOB)`)
	return db
}

// inject sets a fault on dir and clears it when the test ends.
func inject(t *testing.T, dir string, f Fault) {
	t.Helper()
	InjectFault(dir, f)
	t.Cleanup(func() { InjectFault(dir, NoFault) })
}

// bigWrite inserts a 100 KB blob in an explicit transaction, so the pages
// reach the file at COMMIT; it returns the first error.
func bigWrite(db *sql.DB) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	if _, err := tx.Exec(`INSERT INTO t(b) VALUES(randomblob(100000))`); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// wantCode fails unless err is an sqlite3.Error with exactly these codes.
func wantCode(t *testing.T, what string, err error, code sqlite3.ErrNo, ext sqlite3.ErrNoExtended) sqlite3.Error {
	t.Helper()
	var se sqlite3.Error
	if !errors.As(err, &se) {
		t.Fatalf("%s: got %v, want sqlite3.Error %v/%v", what, err, code, ext)
	}
	if se.Code != code || se.ExtendedCode != ext {
		t.Fatalf("%s: got code %d extended %d (%v), want %d/%d", what, se.Code, se.ExtendedCode, err, code, ext)
	}
	return se
}

// intact checks the row count and PRAGMA integrity_check.
func intact(t *testing.T, db *sql.DB, rows int64) {
	t.Helper()
	if n := queryInt(t, db, `SELECT count(*) FROM t`); n != rows {
		t.Fatalf("count = %d, want %d", n, rows)
	}
	if s := queryString(t, db, `PRAGMA integrity_check`); s != "ok" {
		t.Fatalf("integrity_check: %s", s)
	}
}

func TestFaultWrite(t *testing.T) {
	for _, tc := range []struct {
		f     Fault
		code  sqlite3.ErrNo
		ext   sqlite3.ErrNoExtended
		errno syscall.Errno
	}{
		{NoSpace, sqlite3.ErrFull, sqlite3.ErrNoExtended(sqlite3.ErrFull), 0},
		{IOError, sqlite3.ErrIoErr, sqlite3.ErrIoErrWrite, syscall.EIO},
	} {
		t.Run(tc.f.String(), func(t *testing.T) {
			dir, other := t.TempDir(), t.TempDir()
			db, db2 := openIn(t, dir), openIn(t, other)
			for i := 0; i < 5; i++ {
				mustExec(t, db, `INSERT INTO t(b) VALUES(randomblob(1000))`)
			}
			hits := FaultHits()
			inject(t, dir, tc.f)

			se := wantCode(t, "100 KB transaction", bigWrite(db), tc.code, tc.ext)
			// The real VFS leaves errno to chance; ours sets it, but SQLite only
			// reads it for SQLITE_IOERR.
			if se.SystemErrno != tc.errno {
				t.Errorf("SystemErrno = %v, want %v", se.SystemErrno, tc.errno)
			}
			_, err := db.Exec(`INSERT INTO t(b) VALUES(1)`)
			wantCode(t, "autocommit INSERT", err, tc.code, tc.ext)
			if FaultHits() <= hits {
				t.Fatalf("FaultHits did not increase (%d)", hits)
			}
			// Reads keep working; nothing was half-written.
			intact(t, db, 5)
			// Another directory is untouched.
			if err := bigWrite(db2); err != nil {
				t.Fatalf("other directory: %v", err)
			}
			intact(t, db2, 1)

			InjectFault(dir, NoFault)
			after := FaultHits()
			if err := bigWrite(db); err != nil {
				t.Fatalf("after clearing: %v", err)
			}
			if FaultHits() != after {
				t.Fatal("a cleared fault still fired")
			}
			intact(t, db, 6)
			// And it survives a reopen (WAL recovery, no stray frames).
			db.Close()
			db = openIn(t, dir)
			intact(t, db, 6)
		})
	}
}

func TestFaultCheckpoint(t *testing.T) {
	for _, tc := range []struct {
		f    Fault
		code sqlite3.ErrNo
		ext  sqlite3.ErrNoExtended
	}{
		// NoSpace: syncing the WAL works, copying pages into the db fails.
		{NoSpace, sqlite3.ErrFull, sqlite3.ErrNoExtended(sqlite3.ErrFull)},
		// IOError: the WAL is synced before any page is copied.
		{IOError, sqlite3.ErrIoErr, sqlite3.ErrIoErrFsync},
	} {
		t.Run(tc.f.String(), func(t *testing.T) {
			dir := t.TempDir()
			db := openIn(t, dir)
			mustExec(t, db, `PRAGMA wal_autocheckpoint=0`)
			for i := 0; i < 20; i++ {
				mustExec(t, db, `INSERT INTO t(b) VALUES(randomblob(10000))`)
			}
			dbFile := filepath.Join(dir, "x.db")
			size0 := fileSize(t, dbFile)
			hits := FaultHits()
			inject(t, dir, tc.f)

			_, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
			wantCode(t, "wal_checkpoint", err, tc.code, tc.ext)
			if FaultHits() <= hits {
				t.Fatal("FaultHits did not increase")
			}
			intact(t, db, 20)

			InjectFault(dir, NoFault)
			var busy, log, done int
			if err := db.QueryRow(`PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &log, &done); err != nil {
				t.Fatalf("wal_checkpoint after clearing: %v", err)
			}
			if busy != 0 || log != 0 || done != 0 {
				t.Fatalf("wal_checkpoint(TRUNCATE) = %d %d %d, want 0 0 0", busy, log, done)
			}
			if fileSize(t, dbFile) <= size0 || fileSize(t, dbFile+"-wal") != 0 {
				t.Fatalf("checkpoint did not move the WAL into the db")
			}
			intact(t, db, 20)
		})
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestFaultPrefix(t *testing.T) {
	base := t.TempDir()
	dbs := map[string]*sql.DB{}
	for _, n := range []string{"node1", "node10", "node2"} {
		if err := os.Mkdir(filepath.Join(base, n), 0o755); err != nil {
			t.Fatal(err)
		}
		dbs[n] = openIn(t, filepath.Join(base, n))
	}
	full := sqlite3.ErrNoExtended(sqlite3.ErrFull)
	check := func(step string, want map[string]sqlite3.ErrNoExtended) {
		t.Helper()
		for n, db := range dbs {
			err := bigWrite(db)
			switch w := want[n]; {
			case w == 0 && err != nil:
				t.Fatalf("%s: %s: %v", step, n, err)
			case w != 0:
				var se sqlite3.Error
				if !errors.As(err, &se) || se.ExtendedCode != w {
					t.Fatalf("%s: %s: got %v, want extended code %d", step, n, err, w)
				}
			}
		}
	}
	// A trailing slash and "." segments name the same directory.
	inject(t, filepath.Join(base, "node1")+"/./", NoSpace)
	check("node1", map[string]sqlite3.ErrNoExtended{"node1": full})
	// The longest covering prefix wins; "node1" still does not cover "node10".
	inject(t, base, IOError)
	check("base+node1", map[string]sqlite3.ErrNoExtended{"node1": full, "node10": sqlite3.ErrIoErrWrite, "node2": sqlite3.ErrIoErrWrite})
	InjectFault(filepath.Join(base, "node1"), NoFault)
	check("base", map[string]sqlite3.ErrNoExtended{"node1": sqlite3.ErrIoErrWrite, "node10": sqlite3.ErrIoErrWrite, "node2": sqlite3.ErrIoErrWrite})
	// Registering a prefix again replaces its fault.
	InjectFault(base, NoSpace)
	check("base again", map[string]sqlite3.ErrNoExtended{"node1": full, "node10": full, "node2": full})
	InjectFault(base, NoFault)
	check("cleared", nil)

	// A symlink to a directory names that directory (SQLite resolves links).
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(filepath.Join(base, "node2"), link); err != nil {
		t.Fatal(err)
	}
	inject(t, link, NoSpace)
	check("symlink", map[string]sqlite3.ErrNoExtended{"node2": full})
}

func TestFaultTable(t *testing.T) {
	ClearFaults()
	dir := t.TempDir()
	t.Cleanup(ClearFaults)
	for i := 0; i < MaxFaults; i++ {
		InjectFault(filepath.Join(dir, fmt.Sprint(i)), IOError)
	}
	InjectFault(filepath.Join(dir, "0"), NoSpace) // replacing needs no new slot
	InjectFault(filepath.Join(dir, "none"), NoFault)
	for _, bad := range []func(){
		func() { InjectFault(filepath.Join(dir, "extra"), NoSpace) },
		func() { InjectFault("", NoSpace) },
		func() { InjectFault(dir, Fault(7)) },
		func() { InjectFault("/"+strings.Repeat("x", 600), NoSpace) },
	} {
		if !panics(bad) {
			t.Fatal("expected a panic")
		}
	}
	// Clearing frees a slot.
	InjectFault(filepath.Join(dir, "3"), NoFault)
	InjectFault(filepath.Join(dir, "extra"), NoSpace)
	ClearFaults()
	db := openIn(t, dir)
	if err := bigWrite(db); err != nil {
		t.Fatalf("after ClearFaults: %v", err)
	}
}

func panics(f func()) (p bool) {
	defer func() { p = recover() != nil }()
	f()
	return false
}

// TestFaultProbe drives the wrapper's xWrite/xSync/xTruncate directly (SQLite
// never reaches xTruncate or xSync without a write first).
func TestFaultProbe(t *testing.T) {
	v, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "p.db")
	for _, tc := range []struct {
		f                     Fault
		write, sync, truncate int
	}{
		{NoFault, 0, 0, 0},
		{NoSpace, int(sqlite3.ErrFull), 0, 0},
		{IOError, int(sqlite3.ErrIoErrWrite), int(sqlite3.ErrIoErrFsync), int(sqlite3.ErrIoErrTruncate)},
	} {
		InjectFault(dir, tc.f)
		hits := FaultHits()
		got := probe(v, path, true)
		InjectFault(dir, NoFault)
		want := probeResult{0, tc.write, tc.sync, tc.truncate, true}
		if got != want {
			t.Errorf("%v: got %+v, want %+v", tc.f, got, want)
		}
		nFailed := 0
		for _, rc := range []int{tc.write, tc.sync, tc.truncate} {
			if rc != 0 {
				nFailed++
			}
		}
		if d := FaultHits() - hits; d != uint64(nFailed) {
			t.Errorf("%v: FaultHits grew by %d, want %d", tc.f, d, nFailed)
		}
	}
	// A failed open leaves pMethods NULL.
	got := probe(v, filepath.Join(dir, "missing", "p.db"), false)
	if got.open != int(sqlite3.ErrCantOpen) || !got.mirrored {
		t.Errorf("failed open: %+v", got)
	}
}

// TestWrappedFilesShareLocksAndWAL: a shim connection and a plain "unix"
// connection on one file still exclude each other and share the WAL index,
// and mmap reads work through the wrapper.
func TestWrappedFilesShareLocksAndWAL(t *testing.T) {
	dir := t.TempDir()
	db := openIn(t, dir)
	if m := queryString(t, db, `PRAGMA journal_mode`); m != "wal" {
		t.Fatalf("journal_mode = %s", m)
	}
	plain := openDSN(t, fmt.Sprintf("file:%s/x.db?vfs=unix&_busy_timeout=0", dir))
	ctx := context.Background()
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExecContext(ctx, `INSERT INTO t(b) VALUES(randomblob(50000))`); err != nil {
		t.Fatal(err)
	}
	_, err = plain.Exec(`INSERT INTO t(b) VALUES(1)`)
	wantCode(t, "plain write during shim transaction", err, sqlite3.ErrBusy, sqlite3.ErrNoExtended(sqlite3.ErrBusy))
	if _, err := c.ExecContext(ctx, `COMMIT`); err != nil {
		t.Fatal(err)
	}
	if n := queryInt(t, plain, `SELECT count(*) FROM t`); n != 1 {
		t.Fatalf("plain sees %d rows", n)
	}
	mustExec(t, plain, `INSERT INTO t(b) VALUES(2)`)
	if _, err := c.ExecContext(ctx, `PRAGMA mmap_size=1048576`); err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := c.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("shim sees %d rows (%v)", n, err)
	}
	if _, err := c.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	var s string
	if err := c.QueryRowContext(ctx, `SELECT sum(length(b)) || '/' || (SELECT integrity_check FROM pragma_integrity_check) FROM t`).Scan(&s); err != nil || s != "50001/ok" {
		t.Fatalf("after checkpoint with mmap: %q (%v)", s, err)
	}
}

// TestFaultConcurrent toggles a fault while writers run: the faulted
// database only ever sees clean SQLITE_FULL failures and stays intact, and
// the other one never fails.
func TestFaultConcurrent(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	db, db2 := openIn(t, dir), openIn(t, other)
	var stopOnce sync.Once
	stop, stopped := make(chan struct{}), make(chan struct{})
	halt := func() { stopOnce.Do(func() { close(stop); <-stopped }) }
	defer halt()
	go func() {
		defer close(stopped)
		defer InjectFault(dir, NoFault)
		for f := NoSpace; ; f = NoSpace - f { // NoSpace, NoFault, ...
			select {
			case <-stop:
				return
			default:
				InjectFault(dir, f)
			}
		}
	}()

	const n = 300
	type result struct {
		ok  int64
		err error
	}
	writer := func(db *sql.DB, mayFail bool, res chan<- result) {
		var r result
		for i := 0; i < n && r.err == nil; i++ {
			_, err := db.Exec(`INSERT INTO t(b) VALUES(randomblob(3000))`)
			var se sqlite3.Error
			switch {
			case err == nil:
				r.ok++
			case !mayFail || !errors.As(err, &se) || se.ExtendedCode != sqlite3.ErrNoExtended(sqlite3.ErrFull):
				r.err = err
			}
		}
		res <- r
	}
	res, res2 := make(chan result, 1), make(chan result, 1)
	go writer(db, true, res)
	go writer(db2, false, res2)
	r, r2 := <-res, <-res2
	halt()
	if r.err != nil || r2.err != nil {
		t.Fatalf("faulted: %v; other: %v", r.err, r2.err)
	}
	intact(t, db, r.ok)
	intact(t, db2, n)
	t.Logf("%d of %d inserts succeeded under the toggling fault", r.ok, n)
}
