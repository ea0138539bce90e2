package detvfs

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// Independent Go model of the C generator (documented on VFS.Set).
func modelWord(seed, i uint64) uint64 {
	z := seed + (i+1)*0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

func modelRandom(seed, i uint64) int64 {
	r := int64(modelWord(seed, i))
	if r < 0 {
		r = -(r & math.MaxInt64)
	}
	return r
}

func modelBlob(seed, first uint64, n int) []byte {
	b := make([]byte, 0, n+8)
	for i := first; len(b) < n; i++ {
		w := modelWord(seed, i)
		for k := 0; k < 8; k++ {
			b = append(b, byte(w>>(8*k)))
		}
	}
	return b[:n]
}

func TestRandomMatchesModel(t *testing.T) {
	v, db := openShim(t, "")
	v.Set(1, 42)
	if r := queryInt(t, db, `SELECT random()`); r != modelRandom(42, 0) {
		t.Fatalf("random() = %d, want %d", r, modelRandom(42, 0))
	}
	// The sequence continues across statements until the next Set.
	if r := queryInt(t, db, `SELECT random()`); r != modelRandom(42, 1) {
		t.Fatalf("second random() = %d, want %d", r, modelRandom(42, 1))
	}
	var b []byte
	if err := db.QueryRow(`SELECT randomblob(13)`).Scan(&b); err != nil {
		t.Fatal(err)
	}
	if want := modelBlob(42, 2, 13); !bytes.Equal(b, want) {
		t.Fatalf("randomblob(13) = %x, want %x", b, want)
	}
	if r := queryInt(t, db, `SELECT random()`); r != modelRandom(42, 4) {
		t.Fatalf("random() after blob = %d, want %d", r, modelRandom(42, 4))
	}
	// Set restarts the sequence.
	v.Set(2, 42)
	if r := queryInt(t, db, `SELECT random()`); r != modelRandom(42, 0) {
		t.Fatalf("after re-Set random() = %d", r)
	}
	// Three rows, three distinct values, in row order.
	v.Set(3, 7)
	rows, err := db.Query(`SELECT random() FROM (VALUES(1),(2),(3))`)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for rows.Next() {
		var r int64
		if err := rows.Scan(&r); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	rows.Close()
	want := []int64{modelRandom(7, 0), modelRandom(7, 1), modelRandom(7, 2)}
	if !reflect.DeepEqual(got, want) || got[0] == got[1] || got[1] == got[2] || got[0] == got[2] {
		t.Fatalf("3 rows: %v, want %v", got, want)
	}
	// Both signs occur and the model's sign fold is used.
	v.Set(4, 99)
	neg := queryInt(t, db, `SELECT count(*) FROM (WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<1000) SELECT random() AS r FROM c) WHERE r < 0`)
	if neg < 300 || neg > 700 {
		t.Fatalf("%d/1000 negative", neg)
	}
}

func TestRandomblobCoercion(t *testing.T) {
	v, db := openShim(t, "")
	for _, seeded := range []bool{true, false} {
		if seeded {
			v.Set(1, 5)
		} else {
			v.Clear()
		}
		for q, want := range map[string]int64{
			`randomblob('3')`: 3, `randomblob(0)`: 1, `randomblob(-5)`: 1, `randomblob(NULL)`: 1,
			`randomblob(2.9)`: 2, `randomblob('x')`: 1, `randomblob(16)`: 16, `randomblob(1000)`: 1000,
		} {
			var n int64
			var typ string
			if err := db.QueryRow(`SELECT length(`+q+`), typeof(`+q+`)`).Scan(&n, &typ); err != nil {
				t.Fatal(err)
			}
			if n != want || typ != "blob" {
				t.Errorf("seeded=%v %s: length %d type %s, want %d blob", seeded, q, n, typ, want)
			}
		}
		_, err := db.Exec(`SELECT randomblob(2000000000)`)
		var se sqlite3.Error
		if !errors.As(err, &se) || se.Code != sqlite3.ErrTooBig {
			t.Errorf("randomblob(2e9): %v", err)
		}
	}
}

func TestRandomUnseeded(t *testing.T) {
	v, db := openShim(t, "")
	a := queryInt(t, db, `SELECT random()`) // before any Set
	b := queryInt(t, db, `SELECT random()`)
	if a == b {
		t.Fatalf("unseeded random() repeated %d", a)
	}
	v.Set(1, 11)
	_ = queryInt(t, db, `SELECT random()`)
	v.Clear()
	if c := queryInt(t, db, `SELECT random()`); c == modelRandom(11, 1) {
		t.Fatalf("after Clear random() still follows the seed")
	}
}

// replicaDump applies the same entries to a fresh database and returns its content.
func replicaDump(t *testing.T, seedBase uint64, trustedSchema string) string {
	t.Helper()
	v, db := openShim(t, "")
	mustExec(t, db, `PRAGMA trusted_schema=`+trustedSchema)
	if got := queryInt(t, db, `PRAGMA trusted_schema`); (got == 1) != (trustedSchema == "ON") {
		t.Fatalf("trusted_schema = %d", got)
	}
	mustExec(t, db, `CREATE TABLE r(id INTEGER PRIMARY KEY, x INTEGER DEFAULT (random()),
		b BLOB DEFAULT (randomblob(16)), v TEXT)`)
	mustExec(t, db, `CREATE TABLE log(id INTEGER, r INTEGER, b BLOB)`)
	mustExec(t, db, `CREATE TRIGGER r_ai AFTER INSERT ON r BEGIN
		INSERT INTO log VALUES(new.id, random(), randomblob(8)); END`)
	mustExec(t, db, `CREATE VIEW rv AS SELECT id, random() AS z FROM r`)
	for i := 0; i < 50; i++ {
		v.Set(int64(1e12)+int64(i), seedBase+uint64(i)*7)
		mustExec(t, db, `INSERT INTO r(v) VALUES('a')`)
		mustExec(t, db, `INSERT INTO r(v, x) SELECT 'b', random() FROM (VALUES(1),(2),(3))`)
		mustExec(t, db, `UPDATE r SET v = hex(randomblob(4)) WHERE id = ?`, i+1)
		mustExec(t, db, `INSERT INTO log SELECT id, z, NULL FROM rv WHERE id = ?`, i+1)
	}
	v.Clear()
	var sb strings.Builder
	for _, q := range []string{`SELECT id, x, hex(b), v FROM r ORDER BY id`, `SELECT rowid, id, r, hex(b) FROM log ORDER BY rowid`} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(&sb, vals...)
		}
		rows.Close()
	}
	return sb.String()
}

