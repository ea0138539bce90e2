package main

// Process-level tests of rsqlite node and the operations commands: the
// binary is built once, nodes are real processes on loopback, and the test
// process itself joins the cluster as a non-voting member (through a DSN
// with join=) to write and read through database/sql.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rsqlite/rsqlite/cluster"
	"github.com/rsqlite/rsqlite/internal/clustertest"
	"github.com/rsqlite/rsqlite/internal/leakcheck"
)

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := leakcheck.Main(m)
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// rsqliteBinary builds this command once per test run.
func rsqliteBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the rsqlite binary and starts node processes")
	}
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "rsqlite-ops-test-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "rsqlite")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		out, err := cmd.CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// syncBuffer collects a process's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// nodeProc is one rsqlite node process.
type nodeProc struct {
	name, dir, raft, admin string
	cmd                    *exec.Cmd
	out                    syncBuffer
	done                   chan struct{}
	waitErr                error
}

// nodeSpec describes a node process to start; args are added after
// -dir, -raft and -admin.
type nodeSpec struct {
	name string
	args []string
}

// startNode starts an rsqlite node process; it is killed at the end of the
// test if still running, and its output is logged if the test failed.
func startNode(t *testing.T, name, raft, admin string, args ...string) *nodeProc {
	t.Helper()
	return startNodeFor(t, t, name, raft, admin, args...)
}

// startNodeFor starts a node in a subtest t that lives as long as the
// (parent) test owner.
func startNodeFor(t, owner *testing.T, name, raft, admin string, args ...string) *nodeProc {
	t.Helper()
	p := &nodeProc{name: name, dir: filepath.Join(owner.TempDir(), name), raft: raft, admin: admin}
	launchNode(t, owner, p, args)
	return p
}

// launchNode starts p (name, dir and addresses set) with args after -dir,
// -raft and -admin. At the end of owner it is killed if still running, and
// its output is logged if owner failed.
func launchNode(t, owner *testing.T, p *nodeProc, args []string) {
	t.Helper()
	p.done = make(chan struct{})
	full := append([]string{"node", "-dir", p.dir, "-raft", p.raft, "-admin", p.admin}, args...)
	p.cmd = exec.Command(rsqliteBinary(t), full...)
	p.cmd.Stdout = &p.out
	p.cmd.Stderr = &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	owner.Cleanup(func() {
		if !p.exited() {
			p.cmd.Process.Kill()
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				owner.Errorf("%s: still running 10s after SIGKILL", p.name)
			}
		}
		if owner.Failed() {
			owner.Logf("output of %s (%s):\n%s", p.name, p.raft, p.out.String())
		}
	})
}

