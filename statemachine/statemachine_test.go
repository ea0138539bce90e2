package statemachine

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sm "github.com/lni/dragonboat/v4/statemachine"
	"github.com/mattn/go-sqlite3"

	"github.com/rsqlite/rsqlite/internal/command"
)

// testSM is an SM driven directly (no raft) with a running raft index.
type testSM struct {
	*SM
	t     testing.TB
	index uint64
}

func openSM(t testing.TB, path string) *testSM {
	t.Helper()
	s := New(Options{Path: path})
	idx, err := s.Open(make(chan struct{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &testSM{SM: s, t: t, index: idx}
}

func execCmd(sqlText string, args ...any) *command.Command {
	st := command.Statement{SQL: sqlText}
	for i, a := range args {
		st.Args = append(st.Args, command.Arg{Ordinal: i + 1, Value: a})
	}
	return &command.Command{Kind: command.KindExec, Time: 981173106789, Seed: 42, Statements: []command.Statement{st}}
}

// apply applies cmds as one batch and returns their decoded results.
func (s *testSM) apply(cmds ...*command.Command) []*command.Result {
	s.t.Helper()
	ents := make([]sm.Entry, len(cmds))
	for i, c := range cmds {
		b, err := command.Encode(nil, c)
		if err != nil {
			s.t.Fatal(err)
		}
		if c.Encoding == 1 {
			b[0] = 1 // an entry written by a version 1 node (same layout)
		}
		s.index++
		ents[i] = sm.Entry{Index: s.index, Cmd: b}
	}
	out, err := s.Update(ents)
	if err != nil {
		s.t.Fatal(err)
	}
	res := make([]*command.Result, len(out))
	for i, e := range out {
		r, err := command.DecodeResult(e.Result.Data)
		if err != nil {
			s.t.Fatal(err)
		}
		res[i] = r
	}
	return res
}

func (s *testSM) mustApply(cmds ...*command.Command) []*command.Result {
	s.t.Helper()
	res := s.apply(cmds...)
	for i, r := range res {
		if r.Err != nil {
			s.t.Fatalf("command %d (%q): %v", i, cmds[i].Statements[0].SQL, r.Err)
		}
	}
	return res
}

// dump is a logical dump of every user table: schema and rows in rowid order.
func dump(t testing.TB, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite3", FileURI(path, url.Values{"mode": {"ro"}}))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var buf bytes.Buffer
	rows, err := db.Query(`SELECT type, name, coalesce(sql, '') FROM sqlite_schema ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var typ, name, ddl string
		rows.Scan(&typ, &name, &ddl)
		fmt.Fprintf(&buf, "%s %s %s\n", typ, name, ddl)
		if typ == "table" && !strings.HasPrefix(name, "_rsqlite_") {
			tables = append(tables, name)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("dump %s: %v", path, err)
	}
	rows.Close()
	for _, tbl := range tables {
		r, err := db.Query(fmt.Sprintf("SELECT * FROM %q ORDER BY rowid", tbl))
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := r.Columns()
		for r.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			r.Scan(ptrs...)
			fmt.Fprintf(&buf, "%s %#v\n", tbl, vals)
		}
		r.Close()
	}
	sum := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(sum[:8]) + "\n" + buf.String()
}

func TestAppliedIndexSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	s := openSM(t, path)
	s.mustApply(execCmd("CREATE TABLE t(x)"), execCmd("INSERT INTO t VALUES (1)"))
	s.mustApply(execCmd("INSERT INTO t VALUES (2)"))
	if got := s.Applied(); got != 3 {
		t.Fatalf("applied = %d, want 3", got)
	}
	s.Close()
	s2 := New(Options{Path: path})
	idx, err := s2.Open(make(chan struct{}))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if idx != 3 || s2.LastWrite() != 3 {
		t.Fatalf("reopened: applied %d last write %d, want 3 and 3", idx, s2.LastWrite())
	}
}

func TestExecResultAndErrors(t *testing.T) {
	s := openSM(t, filepath.Join(t.TempDir(), "a.db"))
	s.mustApply(execCmd("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT UNIQUE NOT NULL, CHECK (length(v) < 10))"))
	res := s.mustApply(execCmd("INSERT INTO t(v) VALUES ('a'), ('b')"))[0]
	if res.RowsAffected != 2 || res.LastInsertID != 2 {
		t.Fatalf("insert result = %+v", res)
	}
	cases := []struct {
		sql  string
		code sqlite3.ErrNo
		ext  sqlite3.ErrNoExtended
	}{
		{"INSERT INTO t(v) VALUES ('a')", sqlite3.ErrConstraint, sqlite3.ErrConstraintUnique},
		{"INSERT INTO t(v) VALUES (NULL)", sqlite3.ErrConstraint, sqlite3.ErrConstraintNotNull},
		{"INSERT INTO t(v) VALUES ('0123456789abc')", sqlite3.ErrConstraint, sqlite3.ErrConstraintCheck},
		{"INSERT INTO nope VALUES (1)", sqlite3.ErrError, sqlite3.ErrNoExtended(sqlite3.ErrError)},
		{"INSERT INTO t(v) VALUES ('c'); INSERT INTO t(v) VALUES ('a')", sqlite3.ErrConstraint, sqlite3.ErrConstraintUnique},
		{"ATTACH 'x.db' AS x", sqlite3.ErrAuth, sqlite3.ErrNoExtended(sqlite3.ErrAuth)},
		{"BEGIN", sqlite3.ErrAuth, sqlite3.ErrNoExtended(sqlite3.ErrAuth)},
		{"DELETE FROM _rsqlite_requests", sqlite3.ErrAuth, sqlite3.ErrNoExtended(sqlite3.ErrAuth)},
		{"CREATE TEMP TABLE tt(x)", sqlite3.ErrAuth, sqlite3.ErrNoExtended(sqlite3.ErrAuth)},
	}
	for _, c := range cases {
		before := dump(t, s.Path())
		r := s.apply(execCmd(c.sql))[0]
		if r.Err == nil || r.Err.Code != int(c.code) || r.Err.ExtendedCode != int(c.ext) {
			t.Errorf("%s: got %+v, want code %d/%d", c.sql, r.Err, c.code, c.ext)
		}
		if after := dump(t, s.Path()); after != before {
			t.Errorf("%s changed the database:\n%s\n%s", c.sql, before, after)
		}
	}
}

func TestDuplicateRequestAppliedOnce(t *testing.T) {
	s := openSM(t, filepath.Join(t.TempDir(), "a.db"))
	s.mustApply(execCmd("CREATE TABLE t(id INTEGER PRIMARY KEY, v)"))
	c := execCmd("INSERT INTO t(v) VALUES ('x')")
	c.ClientID, c.Seq = 77, 1
	first := s.mustApply(c)[0]
	// The retry lands in the same batch as other work and in a later one.
	again := s.mustApply(execCmd("INSERT INTO t(v) VALUES ('y')"), c)
	third := s.mustApply(c)[0]
	for _, r := range []*command.Result{again[1], third} {
		if r.LastInsertID != first.LastInsertID || r.RowsAffected != 1 {
			t.Fatalf("duplicate answered %+v, first was %+v", r, first)
		}
	}
	var n int
	db, _ := sql.Open("sqlite3", s.Path())
	defer db.Close()
	db.QueryRow("SELECT count(*) FROM t WHERE v = 'x'").Scan(&n)
	if n != 1 {
		t.Fatalf("row applied %d times", n)
	}
	// An older sequence number is refused, not applied.
	c.Seq = 2
	s.mustApply(c)
	c.Seq = 1
	if r := s.apply(c)[0]; r.Err == nil {
		t.Fatal("stale request was not refused")
	}
}

func TestDeterministicFunctions(t *testing.T) {
	dir := t.TempDir()
	cmds := []*command.Command{
		execCmd(`CREATE TABLE t(id INTEGER PRIMARY KEY, r INTEGER DEFAULT (random()), b BLOB DEFAULT (randomblob(8)),
			ts TEXT DEFAULT CURRENT_TIMESTAMP, d TEXT DEFAULT (date('now')), x)`),
		execCmd(`CREATE TABLE log(id INTEGER PRIMARY KEY, at TEXT, r INTEGER)`),
		execCmd(`CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log(at, r) VALUES (strftime('%Y-%m-%d %H:%M:%f','now'), random()); END`),
		execCmd(`INSERT INTO t(x) VALUES (random()), (randomblob(4)), (CURRENT_TIME), (julianday('now'))`),
		execCmd(`INSERT INTO t(x) SELECT unixepoch('now','subsec') FROM (SELECT 1 UNION ALL SELECT 2)`),
	}
	a := openSM(t, filepath.Join(dir, "a.db"))
	b := openSM(t, filepath.Join(dir, "b.db"))
	// Different batch boundaries must not matter either.
	a.mustApply(cmds...)
	for _, c := range cmds {
		b.mustApply(c)
	}
	da, db := dump(t, a.Path()), dump(t, b.Path())
	if da != db {
		t.Fatalf("replicas differ:\n%s\n%s", da, db)
	}
	if !bytes.Contains([]byte(da), []byte("2001-02-03 04:05:06")) {
		t.Fatalf("stamped time not used:\n%s", da)
	}
}

func TestForeignKeysSetting(t *testing.T) {
	s := openSM(t, filepath.Join(t.TempDir(), "a.db"))
	s.mustApply(execCmd("CREATE TABLE p(id INTEGER PRIMARY KEY)"), execCmd("CREATE TABLE c(p REFERENCES p(id))"))
	on := execCmd("INSERT INTO c VALUES (5)")
	on.Settings = command.ForeignKeys
	off := execCmd("INSERT INTO c VALUES (6)")
	res := s.apply(off, on, off)
	if res[0].Err != nil || res[2].Err != nil {
		t.Fatalf("without foreign_keys: %v %v", res[0].Err, res[2].Err)
	}
	if res[1].Err == nil || res[1].Err.ExtendedCode != int(sqlite3.ErrConstraintForeignKey) {
		t.Fatalf("with foreign_keys: %+v", res[1].Err)
	}
}

func TestStatementThatRollsBackTheBatch(t *testing.T) {
	s := openSM(t, filepath.Join(t.TempDir(), "a.db"))
	s.mustApply(execCmd("CREATE TABLE t(id INTEGER PRIMARY KEY, v UNIQUE)"))
	res := s.apply(
		execCmd("INSERT INTO t(v) VALUES (1)"),
		execCmd("INSERT OR ROLLBACK INTO t(v) VALUES (1)"),
		execCmd("INSERT INTO t(v) VALUES (2)"),
	)
	if res[0].Err != nil || res[2].Err != nil || res[1].Err == nil {
		t.Fatalf("results: %v / %v / %v", res[0].Err, res[1].Err, res[2].Err)
	}
	db, _ := sql.Open("sqlite3", s.Path())
	defer db.Close()
	var n int
	db.QueryRow("SELECT count(*) FROM t").Scan(&n)
	if n != 2 {
		t.Fatalf("%d rows, want 2", n)
	}
}

func TestConditionalCommit(t *testing.T) {
	s := openSM(t, filepath.Join(t.TempDir(), "a.db"))
	s.mustApply(execCmd("CREATE TABLE t(v)"))
	base := s.LastWrite()
	ok := execCmd("INSERT INTO t VALUES (1)")
	ok.BaseIndex = base
	stale := execCmd("INSERT INTO t VALUES (2)")
	stale.BaseIndex = base
	res := s.apply(ok, stale)
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	if e := res[1].Err; e == nil || e.Code != int(sqlite3.ErrBusy) || e.ExtendedCode != int(sqlite3.ErrBusySnapshot) {
		t.Fatalf("stale base: %+v", e)
	}
}

// TestConditionalCommitOnEmptyDatabase: two transactions that began before
// the first write both have base 0; the second must conflict, not run on
// top of the first (it would report a LastInsertId its run never saw).
// Entries of encoding version 1 keep the rule they were written under
// (base 0 unconditional), so a replay applies them as their first apply did.
func TestConditionalCommitOnEmptyDatabase(t *testing.T) {
	for _, encoding := range []uint8{1, command.Version} {
		s := openSM(t, filepath.Join(t.TempDir(), "a.db"))
		tx := func() *command.Command {
			c := execCmd("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v); INSERT INTO t(v) VALUES (1)")
			c.Kind, c.Encoding = command.KindTx, encoding
			return c
		}
		res := s.apply(tx(), tx())
		if res[0].Err != nil {
			t.Fatal(res[0].Err)
		}
		e := res[1].Err
		if encoding == 1 {
			if e != nil || res[1].LastInsertID != 2 {
				t.Fatalf("version 1 entry with base 0: %+v, want applied unconditionally", res[1])
			}
			continue
		}
		if e == nil || e.Code != int(sqlite3.ErrBusy) || e.ExtendedCode != int(sqlite3.ErrBusySnapshot) {
			t.Fatalf("second transaction on base 0: %+v", res[1])
		}
	}
}

func TestQueryReturning(t *testing.T) {
	s := openSM(t, filepath.Join(t.TempDir(), "a.db"))
	s.mustApply(execCmd("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, at DATETIME DEFAULT CURRENT_TIMESTAMP)"))
	q := execCmd("INSERT INTO t(v) VALUES (?), (?) RETURNING id, v, at", "a", "b")
	q.Kind = command.KindQuery
	r := s.mustApply(q)[0]
	if len(r.Rows) != 2 || r.Columns[1] != "v" || r.DeclTypes[2] != "DATETIME" || r.Rows[1][1] != "b" {
		t.Fatalf("returning: %+v", r)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	dir := t.TempDir()
	a := openSM(t, filepath.Join(dir, "a.db"))
	a.mustApply(execCmd("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)"))
	for i := 0; i < 50; i++ {
		a.mustApply(execCmd("INSERT INTO t(v) VALUES (randomblob(2000))"))
	}
	ctx, err := a.PrepareSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	want := dump(t, a.Path())
	// Writes after the snapshot point must not leak into it.
	a.mustApply(execCmd("INSERT INTO t(v) VALUES ('after')"))
	var buf bytes.Buffer
	if err := a.SaveSnapshot(ctx, &buf, make(chan struct{})); err != nil {
		t.Fatal(err)
	}
	b := openSM(t, filepath.Join(dir, "b.db"))
	b.mustApply(execCmd("CREATE TABLE junk(x)"))
	if err := b.RecoverFromSnapshot(&buf, make(chan struct{})); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, b.Path()); got != want {
		t.Fatalf("recovered state differs:\n%s\nwant\n%s", got, want)
	}
	if b.Applied() != 51 {
		t.Fatalf("recovered applied index %d, want 51", b.Applied())
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
}

// A command from another SQLite build, or from a newer command encoding,
// halts the replica (Update waits until stopped) instead of being applied
// or recorded as an error; Halted says why, and neither is reported as a
// disk fault.
func TestForeignEngineHaltsReplica(t *testing.T) {
	foreign := execCmd("CREATE TABLE t(x)")
	foreign.Engine = Engine + 1
	fromEngine, _ := command.Encode(nil, foreign)
	fromNewer, _ := command.Encode(nil, execCmd("CREATE TABLE t(x)"))
	fromNewer[0] = byte(command.Version + 1)
	// Halted must name the entry, the cause and the remedy.
	want := map[string][]string{
		"engine":   {"replica halted: entry 1 ", "another SQLite build", "run the same rsqlite version"},
		"encoding": {"replica halted: entry 1 ", fmt.Sprintf("command version %d", command.Version+1), "upgrade this node"},
	}
	for name, b := range map[string][]byte{"engine": fromEngine, "encoding": fromNewer} {
		s := New(Options{Path: filepath.Join(t.TempDir(), "a.db")})
		stop := make(chan struct{})
		if _, err := s.Open(stop); err != nil {
			t.Fatal(err)
		}
		if err := s.Halted(); err != nil {
			t.Fatalf("%s: halted before any entry: %v", name, err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := s.Update([]sm.Entry{{Index: 1, Cmd: b}})
			done <- err
		}()
		// The first attempt halts at once; the bound only guards a stuck test.
		for deadline := time.Now().Add(5 * time.Second); s.Halted() == nil && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		select {
		case err := <-done:
			t.Fatalf("%s: Update returned before the replica was stopped: %v", name, err)
		case <-time.After(100 * time.Millisecond):
		}
		halted := s.Halted()
		if halted == nil {
			t.Fatalf("%s: Halted is nil while Update waits at the entry", name)
		}
		for _, w := range want[name] {
			if !strings.Contains(halted.Error(), w) {
				t.Errorf("%s: Halted() = %q, want it to mention %q", name, halted, w)
			}
		}
		if f := s.Fault(); f != nil {
			t.Errorf("%s: a halt reported as a disk fault: %v", name, f)
		}
		close(stop)
		err := <-done
		if err == nil || !strings.Contains(err.Error(), "replica halted") {
			t.Fatalf("%s: Update: %v", name, err)
		}
		if s.Applied() != 0 {
			t.Fatalf("%s: applied index moved to %d", name, s.Applied())
		}
		if s.Halted() == nil {
			t.Errorf("%s: the stopped replica no longer says why it halted", name)
		}
		s.Close()
	}
}
