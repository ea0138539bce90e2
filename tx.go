package rsqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/rsqlite/rsqlite/cluster"
	"github.com/rsqlite/rsqlite/internal/command"
	"github.com/rsqlite/rsqlite/internal/detvfs"
	"github.com/rsqlite/rsqlite/internal/sqlclass"
	"github.com/rsqlite/rsqlite/statemachine"
)

// Transactions are optimistic and run on the node that began them:
//
//  1. BeginTx waits for a read barrier, takes this node's transaction slot
//     for the database (local transactions queue rather than conflict, for
//     at most _busy_timeout, then SQLITE_BUSY as in SQLite), and opens a
//     SQLite transaction on the connection's scratch connection to the
//     local file; its snapshot's last-write index is the base (0 before the
//     database's first write: a transaction is always conditional).
//  2. Every statement runs on the scratch transaction, so reads see the
//     transaction's own writes and results (RowsAffected, LastInsertId,
//     RETURNING rows, errors) are SQLite's. Writes are recorded. A write
//     cut short by its context, or failing part way through a
//     multi-statement text other than with a SQLite error, dooms the
//     transaction: no replay could stop at the same point.
//  3. Commit rolls the scratch transaction back and proposes the recorded
//     writes with the base as one raft entry. Every node applies it only if
//     nothing was written after the base, in which case the replay gives
//     exactly what the scratch run gave (same snapshot, same statements,
//     same clock and random seeds); otherwise every node refuses it, and
//     Commit returns a *ConflictError. Serializable, conflicts reported at
//     commit, like SQLite's own SQLITE_BUSY_SNAPSHOT.
//
// While a scratch transaction holds the file's write lock, an entry being
// applied locally aborts it (the applier never waits for a user): the
// transaction's base is stale anyway, and it fails with a *ConflictError.

// tx is a read-write or read-only transaction of one conn.
type tx struct {
	c        *conn
	ctx      context.Context // BeginTx's: bounds the transaction, including Commit
	readOnly bool

	sc         *scratch
	unlockSlot func()
	unregister func()
	base       uint64
	time       int64
	seed       uint64
	settings   command.Settings
	writes     []command.Statement
	reads      int
	err        error // set when the transaction can no longer commit
	done       bool
}

var _ driver.Tx = (*tx)(nil)

// ConflictError reports that a transaction could not commit because the
// database changed after its snapshot. Nothing of the transaction was
// applied; run the whole transaction again. It unwraps to a sqlite3.Error
// with Code sqlite3.ErrBusy and ExtendedCode sqlite3.ErrBusySnapshot, and to
// sqlite3.ErrBusy itself.
type ConflictError struct{ err sqlite3.Error }

func (e *ConflictError) Error() string   { return e.err.Error() }
func (e *ConflictError) Unwrap() []error { return []error{e.err, sqlite3.ErrBusy} }

// Temporary reports that retrying (the whole transaction) can succeed.
func (e *ConflictError) Temporary() bool { return true }

func conflictError(msg string) *ConflictError {
	return &ConflictError{err: sqliteError(&command.Error{
		Code:         int(sqlite3.ErrBusy),
		ExtendedCode: int(sqlite3.ErrBusySnapshot),
		Message:      msg,
	}).(sqlite3.Error)}
}

// lockedError is SQLite's SQLITE_BUSY ("database is locked") for a
// read-write BeginTx that waited the whole busy timeout for this node's
// other transaction on the database. It unwraps to a sqlite3.Error with
// Code and ExtendedCode sqlite3.ErrBusy and to sqlite3.ErrBusy; retryable.
type lockedError struct{ msg string }

func (e *lockedError) Error() string { return e.msg }
func (e *lockedError) Unwrap() []error {
	return []error{sqlite3.Error{Code: sqlite3.ErrBusy, ExtendedCode: sqlite3.ErrNoExtended(sqlite3.ErrBusy)}, sqlite3.ErrBusy}
}

var errTxAborted = "rsqlite: transaction conflict: another write was applied on this node while the transaction was open; retry the transaction"

// IsRetryable reports whether err means the operation did not happen and
// may simply be run again: a transaction conflict, a busy database, or a
// write refused because this node's disk is failing (retry on another
// node, or here once the disk is fixed).
func IsRetryable(err error) bool {
	var ce *ConflictError
	var de *DiskFaultError
	return errors.As(err, &ce) || errors.Is(err, sqlite3.ErrBusy) || errors.As(err, &de)
}

