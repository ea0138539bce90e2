package rsqlite

import (
	"context"
	"crypto/rand"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/rsqlite/rsqlite/cluster"
	"github.com/rsqlite/rsqlite/internal/command"
	"github.com/rsqlite/rsqlite/internal/sqlclass"
	"github.com/rsqlite/rsqlite/statemachine"
)

// conn is one database/sql connection. Writes go through raft; reads run on
// a private read-only go-sqlite3 connection to the local replica's file.
//
// Exactly-once: every proposal carries the connection's random client ID and
// a sequence number that grows by one per proposal. database/sql uses a
// connection from one goroutine at a time, so a client has at most one
// request in flight, which is what the state machine's record of the latest
// request per client needs.
type conn struct {
	connector     *Connector
	cfg           *Config
	db            *cluster.DB
	ownsConnector bool

	clientID uint64
	seq      uint64
	settings command.Settings

	// lastInsertID and lastChanges are this connection's SQLite
	// last_insert_rowid() and changes(): what go-sqlite3 reports for
	// statements that insert or change nothing, and what those functions
	// return in this connection's reads.
	lastInsertID, lastChanges int64

	read      *sqlite3.SQLiteConn // opened on first read
	readStmts map[string]*readStmt
	scratch   *scratch // opened on first transaction
	tx        *tx
	closed    bool
}

var (
	_ driver.Conn               = (*conn)(nil)
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.ConnPrepareContext = (*conn)(nil)
	_ driver.ExecerContext      = (*conn)(nil)
	_ driver.QueryerContext     = (*conn)(nil)
	_ driver.Pinger             = (*conn)(nil)
	_ driver.SessionResetter    = (*conn)(nil)
	_ driver.Validator          = (*conn)(nil)
	_ driver.NamedValueChecker  = (*conn)(nil)
)

func newConn(c *Connector, db *cluster.DB) (*conn, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	cn := &conn{
		connector: c,
		cfg:       c.cfg,
		db:        db,
		clientID:  binary.LittleEndian.Uint64(b[:]) | 1, // never 0: 0 means "no request ID"
	}
	for _, s := range []struct {
		on  bool
		bit command.Settings
	}{
		{c.cfg.ForeignKeys, command.ForeignKeys},
		{c.cfg.RecursiveTriggers, command.RecursiveTriggers},
		{c.cfg.CaseSensitiveLike, command.CaseSensitiveLike},
		{c.cfg.IgnoreCheckConstraints, command.IgnoreCheckConstraints},
		{c.cfg.DeferForeignKeys, command.DeferForeignKeys},
	} {
		if s.on {
			cn.settings |= s.bit
		}
	}
	return cn, nil
}

// readConn opens the connection's local read connection lazily. It is
// query_only, so nothing can write the replica behind raft's back.
func (c *conn) readConn() (*sqlite3.SQLiteConn, error) {
	if c.read != nil {
		return c.read, nil
	}
	params := url.Values{
		"_query_only":   {"1"},
		"_busy_timeout": {strconv.FormatInt(c.cfg.BusyTimeout.Milliseconds(), 10)},
	}
	if loc := locParam(c.cfg.Loc); loc != "" {
		params.Set("_loc", loc)
	}
	if c.cfg.CacheSize != 0 {
		params.Set("_cache_size", strconv.Itoa(c.cfg.CacheSize))
	}
	for _, p := range []struct {
		bit  command.Settings
		name string
	}{
		{command.ForeignKeys, "_fk"},
		{command.RecursiveTriggers, "_recursive_triggers"},
		{command.CaseSensitiveLike, "_cslike"},
		{command.IgnoreCheckConstraints, "_ignore_check_constraints"},
	} {
		if c.settings&p.bit != 0 {
			params.Set(p.name, "1")
		}
	}
	drv := &sqlite3.SQLiteDriver{ConnectHook: func(sc *sqlite3.SQLiteConn) error {
		// This connection's writes ran elsewhere (on every node's applier);
		// its reads see their outcome as SQLite would on one connection.
		if err := sc.RegisterFunc("last_insert_rowid", func() int64 { return c.lastInsertID }, false); err != nil {
			return err
		}
		return sc.RegisterFunc("changes", func() int64 { return c.lastChanges }, false)
	}}
	dc, err := drv.Open(statemachine.FileURI(c.db.Path(), params))
	if err != nil {
		return nil, fmt.Errorf("rsqlite: open local replica of %s: %w", c.cfg.Name, err)
	}
	c.read = dc.(*sqlite3.SQLiteConn)
	return c.read, nil
}

