package detvfs

import (
	"database/sql"
	"fmt"
	"testing"
)

// BenchmarkInsertRandom compares INSERT ... random(), randomblob(16) through
// the shim (C overrides, Set before each statement) with a plain "unix"
// connection (SQLite's built-ins): one row per statement, a 1,000-row
// INSERT ... SELECT, and a 100k-row SELECT that isolates the function cost.
func BenchmarkInsertRandom(b *testing.B) {
	const bulk = `INSERT INTO t(r, b) SELECT random(), randomblob(16) FROM
		(WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<1000) SELECT i FROM c)`
	for _, mode := range []string{"plain", "shim"} {
		setup := func(b *testing.B) (*VFS, *sql.DB) {
			var v *VFS
			var db *sql.DB
			if mode == "shim" {
				v, db = openShim(b, "&_stmt_cache_size=8")
			} else {
				db = openDSN(b, fmt.Sprintf("file:%s/b.db?vfs=unix&_journal_mode=WAL&_stmt_cache_size=8", b.TempDir()))
			}
			mustExec(b, db, `CREATE TABLE t(id INTEGER PRIMARY KEY, r INTEGER, b BLOB)`)
			return v, db
		}
		b.Run(mode+"/row", func(b *testing.B) {
			v, db := setup(b)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if v != nil {
					v.Set(int64(i), uint64(i))
				}
				if _, err := db.Exec(`INSERT INTO t(r, b) VALUES(random(), randomblob(16))`); err != nil {
					b.Fatal(err)
				}
			}
		})
		// CPU only: the function cost without the write path.
		b.Run(mode+"/select100k", func(b *testing.B) {
			v, db := setup(b)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if v != nil {
					v.Set(int64(i), uint64(i))
				}
				_ = queryInt(b, db, `SELECT sum(length(randomblob(16)) + (random() & 1)) FROM
					(WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<100000) SELECT i FROM c)`)
			}
		})
		b.Run(mode+"/bulk1000", func(b *testing.B) {
			v, db := setup(b)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if v != nil {
					v.Set(int64(i), uint64(i))
				}
				if _, err := db.Exec(bulk); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
