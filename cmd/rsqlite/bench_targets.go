package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "github.com/mattn/go-sqlite3" // plain SQLite, the baseline

	"github.com/rsqlite/rsqlite/cluster"
)

// machineInfo describes where the bench ran.
type machineInfo struct {
	CPUs   int    `json:"cpus"`
	Model  string `json:"cpu_model"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
	When   string `json:"when"`
}

func readMachine() machineInfo {
	m := machineInfo{CPUs: runtime.NumCPU(), Go: runtime.Version(), When: time.Now().UTC().Format(time.RFC3339)}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// latStats summarises a set of latencies.
type latStats struct {
	n        int
	p50, p99 time.Duration
}

func summarize(lat []time.Duration) latStats {
	if len(lat) == 0 {
		return latStats{}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	at := func(p int) time.Duration { return lat[min(len(lat)-1, len(lat)*p/100)] }
	return latStats{n: len(lat), p50: at(50), p99: at(99)}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// measureFloor times 4 KiB pwrite + fdatasync of one block, the cost every
// durable commit pays at least once on this disk.
func (b *bencher) measureFloor() error {
	f, err := os.Create(filepath.Join(b.base, "fdatasync.dat"))
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for i := range buf {
		buf[i] = byte(i)
	}
	if _, err := f.WriteAt(buf, 0); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	var lat []time.Duration
	deadline := time.Now().Add(min(b.o.duration, 3*time.Second))
	for i := 0; i < 5000 && time.Now().Before(deadline); i++ {
		buf[0] = byte(i)
		t0 := time.Now()
		if _, err := f.WriteAt(buf, 0); err != nil {
			return err
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return fmt.Errorf("fdatasync: %w", err)
		}
		lat = append(lat, time.Since(t0))
	}
	now := summarize(slices.Clone(lat))
	b.floorLat = append(b.floorLat, lat...)
	b.floor = summarize(slices.Clone(b.floorLat))
	b.progress("fdatasync floor (4 KiB write + fdatasync): p50 %.3fms p99 %.3fms over %d (all so far: p50 %.3fms)",
		ms(now.p50), ms(now.p99), now.n, ms(b.floor.p50))
	return nil
}

// target is one system under test, with the database W1-W3 use.
type target struct {
	key    string
	desc   string
	rs     bool
	db     *sql.DB // writes and (linearizable) reads
	stale  *sql.DB // rsqlite: reads with consistency=stale
	writer *sql.DB // plain with -plainpool single: the one-connection writer pool
	all    []*sql.DB
	// rsqlite-3 only
	nodes  []rsNode
	leader string // raft address of bench.db's leader when opened
}

func (t *target) close() error {
	var errs []error
	for _, db := range t.all {
		errs = append(errs, db.Close())
	}
	return errors.Join(errs...)
}

// writeDB is the pool writes go through.
func (t *target) writeDB() *sql.DB {
	if t.writer != nil {
		return t.writer
	}
	return t.db
}

// pool sizes the pools for c concurrent callers: database/sql keeps only two
// idle connections by default, which would reopen connections on every call.
func (t *target) pool(c int) {
	for _, db := range []*sql.DB{t.db, t.stale} {
		if db != nil {
			db.SetMaxOpenConns(c)
			db.SetMaxIdleConns(c)
		}
	}
	if t.writer != nil {
		t.writer.SetMaxOpenConns(1)
		t.writer.SetMaxIdleConns(1)
	}
}

const benchDB = "bench.db"

func (b *bencher) openTarget(key string, round int) (*target, error) {
	t := &target{key: key}
	dirName := key
	if round > 1 {
		dirName = fmt.Sprintf("%s-%d", key, round)
	}
	switch key {
	case "plain-full", "plain-normal":
		sync := strings.ToUpper(strings.TrimPrefix(key, "plain-"))
		dir := filepath.Join(b.base, dirName)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		dsn := fmt.Sprintf("file:%s?_journal_mode=WAL&_synchronous=%s&_busy_timeout=10000&_txlock=immediate",
			filepath.Join(dir, benchDB), sync)
		db, err := sql.Open("sqlite3", dsn)
		if err != nil {
			return nil, err
		}
		t.db, t.all = db, []*sql.DB{db}
		if err := db.Ping(); err != nil {
			t.close()
			return nil, err
		}
		t.desc = "go-sqlite3, WAL, synchronous=" + sync
		if b.o.plainPool == "single" {
			w, err := sql.Open("sqlite3", dsn)
			if err != nil {
				t.close()
				return nil, err
			}
			t.writer, t.all = w, append(t.all, w)
			t.desc += ", writes through one connection"
		} else {
			t.desc += ", writes through c connections (busy_timeout)"
		}
	case "rsqlite-1":
		dir := filepath.Join(b.base, dirName)
		path := filepath.Join(dir, benchDB)
		t.rs = true
		if err := openRS(t, "file:"+path, "file:"+path+"?consistency=stale"); err != nil {
			return nil, err
		}
		t.desc = "rsqlite, one node, no peers"
	case "rsqlite-3":
		t.rs = true
		nodes, err := newRSNodes(filepath.Join(b.base, dirName))
		if err != nil {
			return nil, err
		}
		t.nodes = nodes
		dbs, err := openOnAll(nodes, benchDB)
		t.all = dbs
		if err != nil {
			t.close()
			return nil, err
		}
		li, addr, err := leaderOfDB(nodes, benchDB, nil, 10*time.Second)
		if err != nil {
			t.close()
			return nil, err
		}
		t.leader = addr
		use := li
		if b.o.via == "follower" {
			use = (li + 1) % len(nodes)
		}
		t.db = dbs[use]
		stale, err := sql.Open("rsqlite", nodes[use].dsn(benchDB, "consistency=stale"))
		if err != nil {
			t.close()
			return nil, err
		}
		t.stale, t.all = stale, append(t.all, stale)
		role := "the leader's node"
		if use != li {
			role = "a follower's node"
		}
		t.desc = fmt.Sprintf("rsqlite, three nodes on loopback in this process, clients on %s (node%d)", role, use+1)
	}
	return t, nil
}

func openRS(t *target, dsn, staleDSN string) error {
	for _, d := range []string{dsn, staleDSN} {
		db, err := sql.Open("rsqlite", d)
		if err != nil {
			t.close()
			return err
		}
		t.all = append(t.all, db)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = db.PingContext(ctx)
		cancel()
		if err != nil {
			t.close()
			return err
		}
	}
	t.db, t.stale = t.all[0], t.all[1]
	return nil
}

// rsNode is one node of a loopback cluster started in this process.
type rsNode struct {
	dir, raft, peers string
}

func (n rsNode) dsn(name string, extra ...string) string {
	s := fmt.Sprintf("file:%s?raft=%s&peers=%s", filepath.Join(n.dir, name), n.raft, n.peers)
	for _, e := range extra {
		s += "&" + e
	}
	return s
}

func newRSNodes(base string) ([]rsNode, error) {
	nodes := make([]rsNode, 3)
	var addrs []string
	for i := range nodes {
		addr, err := freeLoopbackAddr()
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, addr)
		nodes[i] = rsNode{dir: filepath.Join(base, fmt.Sprintf("node%d", i+1)), raft: addr}
	}
	for i := range nodes {
		nodes[i].peers = strings.Join(addrs, ",")
	}
	return nodes, nil
}

// openOnAll opens name on every node at once (none can answer before a
// quorum is up) and waits until each answers a linearizable read.
func openOnAll(nodes []rsNode, name string) ([]*sql.DB, error) {
	dbs := make([]*sql.DB, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		db, err := sql.Open("rsqlite", n.dsn(name))
		if err != nil {
			errs[i] = err
			continue
		}
		dbs[i] = db
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := db.PingContext(ctx); err != nil {
				errs[i] = fmt.Errorf("node%d: open %s: %w", i+1, name, err)
			}
		}()
	}
	wg.Wait()
	var out []*sql.DB
	for _, db := range dbs {
		if db != nil {
			out = append(out, db)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return out, err
	}
	return dbs, nil
}

// leaderOfDB returns the index and raft address of the node leading name's
// group, as any running node (skip[i] false) sees it.
func leaderOfDB(nodes []rsNode, name string, skip []bool, timeout time.Duration) (int, string, error) {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for i, n := range nodes {
			if skip != nil && skip[i] {
				continue
			}
			node := cluster.Running(n.dir)
			if node == nil || node.DB(name) == nil {
				continue
			}
			addr, ok := node.DB(name).LeaderAddress()
			if !ok {
				continue
			}
			for j, m := range nodes {
				if m.raft == addr && (skip == nil || !skip[j]) {
					return j, addr, nil
				}
			}
		}
	}
	return -1, "", fmt.Errorf("no leader for %s within %v", name, timeout)
}

// currentLeader is the leader's raft address as node i sees it, "" if none.
func currentLeader(n rsNode, name string) string {
	node := cluster.Running(n.dir)
	if node == nil || node.DB(name) == nil {
		return ""
	}
	addr, _ := node.DB(name).LeaderAddress()
	return addr
}
