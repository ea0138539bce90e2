package clustertest

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"testing"

	_ "github.com/mattn/go-sqlite3" // to read files directly

	"github.com/rsqlite/rsqlite/cluster"
	"github.com/rsqlite/rsqlite/statemachine"
)

// Dump is a logical dump of a SQLite file, read with plain go-sqlite3: the
// schema, then every table's rows in rowid order, prefixed with its SHA-256.
// The applied-index row is left out: a node may have applied a trailing
// no-op entry the others have not.
func Dump(t testing.TB, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite3", statemachine.FileURI(path, url.Values{"mode": {"ro"}}))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var b strings.Builder
	rows, err := db.Query(`SELECT type, name, coalesce(sql, '') FROM sqlite_schema ORDER BY type, name`)
	if err != nil {
		t.Fatalf("dump %s: %v", path, err)
	}
	var tables []string
	for rows.Next() {
		var typ, name, ddl string
		if err := rows.Scan(&typ, &name, &ddl); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %s: %s\n", typ, name, ddl)
		if typ == "table" && name != "_rsqlite_meta" {
			tables = append(tables, name)
		}
	}
	rows.Close()
	for _, tbl := range tables {
		r, err := db.Query(fmt.Sprintf(`SELECT * FROM "%s" ORDER BY rowid`, strings.ReplaceAll(tbl, `"`, `""`)))
		if err != nil {
			t.Fatalf("dump %s.%s: %v", path, tbl, err)
		}
		cols, _ := r.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for r.Next() {
			if err := r.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s: %#v\n", tbl, vals)
		}
		r.Close()
	}
	sum := sha256.Sum256([]byte(b.String()))
	return "sha256 " + hex.EncodeToString(sum[:]) + "\n" + b.String()
}

// SmallSnapshots makes nodes started by this test compact their raft logs
// after n entries, so a lagging replica must catch up from a snapshot.
// Tests that use it must not run in parallel.
func SmallSnapshots(t testing.TB, n uint64) {
	old := cluster.Defaults
	cluster.Defaults.SnapshotEntries = n
	cluster.Defaults.CompactionOverhead = n / 4
	t.Cleanup(func() { cluster.Defaults = old })
}
