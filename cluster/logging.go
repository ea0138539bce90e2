package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"

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
		logger.SetLoggerFactory(func(pkg string) logger.ILogger { return &slogAdapter{pkg: pkg} })
	})
}

// slogAdapter implements dragonboat's logger.ILogger. dragonboat's own level
// setting is ignored; the filter is SetLogLevel.
type slogAdapter struct{ pkg string }

func (a *slogAdapter) SetLevel(logger.LogLevel) {}

func (a *slogAdapter) log(level slog.Level, format string, args []any) {
	if int64(level) < logLevel.Load() {
		return
	}
	l := currentLogger()
	if !l.Enabled(context.Background(), level) {
		return
	}
	l.Log(context.Background(), level, fmt.Sprintf(format, args...), "component", "dragonboat/"+a.pkg)
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
