package detvfs

import (
	"database/sql"
	"errors"
	"strings"
	"testing"

	sqlite3 "github.com/mattn/go-sqlite3"
)

func guardSetup(t *testing.T, extra string) (*VFS, *sql.DB) {
	t.Helper()
	v, db := openShim(t, extra)
	// Guard off (the default): bookkeeping and fixtures are never denied.
	for _, q := range []string{
		`CREATE TABLE _rsqlite_meta(k TEXT PRIMARY KEY, v)`,
		`INSERT INTO _rsqlite_meta VALUES('applied', 0)`,
		`CREATE INDEX _rsqlite_meta_v ON _rsqlite_meta(v)`,
		`CREATE TRIGGER _rsqlite_meta_tr AFTER UPDATE ON _rsqlite_meta BEGIN SELECT 1; END`,
		`CREATE TABLE t(a, b)`,
		`CREATE TABLE spied(a)`,
		`CREATE TRIGGER spy AFTER INSERT ON spied BEGIN INSERT INTO _rsqlite_meta VALUES('spy', new.a); END`,
		`ATTACH ':memory:' AS aux`,
		`CREATE TEMP TABLE tmp0(x)`,
		`CREATE INDEX temp.tmp0_x ON tmp0(x)`,
		`CREATE TEMP VIEW tv0 AS SELECT 1`,
		`CREATE TEMP TRIGGER ttr0 AFTER INSERT ON tmp0 BEGIN SELECT 1; END`,
	} {
		mustExec(t, db, q)
	}
	return v, db
}

