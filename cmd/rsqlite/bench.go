package main

// rsqlite bench: the same workloads against plain go-sqlite3 and against
// rsqlite with one and three nodes, in one process and one run, with ratios
// to plain SQLite (WAL, synchronous=FULL). See issue 5 and the README.

import (
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rsqlite/rsqlite/cluster"
)

// benchOpts are the bench's flags.
type benchOpts struct {
	duration  time.Duration
	workloads []string
	targets   []string
	conc      []int // only these concurrency levels (W1-W3); nil = all
	dbs       int
	w4conc    int
	idle      time.Duration
	hibernate time.Duration
	rows      int
	repeat    int
	dir       string
	via       string
	rtt       time.Duration
	plainPool string
	quick     bool
	verbose   bool
	jsonPath  string
	cpuProf   string
	blockProf string
	mutexProf string
	memProf   string
	idleProf  string
}

var (
	allWorkloads = []string{"w1", "w2", "w2m", "w3", "w4", "w5"}
	allTargets   = []string{"plain-full", "plain-normal", "rsqlite-1", "rsqlite-3"}
)

func (o *benchOpts) has(w string) bool { return slices.Contains(o.workloads, w) }
func (o *benchOpts) levels(all ...int) []int {
	if o.conc == nil {
		return all
	}
	var out []int
	for _, c := range all {
		if slices.Contains(o.conc, c) {
			out = append(out, c)
		}
	}
	return out
}

func runBench(args []string) error { return bench(args, os.Stdout, os.Stderr) }

