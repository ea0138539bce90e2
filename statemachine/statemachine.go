package statemachine

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	sm "github.com/lni/dragonboat/v4/statemachine"
	"github.com/mattn/go-sqlite3"

	"github.com/rsqlite/rsqlite/internal/command"
	"github.com/rsqlite/rsqlite/internal/detvfs"
)

// Options configure an SM.
type Options struct {
	// Path is the SQLite file. Its directory must exist or be creatable.
	Path string
	// Logger receives the SM's warnings; nil means slog.Default().
	Logger *slog.Logger
	// RequestTTL is how long exactly-once records of idle clients are kept.
	// Zero means 24 hours. Every node must use the same value.
	RequestTTL time.Duration
	// Observer, if set, is told what the SM does (for metrics).
	Observer Observer
	// LocalTxs, if set, holds the file's node-local transactions; shared by
	// the successive SMs of one file. Nil gives the SM a set of its own.
	LocalTxs *LocalTxs
}

// Observer receives the SM's events. Its methods must be cheap and must not
// call back into the SM.
type Observer interface {
	// Applied: a batch of entries was applied in d.
	Applied(entries int, d time.Duration)
	// Conflict: a transaction's commit was refused (stale base).
	Conflict()
	// SnapshotSent: a snapshot of bytes was streamed to another node.
	SnapshotSent(bytes int64)
	// SnapshotReceived: the replica was restored from a snapshot of bytes.
	SnapshotReceived(bytes int64)
}

type nopObserver struct{}

func (nopObserver) Applied(int, time.Duration) {}
func (nopObserver) Conflict()                  {}
func (nopObserver) SnapshotSent(int64)         {}
func (nopObserver) SnapshotReceived(int64)     {}

// SM is the on-disk state machine of one database. It implements
// dragonboat's statemachine.IOnDiskStateMachine.
//
// dragonboat serialises Open, Update, Sync, PrepareSnapshot,
// RecoverFromSnapshot and Close; SaveSnapshot and Lookup may run
// concurrently with them, so they touch only atomics and their own
// connections.
type SM struct {
	opts Options
	log  *slog.Logger

	vfs   *detvfs.VFS
	conn  *sqlite3.SQLiteConn
	stmts bookkeeping
	// settings are the per-connection pragmas currently set on conn.
	settings command.Settings
	stopc    <-chan struct{}

	applied   atomic.Uint64 // last applied raft index, as committed to the file
	lastWrite atomic.Uint64 // index of the last entry that ran user SQL successfully
	// txnLastWrite is lastWrite including the open batch transaction; only
	// the Update goroutine touches it.
	txnLastWrite uint64
	closed       atomic.Bool
	closeDone    atomic.Bool // Close has returned: nothing of this SM touches the file
	locals       *LocalTxs
	// snapshotsReceived counts RecoverFromSnapshot calls that completed.
	snapshotsReceived atomic.Uint64
	fault             atomic.Pointer[ApplyFault] // set while Update waits out an environmental error
	halted            atomic.Pointer[error]      // set while Update waits at an entry this build must not apply
	ready             chan struct{}
	readyOnce         sync.Once
}

var _ sm.IOnDiskStateMachine = (*SM)(nil)

// Engine is this build's command.EngineID: commands carry their proposer's,
// and a replica refuses to apply a command from another SQLite build.
var Engine = func() uint32 {
	_, _, sourceID := sqlite3.Version()
	return command.EngineID(sourceID)
}()

// engineError halts a replica that is asked to apply a command proposed by
// a node with another SQLite build: the same SQL could give different
// results, so it waits (retrying, reported by Halted) rather than diverge.
type engineError struct {
	index        uint64
	theirs, ours uint32
}

func (e *engineError) Error() string {
	return fmt.Sprintf("replica halted: entry %d was proposed by a node running another SQLite build (engine %08x, this node %08x); run the same rsqlite version on every node", e.index, e.theirs, e.ours)
}

// 'localtime' and 'utc' depend on the process time zone, which may differ
// between nodes: pin them to UTC everywhere, before any database opens.
func init() { detvfs.PinLocaltime() }

