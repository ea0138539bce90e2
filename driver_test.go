package rsqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/rsqlite/rsqlite"
	"github.com/rsqlite/rsqlite/internal/clustertest"
)

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustExec(t testing.TB, db *sql.DB, q string, args ...any) sql.Result {
	t.Helper()
	res, err := db.Exec(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return res
}

func count(t testing.TB, db *sql.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// countOnEvery fails the test unless query q answers want through every
// one of dbs (one handle per node).
func countOnEvery(t testing.TB, dbs []*sql.DB, q string, want int) {
	t.Helper()
	for i, db := range dbs {
		if n := count(t, db, q); n != want {
			t.Fatalf("node %d: %s gives %d, want %d", i, q, n, want)
		}
	}
}

func TestWritesOnAnyNodeVisibleOnEvery(t *testing.T) {
	c := clustertest.New(t, 3)
	dbs := c.OpenAll("app.db")
	mustExec(t, dbs[0], "CREATE TABLE kv(k TEXT PRIMARY KEY, v INTEGER)")
	for i := 0; i < 30; i++ {
		w := dbs[i%3]
		mustExec(t, w, "INSERT INTO kv VALUES (?, ?)", fmt.Sprint("k", i), i)
		// A linearizable read on any other node sees the acknowledged write
		// at once, with no waiting.
		r := dbs[(i+1)%3]
		var v int
		if err := r.QueryRow("SELECT v FROM kv WHERE k = ?", fmt.Sprint("k", i)).Scan(&v); err != nil || v != i {
			t.Fatalf("read of k%d on node %d: %v %d", i, (i+1)%3, err, v)
		}
	}
	res := mustExec(t, dbs[1], "UPDATE kv SET v = v + 1 WHERE v < 10")
	if n, _ := res.RowsAffected(); n != 10 {
		t.Fatalf("RowsAffected = %d, want 10", n)
	}
	res = mustExec(t, dbs[2], "INSERT INTO kv VALUES ('last', 1)")
	if id, _ := res.LastInsertId(); id != 31 {
		t.Fatalf("LastInsertId = %d, want 31", id)
	}
}

func TestInsertReturningAndStatements(t *testing.T) {
	c := clustertest.New(t, 3)
	dbs := c.OpenAll("app.db")
	mustExec(t, dbs[0], `CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL, at DATETIME DEFAULT CURRENT_TIMESTAMP);
		CREATE INDEX t_name ON t(name);`)
	rows, err := dbs[1].Query("INSERT INTO t(name) VALUES (?), (?) RETURNING id, name", "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var id int
		var name string
		rows.Scan(&id, &name)
		got = append(got, fmt.Sprintf("%d %s", id, name))
	}
	rows.Close()
	if strings.Join(got, ",") != "1 a,2 b" {
		t.Fatalf("RETURNING gave %v", got)
	}
	// The write went through raft: node 2 has it.
	if n := count(t, dbs[2], "SELECT count(*) FROM t"); n != 2 {
		t.Fatalf("node 2 sees %d rows", n)
	}
	// Prepared statements, named parameters, time values.
	st, err := dbs[2].Prepare("INSERT INTO t(name, at) VALUES (:name, :at)")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	if _, err := st.Exec(sql.Named("name", "c"), sql.Named("at", at)); err != nil {
		t.Fatal(err)
	}
	st.Close()
	var back time.Time
	if err := dbs[0].QueryRow("SELECT at FROM t WHERE name = 'c'").Scan(&back); err != nil || !back.Equal(at) {
		t.Fatalf("time round trip: %v %v", back, err)
	}
	// Schema-reading pragmas are reads.
	if n := count(t, dbs[1], "SELECT count(*) FROM pragma_table_info('t')"); n != 3 {
		t.Fatalf("table_info: %d columns", n)
	}
}

// plainSQLite opens the same kind of database with go-sqlite3 directly.
func plainSQLite(t testing.TB) *sql.DB {
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(t.TempDir(), "plain.db")+"?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestErrorsMatchSQLite(t *testing.T) {
	c := clustertest.New(t, 3)
	dbs := c.OpenAll("app.db")
	plain := plainSQLite(t)
	schema := `CREATE TABLE t(id INTEGER PRIMARY KEY, u TEXT UNIQUE, n TEXT NOT NULL, c INTEGER CHECK (c > 0));
		INSERT INTO t VALUES (1, 'x', 'n', 1);`
	mustExec(t, dbs[0], schema)
	mustExec(t, plain, schema)
	for _, q := range []string{
		"INSERT INTO t VALUES (2, 'x', 'n', 1)",
		"INSERT INTO t VALUES (1, 'y', 'n', 1)",
		"INSERT INTO t VALUES (3, 'z', NULL, 1)",
		"INSERT INTO t VALUES (4, 'w', 'n', -1)",
		"INSERT INTO nosuch VALUES (1)",
		"INSERT INTO t VALUES (5, 'v', 'n', 1); INSERT INTO t VALUES (6, 'x', 'n', 1)",
		"SELEC 1",
		"INSERT INTO t(nosuchcol) VALUES (1)",
	} {
		_, want := plain.Exec(q)
		var wantErr sqlite3.Error
		if !errors.As(want, &wantErr) {
			t.Fatalf("%s: plain SQLite gave %v", q, want)
		}
		_, got := dbs[1].Exec(q)
		gotErr, ok := got.(sqlite3.Error)
		if !ok {
			t.Errorf("%s: got %T %v, want a sqlite3.Error", q, got, got)
			continue
		}
		if gotErr.Code != wantErr.Code || gotErr.ExtendedCode != wantErr.ExtendedCode || gotErr.Error() != wantErr.Error() {
			t.Errorf("%s:\n got  %d/%d %q\n want %d/%d %q", q, gotErr.Code, gotErr.ExtendedCode, gotErr.Error(),
				wantErr.Code, wantErr.ExtendedCode, wantErr.Error())
		}
	}
	// The failed multi-statement Exec left nothing behind, on any node.
	for i, db := range dbs {
		if n := count(t, db, "SELECT count(*) FROM t"); n != 1 {
			t.Errorf("node %d has %d rows, want 1", i, n)
		}
	}
}

func TestRefusedBeforeProposing(t *testing.T) {
	c := clustertest.New(t, 3)
	db := c.OpenAll("app.db")[0]
	mustExec(t, db, "CREATE TABLE t(x)")
	local := c.LocalDB(0, "app.db")
	before := local.Applied()
	for _, q := range []string{
		"ATTACH DATABASE 'other.db' AS other",
		"DETACH DATABASE other",
		"SELECT load_extension('x')",
		"VACUUM INTO '/tmp/copy.db'",
		"CREATE TEMP TABLE scratch(x)",
		"INSERT INTO t VALUES (1); BEGIN",
		"PRAGMA optimize",
	} {
		if _, err := db.Exec(q); err == nil {
			t.Errorf("%s: no error", q)
		} else if !strings.Contains(err.Error(), "cannot replicate") {
			t.Errorf("%s: unclear error %v", q, err)
		}
	}
	if after := local.Applied(); after != before {
		t.Fatalf("refused statements were proposed: applied %d -> %d", before, after)
	}
}

func TestDeterministicOnEveryNode(t *testing.T) {
	c := clustertest.New(t, 3)
	dbs := c.OpenAll("det.db")
	mustExec(t, dbs[0], `CREATE TABLE t(id INTEGER PRIMARY KEY, r INTEGER DEFAULT (random()), b BLOB DEFAULT (randomblob(16)),
		ts TEXT DEFAULT CURRENT_TIMESTAMP, x);
		CREATE TABLE audit(id INTEGER PRIMARY KEY, at TEXT, r INTEGER);
		CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN
			INSERT INTO audit(at, r) VALUES (strftime('%Y-%m-%d %H:%M:%f', 'now'), random());
		END;`)
	var wg sync.WaitGroup
	for i := range dbs {
		wg.Add(1)
		go func(db *sql.DB) {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				if _, err := db.Exec("INSERT INTO t(x) VALUES (random()), (datetime('now')), (CURRENT_TIME)"); err != nil {
					t.Error(err)
					return
				}
			}
		}(dbs[i])
	}
	wg.Wait()
	for i := range dbs {
		if n := count(t, dbs[i], "SELECT count(*) FROM audit"); n != 180 {
			t.Fatalf("node %d: %d audit rows", i, n)
		}
	}
	// Compare the files themselves once the nodes are stopped.
	for i := range c.Nodes {
		c.Stop(i)
	}
	want := clustertest.Dump(t, filepath.Join(c.Nodes[0].Dir, "det.db"))
	for i := 1; i < 3; i++ {
		if got := clustertest.Dump(t, filepath.Join(c.Nodes[i].Dir, "det.db")); got != want {
			t.Fatalf("node %d differs from node 0:\n%s\n---\n%s", i, got, want)
		}
	}
}

func TestLeaderFailoverLosesNothing(t *testing.T) {
	c := clustertest.New(t, 3)
	c.Params = "timeout=20s"
	dbs := c.OpenAll("app.db")
	mustExec(t, dbs[0], "CREATE TABLE t(id INTEGER PRIMARY KEY, writer INTEGER, seq INTEGER, UNIQUE (writer, seq))")
	leader, acked := loadThroughLeaderStop(t, c, dbs, "app.db", 2, func(db *sql.DB, writer, seq int) error {
		_, err := db.Exec("INSERT INTO t(writer, seq) VALUES (?, ?)", writer, seq)
		return err
	})
	reader := dbs[(leader+1)%len(dbs)]
	if n := count(t, reader, "SELECT count(*) FROM t"); int64(n) != acked {
		t.Fatalf("%d rows for %d acknowledged writes", n, acked)
	}
	// The old leader comes back and catches up from the log: the writes it
	// missed are far fewer than the entries kept before compaction
	// (cluster.Defaults.SnapshotEntries), so no snapshot is needed.
	// TestCatchUpFromSnapshot covers the other path.
	c.Restart(leader, "app.db")
	back := c.Open(leader, "app.db")
	if n := count(t, back, "SELECT count(*) FROM t"); int64(n) != acked {
		t.Fatalf("restarted node has %d rows, want %d", n, acked)
	}
	if got := c.LocalDB(leader, "app.db").SnapshotsReceived(); got != 0 {
		t.Fatalf("the restarted node caught up from %d snapshot(s), not from the log", got)
	}
}

// loadThroughLeaderStop runs perNode writers on every node but the leader
// of name, each calling write with its own writer number and seq 0, 1, 2...;
// it stops the leader 300 ms in and the writers 1.5 s later. It returns the
// stopped leader and the number of acknowledged writes, and fails the test
// if a write failed or none was acknowledged after the stop.
func loadThroughLeaderStop(t *testing.T, c *clustertest.Cluster, dbs []*sql.DB, name string, perNode int, write func(db *sql.DB, writer, seq int) error) (leader int, acked int64) {
	t.Helper()
	leader = c.Leader(name)
	var n atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	writer := 0
	for node, db := range dbs {
		if node == leader {
			continue
		}
		for range perNode {
			wg.Add(1)
			go func(writer int) {
				defer wg.Done()
				for seq := 0; seq < 5000; seq++ {
					select {
					case <-stop:
						return
					default:
					}
					if err := write(db, writer, seq); err != nil {
						t.Errorf("writer %d (node %d) seq %d: %v", writer, node, seq, err)
						return
					}
					n.Add(1)
				}
			}(writer)
			writer++
		}
	}
	time.Sleep(300 * time.Millisecond)
	c.Stop(leader)
	stoppedAt := n.Load()
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if n.Load() <= stoppedAt {
		t.Fatalf("nothing acknowledged after the leader stopped (%d before)", stoppedAt)
	}
	t.Logf("%d writes acknowledged, %d after the leader stopped", n.Load(), n.Load()-stoppedAt)
	return leader, n.Load()
}

func TestCatchUpFromSnapshot(t *testing.T) {
	clustertest.SmallSnapshots(t, 20)
	c := clustertest.New(t, 3)
	dbs := c.OpenAll("app.db")
	mustExec(t, dbs[0], "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
	c.Stop(2)
	for i := 0; i < 200; i++ {
		mustExec(t, dbs[i%2], "INSERT INTO t(v) VALUES (randomblob(100))")
	}
	c.Restart(2, "app.db")
	db2 := c.Open(2, "app.db")
	if n := count(t, db2, "SELECT count(*) FROM t"); n != 200 {
		t.Fatalf("restarted node has %d rows, want 200", n)
	}
	if got := c.LocalDB(2, "app.db").SnapshotsReceived(); got == 0 {
		t.Fatal("the restarted node caught up without a snapshot: the test did not exercise snapshot transfer")
	}
}

func TestManyDatabases(t *testing.T) {
	c := clustertest.New(t, 3)
	// 150 raft replicas in one process: generous deadlines for slow (race) runs.
	c.Params = "timeout=60s"
	c.OpenAll("tenant00.db")
	n := 50
	if raceEnabled {
		n = 10
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("tenant%02d.db", i)
		db := c.Open(i%3, name)
		mustExec(t, db, "CREATE TABLE t(v); INSERT INTO t VALUES (?)", i)
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("tenant%02d.db", i)
		db := c.Open((i+1)%3, name)
		var v int
		if err := db.QueryRow("SELECT v FROM t").Scan(&v); err != nil || v != i {
			t.Fatalf("%s on node %d: %v %d", name, (i+1)%3, err, v)
		}
	}

	// Opening a database that does not exist creates it on every member:
	// node 2 never opens this one, yet its data directory holds the SQLite
	// file with the rows. Node 2 is not needed for the commit, so wait for
	// it to apply.
	const only0 = "only-node0.db"
	mustExec(t, c.Open(0, only0), "CREATE TABLE t(v); INSERT INTO t VALUES (1), (2), (3)")
	path := filepath.Join(c.Nodes[2].Dir, only0)
	var got int
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got, err = plainCount(path, "SELECT count(*) FROM t"); err == nil && got == 3 {
			break
		}
	}
	if err != nil || got != 3 {
		t.Fatalf("node 2's %s, never opened there: %d rows, %v; want 3 rows", path, got, err)
	}
	if n := count(t, c.Open(2, only0), "SELECT count(*) FROM t"); n != 3 {
		t.Fatalf("node 2 opening %s sees %d rows, want 3", only0, n)
	}
}

// plainCount runs a count query on the SQLite file at path itself, read-only
// with plain go-sqlite3 (rsqlite not involved).
func plainCount(path, q string) (int, error) {
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int
	err = db.QueryRow(q).Scan(&n)
	return n, err
}

func TestSingleNodeDefault(t *testing.T) {
	path := filepath.Join(t.TempDir(), "solo.db")
	db, err := sql.Open("rsqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, "CREATE TABLE t(v TEXT); INSERT INTO t VALUES ('hello')")
	db.Close()
	db, err = sql.Open("rsqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	if err := db.QueryRowContext(ctxTimeout(t, 10*time.Second), "SELECT v FROM t").Scan(&v); err != nil || v != "hello" {
		t.Fatalf("after reopen: %q %v", v, err)
	}
	// The file is a plain SQLite database.
	plain, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if n := count(t, plain, "SELECT count(*) FROM t"); n != 1 {
		t.Fatalf("plain SQLite sees %d rows", n)
	}
}

// TestStaleReadsSkipTheBarrier: with a majority down, the survivor's stale
// reads and stale read-only transactions still answer from its file, while
// writes, linearizable reads and transactions that ask for
// sql.LevelLinearizable fail with ErrNoQuorum, the error that says why.
func TestStaleReadsSkipTheBarrier(t *testing.T) {
	c := clustertest.New(t, 3)
	dbs := c.OpenAll("app.db")
	mustExec(t, dbs[1], "CREATE TABLE t(v); INSERT INTO t VALUES (1), (2)")
	stale, err := sql.Open("rsqlite", c.DSN(0, "app.db")+"&consistency=stale")
	if err != nil {
		t.Fatal(err)
	}
	defer stale.Close()
	// A linearizable read through node 0 first: it has applied the insert.
	if n := count(t, dbs[0], "SELECT count(*) FROM t"); n != 2 {
		t.Fatalf("node 0 sees %d rows, want 2", n)
	}
	if err := stale.Ping(); err != nil {
		t.Fatal(err)
	}
	c.Stop(1)
	c.Stop(2)

	if n := count(t, stale, "SELECT count(*) FROM t"); n != 2 {
		t.Fatalf("stale read without quorum: %d rows, want 2", n)
	}
	tx, err := stale.BeginTx(context.Background(), &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatalf("stale read-only transaction without quorum: %v", err)
	}
	var n int
	if err := tx.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != 2 {
		t.Fatalf("stale read-only transaction: %d rows, %v", n, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	noQuorum := func(what string, f func(ctx context.Context) error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := f(ctx); !errors.Is(err, rsqlite.ErrNoQuorum) {
			t.Errorf("%s without quorum: %v, want ErrNoQuorum", what, err)
		}
	}
	noQuorum("write", func(ctx context.Context) error {
		_, err := dbs[0].ExecContext(ctx, "INSERT INTO t VALUES (3)")
		return err
	})
	noQuorum("linearizable read", func(ctx context.Context) error {
		return dbs[0].QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n)
	})
	// Cancelled rather than timed out: the error says so, whether the
	// cancellation met an attempt or the pause between two.
	for _, after := range []time.Duration{50 * time.Millisecond, 300 * time.Millisecond} {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(after, cancel)
		_, err := dbs[0].ExecContext(ctx, "INSERT INTO t VALUES (4)")
		cancel()
		if !errors.Is(err, context.Canceled) || errors.Is(err, rsqlite.ErrNoQuorum) {
			t.Errorf("write cancelled after %v without quorum: %v, want context.Canceled", after, err)
		}
	}
	noQuorum("LevelLinearizable transaction on a stale handle", func(ctx context.Context) error {
		tx, err := stale.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelLinearizable})
		if err == nil {
			tx.Rollback()
		}
		return err
	})
}

func TestConnectionPragmas(t *testing.T) {
	c := clustertest.New(t, 3)
	db := c.OpenAll("app.db")[0]
	mustExec(t, db, "CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE ch(p REFERENCES p(id))")
	mustExec(t, db, "INSERT INTO ch VALUES (1)") // foreign_keys off by default, as in SQLite
	fk, err := sql.Open("rsqlite", c.DSN(1, "app.db")+"&_fk=1")
	if err != nil {
		t.Fatal(err)
	}
	defer fk.Close()
	_, err = fk.Exec("INSERT INTO ch VALUES (2)")
	var se sqlite3.Error
	if !errors.As(err, &se) || se.ExtendedCode != sqlite3.ErrConstraintForeignKey {
		t.Fatalf("with _fk=1: %v", err)
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "PRAGMA foreign_keys = ON"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "INSERT INTO ch VALUES (3)"); !errors.As(err, &se) {
		t.Fatalf("after PRAGMA foreign_keys = ON: %v", err)
	}
	var _ = rsqlite.DriverName
}

// Read statements stay prepared per connection: they must follow schema
// changes made through other nodes, never be shared by two open Rows, and
// see writes acknowledged before the read began.
func TestCachedReadStatements(t *testing.T) {
	c := clustertest.New(t, 3)
	dbs := c.OpenAll("cache.db")
	r, w := dbs[0], dbs[1]
	r.SetMaxOpenConns(1) // every read below reuses one connection and its cache
	mustExec(t, w, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) VALUES ('a'), ('b')")
	cols := func() []string {
		rows, err := r.Query("SELECT * FROM t ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		names, _ := rows.Columns()
		return names
	}
	if got := cols(); len(got) != 2 {
		t.Fatalf("columns %v", got)
	}
	mustExec(t, w, "ALTER TABLE t ADD COLUMN extra INTEGER DEFAULT 7")
	if got := cols(); len(got) != 3 || got[2] != "extra" {
		t.Fatalf("after ALTER TABLE through another node, the cached statement gives columns %v", got)
	}
	// Two Rows of the same text open at once on one connection.
	r.SetMaxOpenConns(0)
	conn, err := r.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := ctxTimeout(t, 10*time.Second)
	outer, err := conn.QueryContext(ctx, "SELECT v FROM t ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for outer.Next() {
		var v string
		outer.Scan(&v)
		var n int
		if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM t WHERE v <= ?", v).Scan(&n); err != nil {
			t.Fatal(err)
		}
		inner, err := conn.QueryContext(ctx, "SELECT v FROM t ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		k := 0
		for inner.Next() {
			k++
		}
		inner.Close()
		seen = append(seen, fmt.Sprintf("%s:%d:%d", v, n, k))
	}
	if err := outer.Err(); err != nil {
		t.Fatal(err)
	}
	outer.Close()
	if strings.Join(seen, " ") != "a:1:2 b:2:2" {
		t.Fatalf("nested reads of one statement text: %v", seen)
	}
	// Every read sees the writes acknowledged before it, through the cache.
	for i := range 20 {
		mustExec(t, w, "INSERT INTO t(v) VALUES (?)", fmt.Sprint("x", i))
		if n := count(t, r, "SELECT count(*) FROM t"); n != 3+i {
			t.Fatalf("read after write %d: %d rows", i, n)
		}
	}
	// A read-only transaction reads its pinned snapshot through the same
	// cache: a statement cached before it sees the snapshot, not later
	// writes, and the cache serves reads after it again.
	ro, err := r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var before, during int
	if err := ro.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&before); err != nil {
		t.Fatal(err)
	}
	mustExec(t, w, "INSERT INTO t(v) VALUES ('after the snapshot')")
	if err := ro.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&during); err != nil {
		t.Fatal(err)
	}
	if before != 22 || during != 22 {
		t.Fatalf("read-only transaction saw %d then %d rows, want 22 both times", before, during)
	}
	if err := ro.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := count(t, r, "SELECT count(*) FROM t"); n != 23 {
		t.Fatalf("after the read-only transaction: %d rows, want 23", n)
	}
	mustExec(t, w, "DROP TABLE t")
	if _, err := r.Query("SELECT * FROM t ORDER BY id"); err == nil || !strings.Contains(err.Error(), "no such table") {
		t.Fatalf("cached statement on a dropped table: %v", err)
	}
}
