package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lni/dragonboat/v4/logger"
)

// dragonboat logs through its own package-level logger factory, which may be
// set only once per process. rsqlite installs one that forwards to log/slog
// at the first node start, at warning level and up unless SetLogLevel says
// otherwise.

var (
	logOnce  sync.Once
	logLevel atomic.Int64 // slog.Level
	logSink  atomic.Pointer[slog.Logger]
)

func init() { logLevel.Store(int64(slog.LevelWarn)) }

// SetLogger routes rsqlite's and dragonboat's logs to l (default slog.Default()).
func SetLogger(l *slog.Logger) { logSink.Store(l) }

// SetLogLevel sets the lowest level of dragonboat's messages that reach the
// logger (default slog.LevelWarn: dragonboat is chatty at info).
func SetLogLevel(l slog.Level) { logLevel.Store(int64(l)) }

// stderrLogger is the default: slog.Default() writes through the standard
// log package, whose output dragonboat's capnslog takes over.
var stderrLogger = slog.New(slog.NewTextHandler(os.Stderr, nil))

func currentLogger() *slog.Logger {
	if l := logSink.Load(); l != nil {
		return l
	}
	return stderrLogger
}

func installDragonboatLogger() {
	logOnce.Do(func() {
		defer func() {
			// The application set its own factory first: leave it alone.
			_ = recover()
		}()
		logger.SetLoggerFactory(func(pkg string) logger.ILogger {
			return &slogAdapter{pkg: pkg, limit: peerFailureLimit}
		})
	})
}

// slogAdapter implements dragonboat's logger.ILogger. dragonboat's own level
// setting is ignored; the filter is SetLogLevel.
type slogAdapter struct {
	pkg   string
	limit *repeatLimiter // of peerFailureFormats; nil: none
}

func (a *slogAdapter) SetLevel(logger.LogLevel) {}

// peerFailureFormats are the transport's messages about a peer it cannot
// reach, with how many leading arguments name the peer (and the node
// reporting it); the rest (error text, counts) vary between attempts.
//
// While a member is down, its peers retry it every 0.5 to 1s per connection
// and log each failure at ERROR plus two warnings: several lines a second
// that drown everything else, for a condition the cluster is built to
// survive. They are warnings (the member must be brought back, but nothing
// failed here), and each is logged at most once per peerFailureEvery, with
// how many repeats were dropped since the last one.
var peerFailureFormats = map[string]int{
	"Nodehost %s failed to get a connection to %s, %v":        2,
	"breaker %s to %s failed, connect and process failed: %s": 2,
	"%s became unreachable, affected %d nodes":                1,
	"send batch failed, target %s (%v), %d":                   1,
	"send batch failed, taret node %s (%v), %d":               1, // sic
}

const peerFailureEvery = 10 * time.Second

var peerFailureLimit = newRepeatLimiter(peerFailureEvery, time.Now)

func (a *slogAdapter) log(level slog.Level, format string, args []any) {
	k, peerFailure := peerFailureFormats[format]
	peerFailure = peerFailure && a.pkg == "transport" && k <= len(args)
	if peerFailure {
		level = min(level, slog.LevelWarn)
	}
	if int64(level) < logLevel.Load() {
		return
	}
	l := currentLogger()
	if !l.Enabled(context.Background(), level) {
		return
	}
	attrs := []any{"component", "dragonboat/" + a.pkg}
	if peerFailure && a.limit != nil {
		ok, dropped := a.limit.allow(fmt.Sprintf("%s\x00%v", format, args[:k]))
		if !ok {
			return
		}
		if dropped > 0 {
			attrs = append(attrs, "repeats_dropped", dropped)
		}
	}
	l.Log(context.Background(), level, fmt.Sprintf(format, args...), attrs...)
}

// repeatLimiter lets one message per key through every period and counts
// the others.
type repeatLimiter struct {
	every time.Duration
	now   func() time.Time // injected by tests
	mu    sync.Mutex
	seen  map[string]*repeatState
}

type repeatState struct {
	logged, last time.Time
	dropped      int
}

func newRepeatLimiter(every time.Duration, now func() time.Time) *repeatLimiter {
	return &repeatLimiter{every: every, now: now, seen: map[string]*repeatState{}}
}

// allow reports whether the message with key may be logged now and, if so,
// how many of its repeats were dropped since it last was.
func (r *repeatLimiter) allow(key string) (ok bool, dropped int) {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.seen[key]
	if st == nil {
		// Peers come and go (and tests use a new port each time): forget
		// the keys not seen for a period before adding one.
		if len(r.seen) >= 256 {
			for k, s := range r.seen {
				if now.Sub(s.last) >= r.every {
					delete(r.seen, k)
				}
			}
		}
		r.seen[key] = &repeatState{logged: now, last: now}
		return true, 0
	}
	st.last = now
	if now.Sub(st.logged) < r.every {
		st.dropped++
		return false, 0
	}
	dropped, st.dropped, st.logged = st.dropped, 0, now
	return true, dropped
}

func (a *slogAdapter) Debugf(f string, args ...any) { a.log(slog.LevelDebug, f, args) }
func (a *slogAdapter) Infof(f string, args ...any)  { a.log(slog.LevelInfo, f, args) }

// Warningf: dragonboat's raft package reports routine elections and
// requests dropped while there is no leader (which rsqlite retries) as
// warnings; they are information, not something to act on.
func (a *slogAdapter) Warningf(f string, args ...any) {
	level := slog.LevelWarn
	if a.pkg == "raft" || strings.HasPrefix(f, "mutual TLS disabled") {
		level = slog.LevelInfo
	}
	a.log(level, f, args)
}
func (a *slogAdapter) Errorf(f string, args ...any) { a.log(slog.LevelError, f, args) }

// Panicf must panic: dragonboat relies on it to stop on invariant violations.
func (a *slogAdapter) Panicf(f string, args ...any) {
	msg := fmt.Sprintf(f, args...)
	currentLogger().Error(msg, "component", "dragonboat/"+a.pkg)
	panic(msg)
}
