package rsqlite

import (
	"context"
	"database/sql/driver"
	"fmt"
	"sync/atomic"

	"github.com/mattn/go-sqlite3"
)

// Read-only statements of a connection stay prepared on its read
// connection, keyed by their text: a point query then costs a bind and a
// step, not a parse and plan. A cached statement is re-planned by SQLite
// itself when the schema changes, and still runs only after the read
// barrier, so what it reads is as linearizable as a fresh one.
//
// database/sql uses a conn from one goroutine at a time, but several of its
// Rows may be open at once: a statement in use is never shared, the second
// user prepares its own (uncached).

// readStmtCacheSize bounds the statements one connection keeps prepared.
const readStmtCacheSize = 32

type readStmt struct {
	st   *sqlite3.SQLiteStmt
	busy atomic.Bool // its rows are open
}

// takeReadStmt returns query's cached statement, now busy, or nil.
func (c *conn) takeReadStmt(query string) *readStmt {
	rs := c.readStmts[query]
	if rs == nil || !rs.busy.CompareAndSwap(false, true) {
		return nil
	}
	return rs
}

// cacheReadStmt keeps st, a read-only statement just prepared, and returns
// it busy; nil when the cache is full of statements in use.
func (c *conn) cacheReadStmt(query string, st *sqlite3.SQLiteStmt) *readStmt {
	if _, ok := c.readStmts[query]; ok {
		return nil // the cached one is in use; st stays private
	}
	if len(c.readStmts) >= readStmtCacheSize {
		evicted := false
		for q, rs := range c.readStmts {
			if rs.busy.CompareAndSwap(false, true) {
				rs.st.Close()
				delete(c.readStmts, q)
				evicted = true
				break
			}
		}
		if !evicted {
			return nil
		}
	}
	if c.readStmts == nil {
		c.readStmts = make(map[string]*readStmt)
	}
	rs := &readStmt{st: st}
	rs.busy.Store(true)
	c.readStmts[query] = rs
	return rs
}

// closeReadStmts finalizes the cached statements (before the read
// connection closes: SQLite keeps a connection with live statements open).
func (c *conn) closeReadStmts() {
	for q, rs := range c.readStmts {
		rs.st.Close()
		delete(c.readStmts, q)
	}
}

// enoughArgs is go-sqlite3's own check, worded as it words it.
func enoughArgs(st *sqlite3.SQLiteStmt, args []driver.NamedValue) error {
	if n := st.NumInput(); len(args) < n {
		return fmt.Errorf("not enough args to execute query: want %d got %d", n, len(args))
	}
	return nil
}

// queryCached runs a cached statement; closing the rows resets it and
// hands it back.
func queryCached(ctx context.Context, rs *readStmt, args []driver.NamedValue) (driver.Rows, error) {
	if err := enoughArgs(rs.st, args); err != nil {
		rs.busy.Store(false)
		return nil, err
	}
	r, err := rs.st.QueryContext(ctx, args)
	if err != nil {
		rs.busy.Store(false)
		return nil, err
	}
	return &localRows{SQLiteRows: r.(*sqlite3.SQLiteRows), cached: rs}, nil
}
