package faulttest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/rsqlite/rsqlite/internal/clustertest"
)

// The register model: one integer register per key, 0 at the start.

type opKind int

const (
	opRead opKind = iota
	opWrite
	opCAS
)

type kvInput struct {
	Kind   opKind
	Key    int
	Value  int64 // written (write, cas)
	Expect int64 // cas only
}

type kvOutput struct {
	Value   int64 // read
	OK      bool  // cas applied
	Unknown bool  // write or cas whose outcome is unknown (error, timeout)
}

// infinity is the return time of an operation whose outcome is unknown:
// it may take effect at any point after its call, or never.
const infinity = int64(1) << 62

var registerModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[int][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(kvInput).Key
			byKey[k] = append(byKey[k], op)
		}
		keys := make([]int, 0, len(byKey))
		for k := range byKey {
			keys = append(keys, k)
		}
		sort.Ints(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return int64(0) },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(int64), input.(kvInput), output.(kvOutput)
		switch in.Kind {
		case opRead:
			return out.Value == s, s
		case opWrite:
			return true, in.Value
		default: // cas
			if out.Unknown {
				// Took effect here (then it applied iff it matched); "never"
				// is the same as taking effect after everything else.
				if s == in.Expect {
					return true, in.Value
				}
				return true, s
			}
			if out.OK {
				return s == in.Expect, in.Value
			}
			return s != in.Expect, s
		}
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(kvInput), output.(kvOutput)
		switch in.Kind {
		case opRead:
			return fmt.Sprintf("get(k%d) -> %d", in.Key, out.Value)
		case opWrite:
			if out.Unknown {
				return fmt.Sprintf("put(k%d, %d) -> ?", in.Key, in.Value)
			}
			return fmt.Sprintf("put(k%d, %d)", in.Key, in.Value)
		default:
			r := fmt.Sprint(out.OK)
			if out.Unknown {
				r = "?"
			}
			return fmt.Sprintf("cas(k%d, %d -> %d) -> %s", in.Key, in.Expect, in.Value, r)
		}
	},
	DescribeState: func(state any) string { return fmt.Sprint(state.(int64)) },
}

// linConfig sizes a run.
type linConfig struct {
	ops, faults, keys, clients int
	maxRun                     time.Duration
}

func linSize() linConfig {
	if soak() {
		return linConfig{ops: 3000, faults: 14, keys: 24, clients: 6, maxRun: 6 * time.Minute}
	}
	// Six faults: one of each kind (faultDeck).
	return linConfig{ops: 400, faults: 6, keys: 24, clients: 6, maxRun: 50 * time.Second}
}

// TestLinearizable runs reads, writes and compare-and-set on cfg.keys
// registers from cfg.clients clients spread over three nodes while a seeded
// nemesis partitions the network, stops and restarts nodes and pauses them
// (their messages held and delivered late), then checks the history with
// porcupine. Writes that fail or time out have an unknown
// outcome.
func TestLinearizable(t *testing.T) {
	cfg := linSize()
	s := seed(t)
	rng := newRand(s, 0)
	c, fnet := clustertest.NewWithNet(t, 3)
	const name = "lin.db"
	dbs := c.OpenAll(name)
	h := &handles{dbs: dbs}
	setup := "CREATE TABLE probe(id INTEGER PRIMARY KEY, node INTEGER, at INTEGER);" + registersSQL(cfg.keys)
	if _, err := dbs[0].Exec(setup); err != nil {
		t.Fatal(err)
	}

	hist := newHistory()
	var issued atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for cl := 0; cl < cfg.clients; cl++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := newRand(s, uint64(cl+1))
			node := cl % len(c.Nodes)
			seen := make([]int64, cfg.keys) // last value this client saw per key
			for seq := int64(1); ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				db := h.get(node)
				if db == nil { // stopped
					time.Sleep(20 * time.Millisecond)
					continue
				}
				issued.Add(1)
				hist.record(runOp(db, cl, randomInput(r, cl, seq, cfg.keys, seen), seen, hist.now))
			}
		}()
	}

	// The nemesis: cfg.faults faults at seeded random times, each healed
	// (the node restarted or resumed) before the next.
	nem := &nemesis{t: t, c: c, net: fnet, h: h, name: name, rng: rng, stopped: map[int]bool{}}
	deadline := hist.start.Add(cfg.maxRun)
	for f := 0; f < cfg.faults && time.Now().Before(deadline); f++ {
		time.Sleep(time.Duration(200+rng.IntN(600)) * time.Millisecond)
		heal, hold := nem.fault(time.Duration(800+rng.IntN(1700)) * time.Millisecond)
		time.Sleep(hold)
		heal()
	}
	fnet.Heal()
	liveness(t, h, len(c.Nodes), nem.lastHeal)
	for issued.Load() < int64(cfg.ops) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	hist.check(t, s, cfg.ops, nem.summary()+" injected; "+fnet.Stats().String(), nem.injected)

	conv, err := c.Converged(name, 10*time.Second)
	if err != nil {
		t.Error(err)
	} else {
		t.Logf("converged at applied index %d", conv.Applied)
	}
}

