package main

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// result is one row of the table: one workload, target and concurrency.
type result struct {
	Workload   string  `json:"workload"` // W1, W2, W2m, W3-lin, W3-stale, W3
	Target     string  `json:"target"`
	Conc       int     `json:"concurrency"`
	Unit       string  `json:"unit"` // ops/s or rows/s
	Ops        int64   `json:"ops"`
	Rows       int64   `json:"rows"`
	Seconds    float64 `json:"seconds"`
	Rate       float64 `json:"rate"`
	P50ms      float64 `json:"p50_ms"`
	P99ms      float64 `json:"p99_ms"`
	CPUus      float64 `json:"process_cpu_us_per_op"` // all nodes of the process; 10ms clock resolution
	Errors     int64   `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	Ratio      float64 `json:"ratio_to_plain_full,omitempty"`
	Runs       int     `json:"runs,omitempty"` // with -repeat: the row is the median of this many`
	Note       string  `json:"note,omitempty"`
}

// Bounds of every measurement loop besides its duration.
const (
	maxOpsPerWorker = 10_000_000
	maxLatSamples   = 1 << 20 // per worker
	maxErrors       = 100     // per worker: a broken target stops early
)

type opFunc func(ctx context.Context, w int, rng *rand.Rand) (rows int, err error)

type workerStats struct {
	ops, rows, errs int64
	firstErr        error
	lat             []time.Duration
}

// measure runs op from conc goroutines for d (after a short warm-up that is
// not counted). Calls get context.Background(): go-sqlite3 starts a
// goroutine per statement for a cancellable context, which would tax the
// baseline; rsqlite bounds each call with its DSN timeout anyway.
func measure(conc int, d time.Duration, op opFunc) *result {
	warm := min(d/5, time.Second)
	run(conc, warm, op)
	return run(conc, d, op)
}