// cutAtNUL drops everything from the first NUL byte: SQLite reads SQL text
// as a C string and stops there, and so must the driver's own checks, or a
// statement it thinks it sees would not exist for SQLite.
func cutAtNUL(query string) string {
	if i := strings.IndexByte(query, 0); i >= 0 {
		return query[:i]
	}
	return query
}

// locParam is go-sqlite3's _loc value for loc.
func locParam(loc *time.Location) string {
	switch loc {
	case nil:
		return ""
	case time.Local:
		return "auto"
	}
	return loc.String()
}

// nextCommand stamps a new command with the connection's identity, the
// clock and a fresh seed.
func (c *conn) nextCommand(kind command.Kind, stmts ...command.Statement) *command.Command {
	c.seq++
	var b [8]byte
	rand.Read(b[:])
	return &command.Command{
		Kind:       kind,
		ClientID:   c.clientID,
		Seq:        c.seq,
		Time:       time.Now().UnixMilli(),
		Seed:       binary.LittleEndian.Uint64(b[:]),
		Settings:   c.settings,
		Engine:     statemachine.Engine,
		Statements: stmts,
	}
}

// propose replicates cmd and returns the state machine's result; a SQL
// error of the command comes back as the returned error.
func (c *conn) propose(ctx context.Context, cmd *command.Command) (*command.Result, error) {
	if c.cfg.ReadOnly {
		return nil, errReadOnly
	}
	b, err := command.Encode(nil, cmd)
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDefaultTimeout(ctx, c.cfg)
	defer cancel()
	data, err := c.db.Propose(ctx, b)
	if err != nil {
		return nil, err
	}
	res, err := command.DecodeResult(data)
	if err != nil {
		return nil, fmt.Errorf("rsqlite: undecodable result from the state machine: %w", err)
	}
	if res.Err != nil {
		return nil, sqliteError(res.Err)
	}
	return res, nil
}

var errReadOnly = errors.New("rsqlite: attempt to write through a read-only connection (mode=ro or _query_only in the DSN)")

// ExecContext replicates the statements (all of them, atomically, as one
// raft entry) and returns SQLite's RowsAffected and LastInsertId of the last.
func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if handled, err := c.connPragma(query); handled {
		if err != nil {
			return nil, err
		}
		return execResult{c.lastInsertID, c.lastChanges}, nil
	}
	query = cutAtNUL(query)
	stmts := sqlclass.Split(query)
	if len(stmts) == 0 {
		return execResult{}, nil // nothing to run, as go-sqlite3 reports it
	}
	last := sqlclass.Keyword(stmts[len(stmts)-1])
	if c.tx != nil {
		return c.tx.exec(ctx, query, last, args)
	}
	if err := sqlclass.CheckWrite(query); err != nil {
		return nil, err
	}
	res, err := c.propose(ctx, c.nextCommand(command.KindExec, command.Statement{SQL: query, Args: command.ArgsFromNamed(args)}))
	if err != nil {
		return nil, err
	}
	return c.noteWrite(last, res.LastInsertID, res.RowsAffected), nil
}

// noteWrite records a write's outcome in the connection's last_insert_rowid
// and changes, and returns the result go-sqlite3 would report on one
// connection: every entry starts with both at zero on the applier, so a
// statement that inserts nothing reports the connection's previous rowid,
// and one that is not INSERT, UPDATE or DELETE the previous change count.
// last is the keyword of the write's last statement.
func (c *conn) noteWrite(last string, id, changes int64) execResult {
	if id != 0 {
		c.lastInsertID = id
	}
	switch {
	case last == "INSERT" || last == "UPDATE" || last == "DELETE" || last == "REPLACE",
		last == "WITH" && changes != 0:
		c.lastChanges = changes
	}
	return execResult{c.lastInsertID, c.lastChanges}
}