// New returns an SM for the file at opts.Path. Nothing is opened until
// dragonboat calls Open.
func New(opts Options) *SM {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.RequestTTL == 0 {
		opts.RequestTTL = 24 * time.Hour
	}
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	}
	if opts.LocalTxs == nil {
		opts.LocalTxs = &LocalTxs{}
	}
	return &SM{opts: opts, log: opts.Logger, ready: make(chan struct{}), locals: opts.LocalTxs}
}

// Ready is closed once Open has returned successfully: the file exists and
// local read connections may be opened on it.
func (s *SM) Ready() <-chan struct{} { return s.ready }

// Applied is the raft index of the last entry whose effects are committed to
// the file.
func (s *SM) Applied() uint64 { return s.applied.Load() }

// LastWrite is the raft index of the last entry that ran user SQL without
// error; transactions based on an older index conflict.
func (s *SM) LastWrite() uint64 { return s.lastWrite.Load() }

// Path is the SQLite file.
func (s *SM) Path() string { return s.opts.Path }

// SnapshotsReceived is how many times this replica was restored from a
// snapshot streamed by another node since it opened.
func (s *SM) SnapshotsReceived() uint64 { return s.snapshotsReceived.Load() }

const schema = `
CREATE TABLE IF NOT EXISTS _rsqlite_meta(
	id INTEGER PRIMARY KEY CHECK (id = 1),
	applied_index INTEGER NOT NULL,
	last_write_index INTEGER NOT NULL,
	format INTEGER NOT NULL
);
INSERT OR IGNORE INTO _rsqlite_meta(id, applied_index, last_write_index, format) VALUES (1, 0, 0, 1);
CREATE TABLE IF NOT EXISTS _rsqlite_requests(
	client_id INTEGER PRIMARY KEY,
	seq INTEGER NOT NULL,
	time INTEGER NOT NULL,
	result BLOB NOT NULL
);`

// FileURI builds a go-sqlite3 DSN for path with the given parameters,
// escaping the characters SQLite's URI parser treats specially.
func FileURI(path string, params url.Values) string {
	u := url.URL{Scheme: "file", Path: path, RawQuery: params.Encode()}
	// url.URL renders "file:///abs"; SQLite accepts that form.
	return u.String()
}

// Open opens or creates the file and returns the last applied index
// recorded in it.
func (s *SM) Open(stopc <-chan struct{}) (uint64, error) {
	s.stopc = stopc
	if err := os.MkdirAll(filepath.Dir(s.opts.Path), 0o755); err != nil {
		return 0, err
	}
	vfs, err := detvfs.New()
	if err != nil {
		return 0, err
	}
	s.vfs = vfs
	// User statements are only ever prepared with the guard on, and only
	// they can enter go-sqlite3's statement cache (ExecContext with
	// arguments in run, QueryContext in query); the bookkeeping statements
	// are prepared explicitly and the guard-off Execs have no arguments
	// and no context, which bypass the cache.
	vfs.TrustPrepared()
	params := url.Values{
		"vfs":            {vfs.Name()},
		"_journal_mode":  {"WAL"},
		"_synchronous":   {"NORMAL"},
		"_busy_timeout":  {"20"}, // see beginBatch
		"_foreign_keys":  {"0"},
		"_txlock":        {"immediate"},
		"_cache_size":    {"-16000"},
		"_secure_delete": {"0"},
		// A batch runs the same INSERT many times: prepare it once.
		"_stmt_cache_size": {"64"},
	}
	c, err := (&sqlite3.SQLiteDriver{}).Open(FileURI(s.opts.Path, params))
	if err != nil {
		vfs.Close()
		return 0, fmt.Errorf("rsqlite: open %s: %w", s.opts.Path, err)
	}
	s.conn = c.(*sqlite3.SQLiteConn)
	if err := s.initConn(); err != nil {
		s.conn.Close()
		vfs.Close()
		return 0, err
	}
	s.readyOnce.Do(func() { close(s.ready) })
	return s.applied.Load(), nil
}

