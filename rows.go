package rsqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"io"
	"reflect"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/rsqlite/rsqlite/internal/command"
)

// queryLocal runs a prepared read-only statement; the rows close the
// statement with them.
func queryLocal(ctx context.Context, st *sqlite3.SQLiteStmt, args []driver.NamedValue) (driver.Rows, error) {
	r, err := st.QueryContext(ctx, args)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &localRows{SQLiteRows: r.(*sqlite3.SQLiteRows), st: st}, nil
}

// localRows are go-sqlite3's own rows (same values, types and column
// metadata as plain go-sqlite3) that also close their statement, or hand a
// cached one back.
type localRows struct {
	*sqlite3.SQLiteRows
	st     *sqlite3.SQLiteStmt // closed with the rows, if not cached
	cached *readStmt
}

func (r *localRows) Close() error {
	err := r.SQLiteRows.Close() // resets the statement
	if r.cached != nil {
		r.cached.busy.Store(false)
		r.cached = nil
		return err
	}
	if cerr := r.st.Close(); err == nil {
		err = cerr
	}
	return err
}

// resultRows are the rows a replicated statement (INSERT ... RETURNING)
// returned on the state machine.
type resultRows struct {
	res *command.Result
	loc *time.Location
	i   int
}

func newResultRows(res *command.Result, loc *time.Location) *resultRows {
	return &resultRows{res: res, loc: loc}
}

var (
	_ driver.Rows                           = (*resultRows)(nil)
	_ driver.RowsColumnTypeDatabaseTypeName = (*resultRows)(nil)
	_ driver.RowsColumnTypeScanType         = (*resultRows)(nil)
	_ driver.RowsColumnTypeNullable         = (*resultRows)(nil)
)

func (r *resultRows) Columns() []string { return r.res.Columns }
func (r *resultRows) Close() error      { r.i = len(r.res.Rows); return nil }

func (r *resultRows) Next(dest []driver.Value) error {
	if r.i >= len(r.res.Rows) {
		return io.EOF
	}
	row := r.res.Rows[r.i]
	r.i++
	for i := range dest {
		v := row[i]
		// go-sqlite3 applies _loc to the times it parses; the state
		// machine's connection has none.
		if t, ok := v.(time.Time); ok && r.loc != nil {
			v = t.In(r.loc)
		}
		dest[i] = v
	}
	return nil
}

func (r *resultRows) declType(i int) string {
	if i < len(r.res.DeclTypes) {
		return r.res.DeclTypes[i]
	}
	return ""
}

func (r *resultRows) ColumnTypeDatabaseTypeName(i int) string { return r.declType(i) }

func (r *resultRows) ColumnTypeNullable(i int) (nullable, ok bool) { return true, true }

// ColumnTypeScanType follows go-sqlite3's mapping from declared types.
func (r *resultRows) ColumnTypeScanType(i int) reflect.Type {
	t := strings.ToUpper(r.declType(i))
	switch {
	case strings.Contains(t, "INT"):
		return reflect.TypeOf(sql.NullInt64{})
	case t == "CLOB" || t == "TEXT" || strings.Contains(t, "CHAR"):
		return reflect.TypeOf(sql.NullString{})
	case t == "BLOB":
		return reflect.TypeOf(sql.RawBytes{})
	case t == "REAL" || t == "FLOAT" || strings.Contains(t, "DOUBLE"), t == "NUMERIC" || strings.Contains(t, "DECIMAL"):
		return reflect.TypeOf(sql.NullFloat64{})
	case t == "DATE" || t == "DATETIME" || t == "TIMESTAMP":
		return reflect.TypeOf(sql.NullTime{})
	case t == "BOOLEAN":
		return reflect.TypeOf(sql.NullBool{})
	}
	return reflect.TypeOf(new(any))
}

// emptyRows answer a connection pragma sent through Query.
type emptyRows struct{}

func (emptyRows) Columns() []string              { return nil }
func (emptyRows) Close() error                   { return nil }
func (emptyRows) Next(dest []driver.Value) error { return io.EOF }
