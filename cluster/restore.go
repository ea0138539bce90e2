package cluster

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rsqlite/rsqlite/internal/command"
	"github.com/rsqlite/rsqlite/statemachine"
)

// Restore loads the plain SQLite file at srcPath as a new replicated
// database called name, on every member. It is a logical copy made of
// ordinary replicated writes: tables first, then their rows in batches (each
// one raft entry, exactly-once like any write), then indexes, views and
// triggers (so triggers do not fire on the copied rows), then
// sqlite_sequence, user_version and application_id. Rowids are kept.
// progress, if not nil, is called after each batch. A database of that name
// must not exist; if Restore fails part way, the database exists with part
// of the data and should be dropped before retrying under the same name.
func (n *Node) Restore(ctx context.Context, name, srcPath string, progress func(doneRows, totalRows int64)) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if _, found, err := n.lookup(ctx, name); err != nil {
		return err
	} else if found {
		return fmt.Errorf("rsqlite: database %s already exists; restore into a new name", name)
	}
	src, err := sql.Open("sqlite3", statemachine.FileURI(srcPath, url.Values{"mode": {"ro"}}))
	if err != nil {
		return err
	}
	defer src.Close()
	src.SetMaxOpenConns(1) // one read transaction: a consistent source
	var check string
	if err := src.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&check); err != nil || check != "ok" {
		return fmt.Errorf("rsqlite: %s is not a valid SQLite database (quick_check: %q %v)", srcPath, check, err)
	}
	plan, err := planRestore(ctx, src)
	if err != nil {
		return err
	}
	db, err := n.Open(ctx, name)
	if err != nil {
		return err
	}
	w := &restoreWriter{db: db}
	if err := w.init(); err != nil {
		return err
	}
	if err := w.exec(ctx, strings.Join(plan.tables, ";\n"), nil); err != nil {
		return fmt.Errorf("rsqlite: restore %s: create tables: %w", name, err)
	}
	var done int64
	for _, t := range plan.copies {
		err := copyRows(ctx, src, t, func(sql string, args []command.Arg, rows int64) error {
			if err := w.exec(ctx, sql, args); err != nil {
				return err
			}
			done += rows
			if progress != nil {
				progress(done, plan.totalRows)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("rsqlite: restore %s: table %s: %w", name, t.name, err)
		}
	}
	if len(plan.rest) > 0 {
		if err := w.exec(ctx, strings.Join(plan.rest, ";\n"), nil); err != nil {
			return fmt.Errorf("rsqlite: restore %s: indexes, views and triggers: %w", name, err)
		}
	}
	if err := w.exec(ctx, plan.finish, plan.finishArgs); err != nil {
		return fmt.Errorf("rsqlite: restore %s: finish: %w", name, err)
	}
	return nil
}

// restorePlan is what to replay, in order.
type restorePlan struct {
	tables     []string // CREATE TABLE statements
	copies     []tableCopy
	rest       []string // CREATE INDEX / VIEW / TRIGGER
	finish     string   // sqlite_sequence and pragmas
	finishArgs []command.Arg
	totalRows  int64
}

type tableCopy struct {
	name    string
	columns []string // stored columns, quoted
	rowid   bool     // copy the rowid explicitly (a rowid table without an INTEGER PRIMARY KEY alias)
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func planRestore(ctx context.Context, src *sql.DB) (*restorePlan, error) {
	p := &restorePlan{}
	rows, err := src.QueryContext(ctx, `SELECT type, name, sql FROM sqlite_schema
		WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_rsqlite_%' ORDER BY rowid`)
	if err != nil {
		return nil, err
	}
	var tables []string
	for rows.Next() {
		var typ, name, ddl string
		if err := rows.Scan(&typ, &name, &ddl); err != nil {
			rows.Close()
			return nil, err
		}
		switch {
		case typ == "table" && strings.HasPrefix(strings.ToUpper(strings.TrimSpace(ddl)), "CREATE VIRTUAL"):
			rows.Close()
			return nil, fmt.Errorf("rsqlite: cannot restore virtual table %s", name)
		case typ == "table":
			p.tables = append(p.tables, ddl)
			tables = append(tables, name)
		default:
			p.rest = append(p.rest, ddl)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, name := range tables {
		t, err := planTable(ctx, src, name)
		if err != nil {
			return nil, err
		}
		var n int64
		if err := src.QueryRowContext(ctx, "SELECT count(*) FROM "+quoteIdent(name)).Scan(&n); err != nil {
			return nil, err
		}
		p.totalRows += n
		p.copies = append(p.copies, t)
	}
	var finish []string
	var hasSeq bool
	if err := src.QueryRowContext(ctx, "SELECT count(*) > 0 FROM sqlite_schema WHERE name = 'sqlite_sequence'").Scan(&hasSeq); err != nil {
		return nil, fmt.Errorf("read the schema: %w", err)
	}
	if hasSeq {
		seqRows, err := src.QueryContext(ctx, "SELECT name, seq FROM sqlite_sequence")
		if err != nil {
			return nil, err
		}
		for seqRows.Next() {
			var name string
			var seq int64
			if err := seqRows.Scan(&name, &seq); err != nil {
				seqRows.Close()
				return nil, fmt.Errorf("read sqlite_sequence: %w", err)
			}
			finish = append(finish, "INSERT INTO sqlite_sequence(name, seq) VALUES (?, ?)")
			p.finishArgs = append(p.finishArgs, command.Arg{Ordinal: len(p.finishArgs) + 1, Value: name},
				command.Arg{Ordinal: len(p.finishArgs) + 2, Value: seq})
		}
		err = seqRows.Err()
		seqRows.Close()
		if err != nil {
			return nil, fmt.Errorf("read sqlite_sequence: %w", err)
		}
		finish = append([]string{"DELETE FROM sqlite_sequence"}, finish...)
	}
	var userVersion, appID int64
	if err := src.QueryRowContext(ctx, "SELECT user_version, application_id FROM pragma_user_version, pragma_application_id").Scan(&userVersion, &appID); err != nil {
		return nil, fmt.Errorf("read user_version and application_id: %w", err)
	}
	finish = append(finish, fmt.Sprintf("PRAGMA user_version = %d", userVersion), fmt.Sprintf("PRAGMA application_id = %d", appID))
	p.finish = strings.Join(finish, ";\n")
	return p, nil
}

func planTable(ctx context.Context, src *sql.DB, name string) (tableCopy, error) {
	t := tableCopy{name: name}
	rows, err := src.QueryContext(ctx, "SELECT name, type, pk, hidden FROM pragma_table_xinfo(?)", name)
	if err != nil {
		return t, err
	}
	pks, aliased := 0, false
	for rows.Next() {
		var col, typ string
		var pk, hidden int
		if err := rows.Scan(&col, &typ, &pk, &hidden); err != nil {
			rows.Close()
			return t, err
		}
		if pk > 0 {
			pks++
			aliased = strings.EqualFold(typ, "INTEGER")
		}
		if hidden == 0 { // generated columns are computed again
			t.columns = append(t.columns, quoteIdent(col))
		}
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return t, err
	}
	var withoutRowid bool
	if err := src.QueryRowContext(ctx, "SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?", name).Scan(&withoutRowid); err != nil {
		return t, fmt.Errorf("read the layout of table %s: %w", name, err)
	}
	t.rowid = !withoutRowid && !(pks == 1 && aliased)
	return t, nil
}

// copyRows reads a table in rowid order and calls emit with multi-row
// INSERTs of bounded size. Columns are read as +"col" so go-sqlite3 does not
// turn DATETIME text into time.Time (which would re-format it).
func copyRows(ctx context.Context, src *sql.DB, t tableCopy, emit func(string, []command.Arg, int64) error) error {
	cols := append([]string(nil), t.columns...)
	sel := make([]string, len(cols))
	for i, c := range cols {
		sel[i] = "+" + c
	}
	if t.rowid {
		cols = append([]string{"rowid"}, cols...)
		sel = append([]string{"rowid"}, sel...)
	}
	order := ""
	if t.rowid || len(t.columns) > 0 {
		order = " ORDER BY 1"
	}
	rows, err := src.QueryContext(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM "+quoteIdent(t.name)+order)
	if err != nil {
		return err
	}
	defer rows.Close()
	const maxArgs, maxBytes = 30000, 8 << 20
	prefix := "INSERT INTO " + quoteIdent(t.name) + "(" + strings.Join(cols, ", ") + ") VALUES "
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
	var args []command.Arg
	var tuples []string
	size := 0
	flush := func() error {
		if len(tuples) == 0 {
			return nil
		}
		err := emit(prefix+strings.Join(tuples, ", "), args, int64(len(tuples)))
		args, tuples, size = nil, nil, 0
		return err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		for _, v := range vals {
			if b, ok := v.([]byte); ok {
				v = append([]byte{}, b...) // Scan reuses its buffers
				size += len(b)
			} else if s, ok := v.(string); ok {
				size += len(s)
			}
			args = append(args, command.Arg{Ordinal: len(args) + 1, Value: v})
		}
		tuples = append(tuples, tuple)
		if len(args)+len(cols) > maxArgs || size > maxBytes {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return flush()
}

// restoreWriter proposes the restore's writes with one client identity, so
// a retried batch is applied once.
type restoreWriter struct {
	db       *DB
	clientID uint64
	seq      uint64
}

func (w *restoreWriter) init() error {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	w.clientID = binary.LittleEndian.Uint64(b[:]) | 1
	return nil
}

func (w *restoreWriter) exec(ctx context.Context, sqlText string, args []command.Arg) error {
	w.seq++
	var b [8]byte
	rand.Read(b[:])
	cmd := &command.Command{
		Kind: command.KindExec, ClientID: w.clientID, Seq: w.seq,
		Time: time.Now().UnixMilli(), Seed: binary.LittleEndian.Uint64(b[:]), Engine: statemachine.Engine,
		Statements: []command.Statement{{SQL: sqlText, Args: args}},
	}
	enc, err := command.Encode(nil, cmd)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	data, err := w.db.Propose(pctx, enc)
	if err != nil {
		return err
	}
	res, err := command.DecodeResult(data)
	if err != nil {
		return err
	}
	if res.Err != nil {
		return res.Err
	}
	return nil
}

// serveRestore is POST /restore?db=NAME with the SQLite file as the body.
// The answer streams progress lines and ends with "ok N rows" or
// "error: ...": the status line is sent before the load starts.
func (n *Node) serveRestore(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("db")
	if err := ValidateName(name); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	tmp, err := os.CreateTemp(filepath.Join(n.cfg.Dir, ".rsqlite"), "restore-*.db")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, r.Body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		http.Error(w, "receiving the file: "+err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	say := func(format string, a ...any) {
		fmt.Fprintf(w, format+"\n", a...)
		if flusher != nil {
			flusher.Flush()
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Hour)
	defer cancel()
	var total int64
	lastReport := time.Time{}
	err = n.Restore(ctx, name, tmp.Name(), func(done, all int64) {
		total = all
		if time.Since(lastReport) > 500*time.Millisecond || done == all {
			lastReport = time.Now()
			say("progress %d/%d rows", done, all)
		}
	})
	if err != nil {
		say("error: %v", err)
		return
	}
	say("ok %d rows", total)
}