// initConn pins connection settings, creates the bookkeeping tables and
// loads the applied index.
func (s *SM) initConn() error {
	// Pinned so every node plans and evaluates alike whatever the build's
	// defaults are; the per-command settings are (re)applied lazily.
	pins := `PRAGMA trusted_schema=ON; PRAGMA recursive_triggers=0; PRAGMA case_sensitive_like=0;
PRAGMA ignore_check_constraints=0; PRAGMA defer_foreign_keys=0; PRAGMA reverse_unordered_selects=0;
PRAGMA automatic_index=1; PRAGMA wal_autocheckpoint=1000;`
	if _, err := s.conn.Exec(pins, nil); err != nil {
		return fmt.Errorf("rsqlite: configure %s: %w", s.opts.Path, err)
	}
	s.settings = 0
	if _, err := s.conn.Exec("BEGIN IMMEDIATE;"+schema+"COMMIT;", nil); err != nil {
		s.conn.Exec("ROLLBACK", nil) //nolint:errcheck // best effort after a failed init
		return fmt.Errorf("rsqlite: create bookkeeping tables in %s: %w", s.opts.Path, err)
	}
	if err := s.stmts.prepare(s.conn); err != nil {
		return err
	}
	return s.loadMeta()
}

func (s *SM) loadMeta() error {
	applied, lastWrite, err := s.stmts.readMeta()
	if err != nil {
		return fmt.Errorf("rsqlite: read applied index of %s: %w", s.opts.Path, err)
	}
	s.applied.Store(applied)
	s.lastWrite.Store(lastWrite)
	return nil
}