func parseBenchFlags(args []string, stderr io.Writer) (*benchOpts, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &benchOpts{}
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "length of each measurement")
	workloads := fs.String("workloads", strings.Join(allWorkloads, ","), "comma-separated workloads to run")
	targets := fs.String("targets", strings.Join(allTargets, ","), "comma-separated targets for W1-W3")
	conc := fs.String("conc", "", "comma-separated concurrency levels to run in W1-W3 (default: all of each workload's)")
	fs.IntVar(&o.dbs, "dbs", 1000, "W4: number of databases")
	fs.IntVar(&o.w4conc, "w4conc", 16, "W4: databases created concurrently")
	fs.DurationVar(&o.idle, "idle", 30*time.Second, "W4: idle window over which CPU is measured")
	fs.DurationVar(&o.hibernate, "hibernate", 10*time.Second, "W4: the nodes' hibernate setting (databases idle this long sleep); 0 keeps every raft group running")
	fs.IntVar(&o.rows, "rows", 100000, "W3: rows in the table read")
	fs.IntVar(&o.repeat, "repeat", 1, "run W1-W3 this many times, targets alternating, and report each row's median run")
	fs.StringVar(&o.dir, "dir", "", "directory for all data (default: a temporary directory, removed afterwards); must be empty")
	fs.StringVar(&o.via, "via", "leader", "rsqlite-3 clients use the leader's node or a follower's: leader|follower")
	fs.DurationVar(&o.rtt, "rtt", 0, "raft RTT of every node (default: the library's)")
	fs.StringVar(&o.plainPool, "plainpool", "single", "plain SQLite writers: single (one connection, callers queue in database/sql) or shared (c connections, SQLite's busy handler)")
	fs.BoolVar(&o.quick, "quick", false, "smoke run: 1s measurements, W4 with 50 databases, hibernate=2s and a 5s idle window")
	fs.BoolVar(&o.verbose, "v", false, "show the raft library's logs")
	fs.StringVar(&o.jsonPath, "json", "", "also write the results as JSON to this file")
	fs.StringVar(&o.cpuProf, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	fs.StringVar(&o.blockProf, "blockprofile", "", "write a block profile to this file")
	fs.StringVar(&o.mutexProf, "mutexprofile", "", "write a mutex profile to this file")
	fs.StringVar(&o.memProf, "memprofile", "", "W4: write a heap profile, taken with every database open, to this file")
	fs.StringVar(&o.idleProf, "idleprofile", "", "W4: write a CPU profile of the idle window to this file (not with -cpuprofile)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("bench: unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.quick {
		if !set["duration"] {
			o.duration = time.Second
		}
		if !set["dbs"] {
			o.dbs = 50
		}
		if !set["idle"] {
			o.idle = 5 * time.Second
		}
		if !set["hibernate"] {
			o.hibernate = 2 * time.Second
		}
	}
	var err error
	if o.workloads, err = splitList(*workloads, allWorkloads); err != nil {
		return nil, err
	}
	if o.targets, err = splitList(*targets, allTargets); err != nil {
		return nil, err
	}
	if *conc != "" {
		for _, s := range strings.Split(*conc, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 1 {
				return nil, fmt.Errorf("bench: bad -conc value %q", s)
			}
			o.conc = append(o.conc, n)
		}
	}
	switch {
	case o.duration <= 0 || o.duration > time.Hour:
		return nil, fmt.Errorf("bench: -duration must be in (0, 1h]")
	case o.dbs < 1 || o.dbs > 100000:
		return nil, fmt.Errorf("bench: -dbs must be in [1, 100000]")
	case o.w4conc < 1 || o.w4conc > 1024:
		return nil, fmt.Errorf("bench: -w4conc must be in [1, 1024]")
	case o.idle <= 0 || o.idle > time.Hour:
		return nil, fmt.Errorf("bench: -idle must be in (0, 1h]")
	case o.hibernate != 0 && (o.hibernate < time.Second || o.hibernate > time.Hour):
		return nil, fmt.Errorf("bench: -hibernate must be 0 or in [1s, 1h]")
	case o.repeat < 1 || o.repeat > 20:
		return nil, fmt.Errorf("bench: -repeat must be in [1, 20]")
	case o.rows < 1 || o.rows > 10000000:
		return nil, fmt.Errorf("bench: -rows must be in [1, 10000000]")
	case o.via != "leader" && o.via != "follower":
		return nil, fmt.Errorf("bench: -via must be leader or follower")
	case o.plainPool != "single" && o.plainPool != "shared":
		return nil, fmt.Errorf("bench: -plainpool must be single or shared")
	}
	return o, nil
}

func splitList(s string, valid []string) ([]string, error) {
	var out []string
	for _, w := range strings.Split(s, ",") {
		w = strings.ToLower(strings.TrimSpace(w))
		if w == "" {
			continue
		}
		if !slices.Contains(valid, w) {
			return nil, fmt.Errorf("bench: unknown %q (want some of %s)", w, strings.Join(valid, ","))
		}
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out, nil
}

// bencher holds one run's state and results.
type bencher struct {
	o        *benchOpts
	log      io.Writer
	base     string
	machine  machineInfo
	floor    latStats        // over every floor measurement of the run
	floorLat []time.Duration // their samples
	results  []*result
	w4       *w4Result
	w5       *w5Result
	failures []string // workloads that could not run, with why
}

func (b *bencher) progress(format string, a ...any) {
	fmt.Fprintf(b.log, "bench %s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
}

func bench(args []string, stdout, stderr io.Writer) (err error) {
	stderr = &lockedWriter{w: stderr} // progress and logs come from many goroutines
	o, err := parseBenchFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if !o.verbose {
		// dragonboat's logs, and rsqlite's own warnings (the overloaded
		// cluster of W4 makes many); errors still show.
		cluster.SetLogLevel(slog.LevelError + 4)
		cluster.SetLogger(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError})))
		defer cluster.SetLogger(nil)
	}
	if o.rtt > 0 {
		cluster.Defaults.RTT = o.rtt
	}
	b := &bencher{o: o, log: stderr, machine: readMachine()}
	if o.dir == "" {
		tmp, err := os.MkdirTemp("", "rsqlite-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		b.base = tmp
	} else {
		if err := os.MkdirAll(o.dir, 0o755); err != nil {
			return err
		}
		if ents, _ := os.ReadDir(o.dir); len(ents) > 0 {
			return fmt.Errorf("bench: -dir %s is not empty", o.dir)
		}
		b.base = o.dir
	}
	stop, err := startProfiles(o)
	if err != nil {
		return err
	}
	defer func() {
		if perr := stop(); err == nil {
			err = perr
		}
	}()
	b.progress("%d cpus (%s), data in %s, %v per measurement, workloads %s",
		b.machine.CPUs, b.machine.Model, b.base, o.duration, strings.Join(o.workloads, ","))

	if err := b.measureFloor(); err != nil {
		return err
	}
	if o.has("w1") || o.has("w2") || o.has("w2m") || o.has("w3") {
		if err := b.runSingleDB(); err != nil {
			return err
		}
	}
	if o.has("w5") {
		if err := b.runW5(); err != nil {
			b.fail("W5", err)
		}
	}
	if o.has("w4") {
		if err := b.runW4(); err != nil {
			b.fail("W4", err)
		}
	}
	b.computeRatios()
	b.printTable(stdout)
	if o.jsonPath != "" {
		if err := b.writeJSON(o.jsonPath); err != nil {
			return err
		}
		b.progress("results written to %s", o.jsonPath)
	}
	if len(b.failures) > 0 {
		return fmt.Errorf("bench: %s", strings.Join(b.failures, "; "))
	}
	return nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (b *bencher) fail(what string, err error) {
	b.progress("%s failed: %v", what, err)
	b.failures = append(b.failures, fmt.Sprintf("%s: %v", what, err))
}

// runSingleDB runs W1-W3 against every target, one target open at a time
// so that an idle target's background work does not disturb another's
// figures. With -repeat n the whole sequence runs n times (targets
// alternating, so that a noisy minute hits every target alike) and each
// row reports the run with the median rate.
func (b *bencher) runSingleDB() error {
	for round := 1; round <= b.o.repeat; round++ {
		for _, key := range b.o.targets {
			t, err := b.openTarget(key, round)
			if err != nil {
				return fmt.Errorf("open %s: %w", key, err)
			}
			b.progress("%s: open (%s)%s", key, t.desc, roundNote(round, b.o.repeat))
			runErr := b.runWorkloads(t)
			if err := t.close(); err != nil && runErr == nil {
				runErr = fmt.Errorf("close %s: %w", key, err)
			}
			if runErr != nil {
				return runErr
			}
		}
		if round < b.o.repeat {
			if err := b.measureFloor(); err != nil {
				return err
			}
		}
	}
	if b.o.repeat > 1 {
		b.results = medians(b.results)
	}
	return nil
}

func roundNote(round, of int) string {
	if of == 1 {
		return ""
	}
	return fmt.Sprintf(", round %d of %d", round, of)
}

// medians keeps, for each workload, target and concurrency, the run with
// the median rate, noting every run's rate.
func medians(all []*result) []*result {
	type key struct {
		wl, target string
		conc       int
	}
	groups := map[key][]*result{}
	var order []key
	for _, r := range all {
		k := key{r.Workload, r.Target, r.Conc}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	var out []*result
	for _, k := range order {
		g := groups[k]
		rates := make([]string, len(g))
		for i, r := range g {
			rates[i] = fmt.Sprintf("%.0f", r.Rate)
		}
		slices.SortStableFunc(g, func(a, b *result) int { return cmp.Compare(a.Rate, b.Rate) })
		m := *g[len(g)/2]
		var errs int64
		for _, r := range g {
			errs += r.Errors
		}
		m.Errors = errs
		m.Runs = len(g)
		m.Note = strings.TrimPrefix(m.Note+"; runs: "+strings.Join(rates, "/"), "; ")
		out = append(out, &m)
	}
	return out
}

func startProfiles(o *benchOpts) (func() error, error) {
	var stops []func() error
	if o.cpuProf != "" {
		f, err := os.Create(o.cpuProf)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, err
		}
		stops = append(stops, func() error { pprof.StopCPUProfile(); return f.Close() })
	}
	if o.blockProf != "" {
		runtime.SetBlockProfileRate(10000) // one sample per 10µs blocked
		stops = append(stops, func() error { return writeProfile("block", o.blockProf) })
	}
	if o.mutexProf != "" {
		runtime.SetMutexProfileFraction(5)
		stops = append(stops, func() error { return writeProfile("mutex", o.mutexProf) })
	}
	return func() error {
		var errs []error
		for _, s := range stops {
			errs = append(errs, s())
		}
		return errors.Join(errs...)
	}, nil
}

func writeProfile(name, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (b *bencher) writeJSON(path string) error {
	out := struct {
		Machine   machineInfo `json:"machine"`
		Duration  string      `json:"duration_per_measurement"`
		Via       string      `json:"rsqlite3_clients_via"`
		PlainPool string      `json:"plain_writer_pool"`
		FloorP50  float64     `json:"fdatasync_4k_p50_ms"`
		FloorP99  float64     `json:"fdatasync_4k_p99_ms"`
		Results   []*result   `json:"results"`
		W4        *w4Result   `json:"w4,omitempty"`
		W5        *w5Result   `json:"w5,omitempty"`
		Targets   []goal      `json:"targets"`
		Failures  []string    `json:"failures,omitempty"`
	}{b.machine, b.o.duration.String(), b.o.via, b.o.plainPool, ms(b.floor.p50), ms(b.floor.p99),
		b.results, b.w4, b.w5, b.goals(), b.failures}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
