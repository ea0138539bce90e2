package clustertest

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	_ "github.com/mattn/go-sqlite3" // to read files directly

	"github.com/rsqlite/rsqlite/cluster"
	"github.com/rsqlite/rsqlite/statemachine"
)

// Dump is a logical dump of a SQLite file, read with plain go-sqlite3
// (DumpDB), prefixed with its SHA-256. The applied-index table is left
// out: a node may have applied a trailing no-op entry the others have not.
func Dump(t testing.TB, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite3", statemachine.FileURI(path, url.Values{"mode": {"ro"}}))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	d := DumpDB(t, db, func(name string) bool { return name == "_rsqlite_meta" })
	sum := sha256.Sum256([]byte(d))
	return "sha256 " + hex.EncodeToString(sum[:]) + "\n" + d
}

// DumpDB is a logical dump read through db: the schema, then every table's
// rows, sorted (so WITHOUT ROWID tables and any read order compare alike),
// leaving out the tables and schema objects skip names.
func DumpDB(t testing.TB, db *sql.DB, skip func(name string) bool) string {
	t.Helper()
	var b strings.Builder
	rows, err := db.Query(`SELECT type, name, coalesce(sql, '') FROM sqlite_schema ORDER BY type, name`)
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	var tables []string
	for rows.Next() {
		var typ, name, ddl string
		if err := rows.Scan(&typ, &name, &ddl); err != nil {
			t.Fatal(err)
		}
		if skip(name) {
			continue
		}
		fmt.Fprintf(&b, "%s %s: %s\n", typ, name, ddl)
		if typ == "table" {
			tables = append(tables, name)
		}
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tbl := range tables {
		r, err := db.Query(fmt.Sprintf(`SELECT * FROM "%s"`, strings.ReplaceAll(tbl, `"`, `""`)))
		if err != nil {
			t.Fatalf("dump %s: %v", tbl, err)
		}
		cols, _ := r.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		var lines []string
		for r.Next() {
			if err := r.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, fmt.Sprintf("%s: %#v\n", tbl, vals))
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		slices.Sort(lines)
		for _, l := range lines {
			b.WriteString(l)
		}
	}
	return b.String()
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