// Update applies a batch of committed entries in one SQLite transaction
// (more than one only when a command changes per-connection settings, which
// SQLite refuses to change inside a transaction).
func (s *SM) Update(ents []sm.Entry) ([]sm.Entry, error) {
	// Entries whose statements rolled back the whole transaction (INSERT OR
	// ROLLBACK, RAISE(ROLLBACK)): on the retry they are recorded as failed
	// without running them again.
	var lost map[uint64]*command.Error
	var stalled *ApplyFault
	halted := false
	backoff := 50 * time.Millisecond
	start := time.Now()
	for {
		err := s.applyBatch(ents, lost)
		if err == nil {
			if stalled != nil {
				s.fault.Store(nil)
			}
			if halted {
				s.halted.Store(nil)
			}
			s.opts.Observer.Applied(len(ents), time.Since(start))
			return ents, nil
		}
		s.rollback()
		var tl *txnLostError
		if errors.As(err, &tl) {
			if lost == nil {
				lost = make(map[uint64]*command.Error)
			}
			lost[tl.index] = tl.err
			continue
		}
		var fatal *fatalError
		if errors.As(err, &fatal) {
			return nil, err
		}
		if isHalt(err) {
			halted = true
			s.halted.Store(&err)
		}
		// Environmental (disk full, I/O): not the entry's fault, so no
		// outcome is recorded; wait and retry the same batch.
		if isDiskError(err) {
			since := time.Now()
			if stalled != nil {
				since = stalled.Since
			}
			stalled = &ApplyFault{Path: s.opts.Path, Since: since, Err: err}
			s.fault.Store(stalled)
		} else if stalled != nil {
			stalled = nil
			s.fault.Store(nil)
		}
		s.log.Error("rsqlite: applying entries failed; retrying", "db", s.opts.Path, "err", err, "retry_in", backoff)
		select {
		case <-s.stopc:
			return nil, fmt.Errorf("rsqlite: replica stopped while applying to %s: %w", s.opts.Path, err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// ApplyFault describes entries that cannot be applied now because of this
// node's environment (a full or failing disk): Update waits and retries them
// until they apply, and Fault reports why meanwhile.
type ApplyFault struct {
	Path  string
	Since time.Time
	Err   error // the last error, usually a sqlite3.Error (SQLITE_FULL, SQLITE_IOERR)
}

func (f *ApplyFault) Error() string {
	return fmt.Sprintf("applying writes to %s failing since %s: %v", f.Path, f.Since.Format(time.RFC3339), f.Err)
}

func (f *ApplyFault) Unwrap() error { return f.Err }

// Fault returns why committed entries cannot be applied now because of the
// disk, or nil. Halts on an entry from another build are reported by Halted.
func (s *SM) Fault() *ApplyFault { return s.fault.Load() }

// Halted returns why the replica stopped applying at a committed entry that
// this build must not apply (proposed by another SQLite build, or encoded
// with a newer command version), or nil. It stays set until the entry
// applies, which takes running the same rsqlite version as the proposer;
// after the replica is stopped it keeps the last cause.
func (s *SM) Halted() error {
	if p := s.halted.Load(); p != nil {
		return *p
	}
	return nil
}

// isHalt reports whether err is an entry this build must not apply.
func isHalt(err error) bool {
	var ee *engineError
	var ve *versionError
	return errors.As(err, &ee) || errors.As(err, &ve)
}

// isDiskError reports whether err comes from the file system under the
// database rather than from the entries.
func isDiskError(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrFull, sqlite3.ErrIoErr, sqlite3.ErrCantOpen, sqlite3.ErrReadonly, sqlite3.ErrNoLFS:
			return true
		}
		return false
	}
	var errno syscall.Errno
	return errors.As(err, &errno)
}

// txnLostError reports that an entry's statements ended the whole
// transaction; the batch is retried with that entry marked failed.
type txnLostError struct {
	index uint64
	err   *command.Error
}

func (e *txnLostError) Error() string {
	return fmt.Sprintf("entry %d rolled back the transaction: %s", e.index, e.err.Message)
}

// fatalError stops the replica: continuing could make it diverge.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

func (s *SM) applyBatch(ents []sm.Entry, lost map[uint64]*command.Error) error {
	inTxn := false
	s.txnLastWrite = s.lastWrite.Load()
	commitThrough := func(index uint64) error {
		if err := s.stmts.writeMeta(index, s.txnLastWrite); err != nil {
			return err
		}
		if _, err := s.conn.Exec("COMMIT", nil); err != nil {
			return err
		}
		inTxn = false
		// SQLite turns defer_foreign_keys off at every commit.
		s.settings &^= command.DeferForeignKeys
		s.applied.Store(index)
		s.lastWrite.Store(s.txnLastWrite)
		return nil
	}
	for i := range ents {
		e := &ents[i]
		if e.Index <= s.applied.Load() {
			continue // committed by an earlier attempt of this batch
		}
		cmd, decodeErr, halt := decodeEntry(e.Index, e.Cmd)
		if halt != nil {
			return halt
		}
		if cmd != nil && cmd.Settings != s.settings {
			if inTxn {
				if err := commitThrough(ents[i-1].Index); err != nil {
					return err
				}
			}
			if err := s.setSettings(cmd.Settings); err != nil {
				return err
			}
		}
		if !inTxn {
			if err := s.beginBatch(); err != nil {
				return err
			}
			inTxn = true
		}
		var res *command.Result
		var data []byte
		var outcome applyOutcome
		switch {
		case decodeErr != nil:
			res = &command.Result{Err: decodeErr}
		case cmd == nil:
			res = &command.Result{}
		default:
			var err error
			res, data, outcome, err = s.applyCommand(e.Index, cmd, lost[e.Index])
			if err != nil {
				return err
			}
			if outcome == ranOK {
				s.txnLastWrite = e.Index
			}
		}
		if outcome != duplicate {
			var err error
			if data, err = command.EncodeResult(nil, res); err != nil {
				return &fatalError{fmt.Errorf("rsqlite: encode result of entry %d: %w", e.Index, err)}
			}
			if cmd != nil && cmd.ClientID != 0 {
				if err := s.stmts.recordRequest(cmd, data); err != nil {
					return err
				}
			}
		}
		if cmd != nil && e.Index%expiryEvery == 0 {
			if err := s.stmts.expireRequests(cmd.Time - s.opts.RequestTTL.Milliseconds()); err != nil {
				return err
			}
		}
		e.Result = sm.Result{Data: data}
		if cmd != nil && cmd.Settings&command.DeferForeignKeys != 0 && outcome == ranOK {
			// Deferred foreign keys are checked at COMMIT, so the entry gets
			// a transaction of its own; a violation fails it alone.
			if err := commitThrough(e.Index); err != nil {
				if fk, ok := s.deterministicFailure(err); ok {
					return &txnLostError{index: e.Index, err: fk}
				}
				return err
			}
		}
	}
	if inTxn {
		return commitThrough(ents[len(ents)-1].Index)
	}
	return nil
}

// expiryEvery is how often (in raft indexes) old exactly-once records are
// dropped; any constant works as long as every node uses the same.
const expiryEvery = 4096

// decodeEntry returns nothing for an empty entry. A command from a newer
// encoding than this node understands halts the replica (Update waits and
// retries it, Halted says why, as for engineError): recording it as an
// error while newer nodes apply it for real would make the replicas diverge.
func decodeEntry(index uint64, b []byte) (*command.Command, *command.Error, error) {
	if len(b) == 0 {
		return nil, nil, nil
	}
	cmd, err := command.Decode(b)
	if err != nil {
		if int(b[0]) > command.Version {
			return nil, nil, &versionError{index: index, theirs: int(b[0])}
		}
		return nil, &command.Error{Message: "rsqlite: malformed command: " + err.Error()}, nil
	}
	return cmd, nil, nil
}

// versionError halts a replica asked to apply an entry of a newer command
// encoding than this build reads.
type versionError struct {
	index  uint64
	theirs int
}

func (e *versionError) Error() string {
	return fmt.Sprintf("replica halted: entry %d is encoded with command version %d, this node reads up to %d; upgrade this node", e.index, e.theirs, command.Version)
}

// applyOutcome says what applyCommand did with a command.
type applyOutcome int

const (
	failed    applyOutcome = iota // recorded an error outcome; nothing changed
	ranOK                         // user SQL ran; it is the new conflict horizon
	duplicate                     // a retry of an applied request; answered from the record
)

// applyCommand runs one command inside the batch transaction. For a
// duplicate it returns the recorded, already encoded result in data.
func (s *SM) applyCommand(index uint64, cmd *command.Command, lostErr *command.Error) (res *command.Result, data []byte, outcome applyOutcome, err error) {
	if cmd.Engine != 0 && cmd.Engine != Engine {
		return nil, nil, failed, &engineError{index: index, theirs: cmd.Engine, ours: Engine}
	}
	if cmd.ClientID != 0 {
		seq, prev, found, err := s.stmts.lookupRequest(cmd.ClientID)
		if err != nil {
			return nil, nil, failed, err
		}
		if found && cmd.Seq == seq {
			return nil, prev, duplicate, nil
		}
		if found && cmd.Seq < seq {
			return &command.Result{Err: &command.Error{Message: fmt.Sprintf(
				"rsqlite: stale request %d of client %x (latest applied is %d)", cmd.Seq, cmd.ClientID, seq)}}, nil, failed, nil
		}
	}
	if lostErr != nil {
		return &command.Result{Err: lostErr}, nil, failed, nil
	}
	if cmd.Conditional() && s.txnLastWrite > cmd.BaseIndex {
		s.opts.Observer.Conflict()
		return &command.Result{Err: conflictError(cmd.BaseIndex)}, nil, failed, nil
	}
	s.vfs.Set(cmd.Time, cmd.Seed)
	s.vfs.ResetConn()
	if err := s.stmts.resetChanges(); err != nil {
		return nil, nil, failed, err
	}
	if err := s.stmts.savepoint(); err != nil {
		return nil, nil, failed, err
	}
	s.vfs.SetGuard(true)
	res, runErr := s.run(cmd)
	s.vfs.SetGuard(false)
	s.vfs.Clear()
	if runErr == nil {
		if err := s.stmts.release(); err != nil {
			return nil, nil, failed, err
		}
		return res, nil, ranOK, nil
	}
	cerr, deterministic := s.classify(runErr)
	if cmd.Kind == command.KindTx && deterministic {
		cerr.Message = "rsqlite: transaction failed when applied: " + cerr.Message
	}
	if !deterministic {
		return nil, nil, failed, runErr
	}
	if s.conn.AutoCommit() {
		// The statement ended the batch transaction itself.
		return nil, nil, failed, &txnLostError{index: index, err: cerr}
	}
	if _, err := s.conn.Exec("ROLLBACK TO rsqlite_entry; RELEASE rsqlite_entry", nil); err != nil {
		return nil, nil, failed, err
	}
	return &command.Result{Err: cerr}, nil, failed, nil
}

// conflictError is what a transaction based on a stale index gets: SQLite's
// own answer to a stale snapshot, SQLITE_BUSY_SNAPSHOT.
func conflictError(base uint64) *command.Error {
	return &command.Error{
		Code:         int(sqlite3.ErrBusy),
		ExtendedCode: int(sqlite3.ErrBusySnapshot),
		Message:      fmt.Sprintf("rsqlite: transaction conflict: the database changed after the transaction's snapshot (index %d); retry the transaction", base),
	}
}

// run executes the command's statements on the applying connection. The
// statements of a transaction each draw random values from their own seed,
// as they did when the transaction ran on its node.
func (s *SM) run(cmd *command.Command) (*command.Result, error) {
	ctx := context.Background() // no ctx watcher goroutine per statement
	res := &command.Result{}
	for i, st := range cmd.Statements {
		if cmd.Kind == command.KindTx {
			s.vfs.Set(cmd.Time, command.StatementSeed(cmd.Seed, i))
		}
		args := command.NamedValues(st.Args)
		last := i == len(cmd.Statements)-1
		if cmd.Kind == command.KindQuery && last {
			return s.query(ctx, st.SQL, args)
		}
		r, err := s.conn.ExecContext(ctx, st.SQL, args)
		if cmd.Kind == command.KindTx && st.FailCode != 0 {
			// It failed the same way when the transaction ran on its node,
			// and SQLite kept the transaction (and the statement's partial
			// effects) going; so does the replay.
			var se sqlite3.Error
			if errors.As(err, &se) && int(se.ExtendedCode) == st.FailCode {
				continue
			}
			return nil, fmt.Errorf("rsqlite: replayed statement %d of the transaction did not fail with code %d as it did on its node: %v", i, st.FailCode, err)
		}
		if err != nil {
			return nil, err
		}
		res.RowsAffected, _ = r.RowsAffected()
		res.LastInsertID, _ = r.LastInsertId()
	}
	return res, nil
}

func (s *SM) query(ctx context.Context, query string, args []driver.NamedValue) (*command.Result, error) {
	rows, err := s.conn.QueryContext(ctx, query, args)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	res := &command.Result{Columns: rows.Columns()}
	// As declared (not lower-cased like SQLiteRows.DeclTypes), for
	// ColumnTypeDatabaseTypeName on the proposer's side.
	if r, ok := rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		res.DeclTypes = make([]string, len(res.Columns))
		for i := range res.DeclTypes {
			res.DeclTypes[i] = r.ColumnTypeDatabaseTypeName(i)
		}
	}
	for {
		dest := make([]driver.Value, len(res.Columns))
		err := rows.Next(dest)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		row := make([]any, len(dest))
		for i, v := range dest {
			row[i] = v
		}
		res.Rows = append(res.Rows, row)
	}
	return res, rows.Close()
}

// classify turns an error of the user's SQL into a recordable outcome, and
// reports whether it is deterministic: a function of the entry and the
// database alone, so every node reaches the same one.
func (s *SM) classify(err error) (*command.Error, bool) {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		// go-sqlite3's own argument checks ("not enough args ...").
		return &command.Error{Message: err.Error()}, true
	}
	if !Replayable(se.Code) {
		return nil, false
	}
	msg := se.Error()
	// Refusals by the replication guard surface as SQLITE_AUTH, or as
	// SQLITE_ERROR for functions; the guard knows which it was.
	if what := s.vfs.LastDenied(); what != "" {
		msg = fmt.Sprintf("%s: rsqlite cannot replicate %s", msg, what)
	}
	return &command.Error{Code: int(se.Code), ExtendedCode: int(se.ExtendedCode), Message: msg}, true
}

