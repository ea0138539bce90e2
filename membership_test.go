package rsqlite_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rsqlite/rsqlite"
	"github.com/rsqlite/rsqlite/cluster"
	"github.com/rsqlite/rsqlite/internal/clustertest"
)

// openJoiner opens name on a node that joins the cluster through admin.
func openJoiner(t *testing.T, dir, raft, admin, name string, extra string) *sql.DB {
	t.Helper()
	dsn := fmt.Sprintf("file:%s?raft=%s&join=%s&timeout=30s%s", filepath.Join(dir, name), raft, admin, extra)
	db, err := sql.Open("rsqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("joining node: %v", err)
	}
	return db
}

// waitCount polls a read until it returns want (replication to a new member
// is asynchronous until the reconciler has added it to the group).
func waitCount(t *testing.T, db *sql.DB, q string, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		err := db.QueryRow(q).Scan(&n)
		if err == nil && n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: got %d (%v), want %d", q, n, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestJoinNonVoterAndRemove(t *testing.T) {
	c := clustertest.New(t, 3)
	admin := clustertest.FreeAddr(t)
	c.Nodes[0].Params = "admin=" + admin
	dbs := c.OpenAll("app.db")
	db0 := dbs[0]
	mustExec(t, db0, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
	mustExec(t, dbs[1], "INSERT INTO t(v) VALUES ('before join')")

	// A fourth, voting node joins and receives the existing database.
	dir4, raft4 := t.TempDir(), clustertest.FreeAddr(t)
	db4 := openJoiner(t, dir4, raft4, admin, "app.db", "")
	waitCount(t, db4, "SELECT count(*) FROM t", 1)
	mustExec(t, db4, "INSERT INTO t(v) VALUES ('from the new node')")
	if n := count(t, dbs[2], "SELECT count(*) FROM t"); n != 2 {
		t.Fatalf("node 2 sees %d rows", n)
	}
	// A database created after the join exists on the new node too.
	other := c.Open(1, "other.db")
	mustExec(t, other, "CREATE TABLE o(x); INSERT INTO o VALUES (1)")
	o4 := openJoiner(t, dir4, raft4, admin, "other.db", "")
	waitCount(t, o4, "SELECT count(*) FROM o", 1)

	// A non-voting node serves linearizable reads and forwards writes.
	dir5, raft5 := t.TempDir(), clustertest.FreeAddr(t)
	db5 := openJoiner(t, dir5, raft5, admin, "app.db", "&nonvoting=1")
	waitCount(t, db5, "SELECT count(*) FROM t", 2)
	mustExec(t, db5, "INSERT INTO t(v) VALUES ('from the non-voter')")
	if n := count(t, db0, "SELECT count(*) FROM t"); n != 3 {
		t.Fatalf("node 0 sees %d rows after the non-voter's write", n)
	}
	// It serves stale reads from its own file too; they may lag, so poll.
	stale5 := openJoiner(t, dir5, raft5, admin, "app.db", "&nonvoting=1&consistency=stale")
	waitCount(t, stale5, "SELECT count(*) FROM t", 3)

	// /status shows five members; remove node 2 under write load.
	resp, err := http.Get("http://" + admin + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var st cluster.Status
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if len(st.Catalog.Voters) != 4 || len(st.NonVoters) != 1 {
		t.Fatalf("catalog members: voters %v, non-voters %v", st.Catalog.Voters, st.NonVoters)
	}
	var acked atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := db0.Exec("INSERT INTO t(v) VALUES (?)", fmt.Sprint("load ", i)); err != nil {
				t.Errorf("write during removal: %v", err)
				return
			}
			acked.Add(1)
		}
	}()
	time.Sleep(200 * time.Millisecond)
	body := strings.NewReader(fmt.Sprintf(`{"raft_address": %q}`, c.Nodes[2].Raft))
	resp, err = http.Post("http://"+admin+"/remove", "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("remove: %s %s", resp.Status, msg)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	c.Stop(2)
	want := 3 + int(acked.Load())
	for _, db := range []*sql.DB{db0, dbs[1], db4, db5, stale5} {
		waitCount(t, db, "SELECT count(*) FROM t", want)
	}
	mustExec(t, db4, "INSERT INTO t(v) VALUES ('after removal')")
}

func TestAdminEndpoints(t *testing.T) {
	c := clustertest.New(t, 3)
	admin := clustertest.FreeAddr(t)
	c.Nodes[0].Params = "admin=" + admin
	db := c.OpenAll("app.db")[0]
	mustExec(t, db, `CREATE TABLE t(v); INSERT INTO t VALUES (1), (2);
		CREATE TABLE items(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, at DATETIME, data BLOB, g TEXT GENERATED ALWAYS AS (upper(name)) STORED);
		CREATE TABLE kv(k TEXT PRIMARY KEY, v) WITHOUT ROWID;
		CREATE INDEX items_name ON items(name);
		CREATE VIEW names AS SELECT name FROM items;
		CREATE TABLE log(msg);
		CREATE TRIGGER items_log AFTER INSERT ON items BEGIN INSERT INTO log VALUES ('added ' || NEW.name); END;
		PRAGMA user_version = 42;`)
	for i := 0; i < 500; i++ {
		mustExec(t, db, "INSERT INTO items(name, at, data) VALUES (?, '2024-01-02 03:04:05', randomblob(64)); INSERT INTO kv VALUES (?, ?)", fmt.Sprint("item", i), fmt.Sprint("k", i), i)
	}
	mustExec(t, db, "DELETE FROM items WHERE id % 7 = 0; DELETE FROM t WHERE v = 1")
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + admin + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != 200 {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	code, body := get("/status")
	var st cluster.Status
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || len(st.Databases) != 1 || st.Databases[0].Name != "app.db" ||
		st.Databases[0].Leader == "" || st.SQLite == "" || st.Engine == "" || st.Encoding == 0 {
		t.Fatalf("/status: %d %v %s", code, err, body)
	}
	_, metrics := get("/metrics")
	for _, m := range []string{"rsqlite_proposals_total{db=\"app.db\"}", "rsqlite_applied_entries_total", "rsqlite_read_barrier_seconds_bucket", "rsqlite_apply_batch_seconds"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	// A backup is a plain SQLite file with the data and without bookkeeping.
	code, backup := get("/backup?db=app.db")
	if code != 200 || !strings.HasPrefix(backup, "SQLite format 3\x00") {
		t.Fatalf("/backup: %d (%d bytes)", code, len(backup))
	}
	if code, _ := get("/backup?db=nope.db"); code != http.StatusNotFound {
		t.Fatalf("/backup of a missing database: %d", code)
	}
	// Restoring the backup gives the same database, on every node.
	resp, err := http.Post("http://"+admin+"/restore?db=copy.db", "application/vnd.sqlite3", strings.NewReader(backup))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "ok ") {
		t.Fatalf("/restore: %s", out)
	}
	copyDB := c.Open(2, "copy.db")
	for _, q := range []string{
		"SELECT group_concat(quote(v)) FROM t",
		"SELECT count(*) || ':' || sum(id) || ':' || group_concat(name || at || hex(data) || g) FROM items",
		"SELECT group_concat(k || '=' || v) FROM kv",
		"SELECT seq FROM sqlite_sequence WHERE name = 'items'",
		"SELECT count(*) FROM log",
		"PRAGMA user_version",
		"SELECT group_concat(type || name || coalesce(sql, ''), '|') FROM (SELECT * FROM sqlite_schema WHERE name NOT LIKE '_rsqlite_%' ORDER BY type, name)",
	} {
		var want, got string
		if err := db.QueryRow(q).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if err := copyDB.QueryRow(q).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s:\n restored %.200s\n original %.200s", q, got, want)
		}
	}
}

// metricValue returns the value of one series (name{labels} as /metrics
// prints it) in a Prometheus text exposition.
func metricValue(text, series string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

func scrapeMetrics(t *testing.T, admin string) string {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics on %s: %d %v", admin, resp.StatusCode, err)
	}
	return string(b)
}

// waitMetric polls admin's /metrics until series is above zero.
func waitMetric(t *testing.T, admin, series string, within time.Duration) float64 {
	t.Helper()
	var v float64
	for deadline := time.Now().Add(within); ; time.Sleep(20 * time.Millisecond) {
		v, _ = metricValue(scrapeMetrics(t, admin), series)
		if v > 0 {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s on %s is still %v after %v", series, admin, v, within)
		}
	}
}

// The counters of rare events exist, at 0, from the start, and count a
// transaction conflict decided by the state machines, the proposal retries
// of the commit that lost, and a snapshot streamed to a node that fell
// behind.
func TestMetricsCountConflictsRetriesAndSnapshots(t *testing.T) {
	clustertest.SmallSnapshots(t, 20)
	c, fnet := clustertest.NewWithNet(t, 3)
	admins := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		admins[i] = clustertest.FreeAddr(t)
		n.Params = "admin=" + admins[i]
	}
	dbs := c.OpenAll("app.db")
	mustExec(t, dbs[0], "CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER); INSERT INTO acct VALUES (1, 100)")
	const (
		proposals     = `rsqlite_proposals_total{db="app.db"}`
		retries       = `rsqlite_proposal_retries_total{db="app.db"}`
		conflicts     = `rsqlite_transaction_conflicts_total{db="app.db"}`
		snapsSent     = `rsqlite_snapshots_total{db="app.db",direction="sent"}`
		snapsReceived = `rsqlite_snapshots_total{db="app.db",direction="received"}`
		bytesSent     = `rsqlite_snapshot_bytes_total{db="app.db",direction="sent"}`
		bytesReceived = `rsqlite_snapshot_bytes_total{db="app.db",direction="received"}`
	)
	initial := scrapeMetrics(t, admins[0])
	for _, s := range []string{retries, conflicts, snapsSent, snapsReceived, bytesSent, bytesReceived} {
		if _, ok := metricValue(initial, s); !ok {
			t.Errorf("/metrics lacks %s before its first event", s)
		}
	}

	// A conflict the state machines decide (not a local abort): node f's
	// transaction writes, f is cut off, another node's write commits, and
	// f's commit is proposed (its scratch transaction rolled back) before f
	// applies that write. Its first attempt cannot finish while f is cut
	// off, so the commit retries; after the heal, the raft log has it after
	// the write, and every node refuses it.
	l := c.Leader("app.db")
	f := (l + 1) % 3
	txB, err := dbs[f].Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := txB.Exec("UPDATE acct SET bal = bal + 1 WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	m := scrapeMetrics(t, admins[f])
	before, _ := metricValue(m, proposals)
	retriedBefore, _ := metricValue(m, retries) // opening retried barriers
	fnet.Isolate(f)
	mustExec(t, dbs[l], "UPDATE acct SET bal = bal + 10 WHERE id = 1")
	committed := make(chan error, 1)
	go func() { committed <- txB.Commit() }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if v, _ := metricValue(scrapeMetrics(t, admins[f]), proposals); v > before {
			break
		}
		if time.Now().After(deadline) {
			fnet.Heal()
			t.Fatal("node f never proposed the transaction's commit")
		}
	}
	time.Sleep(2 * cluster.Defaults.ProposeAttempt) // past the first attempt
	fnet.Heal()
	select {
	case err = <-committed:
	case <-time.After(30 * time.Second):
		t.Fatal("the commit did not return after the heal")
	}
	var ce *rsqlite.ConflictError
	if !errors.As(err, &ce) || strings.Contains(err.Error(), "applied on this node while the transaction was open") {
		t.Fatalf("commit on a stale base: %v, want a ConflictError from the state machine", err)
	}
	waitMetric(t, admins[0], conflicts, 10*time.Second)
	if v, _ := metricValue(scrapeMetrics(t, admins[f]), retries); v <= retriedBefore {
		t.Errorf("%s on node %d: %v, want more than the %v before the commit", retries, f, v, retriedBefore)
	}

	// Node 0 falls behind past the compacted log and catches up from a
	// snapshot, which another node streams to it.
	fnet.Isolate(0)
	for i := 0; i < 150; i++ {
		mustExec(t, dbs[1], "INSERT INTO acct(bal) VALUES (?)", i)
	}
	fnet.Heal()
	waitMetric(t, admins[0], snapsReceived, 15*time.Second)
	waitMetric(t, admins[0], bytesReceived, time.Second)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		s1, _ := metricValue(scrapeMetrics(t, admins[1]), snapsSent)
		s2, _ := metricValue(scrapeMetrics(t, admins[2]), snapsSent)
		b1, _ := metricValue(scrapeMetrics(t, admins[1]), bytesSent)
		b2, _ := metricValue(scrapeMetrics(t, admins[2]), bytesSent)
		if s1+s2 > 0 && b1+b2 > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("neither node 1 nor 2 counts the snapshot it streamed: snapshots %v+%v, bytes %v+%v", s1, s2, b1, b2)
		}
	}
}

