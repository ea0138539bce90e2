package rsqlite

import (
	"context"
	"database/sql/driver"
	"errors"
)

// stmt is a prepared statement. It keeps only the SQL: a read is prepared
// again on the local connection when it runs (after its read barrier, so it
// sees the current schema), and a write is replicated as text, because every
// node prepares it on its own connection. Preparing is cheap next to a raft
// round trip.
type stmt struct {
	c        *conn
	query    string
	numInput int
	closed   bool
}

var (
	_ driver.Stmt              = (*stmt)(nil)
	_ driver.StmtExecContext   = (*stmt)(nil)
	_ driver.StmtQueryContext  = (*stmt)(nil)
	_ driver.NamedValueChecker = (*stmt)(nil)
)

var errStmtClosed = errors.New("rsqlite: statement is closed")

func (s *stmt) Close() error {
	s.closed = true
	return nil
}

// NumInput is SQLite's parameter count, so database/sql checks arity as it
// does for go-sqlite3.
func (s *stmt) NumInput() int { return s.numInput }

func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if s.closed {
		return nil, errStmtClosed
	}
	return s.c.ExecContext(ctx, s.query, args)
}

func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if s.closed {
		return nil, errStmtClosed
	}
	return s.c.QueryContext(ctx, s.query, args)
}

func (s *stmt) CheckNamedValue(nv *driver.NamedValue) error { return s.c.CheckNamedValue(nv) }

func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), valuesToNamed(args))
}

func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), valuesToNamed(args))
}

func valuesToNamed(args []driver.Value) []driver.NamedValue {
	nv := make([]driver.NamedValue, len(args))
	for i, v := range args {
		nv[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return nv
}
