package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lni/dragonboat/v4/logger"
)

// captureHandler records every record it is given, whatever its level:
// what reaches it is what the adapter let through.
type captureHandler struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *captureHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *captureHandler) WithGroup(string) slog.Handler            { return h }

func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}

// containing returns the records whose message contains s (other tests'
// nodes may still be logging).
func (h *captureHandler) containing(s string) []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []slog.Record
	for _, r := range h.recs {
		if strings.Contains(r.Message, s) {
			out = append(out, r)
		}
	}
	return out
}

func attr(r slog.Record, key string) string {
	var v string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
			return false
		}
		return true
	})
	return v
}

// captureLogs routes the package's logs to a new captureHandler for the
// test, at the default level.
func captureLogs(t *testing.T) *captureHandler {
	h := &captureHandler{}
	oldSink, oldLevel := logSink.Load(), logLevel.Load()
	t.Cleanup(func() {
		logSink.Store(oldSink)
		logLevel.Store(oldLevel)
	})
	SetLogger(slog.New(h))
	return h
}

// TestDragonboatLogsFiltered goes through dragonboat's own loggers, as its
// packages do: by default only warnings and up arrive, each with its
// component, and SetLogLevel lowers the bar.
func TestDragonboatLogsFiltered(t *testing.T) {
	if got := slog.Level(logLevel.Load()); got != slog.LevelWarn {
		t.Fatalf("default level %v, want %v", got, slog.LevelWarn)
	}
	h := captureLogs(t)
	installDragonboatLogger()
	transport, rsm, raft := logger.GetLogger("transport"), logger.GetLogger("rsm"), logger.GetLogger("raft")

	transport.Debugf("filtered-debug %d", 1)
	transport.Infof("filtered-info %d", 1)
	raft.Warningf("filtered-raft-warning %d", 1) // routine elections: information
	transport.Warningf("filtered-warning %d", 1)
	rsm.Errorf("filtered-error %d", 1)
	for _, m := range []string{"filtered-debug", "filtered-info", "filtered-raft-warning"} {
		if got := h.containing(m); len(got) != 0 {
			t.Errorf("%s reached the logger at the default level:%s", m, show(got))
		}
	}
	for _, c := range []struct {
		msg       string
		level     slog.Level
		component string
	}{
		{"filtered-warning 1", slog.LevelWarn, "dragonboat/transport"},
		{"filtered-error 1", slog.LevelError, "dragonboat/rsm"},
	} {
		got := h.containing(c.msg)
		if len(got) != 1 || got[0].Level != c.level || attr(got[0], "component") != c.component {
			t.Errorf("%q: want one record at %v with component %s, got:%s", c.msg, c.level, c.component, show(got))
		} else if got[0].Message != c.msg {
			t.Errorf("message %q, want %q", got[0].Message, c.msg)
		}
	}

	SetLogLevel(slog.LevelInfo)
	transport.Infof("filtered-info %d", 2)
	if got := h.containing("filtered-info 2"); len(got) != 1 || got[0].Level != slog.LevelInfo {
		t.Errorf("at SetLogLevel(Info), an info message gave:%s", show(got))
	}

	func() {
		defer func() {
			if recover() == nil {
				t.Error("Panicf did not panic")
			}
		}()
		rsm.Panicf("filtered-panic %d", 1)
	}()
	if got := h.containing("filtered-panic 1"); len(got) != 1 || got[0].Level != slog.LevelError {
		t.Errorf("Panicf logged:%s\nwant one error record", show(got))
	}
}

