package rsqlite_test

// The standard Go SQL tools, unchanged, on a 3-node cluster: golang-migrate
// (its sqlite3 database driver over an *sql.DB opened with "rsqlite"),
// pressly/goose v3 (SQL and Go migrations) and sqlx. Every state a tool
// leaves is checked from a node other than the one that wrote it.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-migrate/migrate/v4"
	migratesqlite3 "github.com/golang-migrate/migrate/v4/database/sqlite3"
	_ "github.com/golang-migrate/migrate/v4/source/file"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"

	"github.com/rsqlite/rsqlite/internal/clustertest"
)

// toolsOpen opens a *sql.DB of its own on node i (tools close what they are
// given); the cluster's node is shared.
func toolsOpen(t *testing.T, c *clustertest.Cluster, i int, name string) *sql.DB {
	t.Helper()
	db, err := sql.Open("rsqlite", c.DSN(i, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// toolsSchema lists the user tables, indexes, triggers and views of db.
func toolsSchema(t *testing.T, db *sql.DB) string {
	t.Helper()
	rows, err := db.Query(`SELECT type || ' ' || name FROM sqlite_schema
		WHERE name NOT LIKE 'sqlite_%' AND name NOT LIKE '\_rsqlite\_%' ESCAPE '\' ORDER BY type, name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, ", ")
}

func toolsQueryString(t *testing.T, db *sql.DB, q string, args ...any) string {
	t.Helper()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, v := range vals {
			parts = append(parts, toolsString(v))
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return strings.Join(out, ";")
}

// toolsString formats a scanned value on one line.
func toolsString(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return strings.Join(strings.Fields(string(v)), " ")
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	}
	return strings.Join(strings.Fields(fmt.Sprint(v)), " ")
}

// toolsSprint is fmt.Sprintln without the newline: always space-separated.
func toolsSprint(a ...any) string { return strings.TrimSuffix(fmt.Sprintln(a...), "\n") }

func newMigrate(t *testing.T, db *sql.DB) *migrate.Migrate {
	t.Helper()
	drv, err := migratesqlite3.WithInstance(db, &migratesqlite3.Config{})
	if err != nil {
		t.Fatalf("sqlite3.WithInstance on an rsqlite *sql.DB: %v", err)
	}
	src, err := iofs.New(os.DirFS(filepath.Join("testdata", "migrations", "migrate")), ".")
	if err != nil {
		t.Fatal(err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "sqlite3", drv)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func migrateVersion(t *testing.T, m *migrate.Migrate) (uint, bool, error) {
	t.Helper()
	v, dirty, err := m.Version()
	return v, dirty, err
}

func TestMigrateUpDownUpAcrossNodes(t *testing.T) {
	c := clustertest.New(t, 3)
	dbs := c.OpenAll("mig.db")

	// Up on node 0.
	m0 := newMigrate(t, toolsOpen(t, c, 0, "mig.db"))
	if err := m0.Up(); err != nil {
		t.Fatalf("Up: %v", err)
	}
	if err := m0.Up(); !errors.Is(err, migrate.ErrNoChange) {
		t.Fatalf("second Up: %v, want ErrNoChange", err)
	}
	const migrated = "index users_created_at, index users_email, index version_unique, table posts, table schema_migrations, table users, trigger posts_words"
	for _, i := range []int{1, 2} {
		if got := toolsSchema(t, dbs[i]); got != migrated {
			t.Fatalf("node %d schema after Up:\n got  %s\n want %s", i, got, migrated)
		}
		if got := toolsQueryString(t, dbs[i], "SELECT version, dirty FROM schema_migrations"); got != "3|0" {
			t.Fatalf("node %d schema_migrations = %q, want 3|0", i, got)
		}
		if got := toolsQueryString(t, dbs[i], "PRAGMA user_version"); got != "2" {
			t.Fatalf("node %d user_version = %q, want 2", i, got)
		}
		if got := toolsQueryString(t, dbs[i], "SELECT u.id, u.name, u.email, p.title, p.words FROM users u JOIN posts p ON p.user_id = u.id ORDER BY u.id"); got !=
			"1|alice|alice@example.com|hello from alice|3;2|bob|bob@example.com|hello from bob|3;3|carol|carol@example.com|hello from carol|3" {
			t.Fatalf("node %d data after Up: %s", i, got)
		}
		var created time.Time
		if err := dbs[i].QueryRow("SELECT created_at FROM users WHERE id = 1").Scan(&created); err != nil ||
			time.Since(created) > time.Hour || time.Since(created) < -time.Hour {
			t.Fatalf("node %d created_at = %v (%v)", i, created, err)
		}
	}
	// The same on every node, byte for byte.
	want := toolsQueryString(t, dbs[0], "SELECT id, name, email, created_at FROM users ORDER BY id")
	for _, i := range []int{1, 2} {
		if got := toolsQueryString(t, dbs[i], "SELECT id, name, email, created_at FROM users ORDER BY id"); got != want {
			t.Fatalf("node %d users differ:\n%s\n%s", i, got, want)
		}
	}

	// The tool sees the version from another node.
	m1 := newMigrate(t, toolsOpen(t, c, 1, "mig.db"))
	if v, dirty, err := migrateVersion(t, m1); err != nil || v != 3 || dirty {
		t.Fatalf("Version on node 1: %d %v %v", v, dirty, err)
	}
	// Step down one on node 1, check on node 2.
	if err := m1.Steps(-1); err != nil {
		t.Fatalf("Steps(-1): %v", err)
	}
	if got := toolsQueryString(t, dbs[2], "SELECT version, dirty FROM schema_migrations"); got != "2|0" {
		t.Fatalf("after Steps(-1): %q", got)
	}
	// All the way down on node 1.
	if err := m1.Down(); err != nil {
		t.Fatalf("Down: %v", err)
	}
	for _, i := range []int{0, 2} {
		if got := toolsSchema(t, dbs[i]); got != "index version_unique, table schema_migrations" {
			t.Fatalf("node %d schema after Down: %s", i, got)
		}
		if got := toolsQueryString(t, dbs[i], "SELECT count(*) FROM schema_migrations"); got != "0" {
			t.Fatalf("node %d schema_migrations rows after Down: %s", i, got)
		}
		if got := toolsQueryString(t, dbs[i], "PRAGMA user_version"); got != "0" {
			t.Fatalf("node %d user_version after Down: %s", i, got)
		}
	}
	if _, _, err := migrateVersion(t, m0); !errors.Is(err, migrate.ErrNilVersion) {
		t.Fatalf("Version on node 0 after Down: %v, want ErrNilVersion", err)
	}

	// Up again, from node 2 this time.
	m2 := newMigrate(t, toolsOpen(t, c, 2, "mig.db"))
	if err := m2.Up(); err != nil {
		t.Fatalf("Up again: %v", err)
	}
	for _, i := range []int{0, 1} {
		if got := toolsSchema(t, dbs[i]); got != migrated {
			t.Fatalf("node %d schema after Up again: %s", i, got)
		}
		if got := toolsQueryString(t, dbs[i], "SELECT version, dirty FROM schema_migrations"); got != "3|0" {
			t.Fatalf("node %d schema_migrations after Up again: %q", i, got)
		}
		if got := toolsQueryString(t, dbs[i], "SELECT count(*), sum(words) FROM posts"); got != "3|9" {
			t.Fatalf("node %d posts after Up again: %s", i, got)
		}
	}
	if v, dirty, err := migrateVersion(t, m0); err != nil || v != 3 || dirty {
		t.Fatalf("Version on node 0 after Up again: %d %v %v", v, dirty, err)
	}
	for _, m := range []*migrate.Migrate{m0, m1, m2} {
		if serr, derr := m.Close(); serr != nil || derr != nil {
			t.Fatalf("Close: %v %v", serr, derr)
		}
	}
}

// A failing migration leaves the database dirty at that version on every
// node, and nothing of the failed migration applied: golang-migrate runs each
// file in one transaction.
func TestMigrateFailureIsAtomicAndDirty(t *testing.T) {
	c := clustertest.New(t, 3)
	dbs := c.OpenAll("bad.db")
	dir := t.TempDir()
	files := map[string]string{
		"1_ok.up.sql":      "CREATE TABLE a(x INTEGER PRIMARY KEY); INSERT INTO a VALUES (1);",
		"1_ok.down.sql":    "DROP TABLE a;",
		"2_bad.up.sql":     "CREATE TABLE b(y); INSERT INTO a VALUES (2); INSERT INTO a VALUES (1);",
		"2_bad.down.sql":   "DROP TABLE b;",
		"3_never.up.sql":   "CREATE TABLE c(z);",
		"3_never.down.sql": "DROP TABLE c;",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	drv, err := migratesqlite3.WithInstance(toolsOpen(t, c, 0, "bad.db"), &migratesqlite3.Config{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := migrate.NewWithDatabaseInstance("file://"+filepath.ToSlash(dir), "sqlite3", drv)
	if err != nil {
		t.Fatal(err)
	}
	err = m.Up()
	if err == nil || !strings.Contains(err.Error(), "UNIQUE constraint failed: a.x") {
		t.Fatalf("Up with a failing migration: %v", err)
	}
	for _, i := range []int{1, 2} {
		if got := toolsSchema(t, dbs[i]); got != "index version_unique, table a, table schema_migrations" {
			t.Fatalf("node %d: schema after the failed migration: %s", i, got)
		}
		if got := toolsQueryString(t, dbs[i], "SELECT group_concat(x) FROM a"); got != "1" {
			t.Fatalf("node %d: rows of a: %s", i, got)
		}
		if got := toolsQueryString(t, dbs[i], "SELECT version, dirty FROM schema_migrations"); got != "2|1" {
			t.Fatalf("node %d: schema_migrations %s, want 2|1 (dirty)", i, got)
		}
	}
	m.Close()
}

func gooseGoMigration() *goose.Migration {
	return goose.NewGoMigration(2,
		&goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error {
			var ids []int64
			for _, owner := range []string{"ann", "ben", "cid"} {
				res, err := tx.ExecContext(ctx, "INSERT INTO accounts (owner, balance) VALUES (?, ?)", owner, 10*len(owner))
				if err != nil {
					return err
				}
				id, err := res.LastInsertId()
				if err != nil {
					return err
				}
				ids = append(ids, id)
			}
			if !reflect.DeepEqual(ids, []int64{1, 2, 3}) {
				return errors.New("go migration: LastInsertId in the transaction gave " + toolsSprint(ids))
			}
			// Reads its own writes, and the trigger's.
			if _, err := tx.ExecContext(ctx, "UPDATE accounts SET balance = balance + 1 WHERE owner = ?", "ann"); err != nil {
				return err
			}
			var sum, updated int
			if err := tx.QueryRowContext(ctx, "SELECT sum(balance), sum(updated) FROM accounts").Scan(&sum, &updated); err != nil {
				return err
			}
			if sum != 91 || updated != 1 {
				return errors.New("go migration: read in the transaction gave " + toolsSprint(sum, updated))
			}
			return nil
		}},
		&goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "DELETE FROM accounts")
			return err
		}},
	)
}

func newGoose(t *testing.T, db *sql.DB) *goose.Provider {
	t.Helper()
	p, err := goose.NewProvider(goose.DialectSQLite3, db, os.DirFS(filepath.Join("testdata", "migrations", "goose")),
		goose.WithGoMigrations(gooseGoMigration()), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func gooseStates(t *testing.T, p *goose.Provider) string {
	t.Helper()
	st, err := p.Status(context.Background())
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	var out []string
	for _, s := range st {
		out = append(out, toolsSprint(s.Source.Version)+" "+string(s.Source.Type)+" "+string(s.State))
	}
	return strings.Join(out, ", ")
}

func TestGooseUpStatusDownUpAcrossNodes(t *testing.T) {
	c := clustertest.New(t, 3)
	dbs := c.OpenAll("goose.db")
	ctx := ctxTimeout(t, 60*time.Second)
	p0 := newGoose(t, toolsOpen(t, c, 0, "goose.db"))
	p1 := newGoose(t, toolsOpen(t, c, 1, "goose.db"))
	p2 := newGoose(t, toolsOpen(t, c, 2, "goose.db"))

	if got := gooseStates(t, p1); got != "1 sql pending, 2 go pending, 3 sql pending, 4 sql pending" {
		t.Fatalf("Status before Up: %s", got)
	}
	res, err := p0.Up(ctx)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	if len(res) != 4 {
		t.Fatalf("Up applied %d migrations, want 4: %v", len(res), res)
	}
	const migrated = "index accounts_owner, table accounts, table goose_db_version, table ledger, trigger accounts_touch, trigger ledger_apply, view account_totals"
	for _, i := range []int{1, 2} {
		if got := toolsSchema(t, dbs[i]); got != migrated {
			t.Fatalf("node %d schema after Up:\n got  %s\n want %s", i, got, migrated)
		}
		if got := toolsQueryString(t, dbs[i], "SELECT owner, balance, entries FROM account_totals ORDER BY owner"); got != "ann|36|1;ben|35|1;cid|35|1" {
			t.Fatalf("node %d data after Up: %s", i, got)
		}
		if got := toolsQueryString(t, dbs[i], "SELECT sum(updated) FROM accounts"); got != "4" {
			t.Fatalf("node %d trigger counts: %s", i, got)
		}
		if got := toolsQueryString(t, dbs[i], "PRAGMA user_version"); got != "3" {
			t.Fatalf("node %d user_version: %s", i, got)
		}
		if got := toolsQueryString(t, dbs[i], "SELECT group_concat(version_id) FROM (SELECT version_id FROM goose_db_version WHERE is_applied ORDER BY id)"); got != "0,1,2,3,4" {
			t.Fatalf("node %d goose_db_version: %s", i, got)
		}
	}
	// Status and version through the tool on the other nodes.
	for _, p := range []*goose.Provider{p1, p2} {
		if v, err := p.GetDBVersion(ctx); err != nil || v != 4 {
			t.Fatalf("GetDBVersion: %d %v", v, err)
		}
		if got := gooseStates(t, p); got != "1 sql applied, 2 go applied, 3 sql applied, 4 sql applied" {
			t.Fatalf("Status after Up: %s", got)
		}
		if pending, err := p.HasPending(ctx); err != nil || pending {
			t.Fatalf("HasPending: %v %v", pending, err)
		}
	}
	// One down on node 1 (the no-transaction migration), then the rest.
	if r, err := p1.Down(ctx); err != nil || r.Source.Version != 4 {
		t.Fatalf("Down: %v %v", r, err)
	}
	if v, err := p2.GetDBVersion(ctx); err != nil || v != 3 {
		t.Fatalf("GetDBVersion on node 2 after Down: %d %v", v, err)
	}
	if _, err := p1.DownTo(ctx, 0); err != nil {
		t.Fatalf("DownTo(0): %v", err)
	}
	for _, i := range []int{0, 2} {
		if got := toolsSchema(t, dbs[i]); got != "table goose_db_version" {
			t.Fatalf("node %d schema after DownTo(0): %s", i, got)
		}
		if got := toolsQueryString(t, dbs[i], "PRAGMA user_version"); got != "0" {
			t.Fatalf("node %d user_version after DownTo(0): %s", i, got)
		}
	}
	if got := gooseStates(t, p0); got != "1 sql pending, 2 go pending, 3 sql pending, 4 sql pending" {
		t.Fatalf("Status on node 0 after DownTo(0): %s", got)
	}
	// Up again from node 2, one at a time first.
	if r, err := p2.UpByOne(ctx); err != nil || r.Source.Version != 1 {
		t.Fatalf("UpByOne: %v %v", r, err)
	}
	if _, err := p2.Up(ctx); err != nil {
		t.Fatalf("Up again: %v", err)
	}
	for _, i := range []int{0, 1} {
		if got := toolsSchema(t, dbs[i]); got != migrated {
			t.Fatalf("node %d schema after Up again: %s", i, got)
		}
		if got := toolsQueryString(t, dbs[i], "SELECT owner, balance, entries FROM account_totals ORDER BY owner"); got != "ann|36|1;ben|35|1;cid|35|1" {
			t.Fatalf("node %d data after Up again: %s", i, got)
		}
	}
	if v, err := p0.GetDBVersion(ctx); err != nil || v != 4 {
		t.Fatalf("GetDBVersion on node 0 after Up again: %d %v", v, err)
	}
	for _, p := range []*goose.Provider{p0, p1, p2} {
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

type sqlxUser struct {
	ID      int64          `db:"id"`
	Name    string         `db:"name"`
	Email   sql.NullString `db:"email"`
	Created time.Time      `db:"created"`
	Score   float64        `db:"score"`
	Active  bool           `db:"active"`
}

func TestSqlxOnCluster(t *testing.T) {
	c := clustertest.New(t, 3)
	c.OpenAll("sqlx.db")
	if bt := sqlx.BindType("rsqlite"); bt != sqlx.QUESTION {
		t.Fatalf("sqlx.BindType(rsqlite) = %d, want QUESTION", bt)
	}
	w, err := sqlx.Open("rsqlite", c.DSN(0, "sqlx.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r := sqlx.NewDb(toolsOpen(t, c, 1, "sqlx.db"), "rsqlite")
	if got := w.Rebind("SELECT ? WHERE ? = ?"); got != "SELECT ? WHERE ? = ?" {
		t.Fatalf("Rebind changed the query: %q", got)
	}
	if r.DriverName() != "rsqlite" || r.Rebind("?") != "?" {
		t.Fatalf("NewDb: %s %q", r.DriverName(), r.Rebind("?"))
	}

	w.MustExec(`CREATE TABLE users (
		id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, email TEXT,
		created DATETIME NOT NULL, score REAL NOT NULL DEFAULT 0, active BOOLEAN NOT NULL DEFAULT 1)`)
	t0 := time.Date(2024, 2, 29, 23, 59, 58, 123456789, time.UTC)
	// NamedExec with a struct.
	res, err := w.NamedExec(`INSERT INTO users (name, email, created, score, active)
		VALUES (:name, :email, :created, :score, :active)`,
		sqlxUser{Name: "ann", Email: sql.NullString{String: "ann@x", Valid: true}, Created: t0, Score: 1.5, Active: true})
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := res.LastInsertId(); id != 1 {
		t.Fatalf("LastInsertId = %d", id)
	}
	// NamedExec with a map.
	if _, err := w.NamedExec(`INSERT INTO users (name, email, created, score, active) VALUES (:name, :email, :created, :score, :active)`,
		map[string]any{"name": "ben", "email": nil, "created": t0.Add(time.Hour), "score": 2.25, "active": false}); err != nil {
		t.Fatal(err)
	}
	// NamedExec with a slice of structs (batch insert).
	if _, err := w.NamedExec(`INSERT INTO users (name, email, created, score, active) VALUES (:name, :email, :created, :score, :active)`,
		[]sqlxUser{
			{Name: "cid", Created: t0.Add(2 * time.Hour), Score: 3, Active: true},
			{Name: "dee", Email: sql.NullString{String: "dee@x", Valid: true}, Created: t0.Add(3 * time.Hour), Score: 4, Active: false},
		}); err != nil {
		t.Fatal(err)
	}

	// Get and Select on another node, into structs with db tags.
	var u sqlxUser
	if err := r.Get(&u, "SELECT * FROM users WHERE name = ?", "ann"); err != nil {
		t.Fatal(err)
	}
	want := sqlxUser{ID: 1, Name: "ann", Email: sql.NullString{String: "ann@x", Valid: true}, Created: t0, Score: 1.5, Active: true}
	if !reflect.DeepEqual(u, want) || u.Created.Location() != time.UTC {
		t.Fatalf("Get:\n got  %#v\n want %#v", u, want)
	}
	var all []sqlxUser
	if err := r.Select(&all, "SELECT * FROM users ORDER BY id"); err != nil {
		t.Fatal(err)
	}
	if len(all) != 4 || all[1].Email.Valid || all[1].Active || !all[1].Created.Equal(t0.Add(time.Hour)) || all[3].Email.String != "dee@x" {
		t.Fatalf("Select: %+v", all)
	}
	var missing sqlxUser
	if err := r.Get(&missing, "SELECT * FROM users WHERE id = ?", 99); !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("Get of nothing: %v, want sql.ErrNoRows", err)
	}
	var names []string
	if err := r.Select(&names, "SELECT name FROM users WHERE active ORDER BY name"); err != nil || strings.Join(names, ",") != "ann,cid" {
		t.Fatalf("Select into []string: %v %v", names, err)
	}

	// sqlx.In expands a slice; Rebind leaves "?" alone.
	q, args, err := sqlx.In("SELECT name FROM users WHERE id IN (?) AND score > ? ORDER BY id", []int{1, 2, 4}, 1.0)
	if err != nil {
		t.Fatal(err)
	}
	q = r.Rebind(q)
	if q != "SELECT name FROM users WHERE id IN (?, ?, ?) AND score > ? ORDER BY id" {
		t.Fatalf("In + Rebind: %q", q)
	}
	names = nil
	if err := r.Select(&names, q, args...); err != nil || strings.Join(names, ",") != "ann,ben,dee" {
		t.Fatalf("Select with In: %v %v", names, err)
	}
	// sqlx.Named + In for a write.
	q, args, err = sqlx.Named("UPDATE users SET score = score * 2 WHERE name IN (:names)", map[string]any{"names": []string{"ben", "cid"}})
	if err != nil {
		t.Fatal(err)
	}
	if q, args, err = sqlx.In(q, args...); err != nil {
		t.Fatal(err)
	}
	if res, err := w.Exec(w.Rebind(q), args...); err != nil {
		t.Fatal(err)
	} else if n, _ := res.RowsAffected(); n != 2 {
		t.Fatalf("UPDATE IN: %d rows", n)
	}

	// Beginx on node 1: tx.Get sees the transaction's writes.
	tx, err := r.Beginx()
	if err != nil {
		t.Fatal(err)
	}
	res, err = tx.NamedExec("INSERT INTO users (name, created) VALUES (:name, :created)", map[string]any{"name": "eve", "created": t0})
	if err != nil {
		t.Fatal(err)
	}
	eveID, _ := res.LastInsertId()
	var eve sqlxUser
	if err := tx.Get(&eve, "SELECT * FROM users WHERE id = ?", eveID); err != nil || eve.Name != "eve" || eveID != 5 || !eve.Active {
		t.Fatalf("tx.Get of own write: %+v %d %v", eve, eveID, err)
	}
	var inTx []sqlxUser
	if err := tx.Select(&inTx, "SELECT * FROM users WHERE score >= ? ORDER BY id", 4.0); err != nil || len(inTx) != 3 {
		t.Errorf("tx.Select of several rows in a read-write transaction: %d rows %+v, err %v", len(inTx), inTx, err)
	}
	var before int
	if err := w.Get(&before, "SELECT count(*) FROM users"); err != nil || before != 4 {
		t.Fatalf("uncommitted row visible on node 0: %d %v", before, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var after int
	if err := w.Get(&after, "SELECT count(*) FROM users"); err != nil || after != 5 {
		t.Fatalf("after commit node 0 sees %d %v", after, err)
	}
	// Preparex / NamedStmt reuse.
	ns, err := w.PrepareNamed("SELECT * FROM users WHERE score > :min ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	for _, tc := range []struct {
		min  float64
		want int
	}{{0, 4}, {2, 3}, {5, 1}, {100, 0}} {
		var got []sqlxUser
		if err := ns.Select(&got, map[string]any{"min": tc.min}); err != nil || len(got) != tc.want {
			t.Fatalf("named stmt min=%v: %d rows %v", tc.min, len(got), err)
		}
	}
	// Rows scanning with StructScan and MapScan.
	rows, err := r.Queryx("SELECT id, name, email, created FROM users WHERE id <= 2 ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	var scanned []string
	for rows.Next() {
		m := map[string]any{}
		if err := rows.MapScan(m); err != nil {
			t.Fatal(err)
		}
		scanned = append(scanned, toolsSprint(m["id"], m["name"], m["email"], m["created"].(time.Time).Format(time.RFC3339Nano)))
	}
	rows.Close()
	if strings.Join(scanned, ";") != "1 ann ann@x 2024-02-29T23:59:58.123456789Z;2 ben <nil> 2024-03-01T00:59:58.123456789Z" {
		t.Fatalf("MapScan: %q", scanned)
	}
}