type execResult struct{ id, changes int64 }

func (r execResult) LastInsertId() (int64, error) { return r.id, nil }
func (r execResult) RowsAffected() (int64, error) { return r.changes, nil }

// connPragma handles "PRAGMA foreign_keys = ON" and its kin: they set the
// connection's settings, which travel with each of its writes (and apply to
// its reads), instead of being replicated.
func (c *conn) connPragma(query string) (bool, error) {
	name, on, ok, err := sqlclass.ConnPragma(query)
	if !ok {
		return false, nil
	}
	if err != nil {
		return true, err
	}
	bits := map[string]command.Settings{
		"foreign_keys":             command.ForeignKeys,
		"recursive_triggers":       command.RecursiveTriggers,
		"case_sensitive_like":      command.CaseSensitiveLike,
		"ignore_check_constraints": command.IgnoreCheckConstraints,
		"defer_foreign_keys":       command.DeferForeignKeys,
	}
	flag, known := bits[name]
	if !known {
		return true, fmt.Errorf("rsqlite: unsupported connection pragma %s", name)
	}
	if c.tx != nil {
		switch name {
		case "defer_foreign_keys":
			// SQLite applies it inside a transaction (and resets it at the
			// end): it belongs to the transaction, not the connection.
			return true, c.tx.deferForeignKeys(on)
		case "foreign_keys":
			return true, nil // a no-op inside a transaction, in SQLite too
		}
	}
	if on {
		c.settings |= flag
	} else {
		c.settings &^= flag
	}
	if c.read != nil {
		// Reads see the setting (PRAGMA foreign_keys) and, for
		// case_sensitive_like, obey it.
		if _, err := c.read.Exec(fmt.Sprintf("PRAGMA %s=%d", name, bit(c.settings, flag)), nil); err != nil {
			return true, err
		}
	}
	return true, nil
}

// QueryContext runs a read-only statement locally after a read barrier, and
// replicates any other (INSERT ... RETURNING, several statements), returning
// its rows.
func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if handled, err := c.connPragma(query); handled {
		return emptyRows{}, err
	}
	query = cutAtNUL(query)
	if c.tx != nil {
		return c.tx.query(ctx, query, args)
	}
	switch len(sqlclass.Split(query)) {
	case 0:
		return emptyRows{}, nil // as go-sqlite3 answers empty or comment-only text
	case 1:
	default:
		return c.proposeQuery(ctx, query, args)
	}
	if rs := c.takeReadStmt(query); rs != nil {
		if err := c.barrier(ctx); err != nil {
			rs.busy.Store(false)
			return nil, err
		}
		return queryCached(ctx, rs, args)
	}
	ro, err := c.prepareLocal(ctx, query)
	if err != nil {
		return nil, err
	}
	if !ro.Readonly() {
		ro.Close()
		return c.proposeQuery(ctx, query, args)
	}
	return c.queryPrepared(ctx, query, ro, args)
}

// queryPinned runs a read-only transaction's query on the read connection,
// whose snapshot the transaction pinned (no barrier): single statements
// through the statement cache, like reads outside transactions.
func (c *conn) queryPinned(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	rc, err := c.readConn()
	if err != nil {
		return nil, err
	}
	if len(sqlclass.Split(query)) != 1 {
		return rc.QueryContext(ctx, query, args) // what go-sqlite3 does with several
	}
	if rs := c.takeReadStmt(query); rs != nil {
		return queryCached(ctx, rs, args)
	}
	st, err := rc.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return c.queryPrepared(ctx, query, st.(*sqlite3.SQLiteStmt), args)
}

