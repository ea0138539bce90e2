package rsqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/rsqlite/rsqlite"
	"github.com/rsqlite/rsqlite/cluster"
	"github.com/rsqlite/rsqlite/internal/clustertest"
)

func TestTxReadsOwnWritesExactResults(t *testing.T) {
	c := clustertest.New(t, 3)
	dbs := c.OpenAll("app.db")
	mustExec(t, dbs[0], "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, r INTEGER, at TEXT DEFAULT CURRENT_TIMESTAMP)")
	mustExec(t, dbs[0], "INSERT INTO t(v) VALUES ('before')")
	tx, err := dbs[1].Begin()
	if err != nil {
		t.Fatal(err)
	}
	res, err := tx.Exec("INSERT INTO t(v, r) VALUES ('a', random()), ('b', random())")
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := res.LastInsertId(); id != 3 {
		t.Fatalf("LastInsertId in tx = %d, want 3", id)
	}
	if n, _ := res.RowsAffected(); n != 2 {
		t.Fatalf("RowsAffected in tx = %d", n)
	}
	var n int
	tx.QueryRow("SELECT count(*) FROM t").Scan(&n)
	if n != 3 {
		t.Fatalf("tx sees %d rows, want 3", n)
	}
	var r1 int64
	if err := tx.QueryRow("SELECT r FROM t WHERE v = 'a'").Scan(&r1); err != nil {
		t.Fatal(err)
	}
	var retID int64
	var retR int64
	if err := tx.QueryRow("UPDATE t SET v = 'c' WHERE v = 'b' RETURNING id, randomblob(4) IS NOT NULL").Scan(&retID, &retR); err != nil || retID != 3 {
		t.Fatalf("RETURNING in tx: %v %d", err, retID)
	}
	// Not visible elsewhere before commit.
	if n := count(t, dbs[2], "SELECT count(*) FROM t"); n != 1 {
		t.Fatalf("uncommitted rows visible on node 2: %d", n)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	for i, db := range dbs {
		var r int64
		if err := db.QueryRow("SELECT r FROM t WHERE v = 'a'").Scan(&r); err != nil || r != r1 {
			t.Fatalf("node %d: random() committed as %d, the transaction saw %d (%v)", i, r, r1, err)
		}
		if n := count(t, db, "SELECT count(*) FROM t WHERE v IN ('a', 'c')"); n != 2 {
			t.Fatalf("node %d: %d rows", i, n)
		}
	}
}

func TestTxConflictAcrossNodes(t *testing.T) {
	c := clustertest.New(t, 3)
	dbs := c.OpenAll("app.db")
	mustExec(t, dbs[0], "CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER); INSERT INTO acct VALUES (1, 100)")
	txA, err := dbs[0].Begin()
	if err != nil {
		t.Fatal(err)
	}
	txB, err := dbs[1].Begin()
	if err != nil {
		t.Fatal(err)
	}
	for _, tx := range []*sql.Tx{txA, txB} {
		var bal int
		tx.QueryRow("SELECT bal FROM acct WHERE id = 1").Scan(&bal)
		if _, err := tx.Exec("UPDATE acct SET bal = ? WHERE id = 1", bal+10); err != nil {
			t.Fatal(err)
		}
	}
	if err := txA.Commit(); err != nil {
		t.Fatal(err)
	}
	err = txB.Commit()
	var ce *rsqlite.ConflictError
	var se sqlite3.Error
	if !errors.As(err, &ce) || !errors.Is(err, sqlite3.ErrBusy) || !errors.As(err, &se) || se.ExtendedCode != sqlite3.ErrBusySnapshot || !rsqlite.IsRetryable(err) {
		t.Fatalf("second commit: %v", err)
	}
	// Retrying the whole transaction succeeds.
	err = retryTx(dbs[1], func(tx *sql.Tx) error {
		_, err := tx.Exec("UPDATE acct SET bal = bal + 10 WHERE id = 1")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	countOnEvery(t, dbs, "SELECT bal FROM acct", 120)
}

func retryTx(db *sql.DB, f func(*sql.Tx) error) error {
	for attempt := 0; ; attempt++ {
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		if err = f(tx); err == nil {
			err = tx.Commit()
		} else {
			tx.Rollback()
		}
		if err == nil || !rsqlite.IsRetryable(err) || attempt == 50 {
			return err
		}
		time.Sleep(time.Duration(rand.Intn(10)) * time.Millisecond)
	}
}

func TestTxSameNodeQueuesWithoutConflicts(t *testing.T) {
	c := clustertest.New(t, 3)
	db := c.OpenAll("app.db")[1]
	mustExec(t, db, "CREATE TABLE counter(n INTEGER); INSERT INTO counter VALUES (0)")
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 15; i++ {
				tx, err := db.Begin()
				if err != nil {
					t.Error(err)
					return
				}
				var n int
				tx.QueryRow("SELECT n FROM counter").Scan(&n)
				if _, err := tx.Exec("UPDATE counter SET n = ?", n+1); err != nil {
					t.Error(err)
				}
				if err := tx.Commit(); err != nil {
					t.Errorf("a single node's transactions conflicted: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := count(t, db, "SELECT n FROM counter"); n != 60 {
		t.Fatalf("counter = %d, want 60", n)
	}
}

func TestTxBankTransfersKeepTotal(t *testing.T) {
	c := clustertest.New(t, 3)
	dbs := c.OpenAll("bank.db")
	const accounts = 5
	mustExec(t, dbs[0], "CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER NOT NULL CHECK (bal >= 0))")
	for i := 0; i < accounts; i++ {
		mustExec(t, dbs[0], "INSERT INTO acct VALUES (?, 100)", i)
	}
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w)))
			db := dbs[w%3]
			for i := 0; i < 15; i++ {
				from, to, amt := rng.Intn(accounts), rng.Intn(accounts), rng.Intn(30)
				err := retryTx(db, func(tx *sql.Tx) error {
					var bal int
					if err := tx.QueryRow("SELECT bal FROM acct WHERE id = ?", from).Scan(&bal); err != nil {
						return err
					}
					if bal < amt {
						return nil
					}
					if _, err := tx.Exec("UPDATE acct SET bal = bal - ? WHERE id = ?", amt, from); err != nil {
						return err
					}
					_, err := tx.Exec("UPDATE acct SET bal = bal + ? WHERE id = ?", amt, to)
					return err
				})
				if err != nil {
					t.Errorf("transfer: %v", err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	countOnEvery(t, dbs, "SELECT sum(bal) FROM acct", accounts*100)
}

func TestTxRollbackAndReadOnlyProposeNothing(t *testing.T) {
	c := clustertest.New(t, 3)
	db := c.OpenAll("app.db")[0]
	mustExec(t, db, "CREATE TABLE t(v)")
	local := c.LocalDB(0, "app.db")
	before := local.Applied()
	tx, _ := db.Begin()
	if _, err := tx.Exec("INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	tx.Rollback()
	ro, err := db.BeginTx(context.Background(), &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ro.Exec("INSERT INTO t VALUES (2)"); err == nil {
		t.Fatal("write in a read-only transaction succeeded")
	}
	ro.QueryRow("SELECT count(*) FROM t").Scan(new(int))
	if err := ro.Commit(); err != nil {
		t.Fatal(err)
	}
	empty, _ := db.Begin()
	empty.QueryRow("SELECT count(*) FROM t").Scan(new(int))
	if err := empty.Commit(); err != nil {
		t.Fatal(err)
	}
	// Pragmas that read the schema or a value are reads, in and out of
	// transactions.
	for _, q := range []string{"PRAGMA table_info(t)", "PRAGMA index_list(t)", "PRAGMA foreign_key_list(t)", "PRAGMA user_version", "PRAGMA table_xinfo('t')"} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		rows.Close()
	}
	if after := local.Applied(); after != before {
		t.Fatalf("rollback, read-only transactions or schema pragmas proposed entries: %d -> %d", before, after)
	}
	if n := count(t, db, "SELECT count(*) FROM t"); n != 0 {
		t.Fatalf("%d rows after rollback", n)
	}
	if _, err := db.BeginTx(context.Background(), &sql.TxOptions{Isolation: sql.IsolationLevel(42)}); err == nil {
		t.Fatal("unknown isolation level accepted")
	}
}

// TestTxOpenWhileOtherNodeCommits: a transaction open while another node
// commits fails cleanly, at Commit or at its next statement, with the
// retryable conflict error, and nothing of it is applied.
func TestTxOpenWhileOtherNodeCommits(t *testing.T) {
	c := clustertest.New(t, 3)
	dbs := c.OpenAll("app.db")
	mustExec(t, dbs[0], "CREATE TABLE t(v)")
	for i, nextStatement := range []bool{false, true} {
		tx, err := dbs[0].Begin()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec("INSERT INTO t VALUES ('tx')"); err != nil {
			t.Fatal(err)
		}
		mustExec(t, dbs[1], "INSERT INTO t VALUES ('other')")
		// The entry was applied on node 0 too (a linearizable read there waits for it).
		if n := count(t, dbs[0], "SELECT count(*) FROM t"); n != i+1 {
			t.Fatalf("node 0 sees %d rows, want %d", n, i+1)
		}
		if nextStatement {
			if _, err = tx.Exec("INSERT INTO t VALUES ('more')"); !rsqlite.IsRetryable(err) {
				t.Fatalf("next statement of a stale transaction: %v", err)
			}
		}
		var ce *rsqlite.ConflictError
		if err := tx.Commit(); !errors.As(err, &ce) {
			t.Fatalf("commit of a stale transaction (after a statement: %v): %v", nextStatement, err)
		}
	}
	countOnEvery(t, dbs, "SELECT count(*) FROM t WHERE v != 'other'", 0)
}

// TestTxBusyTimeout: a read-write BeginTx waits for this node's open
// transaction on the database at most _busy_timeout (or until its context's
// deadline, if sooner), then fails as SQLite does (SQLITE_BUSY, "database
// is locked", retryable), so a transaction left open cannot block the
// node's others forever.
func TestTxBusyTimeout(t *testing.T) {
	c := clustertest.New(t, 3)
	mustExec(t, c.OpenAll("app.db")[0], "CREATE TABLE t(v)")
	for _, tc := range []struct {
		busy     int           // _busy_timeout, ms
		deadline time.Duration // of BeginTx's context; 0: none
	}{{0, 0}, {200, 0}, {60000, 200 * time.Millisecond}} {
		busy := tc.busy
		db, err := sql.Open("rsqlite", c.DSN(0, "app.db")+fmt.Sprintf("&_busy_timeout=%d", busy))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		open, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if tc.deadline > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, tc.deadline)
			defer cancel()
			busy = int(tc.deadline.Milliseconds()) / 2 // the deadline counts from before start
		}
		start := time.Now()
		_, err = db.BeginTx(ctx, nil)
		waited := time.Since(start)
		var se sqlite3.Error
		if !errors.As(err, &se) || se.Code != sqlite3.ErrBusy || !errors.Is(err, sqlite3.ErrBusy) || !rsqlite.IsRetryable(err) {
			t.Fatalf("_busy_timeout=%d: second BeginTx: %v, want SQLITE_BUSY", busy, err)
		}
		if waited < time.Duration(busy)*time.Millisecond {
			t.Fatalf("_busy_timeout=%d: gave up after %v", busy, waited)
		}
		open.Rollback()
		tx, err := db.Begin()
		if err != nil {
			t.Fatalf("BeginTx after the other transaction ended: %v", err)
		}
		tx.Rollback()
	}
}

func TestTxCancelLeaksNothing(t *testing.T) {
	c := clustertest.New(t, 3)
	db := c.OpenAll("app.db")[0]
	mustExec(t, db, "CREATE TABLE t(v)")
	runtime.GC()
	before := runtime.NumGoroutine()
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if i%4 == 3 {
			// Cancelled while waiting for the node's other transaction.
			holder, err := db.Begin()
			if err != nil {
				t.Fatal(err)
			}
			time.AfterFunc(50*time.Millisecond, cancel)
			if _, err := db.BeginTx(ctx, nil); !errors.Is(err, context.Canceled) {
				t.Fatalf("BeginTx cancelled while queued: %v", err)
			}
			holder.Rollback()
			cancel()
			continue
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		tx.Exec("INSERT INTO t VALUES (?)", i)
		switch i % 4 {
		case 0:
			cancel() // database/sql rolls back
		case 1:
			tx.Rollback()
			cancel()
		case 2:
			// Cancelled during a statement that would run for minutes.
			time.AfterFunc(50*time.Millisecond, cancel)
			if _, err := tx.ExecContext(ctx, slowQuery); err == nil {
				t.Log("the cancellation came before the statement stepped, which go-sqlite3 misses")
			}
			tx.Rollback()
			cancel()
		}
	}
	// The slot was released every time: a new transaction starts at once.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	tx.Exec("INSERT INTO t VALUES ('ok')")
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, "SELECT count(*) FROM t"); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+5 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before+5 {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines: %d before, %d after\n%s", before, g, buf[:runtime.Stack(buf, true)])
	}
}

// TestTxConflictOnEmptyDatabase: transactions begun before the database's
// first write (base 0, as when several instances run their migrations on a
// new database at once) conflict like any others: one commits, the other
// gets the retryable error instead of running on top of the first. The
// second one's node is cut off until its commit is proposed, so the state
// machines decide, not the node's local abort.
func TestTxConflictOnEmptyDatabase(t *testing.T) {
	c, fnet := clustertest.NewWithNet(t, 3)
	dbs := c.OpenAll("app.db")
	const migrate = "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v); INSERT INTO t(v) VALUES ('first')"
	l := c.Leader("app.db")
	f := (l + 1) % 3
	var txs []*sql.Tx
	for _, db := range []*sql.DB{dbs[l], dbs[f]} {
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		res, err := tx.Exec(migrate)
		if err != nil {
			t.Fatal(err)
		}
		if id, _ := res.LastInsertId(); id != 1 {
			t.Fatalf("LastInsertId %d inside the transaction, want 1", id)
		}
		txs = append(txs, tx)
	}
	fnet.Isolate(f)
	if err := txs[0].Commit(); err != nil {
		fnet.Heal()
		t.Fatal(err)
	}
	committed := make(chan error, 1)
	go func() { committed <- txs[1].Commit() }()
	time.Sleep(2 * cluster.Defaults.ProposeAttempt) // proposed, and not yet through
	fnet.Heal()
	var err error
	select {
	case err = <-committed:
	case <-time.After(30 * time.Second):
		t.Fatal("the second commit did not return after the heal")
	}
	var ce *rsqlite.ConflictError
	if !errors.As(err, &ce) || !rsqlite.IsRetryable(err) || strings.Contains(err.Error(), "applied on this node while the transaction was open") {
		t.Fatalf("second transaction on the empty database: %v, want a ConflictError from the state machines", err)
	}
	countOnEvery(t, dbs, "SELECT count(*) FROM t", 1)
}

// TestTxCancelledStatementDoomsTx: a multi-statement Exec whose context
// ends after its first statement ran leaves the transaction unable to
// commit (what ran cannot be replayed up to the same point), so Commit
// fails and nothing is applied on any node.
func TestTxCancelledStatementDoomsTx(t *testing.T) {
	c := clustertest.New(t, 3)
	dbs := c.OpenAll("app.db")
	mustExec(t, dbs[0], "CREATE TABLE t(v)")
	for attempt := 1; ; attempt++ {
		tx, err := dbs[0].Begin()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err = tx.ExecContext(ctx, "INSERT INTO t VALUES ('first');"+slowQuery)
		cancel()
		if err == nil && attempt < 3 {
			// go-sqlite3 lost the interrupt (it fired before the SELECT
			// stepped): nothing was cut short. Try again.
			tx.Rollback()
			continue
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("exec: %v, want the context's deadline", err)
		}
		if _, err := tx.Exec("INSERT INTO t VALUES ('second')"); err == nil {
			t.Fatal("the transaction went on after a statement was cut short")
		}
		if err := tx.Commit(); err == nil {
			t.Fatal("commit succeeded after a statement was cut short")
		}
		break
	}
	countOnEvery(t, dbs, "SELECT count(*) FROM t", 0)
}

// slowQuery runs for seconds, long past the cancellations the tests send
// it; bounded, so that an interrupt go-sqlite3 loses (it can, when the
// context ends before the statement steps) slows a test down instead of
// hanging it.
const slowQuery = `SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c LIMIT 20000000)`

// TestTxCommitSurvivesLeaderStop: transactions committed from the
// followers while the leader stops are applied exactly once: every
// acknowledged one is there, none twice (the counter each one increments
// matches the rows), on every node, the old leader included once back.
func TestTxCommitSurvivesLeaderStop(t *testing.T) {
	c := clustertest.New(t, 3)
	c.Params = "timeout=20s"
	dbs := c.OpenAll("app.db")
	mustExec(t, dbs[0], `CREATE TABLE ops(writer INTEGER, seq INTEGER, PRIMARY KEY (writer, seq));
		CREATE TABLE counter(n INTEGER); INSERT INTO counter VALUES (0)`)
	leader, acked := loadThroughLeaderStop(t, c, dbs, "app.db", 1, func(db *sql.DB, writer, seq int) error {
		// Retried on conflicts only: the other writer's commits conflict
		// with this one's, as both update the counter.
		return retryTx(db, func(tx *sql.Tx) error {
			if _, err := tx.Exec("INSERT INTO ops VALUES (?, ?)", writer, seq); err != nil {
				return err
			}
			_, err := tx.Exec("UPDATE counter SET n = n + 1")
			return err
		})
	})
	c.Restart(leader, "app.db")
	for i := range dbs {
		db := c.Open(i, "app.db")
		rows, n := count(t, db, "SELECT count(*) FROM ops"), count(t, db, "SELECT n FROM counter")
		if int64(rows) != acked || n != rows {
			t.Fatalf("node %d: %d rows, counter %d, for %d acknowledged transactions", i, rows, n, acked)
		}
	}
}

// TestTxRefusedStatementKeepsTx: a statement refused before it ran (too
// few arguments) changes nothing, so the transaction goes on, as with
// go-sqlite3; one that fails part way through a multi-statement text
// dooms it (its first statements ran, the rest not).
func TestTxRefusedStatementKeepsTx(t *testing.T) {
	c := clustertest.New(t, 3)
	dbs := c.OpenAll("app.db")
	mustExec(t, dbs[0], "CREATE TABLE t(a, b)")
	tx, err := dbs[0].Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO t VALUES (?, ?)", 1); err == nil {
		t.Fatal("an INSERT with too few arguments succeeded")
	}
	if _, err := tx.Exec("INSERT INTO t VALUES (?, ?)", 1, 2); err != nil {
		t.Fatalf("the transaction did not go on: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	tx, err = dbs[0].Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO t VALUES (?, ?); INSERT INTO t VALUES (?, ?)", 3, 4, 5); err == nil {
		t.Fatal("a multi-statement INSERT with too few arguments succeeded")
	}
	if err := tx.Commit(); err == nil {
		t.Fatal("commit after a multi-statement text failed part way succeeded")
	}
	countOnEvery(t, dbs, "SELECT count(*) FROM t", 1)
}