func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if c.tx != nil {
		return nil, errors.New("rsqlite: a transaction is already open on this connection")
	}
	switch sql.IsolationLevel(opts.Isolation) {
	case sql.LevelDefault, sql.LevelReadUncommitted, sql.LevelReadCommitted, sql.LevelWriteCommitted,
		sql.LevelRepeatableRead, sql.LevelSnapshot, sql.LevelSerializable, sql.LevelLinearizable:
		// All are honoured: transactions are serializable, and their
		// snapshot starts at a linearizable point.
	default:
		return nil, fmt.Errorf("rsqlite: unsupported isolation level %v", sql.IsolationLevel(opts.Isolation))
	}
	// The snapshot starts where the connection's reads would: after a
	// barrier, or (consistency=stale) on the local file as it is, unless the
	// transaction asks for sql.LevelLinearizable by name.
	barrier := c.barrier
	if sql.IsolationLevel(opts.Isolation) == sql.LevelLinearizable {
		barrier = c.linearize
	}
	if opts.ReadOnly || c.cfg.ReadOnly {
		return c.beginReadOnly(ctx, barrier)
	}
	return c.beginReadWrite(ctx, barrier)
}

// beginReadOnly pins a snapshot on the read connection; it proposes nothing.
func (c *conn) beginReadOnly(ctx context.Context, barrier func(context.Context) error) (driver.Tx, error) {
	if err := barrier(ctx); err != nil {
		return nil, err
	}
	rc, err := c.readConn()
	if err != nil {
		return nil, err
	}
	if err := pinSnapshot(rc); err != nil {
		return nil, err
	}
	c.tx = &tx{c: c, ctx: ctx, readOnly: true}
	return c.tx, nil
}

// pinSnapshot opens a read transaction on rc and reads the schema, which
// takes the snapshot (a deferred BEGIN takes none). It takes no context: a
// cancellation between BEGIN and the read left the connection inside a
// transaction, serving every later read from that old snapshot. The read
// does not wait on writers (WAL); the caller's context bounds the barrier
// before it and the statements after it.
func pinSnapshot(rc *sqlite3.SQLiteConn) error {
	if _, err := rc.Exec("BEGIN; SELECT count(*) FROM sqlite_schema", nil); err != nil {
		if !rc.AutoCommit() {
			if _, rerr := rc.Exec("ROLLBACK", nil); rerr != nil {
				return errors.Join(err, fmt.Errorf("rsqlite: end the read transaction: %w", rerr))
			}
		}
		return err
	}
	return nil
}

func (c *conn) beginReadWrite(ctx context.Context, barrier func(context.Context) error) (_ driver.Tx, err error) {
	t := &tx{c: c, ctx: ctx, settings: c.settings, time: time.Now().UnixMilli()}
	var b [8]byte
	rand.Read(b[:])
	t.seed = binary.LittleEndian.Uint64(b[:])
	wctx, cancel := withDefaultTimeout(ctx, c.cfg)
	defer cancel()
	// The barrier first, outside the node's transaction slot: it only
	// needs to start after Begin, and transactions queued for the slot
	// then share one ReadIndex instead of taking turns.
	if err := barrier(wctx); err != nil {
		return nil, err
	}
	if t.unlockSlot, err = c.db.LockTx(wctx, c.cfg.BusyTimeout); err != nil {
		if errors.Is(err, cluster.ErrLocked) {
			return nil, &lockedError{msg: err.Error()}
		}
		return nil, err
	}
	defer func() {
		if err != nil {
			t.release()
		}
	}()
	if t.sc, err = c.scratchConn(); err != nil {
		return nil, err
	}
	if t.base, err = t.sc.begin(t.settings); err != nil {
		return nil, err
	}
	t.unregister = c.db.RegisterLocalTx(t.sc.abort)
	c.tx = t
	return t, nil
}

// usable returns the error that ends a doomed transaction.
func (t *tx) usable() error {
	if t.done {
		return sql.ErrTxDone
	}
	if t.sc != nil && t.sc.doomed.Load() && t.err == nil {
		t.err = conflictError(errTxAborted)
	}
	return t.err
}