func TestRandomReplicas(t *testing.T) {
	for _, ts := range []string{"ON", "OFF"} {
		t.Run("trusted_schema="+ts, func(t *testing.T) {
			a := replicaDump(t, 1, ts)
			b := replicaDump(t, 1, ts)
			if a != b {
				t.Fatalf("replicas differ:\n%s\n---\n%s", a, b)
			}
			if lines := strings.Count(a, "\n"); lines != 200+250 {
				t.Fatalf("dump has %d lines", lines)
			}
			if c := replicaDump(t, 1000, ts); c == a {
				t.Fatal("different seeds gave identical content")
			}
		})
	}
}

// A plain "unix" connection keeps SQLite's built-ins and no authorizer.
func TestPlainConnectionUntouched(t *testing.T) {
	v, _ := openShim(t, "")
	v.Set(1, 42)
	v.SetGuard(true)
	plain := openDSN(t, fmt.Sprintf("file:%s/p.db?vfs=unix", t.TempDir()))
	if r := queryInt(t, plain, `SELECT random()`); r == modelRandom(42, 0) {
		t.Fatal("plain connection used the seeded generator")
	}
	mustExec(t, plain, `CREATE TABLE _rsqlite_meta(k)`)
	mustExec(t, plain, `PRAGMA foreign_keys=ON`)
	mustExec(t, plain, `ATTACH ':memory:' AS aux`)
}