// deterministicFailure reports whether err (from COMMIT) is a constraint
// failure every node reaches, rather than a fault of this node's disk.
func (s *SM) deterministicFailure(err error) (*command.Error, bool) {
	var se sqlite3.Error
	if !errors.As(err, &se) || se.Code != sqlite3.ErrConstraint {
		return nil, false
	}
	return s.classify(err)
}

// Replayable reports whether a statement failing with code fails the same
// way on every node that runs it on the same data: SQL and constraint errors
// do; faults of one node (I/O, memory, interrupts, locks) do not.
func Replayable(code sqlite3.ErrNo) bool {
	switch code {
	case sqlite3.ErrBusy, sqlite3.ErrLocked, sqlite3.ErrNomem, sqlite3.ErrReadonly,
		sqlite3.ErrInterrupt, sqlite3.ErrIoErr, sqlite3.ErrCorrupt, sqlite3.ErrFull,
		sqlite3.ErrCantOpen, sqlite3.ErrProtocol, sqlite3.ErrNoLFS, sqlite3.ErrNotADB:
		return false
	}
	return true
}

// setSettings applies per-connection pragmas; only valid outside a
// transaction (SQLite ignores foreign_keys inside one).
func (s *SM) setSettings(want command.Settings) error {
	flags := []struct {
		bit    command.Settings
		pragma string
	}{
		{command.ForeignKeys, "foreign_keys"},
		{command.RecursiveTriggers, "recursive_triggers"},
		{command.CaseSensitiveLike, "case_sensitive_like"},
		{command.IgnoreCheckConstraints, "ignore_check_constraints"},
		{command.DeferForeignKeys, "defer_foreign_keys"},
	}
	for _, f := range flags {
		if want&f.bit == s.settings&f.bit {
			continue
		}
		v := 0
		if want&f.bit != 0 {
			v = 1
		}
		if _, err := s.conn.Exec(fmt.Sprintf("PRAGMA %s=%d", f.pragma, v), nil); err != nil {
			return err
		}
	}
	s.settings = want
	return nil
}