func (p *nodeProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitOutput waits until the process has printed s.
func (p *nodeProc) waitOutput(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.out.String(), s) {
		if p.exited() {
			t.Fatalf("%s exited (%v) before printing %q", p.name, p.waitErr, s)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not print %q within %v", p.name, s, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// terminate sends SIGTERM and checks the process exits with status 0
// within 10s, saying it stopped.
func (p *nodeProc) terminate(t *testing.T) time.Duration {
	t.Helper()
	t0 := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("%s: SIGTERM: %v", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not exit within 10s of SIGTERM", p.name)
	}
	d := time.Since(t0)
	if p.waitErr != nil {
		t.Fatalf("%s exited with %v after SIGTERM, want status 0", p.name, p.waitErr)
	}
	if !strings.Contains(p.out.String(), "rsqlite node: stopped") {
		t.Fatalf("%s exited without saying it stopped", p.name)
	}
	return d
}

// startNodes starts nodes concurrently (a quorum must be up before any is
// ready) and waits until each is ready.
func startNodes(t *testing.T, specs []nodeSpec, raft, admin []string) []*nodeProc {
	t.Helper()
	procs := make([]*nodeProc, len(specs))
	for i, s := range specs {
		procs[i] = startNode(t, s.name, raft[i], admin[i], s.args...)
	}
	for _, p := range procs {
		p.waitOutput(t, "rsqlite node: ready", 30*time.Second)
	}
	return procs
}

// runTool runs an rsqlite subcommand and returns its combined output and
// exit status.
func runTool(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, rsqliteBinary(t), args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("rsqlite %s: %v", strings.Join(args, " "), err)
	return "", -1
}

func mustTool(t *testing.T, args ...string) string {
	t.Helper()
	out, code := runTool(t, args...)
	if code != 0 {
		t.Fatalf("rsqlite %s: exit status %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func nodeStatus(t *testing.T, admin string) cluster.Status {
	t.Helper()
	code, body := httpGet(t, "http://"+admin+"/status")
	var st cluster.Status
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil {
		t.Fatalf("%s/status: %d %v\n%s", admin, code, err, body)
	}
	return st
}

func dbStatus(st cluster.Status, name string) (cluster.DBStatus, bool) {
	for _, d := range st.Databases {
		if d.Name == name {
			return d, true
		}
	}
	return cluster.DBStatus{}, false
}

// waitFor polls cond every 100ms for up to timeout; cond says what it saw.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; last saw: %s", timeout, what, saw)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freeAddrs(t *testing.T, n int) []string {
	var a []string
	for range n {
		a = append(a, clustertest.FreeAddr(t))
	}
	return a
}

// testNode is the test process's own node: a non-voting member that joins
// through a process node's admin API, for writes and reads through SQL.
type testNode struct {
	t              *testing.T
	dir, raft, dsn string // dsn lacks the database name's path and is completed by open
}

func joinTestNode(t *testing.T, admin, extra string) *testNode {
	cluster.SetLogLevel(slog.LevelError + 4) // dragonboat complains about every peer the test stops
	n := &testNode{t: t, dir: t.TempDir(), raft: clustertest.FreeAddr(t)}
	n.dsn = fmt.Sprintf("raft=%s&join=%s&nonvoting=1&timeout=30s%s", n.raft, admin, extra)
	return n
}

// open opens name on the test node; t may be a subtest: the handle lives as
// long as the test that joined the node.
func (n *testNode) open(t *testing.T, name string) *sql.DB {
	t.Helper()
	db, err := sql.Open("rsqlite", fmt.Sprintf("file:%s?%s", filepath.Join(n.dir, name), n.dsn))
	if err != nil {
		t.Fatal(err)
	}
	n.t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("test node: open %s: %v", name, err)
	}
	return db
}

func mustExecSQL(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func countRows(t *testing.T, db *sql.DB, q string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// countInFile counts rows in a plain SQLite file with go-sqlite3.
func countInFile(t *testing.T, path, q string) int {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return countRows(t, db, q)
}

// logicalDump is the schema and every row of every table but rsqlite's
// bookkeeping, read through db.
func logicalDump(t *testing.T, db *sql.DB) string {
	t.Helper()
	return clustertest.DumpDB(t, db, func(name string) bool { return strings.HasPrefix(name, "_rsqlite") })
}

// TestOpsCluster runs a 3-node cluster of rsqlite node processes through
// the admin API and every operations command: status, join, add-nonvoter,
// remove under write load, SIGTERM, backup and restore.
func TestOpsCluster(t *testing.T) {
	raft, admin := freeAddrs(t, 3), freeAddrs(t, 3)
	peers := strings.Join(raft, ",")
	var specs []nodeSpec
	for i := range 3 {
		specs = append(specs, nodeSpec{name: fmt.Sprintf("node%d", i+1), args: []string{"-peers", peers}})
	}
	top := t
	t0 := time.Now()
	nodes := startNodes(t, specs, raft, admin)
	t.Logf("3 node processes ready in %v", time.Since(t0).Round(time.Millisecond))

	me := joinTestNode(t, admin[0], "")
	app := me.open(t, "app.db")
	mustExecSQL(t, app, `CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, r REAL, b BLOB);
		CREATE INDEX t_v ON t(v);
		CREATE VIEW t_odd AS SELECT * FROM t WHERE id % 2 = 1`)
	mustExecSQL(t, app, `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 1000)
		INSERT INTO t(v, r, b) SELECT 'row ' || x, x * 0.5, randomblob(16) FROM c`)
	mustExecSQL(t, app, `INSERT INTO t(v, r, b) VALUES (NULL, NULL, NULL), ('ünïcode ✓', -1e300, x'00ff')`)
	rows := 1002
	other := me.open(t, "other.db")
	mustExecSQL(t, other, "CREATE TABLE o(x); INSERT INTO o VALUES (1), (2)")

	t.Run("admin endpoints", func(t *testing.T) {
		for i, a := range admin {
			waitFor(t, 10*time.Second, "node"+fmt.Sprint(i+1)+" ready", func() (bool, string) {
				code, body := httpGet(t, "http://"+a+"/readyz")
				return code == 200 && body == "ok\n", fmt.Sprint(code, " ", body)
			})
			st := nodeStatus(t, a)
			if st.RaftAddress != raft[i] || st.NonVoting || len(st.Catalog.Voters) != 3 || st.Catalog.Leader == "" {
				t.Fatalf("node%d /status: %+v", i+1, st)
			}
			if !slices.Contains(mapValues(st.NonVoters), me.raft) {
				t.Errorf("node%d /status non-voters %v lack the test node %s", i+1, st.NonVoters, me.raft)
			}
			d, ok := dbStatus(st, "app.db")
			if !ok || !d.Ready || d.Leader == "" || d.Term == 0 || d.Applied == 0 || d.SizeBytes == 0 || d.ShardID == 0 {
				t.Fatalf("node%d /status app.db: %+v (found %v)", i+1, d, ok)
			}
		}
		_, metrics := httpGet(t, "http://"+admin[0]+"/metrics")
		for _, m := range []string{
			`rsqlite_applied_entries_total{db="app.db"}`,
			`rsqlite_apply_batch_seconds_bucket{db="app.db"`,
			`rsqlite_apply_batch_seconds_count{db="other.db"}`,
			"# TYPE rsqlite_applied_entries_total counter",
			"go_goroutines", "process_resident_memory_bytes",
		} {
			if !strings.Contains(metrics, m) {
				t.Errorf("/metrics lacks %s", m)
			}
		}
	})

	t.Run("status command", func(t *testing.T) {
		out := mustTool(t, "status", "-admin", admin[0])
		for _, want := range append([]string{"app.db", "other.db", "MEMBER", me.raft, "non-voter", "catalog leader", "(this node)"}, raft...) {
			if !strings.Contains(out, want) {
				t.Errorf("rsqlite status lacks %q:\n%s", want, out)
			}
		}
		// Exactly one node calls itself app.db's leader, the others followers.
		waitFor(t, 10*time.Second, "one leader of app.db in rsqlite status", func() (bool, string) {
			roles := map[string]int{}
			var outs []string
			for _, a := range admin {
				out := mustTool(t, "status", "-admin", a)
				outs = append(outs, out)
				for _, line := range strings.Split(out, "\n") {
					if f := strings.Fields(line); len(f) > 2 && f[0] == "app.db" {
						roles[f[2]]++
					}
				}
			}
			return roles["leader"] == 1 && roles["follower"] == 2, fmt.Sprint(roles, outs)
		})
		var st cluster.Status
		if err := json.Unmarshal([]byte(mustTool(t, "status", "-json", "-admin", admin[1])), &st); err != nil || st.RaftAddress != raft[1] {
			t.Errorf("rsqlite status -json: %v %+v", err, st)
		}
	})

	// A fourth node, registered with rsqlite join and started with -join,
	// receives every database: those created before it joined and after.
	raft4, admin4 := clustertest.FreeAddr(t), clustertest.FreeAddr(t)
	var node4 *nodeProc
	t.Run("join a fourth node", func(t *testing.T) {
		out := mustTool(t, "join", "-admin", admin[0], "-raft", raft4)
		var id uint64
		if _, err := fmt.Sscanf(out, raft4+" is replica %d (voter)", &id); err != nil || id != 5 {
			t.Fatalf("rsqlite join: %v\n%s", err, out) // 1-3 peers, 4 the test node
		}
		node4 = startNodeFor(t, top, "node4", raft4, admin4, "-join", admin[1])
		node4.waitOutput(t, fmt.Sprintf("replica %d (voter)", id), 30*time.Second)
		node4.waitOutput(t, "rsqlite node: ready", 30*time.Second)
		third := me.open(t, "third.db")
		mustExecSQL(t, third, "CREATE TABLE th(x); INSERT INTO th VALUES ('after the join')")
		waitFor(t, 30*time.Second, "every database on node4", func() (bool, string) {
			st := nodeStatus(t, admin4)
			var names []string
			for _, d := range st.Databases {
				if d.Ready && d.Applied > 0 {
					names = append(names, d.Name)
				}
			}
			return slices.Equal(names, []string{"app.db", "other.db", "third.db"}), fmt.Sprint(names)
		})
		f := filepath.Join(t.TempDir(), "app-from-node4.db")
		mustTool(t, "backup", "-admin", admin4, "app.db", f)
		if n := countInFile(t, f, "SELECT count(*) FROM t"); n != rows {
			t.Fatalf("node4's copy of app.db has %d rows, want %d", n, rows)
		}
	})
	if node4 == nil {
		t.FailNow()
	}

	// A non-voting node process, registered with add-nonvoter.
	raft5, admin5 := clustertest.FreeAddr(t), clustertest.FreeAddr(t)
	t.Run("non-voter serves reads", func(t *testing.T) {
		out := mustTool(t, "add-nonvoter", "-admin", admin[1], "-raft", raft5)
		if !strings.Contains(out, "(non-voting member)") {
			t.Fatalf("rsqlite add-nonvoter:\n%s", out)
		}
		node5 := startNodeFor(t, top, "node5", raft5, admin5, "-join", admin[2], "-nonvoting")
		node5.waitOutput(t, "(non-voting member)", 30*time.Second)
		node5.waitOutput(t, "rsqlite node: ready", 30*time.Second)
		var before uint64
		waitFor(t, 30*time.Second, "app.db on node5", func() (bool, string) {
			st := nodeStatus(t, admin5)
			d, ok := dbStatus(st, "app.db")
			before = d.Applied
			return st.NonVoting && ok && d.Ready && d.Applied > 0, fmt.Sprintf("%+v", st)
		})
		for i := range 10 {
			mustExecSQL(t, app, "INSERT INTO t(v) VALUES (?)", fmt.Sprint("for the non-voter ", i))
		}
		rows += 10
		waitFor(t, 10*time.Second, "node5 to apply more entries", func() (bool, string) {
			d, _ := dbStatus(nodeStatus(t, admin5), "app.db")
			return d.Applied >= before+10, fmt.Sprintf("applied %d, was %d", d.Applied, before)
		})
		// /backup on the non-voter passes a read barrier there: a
		// linearizable read it serves itself.
		f := filepath.Join(t.TempDir(), "app-from-node5.db")
		mustTool(t, "backup", "-admin", admin5, "app.db", f)
		if n := countInFile(t, f, "SELECT count(*) FROM t"); n != rows {
			t.Fatalf("the non-voter's copy has %d rows, want %d", n, rows)
		}
		out = mustTool(t, "status", "-admin", admin5)
		if !strings.Contains(out, "(non-voter)") || !strings.Contains(out, "app.db") || !strings.Contains(out, " non-voter ") {
			t.Errorf("rsqlite status on the non-voter:\n%s", out)
		}
		st := nodeStatus(t, admin[0])
		if len(st.Catalog.Voters) != 4 || len(st.NonVoters) != 2 {
			t.Errorf("members: voters %v, non-voters %v; want 4 and 2", st.Catalog.Voters, st.NonVoters)
		}
	})

	// The node to remove is the catalog's leader, the hardest case: the
	// catalog elects a new leader while the removal completes. keep are
	// the two other initial nodes.
	victim, victimLeads := 2, false
	if i := slices.Index(raft, nodeStatus(t, admin[0]).Catalog.Leader); i >= 0 {
		victim, victimLeads = i, true
	}
	var keep []int
	for i := range 3 {
		if i != victim {
			keep = append(keep, i)
		}
	}
	t.Run("remove under write load", func(t *testing.T) {
		gone := nodes[victim]
		var acked atomic.Int64
		stop := make(chan struct{})
		werr := make(chan error, 1)
		stopWriter := sync.OnceValue(func() error { close(stop); return <-werr })
		defer stopWriter() // also when the test fails part way
		go func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					werr <- nil
					return
				default:
				}
				if _, err := app.Exec("INSERT INTO t(v) VALUES (?)", fmt.Sprint("load ", i)); err != nil {
					werr <- fmt.Errorf("write %d during the removal: %w", i, err)
					return
				}
				acked.Add(1)
			}
		}()
		time.Sleep(300 * time.Millisecond)
		out := mustTool(t, "remove", "-admin", admin[keep[0]], "-raft", gone.raft)
		if !strings.Contains(out, "removed "+gone.raft) {
			t.Fatalf("rsqlite remove:\n%s", out)
		}
		// Stop it, as rsqlite remove says.
		d := gone.terminate(t)
		t.Logf("removed %s (the catalog leader: %v), which exited 0 in %v after SIGTERM",
			gone.name, victimLeads, d.Round(time.Millisecond))
		// It leaves every database group (the reconcilers of the leaders).
		// When the catalog leader is removed, a reconciler pass may wait
		// out its 30s deadline on a request the departing leader never
		// answers; hence the long bound.
		t0 := time.Now()
		waitFor(t, 45*time.Second, gone.name+" out of every database group", func() (bool, string) {
			for _, a := range []string{admin[keep[0]], admin[keep[1]], admin4} {
				st := nodeStatus(t, a)
				for _, d := range st.Databases {
					if slices.Contains(mapValues(d.Voters), gone.raft) {
						return false, fmt.Sprintf("on %s, %s has leader %d term %d voters %v", st.RaftAddress, d.Name, d.LeaderID, d.Term, d.Voters)
					}
				}
				if slices.Contains(mapValues(st.Catalog.Voters), gone.raft) {
					return false, fmt.Sprintf("on %s, catalog voters %v", st.RaftAddress, st.Catalog.Voters)
				}
			}
			return true, ""
		})
		t.Logf("%s left every group %v after it stopped", gone.name, time.Since(t0).Round(time.Millisecond))
		time.Sleep(300 * time.Millisecond) // keep writing without it
		if err := stopWriter(); err != nil {
			t.Fatal(err)
		}
		if acked.Load() == 0 {
			t.Fatal("no write succeeded during the removal")
		}
		rows += int(acked.Load())
		if n := countRows(t, app, "SELECT count(*) FROM t"); n != rows {
			t.Fatalf("after the removal the cluster has %d rows, want %d (%d written under load)", n, rows, acked.Load())
		}
		f := filepath.Join(t.TempDir(), "app-after-removal.db")
		mustTool(t, "backup", "-admin", admin4, "app.db", f)
		if n := countInFile(t, f, "SELECT count(*) FROM t"); n != rows {
			t.Fatalf("node4's copy has %d rows, want %d", n, rows)
		}
		out = mustTool(t, "status", "-admin", admin[keep[1]])
		if strings.Contains(out, gone.raft) {
			t.Errorf("rsqlite status still lists the removed node:\n%s", out)
		}
		if out, code := runTool(t, "remove", "-admin", admin[keep[0]], "-raft", gone.raft); code != 1 || !strings.Contains(out, "not a member") {
			t.Errorf("removing it again: status %d\n%s", code, out)
		}
	})

	t.Run("backup and restore", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "app-backup.db")
		out := mustTool(t, "backup", "-admin", admin[keep[1]], "app.db", f)
		if !strings.Contains(out, "integrity ok") {
			t.Fatalf("rsqlite backup:\n%s", out)
		}
		if n := countInFile(t, f, "SELECT count(*) FROM sqlite_schema WHERE name LIKE '_rsqlite%'"); n != 0 {
			t.Errorf("the backup holds %d rsqlite bookkeeping tables", n)
		}
		out, code := runTool(t, "restore", "-admin", admin[keep[0]], f, "restored.db")
		if code != 0 {
			t.Fatalf("rsqlite restore: exit status %d\n%s", code, out)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) < 2 || !strings.HasPrefix(lines[len(lines)-2], "ok ") {
			t.Errorf("rsqlite restore did not print the node's ok line:\n%s", out)
		}
		restored := me.open(t, "restored.db")
		if a, b := logicalDump(t, app), logicalDump(t, restored); a != b {
			t.Fatalf("restored.db differs from app.db: %s", firstDifference(a, b))
		}
		if n := countRows(t, restored, "SELECT count(*) FROM t"); n != rows {
			t.Fatalf("restored.db has %d rows, want %d", n, rows)
		}
		// Restoring over an existing database is refused.
		if out, code := runTool(t, "restore", "-admin", admin[keep[1]], f, "app.db"); code == 0 {
			t.Errorf("restoring over app.db succeeded:\n%s", out)
		}
		// Every member gets the restored database.
		waitFor(t, 20*time.Second, "restored.db on node4", func() (bool, string) {
			d, ok := dbStatus(nodeStatus(t, admin4), "restored.db")
			return ok && d.Ready, fmt.Sprintf("%+v", d)
		})
	})

	t.Run("SIGTERM", func(t *testing.T) {
		app.Close() // the test node goes first: nothing left to write
		for _, p := range []*nodeProc{node4, nodes[keep[0]], nodes[keep[1]]} {
			d := p.terminate(t)
			t.Logf("%s exited 0 in %v after SIGTERM", p.name, d.Round(time.Millisecond))
		}
	})
}

