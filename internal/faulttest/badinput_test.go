package faulttest

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rsqlite/rsqlite/internal/clustertest"
)

// guard runs f and fails the test if it takes longer than d: a hang is a
// failure of its own, reported with the case's name.
func guard(t *testing.T, name string, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: still running after %v (hang)", name, d)
	}
}

// TestBadInputDSN: malformed DSNs give a clear error from sql.Open or the
// first use, quickly, and never start a node.
func TestBadInputDSN(t *testing.T) {
	dir := t.TempDir()
	p := func(s string) string { return "file:" + filepath.Join(dir, s) }
	long := strings.Repeat("n", 240) + ".db"
	for _, dsn := range []string{
		"",
		"file:",
		":memory:",
		"file::memory:",
		p("a.db") + "?mode=memory",
		p("a.db") + "?raft=127.0.0.1:0",
		p("a.db") + "?raft=127.0.0.1",
		p("a.db") + "?raft=:7001",
		p("a.db") + "?raft=[::1",
		p("a.db") + "?raft=999.1.1.1:7001",
		p("a.db") + "?peers=127.0.0.1:7001",
		p("a.db") + "?raft=127.0.0.1:7001&peers=127.0.0.1:7002,127.0.0.1:7003",
		p("a.db") + "?raft=127.0.0.1:7001&raft=127.0.0.1:7001",
		p("a.db") + "?nosuch=1",
		p("a.db") + "?timeout=-1s",
		p("a.db") + "?timeout=",
		p("a.db") + "?_loc=Nowhere/Zone",
		p("a.db") + "?consistency=eventual",
		p("a.db") + "?_journal_mode=DELETE",
		p("a.db") + "?cache=shared",
		p("a.db") + "?vfs=unix",
		p("a.db") + "?%zz=1",
		p("a%zz.db"),
		p("a.db") + "#frag",
		"file://otherhost" + filepath.Join(dir, "a.db"),
		p("a\x00b.db"),
		p(".hidden.db"),
		"file:" + dir + "/sub/",
		p(long),
		p("a.db") + "?raft=127.0.0.1:7001&peers=127.0.0.1:7001,\xff:1",
	} {
		guard(t, fmt.Sprintf("DSN %q", dsn), 15*time.Second, func() {
			db, err := sql.Open("rsqlite", dsn)
			if err == nil {
				ctx, cancel := ctxFor(5 * time.Second)
				err = db.PingContext(ctx)
				cancel()
				db.Close()
			}
			switch {
			case err == nil:
				t.Errorf("DSN %q: accepted", dsn)
			case !strings.Contains(err.Error(), "rsqlite"):
				t.Errorf("DSN %q: error does not say where it comes from: %v", dsn, err)
			case errors.Is(err, context.DeadlineExceeded):
				t.Errorf("DSN %q: timed out instead of a clear error: %v", dsn, err)
			}
		})
	}
}