// Joins sent to different members at the same time each get their own
// replica ID: a change decided on a stale configuration is rejected by raft
// and redone, never applied over another.
func TestConcurrentJoinsThroughDifferentMembers(t *testing.T) {
	c := clustertest.New(t, 3)
	c.OpenAll("app.db")
	const joins = 4
	ids := make([]uint64, joins)
	addrs := make([]string, joins)
	var wg sync.WaitGroup
	for i := range joins {
		addrs[i] = clustertest.FreeAddr(t) // never started: non-voters do not count for quorum
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			id, err := cluster.Running(c.Nodes[i%3].Dir).AddNode(ctx, addrs[i], true)
			if err != nil {
				t.Errorf("join %s through node %d: %v", addrs[i], i%3, err)
			}
			ids[i] = id
		}()
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, nonVoters, err := cluster.Running(c.Nodes[0].Dir).Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if nonVoters[id] != addrs[i] {
			t.Errorf("join %d got replica %d, the catalog has %q there (non-voters %v)", i, id, nonVoters[id], nonVoters)
		}
	}
	if len(nonVoters) != joins {
		t.Errorf("catalog has %d non-voters, want %d: %v", len(nonVoters), joins, nonVoters)
	}
	// Removing two of them at once through different members works too.
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := cluster.Running(c.Nodes[i+1].Dir).RemoveNode(ctx, addrs[i]); err != nil {
				t.Errorf("remove %s: %v", addrs[i], err)
			}
		}()
	}
	wg.Wait()
	if _, nonVoters, err = cluster.Running(c.Nodes[0].Dir).Members(ctx); err != nil || len(nonVoters) != joins-2 {
		t.Errorf("after removing two: non-voters %v, err %v", nonVoters, err)
	}
}