func run(conc int, d time.Duration, op opFunc) *result {
	stats := make([]workerStats, conc)
	cpu0, _ := cpuTicks()
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := &stats[w]
			rng := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
			ctx := context.Background()
			for i := 0; i < maxOpsPerWorker && time.Now().Before(deadline); i++ {
				t0 := time.Now()
				n, err := op(ctx, w, rng)
				lat := time.Since(t0)
				if err != nil {
					st.errs++
					if st.firstErr == nil {
						st.firstErr = err
					}
					if st.errs >= maxErrors {
						return
					}
					continue
				}
				st.ops++
				st.rows += int64(n)
				if len(st.lat) < maxLatSamples {
					st.lat = append(st.lat, lat)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, _ := cpuTicks()
	r := &result{Conc: conc, Seconds: elapsed.Seconds()}
	var lat []time.Duration
	for _, st := range stats {
		r.Ops += st.ops
		r.Rows += st.rows
		r.Errors += st.errs
		if st.firstErr != nil && r.FirstError == "" {
			r.FirstError = st.firstErr.Error()
		}
		lat = append(lat, st.lat...)
	}
	s := summarize(lat)
	r.P50ms, r.P99ms = ms(s.p50), ms(s.p99)
	if r.Ops > 0 {
		r.CPUus = float64(cpu1-cpu0) / clockTicks * 1e6 / float64(r.Ops)
	}
	return r
}

// row16 is a 16-character text value; blob100 a 100-byte blob.
func row16(rng *rand.Rand) string { return fmt.Sprintf("%016x", rng.Uint64()) }

func blob100(rng *rand.Rand) []byte {
	b := make([]byte, 100)
	for i := 0; i < len(b); i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

const rowSchema = "(id INTEGER PRIMARY KEY, name TEXT NOT NULL, data BLOB NOT NULL)"

func createTable(db *sql.DB, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := db.ExecContext(ctx, "CREATE TABLE "+name+rowSchema)
	return err
}

// multiInsert is an INSERT of n rows with two placeholders each.
func multiInsert(table string, n int) string {
	return "INSERT INTO " + table + "(name, data) VALUES " + strings.TrimSuffix(strings.Repeat("(?, ?),", n), ",")
}

func (b *bencher) runWorkloads(t *target) error {
	o := b.o
	add := func(wl string, r *result, unit string) {
		r.Workload, r.Target, r.Unit = wl, t.key, unit
		r.Rate = float64(r.Ops) / r.Seconds
		if unit == "rows/s" {
			r.Rate = float64(r.Rows) / r.Seconds
		}
		if t.leader != "" {
			if now := currentLeader(t.nodes[0], benchDB); now != t.leader {
				r.Note = fmt.Sprintf("leader changed during the run (%s -> %s)", t.leader, now)
				t.leader = now
			}
		}
		b.results = append(b.results, r)
		line := fmt.Sprintf("%-8s %-12s c=%-3d %10.0f %s", wl, t.key, r.Conc, r.Rate, unit)
		if unit == "ops/s" {
			line += fmt.Sprintf("  p50 %.3fms p99 %.3fms", r.P50ms, r.P99ms)
		}
		if r.Errors > 0 {
			line += fmt.Sprintf("  %d errors, first: %s", r.Errors, r.FirstError)
		}
		b.progress("%s", line)
	}
	w := t.writeDB()

	if o.has("w1") {
		for _, c := range o.levels(1, 16, 64) {
			table := fmt.Sprintf("w1_c%d", c)
			if err := createTable(w, table); err != nil {
				return fmt.Errorf("W1 %s: %w", t.key, err)
			}
			t.pool(c)
			q := "INSERT INTO " + table + "(name, data) VALUES (?, ?)"
			add("W1", measure(c, o.duration, func(ctx context.Context, _ int, rng *rand.Rand) (int, error) {
				_, err := w.ExecContext(ctx, q, row16(rng), blob100(rng))
				return 1, err
			}), "ops/s")
		}
	}

	if o.has("w2") {
		for _, c := range o.levels(1, 16) {
			table := fmt.Sprintf("w2_c%d", c)
			if err := createTable(w, table); err != nil {
				return fmt.Errorf("W2 %s: %w", t.key, err)
			}
			t.pool(c)
			q := "INSERT INTO " + table + "(name, data) VALUES (?, ?)"
			add("W2", measure(c, o.duration, func(ctx context.Context, _ int, rng *rand.Rand) (int, error) {
				tx, err := w.BeginTx(ctx, nil)
				if err != nil {
					return 0, err
				}
				for range 100 {
					if _, err := tx.ExecContext(ctx, q, row16(rng), blob100(rng)); err != nil {
						tx.Rollback()
						return 0, err
					}
				}
				return 100, tx.Commit()
			}), "rows/s")
		}
	}

	if o.has("w2m") {
		for _, c := range o.levels(1, 16) {
			table := fmt.Sprintf("w2m_c%d", c)
			if err := createTable(w, table); err != nil {
				return fmt.Errorf("W2m %s: %w", t.key, err)
			}
			t.pool(c)
			q := multiInsert(table, 100)
			add("W2m", measure(c, o.duration, func(ctx context.Context, _ int, rng *rand.Rand) (int, error) {
				args := make([]any, 0, 200)
				for range 100 {
					args = append(args, row16(rng), blob100(rng))
				}
				_, err := w.ExecContext(ctx, q, args...)
				return 100, err
			}), "rows/s")
		}
	}

	if o.has("w3") {
		t0 := time.Now()
		if err := loadW3(w, o.rows); err != nil {
			return fmt.Errorf("W3 %s: load: %w", t.key, err)
		}
		b.progress("%-8s %-12s loaded %d rows in %v", "W3", t.key, o.rows, time.Since(t0).Round(time.Millisecond))
		q := "SELECT name, data FROM w3 WHERE id = ?"
		read := func(db *sql.DB) opFunc {
			return func(ctx context.Context, _ int, rng *rand.Rand) (int, error) {
				var name string
				var data []byte
				err := db.QueryRowContext(ctx, q, 1+rng.IntN(o.rows)).Scan(&name, &data)
				return 1, err
			}
		}
		for _, c := range o.levels(1, 16) {
			t.pool(c)
			if !t.rs {
				add("W3", measure(c, o.duration, read(t.db)), "ops/s")
				continue
			}
			add("W3-lin", measure(c, o.duration, read(t.db)), "ops/s")
			add("W3-stale", measure(c, o.duration, read(t.stale)), "ops/s")
		}
	}
	return nil
}

// loadW3 fills table w3 with rows 1..n in multi-row INSERTs of 1,000.
func loadW3(db *sql.DB, n int) error {
	if err := createTable(db, "w3"); err != nil {
		return err
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	rng := rand.New(rand.NewPCG(1, 2))
	const batch = 1000
	var q string
	for lo := 1; lo <= n; lo += batch {
		k := min(batch, n-lo+1)
		if k != batch || q == "" {
			q = "INSERT INTO w3(id, name, data) VALUES " + strings.TrimSuffix(strings.Repeat("(?, ?, ?),", k), ",")
		}
		args := make([]any, 0, 3*k)
		for i := range k {
			args = append(args, lo+i, row16(rng), blob100(rng))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		_, err := db.ExecContext(ctx, q, args...)
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}