// firstDifference describes where two dumps first differ.
func firstDifference(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < max(len(al), len(bl)); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("%d and %d lines; line %d:\n  %.300s\n  %.300s", len(al), len(bl), i+1, x, y)
		}
	}
	return "no line differs"
}

func mapValues(m map[uint64]string) []string {
	var v []string
	for _, s := range m {
		v = append(v, s)
	}
	return v
}

// TestOpsTLS runs a 3-node cluster with mutual TLS and checks that a node
// whose certificate another CA signed, or a client with no certificate, is
// refused.
func TestOpsTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "rsqlite test CA")
	other := newTestCA(t, "some other CA")
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, ca.certPEM, 0o644)
	tlsArgs := func(c *testCA, name string) []string {
		cert, key := c.issue(t, dir, name)
		return []string{"-tls-ca", caFile, "-tls-cert", cert, "-tls-key", key}
	}

	raft, admin := freeAddrs(t, 3), freeAddrs(t, 3)
	peers := strings.Join(raft, ",")
	var specs []nodeSpec
	for i := range 3 {
		name := fmt.Sprintf("tls%d", i+1)
		specs = append(specs, nodeSpec{name: name, args: append([]string{"-peers", peers}, tlsArgs(ca, name)...)})
	}
	nodes := startNodes(t, specs, raft, admin)
	if !strings.Contains(nodes[0].out.String(), "tls mutual") {
		t.Fatalf("node1 does not say TLS is on:\n%s", nodes[0].out.String())
	}

	// The test node joins with its own certificate and writes.
	cert, key := ca.issue(t, dir, "test-node")
	me := joinTestNode(t, admin[0], "&tls_ca="+caFile+"&tls_cert="+cert+"&tls_key="+key)
	db := me.open(t, "secure.db")
	mustExecSQL(t, db, "CREATE TABLE s(x); INSERT INTO s VALUES (1), (2), (3)")
	waitFor(t, 20*time.Second, "secure.db on every node", func() (bool, string) {
		for _, a := range admin {
			d, ok := dbStatus(nodeStatus(t, a), "secure.db")
			if !ok || !d.Ready || d.Applied == 0 {
				return false, fmt.Sprintf("%s: %+v", a, d)
			}
		}
		return true, ""
	})

	// The raft port itself: a certificate of the cluster's CA is accepted,
	// one of another CA is refused during the handshake.
	good := tlsClientConfig(t, ca, ca.issueCert(t, "probe"))
	if err := tlsProbe(raft[0], good); err != nil {
		t.Fatalf("a certificate from the cluster's CA was refused: %v", err)
	}
	bad := tlsClientConfig(t, ca, other.issueCert(t, "intruder"))
	if err := tlsProbe(raft[0], bad); err == nil {
		t.Fatal("a certificate from another CA was accepted on the raft port")
	} else {
		t.Logf("another CA's certificate refused: %v", err)
	}
	// A client that trusts the cluster's CA but presents no certificate.
	anonymous := &tls.Config{RootCAs: good.RootCAs, ServerName: good.ServerName}
	if err := tlsProbe(raft[0], anonymous); err == nil {
		t.Fatal("a connection without a client certificate was accepted on the raft port")
	} else {
		t.Logf("no client certificate refused: %v", err)
	}

	// A node with another CA's certificate is admitted by the admin API
	// (which is not TLS) but cannot talk to anyone: it never becomes ready
	// and receives nothing, while a node started at the same time with a
	// good certificate is ready within seconds. Both non-voting, so quorum
	// is not at stake.
	rogueCA := filepath.Join(dir, "other-ca.pem")
	os.WriteFile(rogueCA, other.certPEM, 0o644)
	rcert, rkey := other.issue(t, dir, "rogue")
	rogue := startNode(t, "rogue", clustertest.FreeAddr(t), clustertest.FreeAddr(t),
		"-join", admin[0], "-nonvoting", "-tls-ca", rogueCA, "-tls-cert", rcert, "-tls-key", rkey)
	control := startNode(t, "control", clustertest.FreeAddr(t), clustertest.FreeAddr(t),
		append([]string{"-join", admin[1], "-nonvoting"}, tlsArgs(ca, "control")...)...)
	rogue.waitOutput(t, "rsqlite node: replica", 30*time.Second)
	control.waitOutput(t, "rsqlite node: ready", 30*time.Second)
	mustExecSQL(t, db, "INSERT INTO s VALUES (4)") // the cluster goes on
	waitFor(t, 20*time.Second, "secure.db on the control node", func() (bool, string) {
		d, ok := dbStatus(nodeStatus(t, control.admin), "secure.db")
		return ok && d.Ready && d.Applied > 0, fmt.Sprintf("%+v", d)
	})
	time.Sleep(time.Second)
	if code, body := httpGet(t, "http://"+rogue.admin+"/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("the rogue node's /readyz: %d %s", code, body)
	}
	st := nodeStatus(t, rogue.admin)
	if st.Catalog.LeaderID != 0 || len(st.Databases) != 0 {
		t.Fatalf("the rogue node reached the cluster: %+v", st)
	}
	if strings.Contains(rogue.out.String(), "rsqlite node: ready") {
		t.Fatal("the rogue node said it was ready")
	}
	if n := countRows(t, db, "SELECT count(*) FROM s"); n != 4 {
		t.Fatalf("secure.db has %d rows, want 4", n)
	}
}