// queryPrepared runs a statement just prepared on the read connection,
// keeping it in the cache when it is read-only and there is room.
func (c *conn) queryPrepared(ctx context.Context, query string, st *sqlite3.SQLiteStmt, args []driver.NamedValue) (driver.Rows, error) {
	if err := enoughArgs(st, args); err != nil {
		st.Close()
		return nil, err
	}
	if st.Readonly() {
		if rs := c.cacheReadStmt(query, st); rs != nil {
			return queryCached(ctx, rs, args)
		}
	}
	return queryLocal(ctx, st, args)
}

// prepareLocal prepares query on the local read connection after the read
// barrier, so the local schema is at least as new as any write acknowledged
// before the call.
func (c *conn) prepareLocal(ctx context.Context, query string) (*sqlite3.SQLiteStmt, error) {
	if err := c.barrier(ctx); err != nil {
		return nil, err
	}
	rc, err := c.readConn()
	if err != nil {
		return nil, err
	}
	st, err := rc.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.(*sqlite3.SQLiteStmt), nil
}

// barrier waits until the local replica has applied every write
// acknowledged before it was called; a no-op with consistency=stale.
func (c *conn) barrier(ctx context.Context) error {
	if c.cfg.Consistency == Stale {
		return nil
	}
	return c.linearize(ctx)
}

// linearize is barrier whatever the connection's consistency.
func (c *conn) linearize(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx, c.cfg)
	defer cancel()
	return c.db.Barrier(ctx)
}

func (c *conn) proposeQuery(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if err := sqlclass.CheckWrite(query); err != nil {
		return nil, err
	}
	res, err := c.propose(ctx, c.nextCommand(command.KindQuery, command.Statement{SQL: query, Args: command.ArgsFromNamed(args)}))
	if err != nil {
		return nil, err
	}
	return newResultRows(res, c.cfg.Loc), nil
}

// PrepareContext prepares query's first statement, as go-sqlite3 does: on
// the transaction's scratch connection inside a transaction (which sees the
// transaction's own schema changes), else on the read connection.
func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	query = cutAtNUL(query)
	parts := sqlclass.Split(query)
	if len(parts) == 0 {
		// Nothing to prepare: go-sqlite3 gives a statement that does nothing.
		return &stmt{c: c, query: ""}, nil
	}
	first := parts[0]
	if t := c.tx; t != nil && !t.readOnly {
		if err := t.usable(); err != nil {
			return nil, err
		}
		var n int
		err := t.sc.withConn(func() error {
			st, err := t.sc.conn.PrepareContext(ctx, first)
			if err != nil {
				return err
			}
			n = st.NumInput()
			return st.Close()
		})
		if err != nil {
			return nil, err
		}
		return &stmt{c: c, query: first, numInput: n}, nil
	}
	st, err := c.prepareLocal(ctx, first)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return &stmt{c: c, query: first, numInput: st.NumInput()}, nil
}

func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// Ping checks that the database is reachable with a read barrier.
func (c *conn) Ping(ctx context.Context) error {
	if c.closed {
		return driver.ErrBadConn
	}
	ctx, cancel := withDefaultTimeout(ctx, c.cfg)
	defer cancel()
	return c.db.Barrier(ctx)
}

func (c *conn) ResetSession(ctx context.Context) error {
	if c.closed {
		return driver.ErrBadConn
	}
	return nil
}

func (c *conn) IsValid() bool { return !c.closed }

// CheckNamedValue accepts the types go-sqlite3 binds natively and lets
// database/sql convert the rest.
func (c *conn) CheckNamedValue(nv *driver.NamedValue) error {
	switch nv.Value.(type) {
	case nil, int64, float64, bool, []byte, string, time.Time:
		return nil
	}
	return driver.ErrSkip
}

func (c *conn) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	if c.tx != nil {
		c.tx.release()
	}
	var err error
	if c.scratch != nil {
		c.scratch.close()
	}
	if c.read != nil {
		c.closeReadStmts()
		err = c.read.Close()
	}
	if c.ownsConnector {
		if cerr := c.connector.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