// runOp performs one operation of client cl on db and returns it for the
// history: Input nil for a read that failed (it says nothing), an infinite
// Return for a write whose outcome is unknown. seen is the client's last
// value per key, which its compare-and-sets expect.
func runOp(db *sql.DB, cl int, in kvInput, seen []int64, now func() int64) (porcupine.Operation, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	op := porcupine.Operation{ClientId: cl, Input: in, Call: now()}
	var out kvOutput
	var err error
	switch in.Kind {
	case opRead:
		err = db.QueryRowContext(ctx, "SELECT v FROM kv WHERE k = ?", in.Key).Scan(&out.Value)
		if err == nil {
			seen[in.Key] = out.Value
		}
	case opWrite:
		_, err = db.ExecContext(ctx, "UPDATE kv SET v = ? WHERE k = ?", in.Value, in.Key)
	case opCAS:
		var res sql.Result
		res, err = db.ExecContext(ctx, "UPDATE kv SET v = ? WHERE k = ? AND v = ?", in.Value, in.Key, in.Expect)
		if err == nil {
			n, _ := res.RowsAffected()
			out.OK = n == 1
		}
	}
	op.Return = now()
	if err != nil {
		if in.Kind == opRead {
			return porcupine.Operation{}, err
		}
		out.Unknown = true
		op.Return = infinity
	} else if in.Kind != opRead && (in.Kind == opWrite || out.OK) {
		seen[in.Key] = in.Value
	}
	op.Output = out
	return op, err
}

// randomInput draws client cl's next operation.
func randomInput(r *rand.Rand, cl int, seq int64, keys int, seen []int64) kvInput {
	in := kvInput{Key: r.IntN(keys), Value: int64(cl+1)<<32 | seq}
	switch p := r.IntN(10); {
	case p < 4:
		in.Kind = opRead
	case p < 7:
		in.Kind = opWrite
	default:
		in.Kind = opCAS
		in.Expect = seen[in.Key]
	}
	return in
}

// registersSQL creates the registers 0..keys-1, each 0.
func registersSQL(keys int) string {
	q := "CREATE TABLE kv(k INTEGER PRIMARY KEY, v INTEGER NOT NULL);"
	for k := 0; k < keys; k++ {
		q += fmt.Sprintf("INSERT INTO kv VALUES (%d, 0);", k)
	}
	return q
}

// history records the operations of concurrent clients for porcupine and
// counts their failed calls by kind.
type history struct {
	start   time.Time
	mu      sync.Mutex
	ops     []porcupine.Operation
	errKind map[string]int
}

func newHistory() *history { return &history{start: time.Now(), errKind: map[string]int{}} }

// now is the history's clock: nanoseconds since it started.
func (h *history) now() int64 { return int64(time.Since(h.start)) }

// record takes runOp's result: a failed read has a nil Input and only
// counts as a failed call.
func (h *history) record(op porcupine.Operation, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if op.Input != nil {
		h.ops = append(h.ops, op)
	}
	if err != nil {
		h.errKind[errClass(err)]++
	}
}

// check checks the history with porcupine and reports it; want is about
// how many operations the run meant to complete.
func (h *history) check(t *testing.T, s uint64, want int, faults string, injected []string) {
	t.Helper()
	elapsed := time.Since(h.start)
	h.mu.Lock()
	defer h.mu.Unlock()
	ops, errKind := h.ops, h.errKind
	var unknown, reads, writes, cas int
	for _, op := range ops {
		switch in := op.Input.(kvInput); {
		case op.Output.(kvOutput).Unknown:
			unknown++
		case in.Kind == opRead:
			reads++
		case in.Kind == opWrite:
			writes++
		default:
			cas++
		}
	}
	t.Logf("%d operations in %v (%d reads, %d writes, %d cas, %d unknown outcome; failed calls by kind %v); %s",
		len(ops), elapsed.Round(time.Millisecond), reads, writes, cas, unknown, errKind, faults)
	if len(ops) < want/2 {
		t.Errorf("only %d operations completed (wanted about %d)", len(ops), want)
	}

	checkStart := time.Now()
	res, info := porcupine.CheckOperationsVerbose(registerModel, ops, 2*time.Minute)
	t.Logf("porcupine: %s in %v", res, time.Since(checkStart).Round(time.Millisecond))
	switch res {
	case porcupine.Illegal:
		path := filepath.Join(os.TempDir(), fmt.Sprintf("rsqlite-linearizability-%d.html", s))
		if err := porcupine.VisualizePath(registerModel, info, path); err != nil {
			t.Errorf("write visualisation: %v", err)
		}
		t.Errorf("history is not linearizable; porcupine's visualisation: %s\nfaults: %s", path, strings.Join(injected, "; "))
	case porcupine.Unknown:
		t.Logf("porcupine timed out: the history was not fully checked")
	}
}

// errClass names an error for the run's summary.
func errClass(err error) string {
	msg := err.Error()
	switch {
	case errors.Is(err, context.DeadlineExceeded) && strings.Contains(msg, "no quorum"):
		return "no-quorum"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case strings.Contains(msg, "closed"):
		return "closed"
	}
	if len(msg) > 60 {
		msg = msg[:60]
	}
	return msg
}