// TestBadInput: statements and arguments at and past the limits, refused
// statements, pragmas, invalid UTF-8 and NUL bytes. Each gives a clear
// error or the correct result, and at the end every replica is identical.
func TestBadInput(t *testing.T) {
	c := clustertest.New(t, 3)
	const name = "bad.db"
	dbs := c.OpenAll(name)
	w, r := dbs[0], dbs[1] // write through one node, read back through another
	if _, err := w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v)"); err != nil {
		t.Fatal(err)
	}
	// readBack returns row id's value as seen through another node.
	readBack := func(id int64) (any, error) {
		ctx, cancel := ctxFor(10 * time.Second)
		defer cancel()
		var v any
		err := r.QueryRowContext(ctx, "SELECT v FROM t WHERE id = ?", id).Scan(&v)
		return v, err
	}
	insert := func(v any) (int64, error) {
		ctx, cancel := ctxFor(20 * time.Second)
		defer cancel()
		res, err := w.ExecContext(ctx, "INSERT INTO t(v) VALUES (?)", v)
		if err != nil {
			return 0, err
		}
		return res.LastInsertId()
	}
	roundTrip := func(what string, v any, want any) {
		id, err := insert(v)
		if err != nil {
			t.Errorf("%s: insert: %v", what, err)
			return
		}
		got, err := readBack(id)
		if err != nil {
			t.Errorf("%s: read back: %v", what, err)
			return
		}
		if !equalValue(got, want) {
			t.Errorf("%s: read back %s, want %s", what, short(got), short(want))
		}
	}
	// wantErr runs an Exec and requires an error containing one of subs.
	wantErr := func(what, query string, args []any, subs ...string) {
		guard(t, what, 60*time.Second, func() {
			ctx, cancel := ctxFor(30 * time.Second)
			defer cancel()
			_, err := w.ExecContext(ctx, query, args...)
			if err == nil {
				t.Errorf("%s: no error", what)
				return
			}
			for _, s := range subs {
				if strings.Contains(err.Error(), s) {
					return
				}
			}
			t.Errorf("%s: unclear error (want one of %q): %.300v", what, subs, err)
		})
	}

	t.Run("blobs", func(t *testing.T) {
		mb := make([]byte, 1<<20)
		for i := range mb {
			mb[i] = byte(i*7 + i>>8)
		}
		guard(t, "1 MiB blob", 60*time.Second, func() { roundTrip("1 MiB blob", mb, mb) })
		big := bytes.Repeat([]byte("0123456789abcdef"), 8<<20/16)
		guard(t, "8 MiB blob", 60*time.Second, func() { roundTrip("8 MiB blob", big, big) })
		empty := []byte{}
		guard(t, "empty blob", 20*time.Second, func() { roundTrip("empty blob", empty, empty) })
	})

	t.Run("oversized", func(t *testing.T) {
		huge := bytes.Repeat([]byte{'x'}, 65<<20)
		wantErr("65 MiB argument", "INSERT INTO t(v) VALUES (?)", []any{huge}, "limit")
		wantErr("65 MiB statement", "INSERT INTO t(v) VALUES ('"+string(huge)+"')", nil, "limit")
	})

	t.Run("parameters", func(t *testing.T) {
		values := func(n int) (string, []any) {
			args := make([]any, n)
			for i := range args {
				args[i] = int64(i)
			}
			return "INSERT INTO t(v) VALUES " + strings.TrimSuffix(strings.Repeat("(?),", n), ","), args
		}
		guard(t, "10,000 parameters", 60*time.Second, func() {
			q, args := values(10000)
			ctx, cancel := ctxFor(30 * time.Second)
			defer cancel()
			res, err := w.ExecContext(ctx, q, args...)
			if err != nil {
				t.Errorf("10,000-parameter insert: %v", err)
				return
			}
			if n, _ := res.RowsAffected(); n != 10000 {
				t.Errorf("10,000-parameter insert: RowsAffected %d", n)
			}
			var n int
			sel := "SELECT count(*) FROM t WHERE v IN (" + strings.TrimSuffix(strings.Repeat("?,", 10000), ",") + ")"
			if err := r.QueryRowContext(ctx, sel, args...).Scan(&n); err != nil || n != 10000 {
				t.Errorf("10,000-parameter select: %d %v", n, err)
			}
		})
		q, args := values(40000)
		wantErr("40,000 parameters", q, args, "too many SQL variables")
		guard(t, "40,000-parameter read", 30*time.Second, func() {
			ctx, cancel := ctxFor(20 * time.Second)
			defer cancel()
			sel := "SELECT count(*) FROM t WHERE v IN (" + strings.TrimSuffix(strings.Repeat("?,", 40000), ",") + ")"
			err := r.QueryRowContext(ctx, sel, args...).Scan(new(int64))
			if err == nil || !strings.Contains(err.Error(), "too many SQL variables") {
				t.Errorf("40,000-parameter select: %v", err)
			}
		})
		wantErr("too few arguments", "INSERT INTO t(v) VALUES (?), (?)", []any{1}, "arg", "argument")
	})

	t.Run("refused", func(t *testing.T) {
		for _, q := range []string{
			"ATTACH DATABASE '" + filepath.Join(t.TempDir(), "x.db") + "' AS x",
			"SELECT load_extension('libnothing')",
			"INSERT INTO t(v) SELECT load_extension('libnothing')",
			"VACUUM INTO '" + filepath.Join(t.TempDir(), "copy.db") + "'",
			"CREATE TEMP TABLE scratch(x)",
			"CREATE TEMPORARY VIEW tv AS SELECT 1",
			"CREATE TEMP TRIGGER tt AFTER INSERT ON t BEGIN SELECT 1; END",
			"INSERT INTO temp.scratch VALUES (1)",
		} {
			wantErr(q, q, nil, "cannot replicate", "not supported", "no such table")
		}
	})

	t.Run("pragmas", func(t *testing.T) {
		// Unknown pragmas are no-ops in SQLite; dangerous ones must be
		// refused or harmless. Either way, nothing may hang or diverge,
		// and the database must keep working.
		for _, q := range []string{
			"PRAGMA no_such_pragma",
			"PRAGMA no_such_pragma = 1",
			"PRAGMA journal_mode = DELETE",
			"PRAGMA writable_schema = ON",
			"PRAGMA synchronous = OFF",
			"PRAGMA locking_mode = EXCLUSIVE",
			"PRAGMA user_version = 7",
			"PRAGMA wal_checkpoint(TRUNCATE)",
			"PRAGMA temp_store_directory = '/tmp'",
			"PRAGMA query_only = ON",
		} {
			guard(t, q, 30*time.Second, func() {
				ctx, cancel := ctxFor(20 * time.Second)
				defer cancel()
				_, err := w.ExecContext(ctx, q)
				t.Logf("%s: %v", q, err)
				if errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("%s: timed out: %v", q, err)
				}
			})
		}
		roundTrip("write after the pragmas", "still works", "still works")
		for i, db := range dbs {
			var v int
			if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != 7 {
				t.Errorf("node %d: user_version %d %v, want 7", i, v, err)
			}
		}
	})

	t.Run("utf8-and-nul", func(t *testing.T) {
		bad := "a\xff\xfeb\xc3"
		roundTrip("invalid UTF-8 string argument", bad, bad)
		roundTrip("NUL in string argument", "a\x00b", "a\x00b")
		roundTrip("NUL in blob argument", []byte("a\x00b"), []byte("a\x00b"))
		guard(t, "invalid UTF-8 in SQL", 20*time.Second, func() {
			id, err := insertSQL(w, "INSERT INTO t(v) VALUES ('x\xff\xfey')")
			if err != nil {
				t.Logf("invalid UTF-8 in SQL: error %v", err)
				return
			}
			if got, err := readBack(id); err != nil || !equalValue(got, "x\xff\xfey") {
				t.Errorf("invalid UTF-8 in SQL: read back %q %v", got, err)
			}
		})
		// go-sqlite3 passes SQL to SQLite as a C string, so SQL ends at its
		// first NUL byte: rsqlite must do the same on every node (the text
		// after the NUL is not run), never more.
		count := func() int {
			var n int
			if err := r.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		for _, tc := range []struct {
			q       string
			added   int
			wantErr bool
		}{
			{"INSERT INTO t(v) VALUES ('a\x00b')", 0, true},
			{"INSERT INTO t(v) VALUES (1)\x00; DROP TABLE t", 1, false},
			{"INSERT INTO t(v) VALUES (1);\x00 INSERT INTO t(v) VALUES (2)", 1, false},
			{"\x00", 0, false},
			{"\x00INSERT INTO t(v) VALUES (1)", 0, false},
		} {
			guard(t, fmt.Sprintf("%q", tc.q), 20*time.Second, func() {
				before := count()
				_, err := insertSQL(w, tc.q)
				added := count() - before
				t.Logf("%q: %v (%d rows added)", tc.q, err, added)
				if (err != nil) != tc.wantErr || added != tc.added {
					t.Errorf("%q: error %v and %d rows added; want error=%v and %d rows, as go-sqlite3", tc.q, err, added, tc.wantErr, tc.added)
				}
			})
		}
		var n int
		if err := r.QueryRow("SELECT count(*) FROM sqlite_schema WHERE name = 't'").Scan(&n); err != nil || n != 1 {
			t.Errorf("table t after the NUL statements: %d %v", n, err)
		}
		for _, q := range []string{"", " ", ";", "-- nothing", "/* nothing */"} {
			guard(t, fmt.Sprintf("%q", q), 20*time.Second, func() {
				_, err := insertSQL(w, q)
				t.Logf("empty statement %q: %v", q, err)
			})
		}
	})

	// Every replica is identical after all of it.
	conv, err := c.Converged(name, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("replicas identical at applied index %d", conv.Applied)
}

func insertSQL(db *sql.DB, q string) (int64, error) {
	ctx, cancel := ctxFor(15 * time.Second)
	defer cancel()
	res, err := db.ExecContext(ctx, q)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

func equalValue(got, want any) bool {
	switch w := want.(type) {
	case []byte:
		g, ok := got.([]byte)
		return ok && bytes.Equal(g, w)
	case string:
		switch g := got.(type) {
		case string:
			return g == w
		case []byte:
			return string(g) == w
		}
		return false
	}
	return got == want
}

func short(v any) string {
	s := fmt.Sprintf("%T %q", v, v)
	if len(s) > 80 {
		s = s[:80] + fmt.Sprintf("... (%d bytes)", len(s))
	}
	return s
}
