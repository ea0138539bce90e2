package statemachine

import (
	"database/sql/driver"
	"fmt"
	"io"

	"github.com/mattn/go-sqlite3"

	"github.com/rsqlite/rsqlite/internal/command"
)

// bookkeeping holds the prepared statements the SM runs on its own tables.
// They are prepared once, with the authorizer guard off.
type bookkeeping struct {
	readMetaStmt, writeMetaStmt  *sqlite3.SQLiteStmt
	lookupStmt, recordStmt       *sqlite3.SQLiteStmt
	expireStmt, resetChangesStmt *sqlite3.SQLiteStmt
	savepointStmt, releaseStmt   *sqlite3.SQLiteStmt
}

func (b *bookkeeping) prepare(c *sqlite3.SQLiteConn) error {
	for _, p := range []struct {
		dst **sqlite3.SQLiteStmt
		sql string
	}{
		{&b.readMetaStmt, `SELECT applied_index, last_write_index FROM _rsqlite_meta WHERE id = 1`},
		{&b.writeMetaStmt, `UPDATE _rsqlite_meta SET applied_index = ?, last_write_index = ? WHERE id = 1`},
		{&b.lookupStmt, `SELECT seq, result FROM _rsqlite_requests WHERE client_id = ?`},
		{&b.recordStmt, `INSERT INTO _rsqlite_requests(client_id, seq, time, result) VALUES (?, ?, ?, ?)
			ON CONFLICT(client_id) DO UPDATE SET seq = excluded.seq, time = excluded.time, result = excluded.result`},
		{&b.expireStmt, `DELETE FROM _rsqlite_requests WHERE time < ?`},
		// A DML statement that changes nothing: running it sets changes() to
		// 0, so the user's first statement of an entry sees a fresh value.
		{&b.resetChangesStmt, `UPDATE _rsqlite_meta SET id = id WHERE 0`},
		// Each entry runs in a savepoint, so a failing entry rolls back
		// alone; prepared once, as they run for every entry.
		{&b.savepointStmt, `SAVEPOINT rsqlite_entry`},
		{&b.releaseStmt, `RELEASE rsqlite_entry`},
	} {
		st, err := c.Prepare(p.sql)
		if err != nil {
			return fmt.Errorf("rsqlite: prepare bookkeeping statement: %w", err)
		}
		*p.dst = st.(*sqlite3.SQLiteStmt)
	}
	return nil
}

func (b *bookkeeping) close() {
	for _, st := range []*sqlite3.SQLiteStmt{b.readMetaStmt, b.writeMetaStmt, b.lookupStmt, b.recordStmt,
		b.expireStmt, b.resetChangesStmt, b.savepointStmt, b.releaseStmt} {
		if st != nil {
			st.Close()
		}
	}
}

// sqliteInt stores a uint64 (raft index, client id) in SQLite's int64 bit
// for bit; the round trip is exact.
func sqliteInt(v uint64) int64 { return int64(v) }

func (b *bookkeeping) exec(st *sqlite3.SQLiteStmt, args ...driver.Value) error {
	_, err := st.Exec(args) //nolint:staticcheck // the context variant starts a goroutine per call
	return err
}

func (b *bookkeeping) readMeta() (applied, lastWrite uint64, err error) {
	rows, err := b.readMetaStmt.Query(nil) //nolint:staticcheck
	if err != nil {
		return 0, 0, err
	}
	defer rows.Close()
	dest := make([]driver.Value, 2)
	if err := rows.Next(dest); err != nil {
		return 0, 0, fmt.Errorf("no metadata row: %w", err)
	}
	return uint64(dest[0].(int64)), uint64(dest[1].(int64)), nil
}

func (b *bookkeeping) writeMeta(applied, lastWrite uint64) error {
	return b.exec(b.writeMetaStmt, sqliteInt(applied), sqliteInt(lastWrite))
}

func (b *bookkeeping) lookupRequest(client uint64) (seq uint64, result []byte, found bool, err error) {
	rows, err := b.lookupStmt.Query([]driver.Value{sqliteInt(client)}) //nolint:staticcheck
	if err != nil {
		return 0, nil, false, err
	}
	defer rows.Close()
	dest := make([]driver.Value, 2)
	switch err := rows.Next(dest); err {
	case nil:
		return uint64(dest[0].(int64)), dest[1].([]byte), true, nil
	case io.EOF:
		return 0, nil, false, nil
	default:
		return 0, nil, false, err
	}
}

func (b *bookkeeping) recordRequest(cmd *command.Command, result []byte) error {
	return b.exec(b.recordStmt, sqliteInt(cmd.ClientID), sqliteInt(cmd.Seq), cmd.Time, result)
}

func (b *bookkeeping) expireRequests(before int64) error {
	return b.exec(b.expireStmt, before)
}

func (b *bookkeeping) resetChanges() error { return b.exec(b.resetChangesStmt) }
func (b *bookkeeping) savepoint() error    { return b.exec(b.savepointStmt) }
func (b *bookkeeping) release() error      { return b.exec(b.releaseStmt) }