func TestGuardDenies(t *testing.T) {
	v, db := guardSetup(t, "")
	v.SetGuard(true)
	if d := v.LastDenied(); d != "" {
		t.Fatalf("LastDenied before anything = %q", d)
	}
	for _, c := range []struct{ q, why string }{
		{`ATTACH ':memory:' AS aux2`, "ATTACH"},
		{`ATTACH DATABASE 'other.db' AS o`, "ATTACH"},
		{`DETACH aux`, "DETACH"},
		{`BEGIN`, "BEGIN"},
		{`BEGIN IMMEDIATE`, "BEGIN"},
		{`COMMIT`, "COMMIT"},
		{`END`, "COMMIT"},
		{`ROLLBACK`, "ROLLBACK"},
		{`SAVEPOINT sp1`, "SAVEPOINT sp1"},
		{`RELEASE sp1`, "RELEASE sp1"},
		{`RELEASE SAVEPOINT sp1`, "RELEASE sp1"},
		{`ROLLBACK TO sp1`, "ROLLBACK TO sp1"},
		{`CREATE TEMP TABLE tt(x)`, "CREATE TEMP object"},
		{`CREATE TABLE temp.tt(x)`, "CREATE TEMP TABLE tt"},
		{`CREATE TABLE TEMP.tt AS SELECT 1`, "CREATE TEMP TABLE tt"},
		{`CREATE VIEW temp.tvx AS SELECT 1`, "CREATE TEMP VIEW tvx"},
		{`CREATE TRIGGER temp.ttx AFTER INSERT ON t BEGIN SELECT 1; END`, "CREATE TEMP TRIGGER ttx"},
		{`CREATE TRIGGER TEMP.ttx AFTER INSERT ON main.t BEGIN SELECT 1; END`, "CREATE TEMP TRIGGER ttx"},
		{`CREATE TRIGGER ttx2 AFTER INSERT ON tmp0 BEGIN SELECT 1; END`, "CREATE TEMP TRIGGER ttx2"},
		{`CREATE VIRTUAL TABLE temp.vt USING rtree(id, x0, x1)`, "CREATE TEMP VIRTUAL TABLE vt"},
		{`CREATE VIRTUAL TABLE temp.ft USING fts3(body)`, "CREATE TEMP VIRTUAL TABLE ft"},
		{`CREATE INDEX tmp0_y ON tmp0(x)`, "CREATE TEMP object"},
		{`DROP TABLE temp.tmp0`, "DROP TEMP TABLE tmp0"},
		{`CREATE TEMPORARY VIEW tv AS SELECT 1`, "CREATE TEMP object"},
		{`CREATE TEMP TRIGGER ttr AFTER INSERT ON t BEGIN SELECT 1; END`, "CREATE TEMP TRIGGER ttr"},
		{`CREATE INDEX temp.ti ON tmp0(x)`, "CREATE TEMP object"},
		{`DROP TABLE tmp0`, "DROP TEMP TABLE tmp0"},
		{`DROP INDEX tmp0_x`, "DROP TEMP INDEX tmp0_x"},
		{`DROP VIEW tv0`, "DROP TEMP VIEW tv0"},
		{`DROP TRIGGER ttr0`, "DROP TEMP TRIGGER ttr0"},
		{`SELECT load_extension('nope')`, "FUNCTION load_extension"},
		{`SELECT total_changes()`, "FUNCTION total_changes"},
		{`INSERT INTO t VALUES(TOTAL_CHANGES(), 1)`, "FUNCTION total_changes"},
		{`PRAGMA foreign_keys=ON`, "PRAGMA foreign_keys"},
		{`PRAGMA foreign_keys`, "PRAGMA foreign_keys"},
		{`PRAGMA Recursive_Triggers=1`, "PRAGMA Recursive_Triggers"},
		{`PRAGMA optimize`, "PRAGMA optimize"},
		{`PRAGMA page_size=8192`, "PRAGMA page_size"},
		{`PRAGMA journal_mode=DELETE`, "PRAGMA journal_mode"},
		{`PRAGMA main.cache_size=10`, "PRAGMA cache_size"},
		{`PRAGMA trusted_schema=ON`, "PRAGMA trusted_schema"},
		{`PRAGMA writable_schema=ON`, "PRAGMA writable_schema"},
		{`PRAGMA no_such_pragma`, "PRAGMA no_such_pragma"},
		{`SELECT * FROM pragma_foreign_keys`, "PRAGMA foreign_keys"},
		{`INSERT INTO _rsqlite_meta VALUES('x', 1)`, "write to _rsqlite_meta"},
		{`INSERT OR REPLACE INTO main._rsqlite_meta VALUES('x', 1)`, "write to _rsqlite_meta"},
		{`REPLACE INTO _RSQLITE_META VALUES('x', 1)`, "write to _rsqlite_meta"},
		{`UPDATE _rsqlite_meta SET v = 2`, "write to _rsqlite_meta"},
		{`DELETE FROM _rsqlite_meta`, "write to _rsqlite_meta"},
		{`CREATE TABLE _rsqlite_new(x)`, "write to _rsqlite_new"},
		{`CREATE TABLE _RSQLITE_New(x)`, "write to _RSQLITE_New"},
		{`CREATE TABLE IF NOT EXISTS _rsqlite_meta(x)`, "write to _rsqlite_meta"},
		{`CREATE TABLE _rsqlite_copy AS SELECT * FROM t`, "write to _rsqlite_copy"},
		{`DROP TABLE _rsqlite_meta`, "write to _rsqlite_meta"},
		{`ALTER TABLE _rsqlite_meta ADD COLUMN z`, "write to _rsqlite_meta"},
		{`ALTER TABLE _rsqlite_meta RENAME TO foo`, "write to _rsqlite_meta"},
		{`ALTER TABLE _rsqlite_meta RENAME COLUMN v TO w`, "write to _rsqlite_meta"},
		{`CREATE INDEX mi ON _rsqlite_meta(v)`, "write to _rsqlite_meta"},
		{`CREATE INDEX _rsqlite_i ON t(a)`, "write to _rsqlite_i"},
		{`DROP INDEX _rsqlite_meta_v`, "write to _rsqlite_meta"},
		{`CREATE TRIGGER tr1 AFTER INSERT ON _rsqlite_meta BEGIN SELECT 1; END`, "write to _rsqlite_meta"},
		{`DROP TRIGGER _rsqlite_meta_tr`, "write to _rsqlite_meta"},
		{`CREATE VIEW _rsqlite_v AS SELECT 1`, "write to _rsqlite_v"},
		{`INSERT INTO spied VALUES(1)`, "write to _rsqlite_meta"}, // via trigger
		{`WITH x AS (SELECT 1) INSERT INTO _rsqlite_meta SELECT 'y', 1 FROM x`, "write to _rsqlite_meta"},
	} {
		v.SetGuard(true) // clears LastDenied
		_, err := db.Exec(c.q)
		if strings.HasPrefix(c.why, "FUNCTION ") {
			// SQLite reports a denied SQLITE_FUNCTION as SQLITE_ERROR
			// ("not authorized to use function: X"), not SQLITE_AUTH.
			var se sqlite3.Error
			if !errors.As(err, &se) || se.Code != sqlite3.ErrError ||
				!strings.Contains(err.Error(), "not authorized to use function") {
				t.Errorf("%s: err = %v, want SQLITE_ERROR not authorized", c.q, err)
				continue
			}
		} else if !isAuth(err) {
			t.Errorf("%s: err = %v, want SQLITE_AUTH", c.q, err)
			continue
		}
		if got := v.LastDenied(); got != c.why {
			t.Errorf("%s: LastDenied = %q, want %q", c.q, got, c.why)
		}
	}
	// Nothing leaked through.
	v.SetGuard(false)
	if n := queryInt(t, db, `SELECT count(*) FROM _rsqlite_meta`); n != 1 {
		t.Fatalf("_rsqlite_meta has %d rows", n)
	}
	if n := queryInt(t, db, `SELECT count(*) FROM spied`); n != 0 {
		t.Fatalf("spied has %d rows", n)
	}
}