// exec runs a write on the scratch transaction and records it.
// last is the keyword of query's last statement (for noteWrite).
func (t *tx) exec(ctx context.Context, query, last string, args []driver.NamedValue) (driver.Result, error) {
	if t.readOnly {
		return nil, errors.New("rsqlite: cannot write in a read-only transaction")
	}
	if err := t.usable(); err != nil {
		return nil, err
	}
	if err := sqlclass.CheckWrite(query); err != nil {
		return nil, err
	}
	var res driver.Result
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	err := t.sc.run(sctx, cancel, t.time, command.StatementSeed(t.seed, len(t.writes)), func() (err error) {
		res, err = t.sc.conn.ExecContext(sctx, query, args)
		return err
	})
	if err := t.record(query, args, err); err != nil {
		return nil, err
	}
	id, _ := res.LastInsertId()
	n, _ := res.RowsAffected()
	return t.c.noteWrite(last, id, n), nil
}

// record adds a statement that ran on the scratch transaction to the
// writes to replay. A statement that failed with a SQLite error is replayed
// too, expecting the same failure: it may have left partial effects, which
// SQLite keeps in the transaction. Any other failure dooms the transaction
// unless nothing of it can have run.
func (t *tx) record(query string, args []driver.NamedValue, err error) error {
	if err := t.statementFailed(err); err != nil {
		var se sqlite3.Error
		switch {
		case t.err != nil:
		case errors.As(err, &se):
			t.writes = append(t.writes, command.Statement{SQL: query, Args: command.ArgsFromNamed(args), FailCode: int(se.ExtendedCode)})
		case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || len(sqlclass.Split(query)) > 1:
			// Cut short (go-sqlite3 then reports the context's error, not
			// SQLite's) or failed part way through a multi-statement text:
			// what ran cannot be replayed up to the same point.
			t.err = fmt.Errorf("rsqlite: the transaction cannot commit after this error: %w", err)
		}
		// Otherwise (a single statement refused before it ran, such as
		// too few arguments) nothing happened, and the transaction goes on.
		return err
	}
	t.writes = append(t.writes, command.Statement{SQL: query, Args: command.ArgsFromNamed(args)})
	return nil
}