func (s *SM) rollback() {
	if s.conn != nil && !s.conn.AutoCommit() {
		if _, err := s.conn.Exec("ROLLBACK", nil); err != nil {
			s.log.Warn("rsqlite: rollback failed", "db", s.opts.Path, "err", err)
		}
	}
	s.vfs.SetGuard(false)
	s.vfs.Clear()
}

// Lookup answers local queries without raft. rsqlite reads through its own
// read connections, so the only query is nil: the applied index.
func (s *SM) Lookup(q any) (any, error) {
	if s.closed.Load() {
		return nil, errors.New("rsqlite: state machine closed")
	}
	return s.applied.Load(), nil
}

// Sync makes every applied entry durable: the WAL and the database file are
// fsynced (commits ran with synchronous=NORMAL, which defers that).
func (s *SM) Sync() error {
	for _, p := range []string{s.opts.Path + "-wal", s.opts.Path} {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("rsqlite: fsync %s: %w", p, err)
		}
	}
	return nil
}

// Closed reports whether Close has returned. A replica stopped by
// dragonboat closes its SM asynchronously; another SM must not open the file
// before, or both would apply entries to it.
func (s *SM) Closed() bool { return s.closeDone.Load() }

// Close releases the connection. dragonboat may never call it (crash);
// nothing on disk depends on it.
func (s *SM) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	defer s.closeDone.Store(true)
	var err error
	if s.conn != nil {
		s.stmts.close()
		err = s.conn.Close()
	}
	if s.vfs != nil {
		if cerr := s.vfs.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