func TestGuardAllows(t *testing.T) {
	v, db := guardSetup(t, "")
	v.SetGuard(true)
	for _, q := range []string{
		`CREATE TABLE t2(a, b)`,
		`INSERT INTO t2 VALUES(1, 2), (3, 4)`,
		`UPDATE t2 SET b = b + 1 WHERE a = 1`,
		`DELETE FROM t2 WHERE a = 3`,
		`SELECT * FROM t2`,
		`SELECT * FROM _rsqlite_meta`,
		`SELECT * FROM sqlite_schema`,
		`PRAGMA user_version=3`,
		`PRAGMA user_version`,
		`PRAGMA application_id=7`,
		`PRAGMA table_info(t2)`,
		`PRAGMA TABLE_INFO(t2)`,
		`PRAGMA main.table_xinfo(t2)`,
		`SELECT * FROM pragma_table_info('t2')`,
		`PRAGMA index_list(t2)`,
		`PRAGMA page_size`,
		`PRAGMA page_count`,
		`PRAGMA integrity_check`,
		`PRAGMA quick_check`,
		`PRAGMA foreign_key_check`,
		`PRAGMA data_version`,
		`PRAGMA compile_options`,
		`PRAGMA function_list`,
		`CREATE INDEX t2a ON t2(a)`,
		`CREATE VIEW v2 AS SELECT a FROM t2`,
		`CREATE TRIGGER t2tr AFTER INSERT ON t2 BEGIN UPDATE t2 SET b = b + 1 WHERE rowid = new.rowid; END`,
		`INSERT INTO t2 VALUES(5, 6)`,
		`DROP VIEW v2`,
		`DROP TRIGGER t2tr`,
		`DROP INDEX t2a`,
		`ALTER TABLE t2 ADD COLUMN c`,
		`ALTER TABLE t2 RENAME TO t3`,
		`SELECT changes(), last_insert_rowid(), random(), randomblob(4), datetime('now')`,
		`ANALYZE`,
		`REINDEX`,
		`CREATE TABLE t4 AS SELECT * FROM t3`,
		`DROP TABLE t4`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
	if d := v.LastDenied(); d != "" {
		t.Errorf("LastDenied = %q after allowed statements", d)
	}
	if n := queryInt(t, db, `PRAGMA user_version`); n != 3 {
		t.Errorf("user_version = %d", n)
	}
	// A denial is remembered until the next SetGuard(true).
	if _, err := db.Exec(`ATTACH ':memory:' AS x`); !isAuth(err) {
		t.Fatalf("ATTACH: %v", err)
	}
	if _, err := db.Exec(`SELECT 1`); err != nil {
		t.Fatal(err)
	}
	if d := v.LastDenied(); d != "ATTACH" {
		t.Fatalf("LastDenied = %q", d)
	}
	v.SetGuard(true)
	if d := v.LastDenied(); d != "" {
		t.Fatalf("LastDenied after SetGuard(true) = %q", d)
	}

	// Guard off: bookkeeping works, including transactions.
	v.SetGuard(false)
	mustExec(t, db, `INSERT INTO _rsqlite_meta VALUES('z', 1)`)
	mustExec(t, db, `UPDATE _rsqlite_meta SET v = 2 WHERE k = 'z'`)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`SAVEPOINT e1`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`RELEASE e1`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// Statements prepared with the guard off must not run unchecked with it on:
// an explicit *sql.Stmt and go-sqlite3's statement cache.
func TestGuardExpiresPrepared(t *testing.T) {
	v, db := guardSetup(t, "&_stmt_cache_size=16")
	stmt, err := db.Prepare(`INSERT OR REPLACE INTO _rsqlite_meta VALUES(?, ?)`)
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	const cached = `UPDATE _rsqlite_meta SET v = v + 1 WHERE k = 'applied'`
	for i := 0; i < 3; i++ {
		v.SetGuard(false)
		if _, err := stmt.Exec("a", i); err != nil {
			t.Fatalf("guard off: %v", err)
		}
		mustExec(t, db, cached)
		mustExec(t, db, `INSERT INTO t VALUES(1, 2)`)

		v.SetGuard(true)
		if _, err := stmt.Exec("b", i); !isAuth(err) {
			t.Fatalf("prepared stmt with guard on: %v", err)
		}
		if d := v.LastDenied(); d != "write to _rsqlite_meta" {
			t.Fatalf("LastDenied = %q", d)
		}
		if _, err := db.Exec(cached); !isAuth(err) {
			t.Fatalf("cached stmt with guard on: %v", err)
		}
		mustExec(t, db, `INSERT INTO t VALUES(1, 2)`) // allowed, re-prepared fine
	}
	v.SetGuard(false)
	if n := queryInt(t, db, `SELECT v FROM _rsqlite_meta WHERE k = 'applied'`); n != 3 {
		t.Fatalf("applied = %d, want 3", n)
	}
	if n := queryInt(t, db, `SELECT count(*) FROM _rsqlite_meta WHERE k = 'b'`); n != 0 {
		t.Fatalf("guarded write leaked")
	}
}

// With TrustPrepared, statements prepared with the guard off keep running
// (the owner promises not to mix them with guarded work), and statements
// prepared with the guard on are still refused.
func TestGuardTrustPrepared(t *testing.T) {
	v, db := guardSetup(t, "")
	v.TrustPrepared()
	stmt, err := db.Prepare(`UPDATE _rsqlite_meta SET v = v + 1 WHERE k = 'applied'`)
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	for i := 0; i < 3; i++ {
		v.SetGuard(true)
		if _, err := db.Exec(`DELETE FROM _rsqlite_meta`); !isAuth(err) {
			t.Fatalf("fresh statement with guard on: %v", err)
		}
		v.SetGuard(false)
		if _, err := stmt.Exec(); err != nil {
			t.Fatalf("bookkeeping statement after a guarded one: %v", err)
		}
	}
	if n := queryInt(t, db, `SELECT v FROM _rsqlite_meta WHERE k = 'applied'`); n != 3 {
		t.Fatalf("applied = %d, want 3", n)
	}
}
