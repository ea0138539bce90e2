package main

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rsqlite/rsqlite/cluster"
)

// w5Result is the leader-failure workload's outcome.
type w5Result struct {
	Writers     int     `json:"writers"`
	Via         string  `json:"writes_via"`
	Stopped     string  `json:"leader_stopped"`
	NewLeader   string  `json:"new_leader"`
	CloseMs     float64 `json:"leader_close_ms"`
	Recovered   bool    `json:"recovered"`
	RecoveryMs  float64 `json:"recovery_ms"` // stop -> first success of a write issued after the stop
	MaxCallMs   float64 `json:"max_call_ms"` // slowest successful call of the run
	Errors      int64   `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	Acked       int64   `json:"acked"`
	Present     int64   `json:"rows_present"`
	Lost        int64   `json:"lost"`
	Duplicated  int64   `json:"duplicated"`
	Unconfirmed int64   `json:"present_not_acked"` // from calls that failed: outcome unknown to the caller
}

// runW5 writes through a follower of a fresh 3-node cluster at c=4, stops
// the leader's node, and checks what callers saw and what the table holds.
func (b *bencher) runW5() error {
	const writers, name = 4, "w5.db"
	nodes, err := newRSNodes(filepath.Join(b.base, "w5"))
	if err != nil {
		return err
	}
	dbs, err := openOnAll(nodes, name)
	defer func() {
		for _, db := range dbs {
			if db != nil {
				db.Close()
			}
		}
	}()
	if err != nil {
		return err
	}
	li, leaderAddr, err := leaderOfDB(nodes, name, nil, 10*time.Second)
	if err != nil {
		return err
	}
	fi := (li + 1) % len(nodes)
	wdb := dbs[fi]
	wdb.SetMaxOpenConns(writers)
	wdb.SetMaxIdleConns(writers)
	if _, err := wdb.Exec(`CREATE TABLE w5(id INTEGER PRIMARY KEY, writer INTEGER NOT NULL, seq INTEGER NOT NULL,
		name TEXT NOT NULL, data BLOB NOT NULL, UNIQUE(writer, seq))`); err != nil {
		return err
	}
	res := &w5Result{Writers: writers, Via: fmt.Sprintf("node%d (follower)", fi+1), Stopped: fmt.Sprintf("node%d (%s)", li+1, leaderAddr)}
	b.progress("W5       rsqlite-3    c=%d writing through node%d; leader is node%d", writers, fi+1, li+1)

	var (
		stopAt    atomic.Int64 // UnixNano when the leader's stop began; 0 before
		firstOK   atomic.Int64 // UnixNano of the first success issued after stopAt
		quit      atomic.Bool
		mu        sync.Mutex
		acked     = make([][]int64, writers)
		maxCall   time.Duration
		errCount  int64
		firstErr  string
		wg        sync.WaitGroup
		hardLimit = time.Now().Add(2*time.Minute + b.o.duration)
	)
	insert := "INSERT INTO w5(writer, seq, name, data) VALUES (?, ?, ?, ?)"
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 5))
			for seq := int64(1); seq < maxOpsPerWorker && !quit.Load() && time.Now().Before(hardLimit); seq++ {
				t0 := time.Now()
				_, err := wdb.Exec(insert, w, seq, row16(rng), blob100(rng))
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					errCount++
					if firstErr == "" {
						firstErr = err.Error()
					}
				} else {
					acked[w] = append(acked[w], seq)
					maxCall = max(maxCall, d)
					if s := stopAt.Load(); s != 0 && t0.UnixNano() > s {
						firstOK.CompareAndSwap(0, time.Now().UnixNano())
					}
				}
				mu.Unlock()
			}
		}()
	}

	time.Sleep(min(b.o.duration, 2*time.Second))
	b.progress("W5       stopping the leader, node%d, by closing its *sql.DB", li+1)
	t0 := time.Now()
	stopAt.Store(t0.UnixNano())
	dbs[li].Close()
	dbs[li] = nil
	res.CloseMs = ms(time.Since(t0))
	if cluster.Running(nodes[li].dir) != nil {
		quit.Store(true)
		wg.Wait()
		return fmt.Errorf("node%d still running after its *sql.DB was closed", li+1)
	}
	// Keep writing for a while after recovery; give up on recovery after 30s.
	post := max(b.o.duration, 3*time.Second)
	for end := t0.Add(post); time.Now().Before(end) || firstOK.Load() == 0 && time.Since(t0) < 30*time.Second; {
		time.Sleep(20 * time.Millisecond)
	}
	quit.Store(true)
	wg.Wait()
	if f := firstOK.Load(); f != 0 {
		res.Recovered = true
		res.RecoveryMs = ms(time.Duration(f - t0.UnixNano()))
	}
	skip := make([]bool, len(nodes))
	skip[li] = true
	if _, addr, err := leaderOfDB(nodes, name, skip, 10*time.Second); err == nil {
		res.NewLeader = addr
	}
	res.MaxCallMs, res.Errors, res.FirstError = ms(maxCall), errCount, firstErr

	// Compare acknowledged keys with the rows present.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := wdb.QueryContext(ctx, "SELECT writer, seq, count(*) FROM w5 GROUP BY writer, seq")
	if err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	present := map[[2]int64]bool{}
	for rows.Next() {
		var w, s, n int64
		if err := rows.Scan(&w, &s, &n); err != nil {
			rows.Close()
			return err
		}
		present[[2]int64{w, s}] = true
		res.Present += n
		res.Duplicated += n - 1
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	ackedSet := map[[2]int64]bool{}
	for w, seqs := range acked {
		for _, s := range seqs {
			k := [2]int64{int64(w), s}
			ackedSet[k] = true
			res.Acked++
			if !present[k] {
				res.Lost++
			}
		}
	}
	for k := range present {
		if !ackedSet[k] {
			res.Unconfirmed++
		}
	}
	b.w5 = res
	b.progress("W5       writes resumed %.0fms after the stop (close took %.0fms); %d errors; %d acked, %d lost, %d duplicated, %d present but not acked",
		res.RecoveryMs, res.CloseMs, res.Errors, res.Acked, res.Lost, res.Duplicated, res.Unconfirmed)
	return nil
}

// w4Result is the many-databases workload's outcome.
type w4Result struct {
	DBs            int     `json:"dbs"`
	Created        int     `json:"created"`
	Concurrency    int     `json:"create_concurrency"`
	CreateSeconds  float64 `json:"create_seconds"`
	CreateP50ms    float64 `json:"create_p50_ms"`
	CreateP99ms    float64 `json:"create_p99_ms"`
	CreateErrors   int     `json:"create_errors"`
	FirstError     string  `json:"first_error,omitempty"`
	ReplicasReady  bool    `json:"replicas_started_on_all_nodes"`
	ReplicaSeconds float64 `json:"replicas_started_seconds"`
	// Hibernate is the nodes' setting; SleepSeconds how long after the
	// last creation every database slept on every node; WakeP50ms and
	// WakeMaxMs the first write to a sleeping database.
	Hibernate     float64 `json:"hibernate_seconds"`
	Asleep        int     `json:"asleep_on_every_node"`
	SleepSeconds  float64 `json:"all_asleep_after_seconds"`
	WakeP50ms     float64 `json:"wake_write_p50_ms"`
	WakeMaxMs     float64 `json:"wake_write_max_ms"`
	IdleSeconds   float64 `json:"idle_seconds"`
	CPUProcessPct float64 `json:"idle_cpu_pct_of_core_process"`
	CPUPerNodePct float64 `json:"idle_cpu_pct_of_core_per_node"`
	CPULastPct    float64 `json:"idle_cpu_pct_of_core_process_last_5s"`
	RSSProcessMiB float64 `json:"rss_mib_process"`
	RSSPerNodeMiB float64 `json:"rss_mib_per_node"`
	// RSSAfterGCPerNodeMiB: after a garbage collection that returns free
	// memory to the OS.
	RSSAfterGCPerNodeMiB float64 `json:"rss_mib_per_node_after_gc"`
	GoHeapMiB            float64 `json:"go_heap_inuse_mib"`
	GoSysMiB             float64 `json:"go_sys_mib"` // all memory the Go runtime holds; the rest of RSS is C (SQLite, pebble)
	Goroutines           int     `json:"goroutines"`
}

// runW4 creates N databases through one node of a fresh 3-node cluster,
// then measures the process's CPU and RSS while everything is idle. All three
// nodes live in this process, so per node is process/3.
func (b *bencher) runW4() error {
	defer func(h time.Duration) { cluster.Defaults.Hibernate = h }(cluster.Defaults.Hibernate)
	cluster.Defaults.Hibernate = b.o.hibernate // the nodes below start with it
	nodes, err := newRSNodes(filepath.Join(b.base, "w4"))
	if err != nil {
		return err
	}
	var (
		mu  sync.Mutex
		all []*sql.DB
	)
	defer func() {
		// The anchors (first three) last: each node stops with its last *sql.DB.
		var wg sync.WaitGroup
		for i := len(all) - 1; i >= 0; i-- {
			if i < 3 {
				wg.Wait()
			}
			wg.Add(1)
			go func(db *sql.DB) { defer wg.Done(); db.Close() }(all[i])
		}
		wg.Wait()
	}()
	anchors, err := openOnAll(nodes, "w4-anchor.db")
	all = append(all, anchors...)
	if err != nil {
		return err
	}
	n := b.o.dbs
	res := &w4Result{DBs: n, Concurrency: b.o.w4conc, Hibernate: b.o.hibernate.Seconds()}
	b.progress("W4       creating %d databases through node1, %d at a time", n, b.o.w4conc)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	var (
		wg       sync.WaitGroup
		lat      []time.Duration
		created  atomic.Int64
		limit    = time.Now().Add(5 * time.Minute)
		names    = make([]string, n)
		t0       = time.Now()
		lastShow = time.Now()
	)
	for range b.o.w4conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if time.Now().After(limit) {
					return
				}
				names[i] = fmt.Sprintf("w4-%05d.db", i)
				db, err := sql.Open("rsqlite", nodes[0].dsn(names[i]))
				if err == nil {
					db.SetMaxIdleConns(1)
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					s := time.Now()
					_, err = db.ExecContext(ctx, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
					d := time.Since(s)
					cancel()
					mu.Lock()
					all = append(all, db)
					if err == nil {
						lat = append(lat, d)
					}
					mu.Unlock()
				}
				if err != nil {
					mu.Lock()
					res.CreateErrors++
					if res.FirstError == "" {
						res.FirstError = err.Error()
					}
					mu.Unlock()
					continue
				}
				c := created.Add(1)
				mu.Lock()
				show := c%100 == 0 || time.Since(lastShow) > 5*time.Second
				if show {
					lastShow = time.Now()
				}
				mu.Unlock()
				if show {
					b.progress("W4       %d/%d created after %v", c, n, time.Since(t0).Round(time.Millisecond))
				}
			}
		}()
	}
	wg.Wait()
	res.CreateSeconds = time.Since(t0).Seconds()
	res.Created = int(created.Load())
	s := summarize(lat)
	res.CreateP50ms, res.CreateP99ms = ms(s.p50), ms(s.p99)
	b.progress("W4       %d databases created in %.1fs (p50 %.0fms, p99 %.0fms per database), %d errors",
		res.Created, res.CreateSeconds, res.CreateP50ms, res.CreateP99ms, res.CreateErrors)

	// Every node must have started its replica of every database.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		missing := 0
		for _, nd := range nodes {
			node := cluster.Running(nd.dir)
			for _, name := range names {
				if name != "" && (node == nil || node.DB(name) == nil) {
					missing++
				}
			}
		}
		if missing == 0 {
			res.ReplicasReady = true
			break
		}
		if time.Now().After(deadline) {
			b.progress("W4       %d replicas still not started", missing)
			break
		}
	}
	res.ReplicaSeconds = time.Since(t0).Seconds()
	if b.o.hibernate > 0 {
		b.waitAsleep(res, nodes, names)
	}

	time.Sleep(2 * time.Second) // let elections and the last applies settle
	b.progress("W4       measuring idle CPU over %v", b.o.idle)
	if b.o.idleProf != "" && b.o.cpuProf == "" {
		f, err := os.Create(b.o.idleProf)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	c0, ok0 := cpuTicks()
	w0 := time.Now()
	for end, step := w0.Add(b.o.idle), min(b.o.idle, 5*time.Second); time.Now().Before(end); {
		s0, _ := cpuTicks()
		t := time.Now()
		time.Sleep(min(step, time.Until(end)))
		s1, _ := cpuTicks()
		res.CPULastPct = float64(s1-s0) / clockTicks / time.Since(t).Seconds() * 100
		b.progress("W4       %.1f%% of a core over the last %v", float64(s1-s0)/clockTicks/time.Since(t).Seconds()*100,
			time.Since(t).Round(100*time.Millisecond))
	}
	c1, ok1 := cpuTicks()
	res.IdleSeconds = time.Since(w0).Seconds()
	if ok0 && ok1 {
		res.CPUProcessPct = float64(c1-c0) / clockTicks / res.IdleSeconds * 100
		res.CPUPerNodePct = res.CPUProcessPct / 3
	}
	res.RSSProcessMiB = rssMiB()
	res.RSSPerNodeMiB = res.RSSProcessMiB / 3
	res.Goroutines = runtime.NumGoroutine()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	res.GoHeapMiB, res.GoSysMiB = float64(m.HeapInuse)/(1<<20), float64(m.Sys)/(1<<20)
	// The figures above are what the process holds now; an idle process
	// may not have collected since the last replicas stopped. After a
	// collection and a return of free pages to the OS (what the runtime
	// does by itself within minutes) is the steady state.
	debug.FreeOSMemory()
	res.RSSAfterGCPerNodeMiB = rssMiB() / 3
	if b.o.memProf != "" {
		if err := writeProfile("heap", b.o.memProf); err != nil {
			return err
		}
	}
	if b.o.hibernate > 0 && res.Asleep > 0 {
		b.wakeSome(res, all[3:])
	}
	b.w4 = res
	b.progress("W4       idle: %.1f%% of a core for the process (%.1f%% per node), RSS %.0f MiB (%.0f MiB per node)",
		res.CPUProcessPct, res.CPUPerNodePct, res.RSSProcessMiB, res.RSSPerNodeMiB)
	return nil
}

// waitAsleep waits until every database sleeps on every node.
func (b *bencher) waitAsleep(res *w4Result, nodes []rsNode, names []string) {
	b.progress("W4       waiting for the databases to fall asleep (hibernate=%v)", b.o.hibernate)
	dbs := append(slices.Clip(names), "w4-anchor.db")
	t0 := time.Now()
	for deadline := t0.Add(b.o.hibernate + 2*time.Minute); ; time.Sleep(100 * time.Millisecond) {
		asleep := 0
		for _, name := range dbs {
			everywhere := name != ""
			for _, nd := range nodes {
				node := cluster.Running(nd.dir)
				everywhere = everywhere && node != nil && node.DB(name) != nil && node.DB(name).Asleep()
			}
			if everywhere {
				asleep++
			}
		}
		res.Asleep = asleep
		if asleep == res.Created+1 || time.Now().After(deadline) {
			break
		}
	}
	res.SleepSeconds = time.Since(t0).Seconds()
	b.progress("W4       %d of %d databases asleep on every node after %.1fs", res.Asleep, res.Created+1, res.SleepSeconds)
}

// wakeSome times a write to some sleeping databases, one at a time.
func (b *bencher) wakeSome(res *w4Result, dbs []*sql.DB) {
	var lat []time.Duration
	for i := 0; i < len(dbs) && i < 20; i++ {
		db := dbs[i*len(dbs)/min(len(dbs), 20)]
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		s := time.Now()
		_, err := db.ExecContext(ctx, "INSERT INTO t(v) VALUES ('wake')")
		cancel()
		if err != nil {
			b.progress("W4       write to a sleeping database: %v", err)
			continue
		}
		lat = append(lat, time.Since(s))
	}
	s := summarize(lat)
	res.WakeP50ms, res.WakeMaxMs = ms(s.p50), ms(s.p99) // p99 of 20 is the max
	b.progress("W4       first write to a sleeping database: p50 %.0fms, max %.0fms (%d databases)", res.WakeP50ms, res.WakeMaxMs, len(lat))
}

// clockTicks is USER_HZ, the unit of /proc/self/stat's times; 100 on Linux.
const clockTicks = 100

// cpuTicks is the process's utime+stime from /proc/self/stat.
func cpuTicks() (int64, bool) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return u + st, true
}

// rssMiB is VmRSS from /proc/self/status.
func rssMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return kb / 1024
			}
		}
	}
	return 0
}