// tlsProbe connects to a raft port with cfg and reports whether the peer
// refused the connection. With TLS 1.3 the server checks the client's
// certificate after the client's handshake ends, so a refusal shows up as
// an alert on the first read; an accepted one just sees no data.
func tlsProbe(addr string, cfg *tls.Config) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	_, err = conn.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	return err
}

func tlsClientConfig(t *testing.T, ca *testCA, cert tls.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	// Present the certificate whatever CAs the server asks for (Go's client
	// would otherwise send none when its issuer is not among them).
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1",
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }}
}

// testCA is a throw-away certificate authority.
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

var serial atomic.Int64

// certTemplate is a day's certificate for name with a fresh serial number.
func certTemplate(name string) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := certTemplate(name)
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issueCert makes a node certificate for 127.0.0.1, good for both ends of
// a connection.
func (c *testCA) issueCert(t *testing.T, name string) tls.Certificate {
	certPEM, keyPEM := c.issuePEM(t, name)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// issue writes a node certificate and key to dir and returns their paths.
func (c *testCA) issue(t *testing.T, dir, name string) (certFile, keyFile string) {
	certPEM, keyPEM := c.issuePEM(t, name)
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func (c *testCA) issuePEM(t *testing.T, name string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := certTemplate(name)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	tmpl.IPAddresses, tmpl.DNSNames = []net.IP{net.ParseIP("127.0.0.1")}, []string{"localhost"}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// TestOpsCommandLine checks the errors for bad flag combinations and that
// every subcommand has -h.
func TestOpsCommandLine(t *testing.T) {
	dir := t.TempDir()
	notSQLite := filepath.Join(dir, "not.db")
	os.WriteFile(notSQLite, []byte("hello, this is not a database file"), 0o644)
	inUse := filepath.Join(dir, "in-use.db")
	os.WriteFile(inUse, append([]byte("SQLite format 3\x00"), make([]byte, 4080)...), 0o644)
	os.WriteFile(inUse+"-wal", []byte("frames"), 0o644)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"node"}, 2, "-dir is required"},
		{[]string{"node", "-dir", dir}, 2, "-raft is required"},
		{[]string{"node", "-dir", dir, "-raft", "127.0.0.1"}, 2, "-raft \"127.0.0.1\": want host:port"},
		{[]string{"node", "-dir", dir, "-raft", "127.0.0.1:7001", "-peers", "127.0.0.1:7002,127.0.0.1:7003"}, 2, "not one of the peers"},
		{[]string{"node", "-dir", dir, "-raft", "127.0.0.1:7001", "-peers", "127.0.0.1:7001", "-join", "127.0.0.1:8001"}, 2, "-peers and -join exclude each other"},
		{[]string{"node", "-dir", dir, "-raft", "127.0.0.1:7001", "-nonvoting"}, 2, "-nonvoting applies only to a node that joins"},
		{[]string{"node", "-dir", dir, "-raft", "127.0.0.1:7001", "-join", "nohost"}, 2, "-join \"nohost\": want host:port"},
		{[]string{"node", "-dir", dir, "-raft", "127.0.0.1:7001", "-tls-ca", "ca.pem"}, 2, "all three of -tls-ca, -tls-cert and -tls-key"},
		{[]string{"node", "-dir", dir, "-raft", "127.0.0.1:7001", "-tls-ca", "nope.pem", "-tls-cert", "c", "-tls-key", "k"}, 2, "-tls-ca: open nope.pem"},
		{[]string{"node", "-dir", dir, "-raft", "127.0.0.1:7001", "-log-level", "loud"}, 2, "-log-level"},
		{[]string{"node", "-dir", dir, "-raft", "127.0.0.1:7001", "-hibernate", "100ms"}, 2, "-hibernate \"100ms\": want at least 1s"},
		{[]string{"node", "-dir", dir, "-raft", "127.0.0.1:7001", "surplus"}, 2, "unexpected argument \"surplus\""},
		{[]string{"node", "-bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"node", "-dir", filepath.Join(dir, "j"), "-raft", "127.0.0.1:7001", "-join", "127.0.0.1:1"}, 1, "join through 127.0.0.1:1"},
		{[]string{"status"}, 2, "-admin is required"},
		{[]string{"status", "-admin", "127.0.0.1:1"}, 1, "connection refused"},
		{[]string{"join", "-admin", "127.0.0.1:1"}, 2, "-raft is required"},
		{[]string{"join", "-admin", "127.0.0.1:1", "-raft", "x"}, 2, "-raft \"x\": want host:port"},
		{[]string{"add-nonvoter", "-raft", "127.0.0.1:7004"}, 2, "-admin is required"},
		{[]string{"add-nonvoter", "-admin", "127.0.0.1:1", "-raft", "127.0.0.1:7004", "-nonvoting"}, 2, "not defined: -nonvoting"},
		{[]string{"remove", "-admin", "127.0.0.1:1"}, 2, "-raft is required"},
		{[]string{"backup", "-admin", "127.0.0.1:1", "app.db"}, 2, "want 2 arguments, got 1"},
		{[]string{"backup", "-admin", "127.0.0.1:1", "../app.db", "x"}, 2, "must be a file name"},
		{[]string{"backup", "app.db", "x"}, 2, "-admin is required"},
		{[]string{"backup", "-admin", "127.0.0.1:1", "app.db", dir}, 2, "is a directory"},
		{[]string{"restore", "-admin", "127.0.0.1:1", notSQLite, "x.db"}, 1, "not a SQLite database file"},
		{[]string{"restore", "-admin", "127.0.0.1:1", inUse, "x.db"}, 1, "in-use.db-wal exists"},
		{[]string{"restore", "-admin", "127.0.0.1:1", filepath.Join(dir, "missing.db"), "x.db"}, 1, "no such file"},
		{[]string{"restore", "-admin", "127.0.0.1:1", notSQLite, "x.db", "extra"}, 2, "unexpected argument \"extra\""},
	} {
		out, code := runTool(t, c.args...)
		if code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("rsqlite %s: status %d, want %d with %q; output:\n%s", strings.Join(c.args, " "), code, c.code, c.want, out)
		}
	}
	for _, cmd := range []string{"node", "status", "join", "add-nonvoter", "remove", "backup", "restore"} {
		out, code := runTool(t, cmd, "-h")
		if code != 0 || !strings.Contains(out, "usage: rsqlite "+cmd) || !strings.Contains(out, "-admin") {
			t.Errorf("rsqlite %s -h: status %d\n%s", cmd, code, out)
		}
	}
	if out, _ := runTool(t, "-h"); !strings.Contains(out, "add-nonvoter") {
		t.Errorf("rsqlite -h does not list the operations commands:\n%s", out)
	}
}