// query runs a statement on the scratch transaction (or, read-only, on the
// pinned read snapshot). A statement that writes is recorded.
func (t *tx) query(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if err := t.usable(); err != nil {
		return nil, err
	}
	if t.readOnly {
		return t.c.queryPinned(ctx, query, args)
	}
	var rows driver.Rows
	var write bool
	err := t.sc.withConn(func() error {
		st, err := t.sc.conn.PrepareContext(ctx, query)
		if err != nil {
			return err
		}
		write = !st.(*sqlite3.SQLiteStmt).Readonly() || len(sqlclass.Split(query)) > 1
		return st.Close()
	})
	if err != nil {
		return nil, err
	}
	if write {
		if err := sqlclass.CheckWrite(query); err != nil {
			return nil, err
		}
	}
	seed := command.StatementSeed(t.seed, len(t.writes))
	if !write {
		// Reads are not replayed: give them seeds writes never use.
		t.reads++
		seed = command.StatementSeed(^t.seed, t.reads)
	}
	// The rows outlive run: their context ends when they are closed.
	qctx, cancel := context.WithCancel(ctx)
	err = t.sc.run(qctx, cancel, t.time, seed, func() (err error) {
		rows, err = t.sc.conn.QueryContext(qctx, query, args)
		return err
	})
	if write {
		err = t.record(query, args, err)
	} else {
		err = t.statementFailed(err)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	return &txRows{SQLiteRows: rows.(*sqlite3.SQLiteRows), cancel: cancel}, nil
}

// txRows are a transaction's rows from the scratch connection.
type txRows struct {
	*sqlite3.SQLiteRows
	cancel context.CancelFunc
}

func (r *txRows) Close() error {
	err := r.SQLiteRows.Close()
	r.cancel()
	return err
}

// statementFailed maps a scratch statement's error to what the caller
// sees, and dooms the transaction when SQLite ended it.
func (t *tx) statementFailed(err error) error {
	if err == nil {
		return nil
	}
	var se sqlite3.Error
	isSQLite := errors.As(err, &se)
	switch {
	case t.sc.doomed.Load() || isSQLite && se.Code == sqlite3.ErrBusy:
		t.err = conflictError(errTxAborted)
		return t.err
	case t.sc.conn.AutoCommit():
		// INSERT OR ROLLBACK, RAISE(ROLLBACK): SQLite ended the transaction.
		t.err = fmt.Errorf("rsqlite: the transaction was rolled back by a statement: %w", err)
	case isSQLite && !statemachine.Replayable(se.Code):
		// Interrupted, out of memory, I/O: a replay could not fail the same
		// way, so the transaction cannot commit what it saw.
		t.err = fmt.Errorf("rsqlite: the transaction cannot commit after this error: %w", err)
	}
	return err
}

func (t *tx) Commit() error {
	if t.done {
		return sql.ErrTxDone
	}
	defer t.release()
	if t.readOnly {
		_, err := t.c.read.Exec("COMMIT", nil)
		return err
	}
	err := t.usable()
	t.sc.rollback()
	t.unregister()
	t.unregister = nil
	if err != nil {
		return err
	}
	if len(t.writes) == 0 {
		return nil
	}
	cmd := t.c.nextCommand(command.KindTx, t.writes...)
	cmd.Time, cmd.Seed, cmd.Settings, cmd.BaseIndex = t.time, t.seed, t.settings, t.base
	_, err = t.c.propose(t.ctx, cmd)
	var se sqlite3.Error
	if errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrBusySnapshot {
		return &ConflictError{err: se}
	}
	return err
}

func (t *tx) Rollback() error {
	if t.done {
		return sql.ErrTxDone
	}
	defer t.release()
	if t.readOnly {
		_, err := t.c.read.Exec("ROLLBACK", nil)
		return err
	}
	t.sc.rollback()
	return nil
}

// release ends the transaction's hold on the connection and the node.
func (t *tx) release() {
	t.done = true
	if t.unregister != nil {
		t.unregister()
		t.unregister = nil
	}
	if t.sc != nil {
		t.sc.rollback()
	}
	if t.unlockSlot != nil {
		t.unlockSlot()
		t.unlockSlot = nil
	}
	if t.c.tx == t {
		t.c.tx = nil
	}
}

// scratch is a conn's writable connection to the local replica, used only
// inside transactions and always rolled back. It has its own deterministic
// VFS and replication guard, so statements behave exactly as they will when
// every node replays them.
type scratch struct {
	vfs  *detvfs.VFS
	conn *sqlite3.SQLiteConn

	mu       sync.Mutex // held by a running statement, and by abort
	cancelMu sync.Mutex
	cancel   context.CancelFunc // interrupts the running statement
	doomed   atomic.Bool
}

func (c *conn) scratchConn() (*scratch, error) {
	if c.scratch != nil {
		return c.scratch, nil
	}
	vfs, err := detvfs.New()
	if err != nil {
		return nil, err
	}
	// Statements prepared with the guard off (to classify them) are closed
	// at once; every statement that runs is prepared with the guard on.
	// go-sqlite3's statement cache takes what runs through ExecContext and
	// QueryContext: here only user statements, inside run with the guard
	// on. The connection's own statements use Prepare, or Exec without
	// arguments or context, which bypass it.
	vfs.TrustPrepared()
	params := url.Values{
		"vfs":              {vfs.Name()},
		"_busy_timeout":    {strconv.FormatInt(c.cfg.BusyTimeout.Milliseconds(), 10)},
		"_stmt_cache_size": {"64"},
	}
	if loc := locParam(c.cfg.Loc); loc != "" {
		params.Set("_loc", loc)
	}
	dc, err := (&sqlite3.SQLiteDriver{}).Open(statemachine.FileURI(c.db.Path(), params))
	if err != nil {
		vfs.Close()
		return nil, fmt.Errorf("rsqlite: open local replica of %s for a transaction: %w", c.cfg.Name, err)
	}
	sc := &scratch{vfs: vfs, conn: dc.(*sqlite3.SQLiteConn)}
	// A temp table of the scratch connection's own: deleting nothing from it
	// resets changes() without taking the database's write lock.
	if _, err := sc.conn.Exec("CREATE TEMP TABLE rsqlite_noop(x)", nil); err != nil {
		sc.close()
		return nil, err
	}
	c.scratch = sc
	return sc, nil
}

// begin opens the scratch transaction with the given settings and returns
// the last-write index of its snapshot.
func (s *scratch) begin(settings command.Settings) (uint64, error) {
	s.doomed.Store(false)
	pragmas := fmt.Sprintf("PRAGMA foreign_keys=%d; PRAGMA recursive_triggers=%d; PRAGMA case_sensitive_like=%d; PRAGMA ignore_check_constraints=%d;",
		bit(settings, command.ForeignKeys), bit(settings, command.RecursiveTriggers),
		bit(settings, command.CaseSensitiveLike), bit(settings, command.IgnoreCheckConstraints))
	if _, err := s.conn.Exec(pragmas+"BEGIN", nil); err != nil {
		return 0, err
	}
	if settings&command.DeferForeignKeys != 0 {
		if _, err := s.conn.Exec("PRAGMA defer_foreign_keys=1", nil); err != nil {
			return 0, err
		}
	}
	// Prepared explicitly: it runs with the guard off, so it must stay out
	// of the statement cache, which only statements run with the guard on
	// may enter (see scratchConn).
	st, err := s.conn.Prepare("SELECT last_write_index FROM _rsqlite_meta WHERE id = 1")
	if err != nil {
		s.rollback()
		return 0, err
	}
	defer st.Close()
	rows, err := st.(*sqlite3.SQLiteStmt).QueryContext(context.Background(), nil)
	if err != nil {
		s.rollback()
		return 0, err
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil {
		s.rollback()
		return 0, fmt.Errorf("rsqlite: read transaction base: %w", err)
	}
	s.vfs.ResetConn()
	if _, err := s.conn.Exec("DELETE FROM temp.rsqlite_noop WHERE 0", nil); err != nil {
		s.rollback()
		return 0, err
	}
	return uint64(dest[0].(int64)), nil
}

func bit(s, b command.Settings) int {
	if s&b != 0 {
		return 1
	}
	return 0
}

func (s *scratch) withConn(f func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.doomed.Load() {
		return conflictError(errTxAborted)
	}
	return f()
}

// run executes f as one statement with the transaction's clock and the
// statement's seed, under the replication guard. f's statement must use a
// context that cancel ends: abort calls it to interrupt the statement.
func (s *scratch) run(ctx context.Context, cancel context.CancelFunc, now int64, seed uint64, f func() error) error {
	return s.withConn(func() error {
		s.cancelMu.Lock()
		s.cancel = cancel
		s.cancelMu.Unlock()
		defer func() {
			s.cancelMu.Lock()
			s.cancel = nil
			s.cancelMu.Unlock()
		}()
		s.vfs.Set(now, seed)
		s.vfs.SetGuard(true)
		defer s.vfs.SetGuard(false)
		err := f()
		var se sqlite3.Error
		if what := s.vfs.LastDenied(); what != "" && errors.As(err, &se) {
			// Worded as the state machine words the same refusal.
			err = sqliteError(&command.Error{Code: int(se.Code), ExtendedCode: int(se.ExtendedCode),
				Message: fmt.Sprintf("%s: rsqlite cannot replicate %s", se.Error(), what)})
		}
		return err
	})
}

// abort is called by the state machine before it applies an entry: it
// interrupts the running statement and releases the write lock.
func (s *scratch) abort() {
	s.doomed.Store(true)
	s.cancelMu.Lock()
	if s.cancel != nil {
		s.cancel()
	}
	s.cancelMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rollbackLocked()
}

func (s *scratch) rollback() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rollbackLocked()
}

func (s *scratch) rollbackLocked() {
	if !s.conn.AutoCommit() {
		s.conn.Exec("ROLLBACK", nil) //nolint:errcheck // fails only if already rolled back
	}
}

func (s *scratch) close() {
	s.conn.Close()
	s.vfs.Close()
}

// deferForeignKeys handles PRAGMA defer_foreign_keys inside a transaction:
// it applies to the scratch run now and to the replay on every node.
func (t *tx) deferForeignKeys(on bool) error {
	if t.readOnly {
		return nil
	}
	if err := t.usable(); err != nil {
		return err
	}
	if on {
		t.settings |= command.DeferForeignKeys
	} else {
		t.settings &^= command.DeferForeignKeys
	}
	return t.sc.withConn(func() error {
		_, err := t.sc.conn.Exec(fmt.Sprintf("PRAGMA defer_foreign_keys=%d", bit(t.settings, command.DeferForeignKeys)), nil)
		return err
	})
}
