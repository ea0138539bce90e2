package detvfs

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
)

const tsFmt = "2006-01-02 15:04:05.000"

// openShim opens a database on a fresh shim VFS with a single connection.
// extra is appended to the DSN (e.g. "&_stmt_cache_size=8").
func openShim(t testing.TB, extra string) (*VFS, *sql.DB) {
	t.Helper()
	v, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := v.Close(); err != nil {
			t.Errorf("VFS.Close: %v", err)
		}
	})
	db := openDSN(t, fmt.Sprintf("file:%s/x.db?vfs=%s&_journal_mode=WAL%s", t.TempDir(), v.Name(), extra))
	return v, db
}

func openDSN(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	return db
}

func mustExec(t testing.TB, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func queryString(t testing.TB, db *sql.DB, q string, args ...any) string {
	t.Helper()
	var s string
	if err := db.QueryRow(q, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return s
}

func queryInt(t testing.TB, db *sql.DB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestHeaderMatchesModule(t *testing.T) {
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Skipf("go env GOMODCACHE: %v", err)
	}
	src := filepath.Join(strings.TrimSpace(string(out)), "github.com", "mattn", "go-sqlite3@v1.14.53", "sqlite3-binding.h")
	want, err := os.ReadFile(src)
	if err != nil {
		t.Skipf("module header not found: %v", err)
	}
	got, err := os.ReadFile("sqlite3-binding.h")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("sqlite3-binding.h differs from %s: re-copy it", src)
	}
}

func TestNames(t *testing.T) {
	a, err := New()
	if err != nil {
		t.Fatal(err)
	}
	b, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if a.Name() == b.Name() || !strings.HasPrefix(a.Name(), "rsqlite-det-") {
		t.Fatalf("names %q %q", a.Name(), b.Name())
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil { // second Close is a no-op
		t.Fatal(err)
	}
	a.Set(1, 1) // no-ops after Close
	a.Clear()
	a.ResetConn()
	a.SetGuard(true)
	if a.LastDenied() != "" {
		t.Fatal("LastDenied after Close")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// An unregistered name is rejected by SQLite.
	db, _ := sql.Open("sqlite3", fmt.Sprintf("file:%s/y.db?vfs=%s", t.TempDir(), a.Name()))
	defer db.Close()
	if err := db.Ping(); err == nil || !strings.Contains(err.Error(), "no such vfs") {
		t.Fatalf("expected no such vfs, got %v", err)
	}
}

func TestClock(t *testing.T) {
	v, db := openShim(t, "")
	ts := time.Date(2001, 2, 3, 4, 5, 6, 789e6, time.UTC)
	v.Set(ts.UnixMilli(), 1)

	var cts, cd, ct, dt, f string
	var ue int64
	var ues, jd float64
	err := db.QueryRow(`SELECT CURRENT_TIMESTAMP, CURRENT_DATE, CURRENT_TIME, datetime('now'),
		strftime('%f','now'), unixepoch(), unixepoch('now','subsec'), julianday('now')`).
		Scan(&cts, &cd, &ct, &dt, &f, &ue, &ues, &jd)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("CURRENT_TIMESTAMP", cts, "2001-02-03 04:05:06")
	check("CURRENT_DATE", cd, "2001-02-03")
	check("CURRENT_TIME", ct, "04:05:06")
	check("datetime('now')", dt, "2001-02-03 04:05:06")
	check("strftime('%f')", f, "06.789")
	check("unixepoch()", ue, ts.Unix())
	check("unixepoch subsec", ues, float64(ts.UnixMilli())/1000.0)
	check("julianday", jd, float64(ts.UnixMilli()+210866760000000)/86400000.0)

	// DEFAULTs and triggers, and a new Set between statements.
	mustExec(t, db, `CREATE TABLE ev(id INTEGER PRIMARY KEY, v TEXT,
		ts TEXT DEFAULT CURRENT_TIMESTAMP, d TEXT DEFAULT CURRENT_DATE, tm TEXT DEFAULT CURRENT_TIME,
		f TEXT DEFAULT (strftime('%Y-%m-%d %H:%M:%f','now')))`)
	mustExec(t, db, `CREATE TABLE audit(id INTEGER, at TEXT)`)
	mustExec(t, db, `CREATE TRIGGER ev_ai AFTER INSERT ON ev BEGIN
		INSERT INTO audit VALUES(new.id, strftime('%Y-%m-%d %H:%M:%f','now')); END`)
	stamps := []time.Time{ts, ts.Add(36*time.Hour + 1234*time.Millisecond), time.Date(2099, 12, 31, 23, 59, 59, 999e6, time.UTC)}
	for i, s := range stamps {
		v.Set(s.UnixMilli(), uint64(i))
		mustExec(t, db, `INSERT INTO ev(id, v) VALUES(?, 'x')`, i)
	}
	for i, s := range stamps {
		var gts, gd, gtm, gf, ga string
		err := db.QueryRow(`SELECT ts, d, tm, f, at FROM ev JOIN audit USING(id) WHERE id=?`, i).
			Scan(&gts, &gd, &gtm, &gf, &ga)
		if err != nil {
			t.Fatal(err)
		}
		check("DEFAULT CURRENT_TIMESTAMP", gts, s.Format("2006-01-02 15:04:05"))
		check("DEFAULT CURRENT_DATE", gd, s.Format("2006-01-02"))
		check("DEFAULT CURRENT_TIME", gtm, s.Format("15:04:05"))
		check("DEFAULT strftime", gf, s.Format(tsFmt))
		check("trigger 'now'", ga, s.Format(tsFmt))
	}

	// Times around the epoch and before it.
	for _, s := range []time.Time{time.Unix(0, 0).UTC(), time.Date(1900, 1, 1, 0, 0, 0, 1e6, time.UTC)} {
		v.Set(s.UnixMilli(), 0)
		check("epoch-ish", queryString(t, db, `SELECT strftime('%Y-%m-%d %H:%M:%f','now')`), s.Format(tsFmt))
	}

	// Clear goes back to the real clock.
	v.Clear()
	realNow := float64(time.Now().UnixMilli()) / 1000
	var got float64
	if err := db.QueryRow(`SELECT unixepoch('now','subsec')`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if math.Abs(got-realNow) > 5 {
		t.Errorf("after Clear: now=%v, real %v", got, realNow)
	}

	// A plain "unix" connection to the same file never sees the stamp.
	v.Set(ts.UnixMilli(), 1)
	plain := openDSN(t, "file:"+strings.TrimPrefix(dbPath(t, db), "file:")+"?vfs=unix")
	if s := queryString(t, plain, `SELECT datetime('now')`); s == "2001-02-03 04:05:06" {
		t.Errorf("plain connection saw the stamped clock")
	}
}

func dbPath(t testing.TB, db *sql.DB) string {
	t.Helper()
	var seq int
	var name, file string
	if err := db.QueryRow(`PRAGMA database_list`).Scan(&seq, &name, &file); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestNoCrossTalk(t *testing.T) {
	const n = 2000
	type inst struct {
		v    *VFS
		db   *sql.DB
		base int64
		step int64
	}
	var insts [2]inst
	for k := range insts {
		v, db := openShim(t, "")
		mustExec(t, db, `CREATE TABLE t(i INTEGER PRIMARY KEY, at TEXT, r INTEGER)`)
		insts[k] = inst{v, db, int64(k+1) * 1_000_000_000_000, int64(k*7 + 3)}
	}
	stamp := func(in inst, i int) int64 { return in.base + int64(i)*in.step*1000 + int64(i%1000) }
	seed := func(k, i int) uint64 { return uint64(k)<<32 | uint64(i) }
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for k := range insts {
		wg.Add(1)
		go func(k int, in inst) {
			defer wg.Done()
			for i := 0; i < n; i++ {
				in.v.Set(stamp(in, i), seed(k, i))
				if _, err := in.db.Exec(`INSERT INTO t VALUES(?, strftime('%Y-%m-%d %H:%M:%f','now'), random())`, i); err != nil {
					errs <- err
					return
				}
			}
		}(k, insts[k])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for k, in := range insts {
		rows, err := in.db.Query(`SELECT i, at, r FROM t ORDER BY i`)
		if err != nil {
			t.Fatal(err)
		}
		bad, cnt := 0, 0
		for rows.Next() {
			var i int
			var at string
			var r int64
			if err := rows.Scan(&i, &at, &r); err != nil {
				t.Fatal(err)
			}
			cnt++
			if at != time.UnixMilli(stamp(in, i)).UTC().Format(tsFmt) || r != modelRandom(seed(k, i), 0) {
				bad++
			}
		}
		rows.Close()
		if cnt != n || bad != 0 {
			t.Errorf("db %d: %d rows, %d mismatches", k, cnt, bad)
		}
	}
}

func TestResetConn(t *testing.T) {
	v, db := openShim(t, "")
	v.ResetConn() // fine before any statement
	mustExec(t, db, `CREATE TABLE t(a)`)
	mustExec(t, db, `INSERT INTO t VALUES(1),(2),(3)`)
	if id := queryInt(t, db, `SELECT last_insert_rowid()`); id != 3 {
		t.Fatalf("last_insert_rowid = %d, want 3", id)
	}
	v.ResetConn()
	if id := queryInt(t, db, `SELECT last_insert_rowid()`); id != 0 {
		t.Fatalf("after ResetConn last_insert_rowid = %d, want 0", id)
	}
	if v.openConns() != 1 {
		t.Fatalf("openConns = %d", v.openConns())
	}
	if err := v.Close(); !errors.Is(err, ErrConnOpen) {
		t.Fatalf("Close with open connection: %v", err)
	}
	db.Close()
	if v.openConns() != 0 {
		t.Fatalf("openConns after close = %d", v.openConns())
	}
	v.ResetConn() // no connection: no-op
	v.SetGuard(true)
	v.SetGuard(false)
}

// isAuth reports whether err is SQLite's SQLITE_AUTH.
func isAuth(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrAuth
}