// TestPeerFailuresDemotedAndRateLimited: the transport's messages about an
// unreachable peer are warnings, and each (per peer) is logged once per
// period with the count of repeats dropped meanwhile; other messages are
// untouched. The clock is the test's.
func TestPeerFailuresDemotedAndRateLimited(t *testing.T) {
	h := captureLogs(t)
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	a := &slogAdapter{pkg: "transport", limit: newRepeatLimiter(10*time.Second, func() time.Time { return now })}
	refused := errors.New("connect: connection refused")
	dial := func(peer string) {
		a.Errorf("Nodehost %s failed to get a connection to %s, %v", "10.0.0.1:1", peer, refused)
	}
	unreachable := func(peer string, n int) { a.Warningf("%s became unreachable, affected %d nodes", peer, n) }
	const down, other = "10.0.0.2:2", "10.0.0.3:3"
	type want struct {
		level   slog.Level
		dropped string
	}
	check := func(step, peer string, wants ...want) {
		t.Helper()
		got := h.containing("connection to " + peer)
		h.mu.Lock()
		h.recs = nil
		h.mu.Unlock()
		if len(got) != len(wants) {
			t.Fatalf("%s: want %d records, got:%s", step, len(wants), show(got))
		}
		for i, w := range wants {
			if got[i].Level != w.level || attr(got[i], "repeats_dropped") != w.dropped ||
				attr(got[i], "component") != "dragonboat/transport" {
				t.Errorf("%s: record %d is %v %q with %v, want %v with repeats_dropped=%q",
					step, i, got[i].Level, got[i].Message, attrsOf(got[i]), w.level, w.dropped)
			}
		}
	}

	dial(down)
	check("first failure", down, want{slog.LevelWarn, ""})
	for range 5 {
		now = now.Add(time.Second)
		dial(down)
	}
	check("5 retries within 10s", down)
	dial(other)
	check("another peer", other, want{slog.LevelWarn, ""})
	now = now.Add(5 * time.Second) // 10s after the first
	dial(down)
	check("10s after the first", down, want{slog.LevelWarn, "5"})
	now = now.Add(time.Second)
	dial(down)
	check("1s later", down)
	now = now.Add(10 * time.Second)
	dial(down)
	check("next period", down, want{slog.LevelWarn, "1"})

	// Another format is another message; its varying count is not part of
	// the key.
	unreachable(down, 1)
	unreachable(down, 0)
	if got := h.containing(down + " became unreachable"); len(got) != 1 {
		t.Errorf("became unreachable twice in a row: want 1 record, got:%s", show(got))
	}

	// Other messages, and the same text from another component, are left
	// alone.
	for range 3 {
		a.Errorf("transport failed to start %v", refused)
		(&slogAdapter{pkg: "rsm", limit: a.limit}).Errorf("Nodehost %s failed to get a connection to %s, %v", "x", "rsm-peer", refused)
	}
	if got := h.containing("transport failed to start"); len(got) != 3 || got[0].Level != slog.LevelError {
		t.Errorf("an unrelated transport error 3 times: want 3 errors, got:%s", show(got))
	}
	if got := h.containing("rsm-peer"); len(got) != 3 || got[0].Level != slog.LevelError {
		t.Errorf("the same text from another component 3 times: want 3 errors, got:%s", show(got))
	}
}

func attrsOf(r slog.Record) []string {
	var out []string
	r.Attrs(func(a slog.Attr) bool {
		out = append(out, a.String())
		return true
	})
	return out
}

// show formats records for failure messages.
func show(recs []slog.Record) string {
	var b strings.Builder
	for _, r := range recs {
		fmt.Fprintf(&b, "\n\t%v %q %v", r.Level, r.Message, attrsOf(r))
	}
	return b.String()
}

// TestPeerDownLogsQuietly stops one of three real nodes and reads what its
// peers log about it for a few seconds: dragonboat's actual messages (not
// copies of its format strings) must come out as warnings, each once.
func TestPeerDownLogsQuietly(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nodes")
	}
	h := captureLogs(t)
	var addrs []string
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, l.Addr().String())
		l.Close()
	}
	base := t.TempDir()
	nodes := make([]*Node, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range nodes {
		n, err := Acquire(Config{Dir: filepath.Join(base, fmt.Sprint("node", i)), RaftAddress: addrs[i], Peers: addrs})
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = n
		if i < 2 {
			defer n.Release()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			db, err := n.Open(ctx, "x.db")
			if err == nil {
				err = db.Barrier(ctx)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		nodes[2].Release()
		t.Fatal(err)
	}
	down := addrs[2]
	nodes[2].Release()
	// Unlimited, each peer logs a triple per connection every second or so.
	time.Sleep(4 * time.Second)

	got := h.containing(down)
	perMsg := map[string]int{}
	for _, r := range got {
		if r.Level >= slog.LevelError {
			t.Errorf("at %v: %s (%s)", r.Level, r.Message, attr(r, "component"))
		}
		// The message without its varying tail (error text, counts).
		msg, _, _ := strings.Cut(r.Message, ", ")
		perMsg[msg]++
	}
	for msg, n := range perMsg {
		if n > 1 {
			t.Errorf("logged %d times in 4s: %s", n, msg)
		}
	}
	if len(got) == 0 {
		t.Error("nothing logged about the stopped peer: it must still be visible, as a warning")
	}
	if t.Failed() {
		t.Logf("logged about %s:%s", down, show(got))
	}
}
