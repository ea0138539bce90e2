package faulttest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// oddQueries are texts that plain go-sqlite3 answers with empty rows or an
// error. Each runs through Query, Prepare+Query and Exec in a child
// process, so that a crash (a segfault in cgo cannot be recovered) fails
// only its own case, with its output, instead of killing the test binary.
var oddQueries = []string{
	"",
	" ",
	";",
	"-- nothing",
	"/* nothing */",
	"\x00",
	"\x00INSERT INTO t(v) VALUES (1)",
	"SELECT 1\x00; INSERT INTO t(v) VALUES (1)",
	"INSERT INTO t(v) VALUES (1) RETURNING id\x00",
	"SELECT '\xff\xfe'",
	"SELECT 1; SELECT 2",
	"SELECT 1; -- trailing",
}

// TestBadInputQueryNeverCrashes: odd statement texts through Query and
// Prepare give rows or a clear error, never a crash.
func TestBadInputQueryNeverCrashes(t *testing.T) {
	if os.Getenv("RSQLITE_FAULTTEST_CHILD") != "" {
		t.Skip("child process")
	}
	for _, mode := range []string{"query", "prepare", "exec"} {
		for _, q := range oddQueries {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestBadInputQueryChild$", "-test.v")
			cmd.Env = append(os.Environ(), "RSQLITE_FAULTTEST_CHILD="+mode, "RSQLITE_FAULTTEST_QUERY="+strings.ReplaceAll(fmt.Sprintf("%q", q), "\x00", ""))
			out, err := cmd.CombinedOutput()
			cancel()
			if err != nil {
				lines := strings.Split(string(out), "\n")
				t.Errorf("%s %q crashed the process (%v); reproduce with: RSQLITE_FAULTTEST_CHILD=%s RSQLITE_FAULTTEST_QUERY=%q go test -count=1 -run '^TestBadInputQueryChild$' ./internal/faulttest/\n%s",
					mode, q, err, mode, fmt.Sprintf("%q", q), strings.Join(lines[:min(len(lines), 14)], "\n"))
			}
		}
	}
}

// TestBadInputQueryChild is the child of TestBadInputQueryNeverCrashes: it
// runs one text (Go-quoted in RSQLITE_FAULTTEST_QUERY) on a single-node
// database.
func TestBadInputQueryChild(t *testing.T) {
	mode := os.Getenv("RSQLITE_FAULTTEST_CHILD")
	if mode == "" {
		t.Skip("run by TestBadInputQueryNeverCrashes")
	}
	var q string
	if _, err := fmt.Sscanf(os.Getenv("RSQLITE_FAULTTEST_QUERY"), "%q", &q); err != nil {
		t.Fatalf("RSQLITE_FAULTTEST_QUERY: %v", err)
	}
	db, err := sql.Open("rsqlite", "file:"+filepath.Join(t.TempDir(), "child.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v)"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := ctxFor(20 * time.Second)
	defer cancel()
	var rows *sql.Rows
	switch mode {
	case "query":
		rows, err = db.QueryContext(ctx, q)
	case "prepare":
		var st *sql.Stmt
		if st, err = db.PrepareContext(ctx, q); err == nil {
			defer st.Close()
			rows, err = st.QueryContext(ctx)
		}
	case "exec":
		_, err = db.ExecContext(ctx, q)
	}
	n := 0
	if rows != nil {
		for rows.Next() {
			n++
		}
		if rerr := rows.Err(); err == nil {
			err = rerr
		}
		rows.Close()
	}
	t.Logf("%s %q: %d rows, err %v", mode, q, n, err)
}
