package sqlclass

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		want []string
	}{
		{"empty", "", nil},
		{"only separators and comments", " ; ;; -- c\n /* d */ ;", nil},
		{"one", "SELECT 1", []string{"SELECT 1"}},
		{"trimmed", "  SELECT 1 ;\n\t", []string{"SELECT 1"}},
		{"two", "SELECT 1; SELECT 2;", []string{"SELECT 1", "SELECT 2"}},
		{"semicolon in string", "INSERT INTO t VALUES('a;b'); SELECT 2", []string{"INSERT INTO t VALUES('a;b')", "SELECT 2"}},
		{"escaped quote", "SELECT 'it''s; fine'; SELECT 2", []string{"SELECT 'it''s; fine'", "SELECT 2"}},
		{"double quoted id", `SELECT "a;""b" FROM t; SELECT 2`, []string{`SELECT "a;""b" FROM t`, "SELECT 2"}},
		{"backquoted id", "SELECT `a;``b`; SELECT 2", []string{"SELECT `a;``b`", "SELECT 2"}},
		{"bracket id", "SELECT [a;b]; SELECT 2", []string{"SELECT [a;b]", "SELECT 2"}},
		{"line comment", "SELECT 1 -- a;b\n; SELECT 2", []string{"SELECT 1", "SELECT 2"}},
		{"inner line comment kept", "SELECT 1 -- a;b\n+ 2; SELECT 3", []string{"SELECT 1 -- a;b\n+ 2", "SELECT 3"}},
		{"block comment", "SELECT /* ; */ 1; SELECT 2", []string{"SELECT /* ; */ 1", "SELECT 2"}},
		{"leading comment dropped", "/* hi */ SELECT 1", []string{"SELECT 1"}},
		{"unterminated comment", "SELECT 1; /* ; SELECT 2", []string{"SELECT 1"}},
		{"unterminated string", "SELECT 1; SELECT 'a; SELECT 2", []string{"SELECT 1", "SELECT 'a; SELECT 2"}},
		{"blob", "SELECT x'3b3B'; SELECT 2", []string{"SELECT x'3b3B'", "SELECT 2"}},
		{"illegal blob swallows to quote", "SELECT x'a;'; SELECT 2", []string{"SELECT x'a;'", "SELECT 2"}},
		{"tcl variable", "SELECT $a(x); SELECT 2", []string{"SELECT $a(x)", "SELECT 2"}},
		{"trigger", "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET a=1; DELETE FROM u; END; SELECT 2",
			[]string{"CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET a=1; DELETE FROM u; END", "SELECT 2"}},
		{"temp trigger lower case", "create temp trigger tr before delete on t begin select 1; end ;select 2",
			[]string{"create temp trigger tr before delete on t begin select 1; end", "select 2"}},
		{"temporary trigger", "CREATE TEMPORARY TRIGGER tr DELETE ON t BEGIN SELECT 1; END;",
			[]string{"CREATE TEMPORARY TRIGGER tr DELETE ON t BEGIN SELECT 1; END"}},
		{"explain trigger", "EXPLAIN QUERY PLAN CREATE TRIGGER tr DELETE ON t BEGIN SELECT 1; END; SELECT 2",
			[]string{"EXPLAIN QUERY PLAN CREATE TRIGGER tr DELETE ON t BEGIN SELECT 1; END", "SELECT 2"}},
		{"case end inside trigger", "CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT CASE WHEN 1 THEN 2 END; SELECT end FROM t; END; SELECT 2",
			[]string{"CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT CASE WHEN 1 THEN 2 END; SELECT end FROM t; END", "SELECT 2"}},
		{"trigger named begin", "CREATE TRIGGER begin DELETE ON begin BEGIN SELECT 1; END; SELECT 2",
			[]string{"CREATE TRIGGER begin DELETE ON begin BEGIN SELECT 1; END", "SELECT 2"}},
		{"trigger with comments", "CREATE TRIGGER tr DELETE ON t BEGIN SELECT 1; /* x */ -- y\n END /* z */ ; SELECT 2",
			[]string{"CREATE TRIGGER tr DELETE ON t BEGIN SELECT 1; /* x */ -- y\n END", "SELECT 2"}},
		{"trigger without body ends at ;", "CREATE TRIGGER tr; SELECT 2", []string{"CREATE TRIGGER tr", "SELECT 2"}},
		{"unterminated trigger body", "CREATE TRIGGER tr DELETE ON t BEGIN SELECT 1; SELECT 2",
			[]string{"CREATE TRIGGER tr DELETE ON t BEGIN SELECT 1; SELECT 2"}},
		{"create table is not a trigger", "CREATE TABLE t(a); SELECT 2", []string{"CREATE TABLE t(a)", "SELECT 2"}},
		{"begin transaction", "BEGIN; INSERT INTO t VALUES(1); END;", []string{"BEGIN", "INSERT INTO t VALUES(1)", "END"}},
		{"bom is space", "\xEF\xBB\xBFSELECT 1", []string{"SELECT 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Split(tt.sql)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Split(%q)\n got %q\nwant %q", tt.sql, got, tt.want)
			}
			if again := Split(strings.Join(got, ";")); !reflect.DeepEqual(again, got) {
				t.Errorf("re-split of joined %q = %q", got, again)
			}
		})
	}
}

func TestKeyword(t *testing.T) {
	tests := map[string]string{
		"":                        "",
		"  -- c\n /* d */ ":       "",
		"insert into t values(1)": "INSERT",
		"/* x */ With a AS (SELECT 1) SELECT * FROM a": "WITH",
		"pragma user_version":                          "PRAGMA",
		"\n\tcreate table t(a)":                        "CREATE",
		"explain select 1":                             "EXPLAIN",
		"upsert_like_word x":                           "UPSERT_LIKE_WORD",
		"'str'":                                        "",
		`"INSERT" x`:                                   "",
		"(SELECT 1)":                                   "",
		"select 1; insert into t":                      "SELECT",
	}
	for in, want := range tests {
		if got := Keyword(in); got != want {
			t.Errorf("Keyword(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckWrite(t *testing.T) {
	const (
		tx, attach, vacuum, temp, loadExt, total = "transactions are handled", "ATTACH and DETACH",
			"VACUUM cannot", "TEMP objects", "load_extension runs", "total_changes() depends"
		perConn, perNode, optimize, schema, pageSize = "per-connection setting that would be lost",
			"per-node storage setting", "PRAGMA optimize depends", "only the main database", "page size"
		other = "per-node or per-connection setting"
	)
	tests := []struct {
		sql  string
		want string // substring of the reason; "" means allowed
	}{
		// allowed
		{"INSERT INTO t(a, b) VALUES(?, ?)", ""},
		{"insert into t values('ATTACH'); update t set a = 'begin; commit'", ""},
		{`CREATE TABLE t("begin" INTEGER, [commit] TEXT, "end", vacuum, attach)`, ""},
		{"UPDATE t SET a = 1 -- ATTACH 'x' AS y; VACUUM\n WHERE b = 2", ""},
		{"DELETE FROM t /* BEGIN; load_extension('x') */", ""},
		{"INSERT INTO t VALUES(x'00', :begin, @commit, $vacuum, ?1)", ""},
		{"SELECT changes(), last_insert_rowid(), 'total_changes()'", ""},
		{"CREATE TABLE total_changes(a); INSERT INTO total_changes(a) VALUES(1)", ""},
		{"CREATE TABLE IF NOT EXISTS main.load_extension(a); INSERT INTO main.load_extension(a) VALUES(1)", ""},
		{"WITH total_changes(n) AS (SELECT 1) SELECT n FROM total_changes", ""},
		{`INSERT INTO t("load_extension") VALUES(1)`, ""},
		{"CREATE TABLE temp(a); CREATE TABLE \"temp\" (a); INSERT INTO temp VALUES(1)", ""},
		{"CREATE TABLE main.t(a); CREATE INDEX i ON t(a); CREATE VIEW v AS SELECT 1", ""},
		{"CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET end = 1; END", ""},
		{"PRAGMA user_version = 7", ""},
		{"pragma main.application_id=42; PRAGMA user_version", ""},
		{"PRAGMA table_info(t); PRAGMA main.index_list('t'); PRAGMA integrity_check", ""},
		{"PRAGMA foreign_key_check; PRAGMA quick_check(10); PRAGMA page_size; PRAGMA data_version", ""},
		{"PRAGMA \"user_version\" = 1", ""},
		{"ANALYZE; REINDEX; DROP TABLE t; ALTER TABLE t ADD COLUMN c", ""},
		{"", ""},
		{";;", ""},

		// transaction control
		{"BEGIN", tx}, {"begin immediate", tx}, {"COMMIT", tx}, {"END TRANSACTION", tx},
		{"ROLLBACK", tx}, {"rollback to sp", tx}, {"SAVEPOINT sp", tx}, {"RELEASE sp", tx},
		{"INSERT INTO t VALUES(1); COMMIT", tx},
		{"/* comment */ BEGIN; INSERT INTO t VALUES(1)", tx},
		// outside the database
		{"ATTACH DATABASE 'other.db' AS o", attach}, {"attach 'x' as y", attach}, {"DETACH o", attach},
		{"VACUUM", vacuum}, {"vacuum main", vacuum}, {"VACUUM INTO '/tmp/x.db'", vacuum},
		{"EXPLAIN VACUUM", vacuum},
		{"SELECT load_extension('x.so')", loadExt},
		{"INSERT INTO t VALUES(LOAD_EXTENSION ( 'x' ))", loadExt},
		{"SELECT load_extension /* c */ ('x')", loadExt},
		{`SELECT "load_extension"('x')`, loadExt},
		{"SELECT [load_extension]('x')", loadExt},
		{"SELECT `load_extension`('x')", loadExt},
		{"SELECT * FROM a JOIN b ON load_extension('x')", loadExt},
		{"CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT load_extension('x'); END", loadExt},
		// TEMP objects
		{"CREATE TEMP TABLE x(a)", temp}, {"create temporary view v as select 1", temp},
		{"CREATE TEMP TRIGGER tr DELETE ON t BEGIN SELECT 1; END", temp},
		{"CREATE TABLE temp.x(a)", temp}, {`CREATE TABLE "TEMP".x(a)`, temp},
		{"CREATE UNIQUE INDEX IF NOT EXISTS temp.i ON t(a)", temp},
		{"CREATE VIEW Temp . v AS SELECT 1", temp},
		{"CREATE VIRTUAL TABLE temp.f USING fts5(a)", temp},
		{"CREATE TRIGGER IF NOT EXISTS temp.tr DELETE ON t BEGIN SELECT 1; END", temp},
		// connection age
		{"SELECT total_changes()", total},
		{"INSERT INTO log VALUES(total_changes())", total},
		{"UPDATE t SET n = \"total_changes\"()", total},
		// pragmas
		{"PRAGMA optimize", optimize}, {"pragma optimize(0x10002)", optimize},
		{"PRAGMA wal_checkpoint(TRUNCATE)", perNode}, {"PRAGMA journal_mode=DELETE", perNode},
		{"PRAGMA journal_mode", perNode}, {"PRAGMA synchronous = OFF", perNode},
		{"PRAGMA main.locking_mode = EXCLUSIVE", perNode}, {`PRAGMA 'journal_mode' = wal`, perNode},
		{"PRAGMA foreign_keys = ON", perConn}, {"PRAGMA recursive_triggers(1)", perConn},
		{"PRAGMA CASE_SENSITIVE_LIKE=true", perConn}, {"PRAGMA ignore_check_constraints", perConn},
		{"PRAGMA defer_foreign_keys = 1; INSERT INTO t VALUES(1)", perConn},
		{"PRAGMA page_size = 8192", pageSize}, {"PRAGMA page_size(8192)", pageSize},
		{"PRAGMA temp.user_version = 1", schema}, {"PRAGMA other.table_info(t)", schema},
		{"PRAGMA cache_size = 100", other}, {"PRAGMA trusted_schema = 1", other},
		{"PRAGMA writable_schema = ON", other}, {"PRAGMA reverse_unordered_selects = 1", other},
		{"PRAGMA auto_vacuum = FULL", other}, {"PRAGMA query_only = 1", other},
		// first offending statement wins
		{"INSERT INTO t VALUES(1); SELECT total_changes(); VACUUM", total},
	}
	for _, tt := range tests {
		err := CheckWrite(tt.sql)
		if tt.want == "" {
			if err != nil {
				t.Errorf("CheckWrite(%q) = %v, want nil", tt.sql, err)
			}
			continue
		}
		var re *RefusedError
		if !errors.As(err, &re) {
			t.Errorf("CheckWrite(%q) = %v, want a *RefusedError (%s)", tt.sql, err, tt.want)
			continue
		}
		if !strings.Contains(re.Reason, tt.want) {
			t.Errorf("CheckWrite(%q) reason = %q, want it to contain %q", tt.sql, re.Reason, tt.want)
		}
		if !strings.HasPrefix(err.Error(), "rsqlite: cannot replicate ") {
			t.Errorf("CheckWrite(%q) message = %q", tt.sql, err)
		}
	}
}

func TestRefusedErrorText(t *testing.T) {
	err := CheckWrite("INSERT INTO t VALUES(1);\n  ATTACH   'other.db'\n\tAS o")
	want := "rsqlite: cannot replicate ATTACH 'other.db' AS o: " + err.(*RefusedError).Reason
	if err.Error() != want {
		t.Errorf("got %q\nwant %q", err, want)
	}
	long := "SELECT total_changes(), '" + strings.Repeat("é", 100) + "'"
	re := CheckWrite(long).(*RefusedError)
	if len(re.Statement) > 80 || !strings.HasSuffix(re.Statement, "...") || !strings.HasPrefix(re.Statement, "SELECT total_changes(), 'éé") {
		t.Errorf("shortened statement = %q (%d bytes)", re.Statement, len(re.Statement))
	}
	if strings.ContainsRune(re.Statement, '\uFFFD') {
		t.Errorf("shortened statement cut a rune: %q", re.Statement)
	}
	if re := CheckWrite("PRAGMA foreign_keys=ON").(*RefusedError); !strings.Contains(re.Reason, `db.Exec("PRAGMA foreign_keys = ON")`) ||
		!strings.Contains(re.Reason, "_fk=1") {
		t.Errorf("conn pragma reason = %q", re.Reason)
	}
	if re := CheckWrite("PRAGMA case_sensitive_like=ON").(*RefusedError); !strings.Contains(re.Reason, "_cslike=1") {
		t.Errorf("conn pragma reason = %q", re.Reason)
	}
}

func TestConnPragma(t *testing.T) {
	tests := []struct {
		sql     string
		name    string
		on, ok  bool
		wantErr string
	}{
		{"PRAGMA foreign_keys = ON", "foreign_keys", true, true, ""},
		{"PRAGMA foreign_keys=1", "foreign_keys", true, true, ""},
		{"PRAGMA foreign_keys(true)", "foreign_keys", true, true, ""},
		{"pragma main.foreign_keys = 'off' ;", "foreign_keys", false, true, ""},
		{"  /* c */ PRAGMA Foreign_Keys = yes; ;", "foreign_keys", true, true, ""},
		{"PRAGMA foreign_keys == no", "foreign_keys", false, true, ""},
		{`PRAGMA "recursive_triggers" = "On"`, "recursive_triggers", true, true, ""},
		{"PRAGMA temp.case_sensitive_like = FALSE", "case_sensitive_like", false, true, ""},
		{"PRAGMA ignore_check_constraints = 0", "ignore_check_constraints", false, true, ""},
		{"PRAGMA defer_foreign_keys ( 'YES' )", "defer_foreign_keys", true, true, ""},
		// bad values
		{"PRAGMA foreign_keys = maybe", "foreign_keys", false, true, `"maybe"`},
		{"PRAGMA foreign_keys = 2", "foreign_keys", false, true, `"2"`},
		{"PRAGMA foreign_keys = -1", "foreign_keys", false, true, `"-1"`},
		{"PRAGMA foreign_keys = ON, 1", "foreign_keys", false, true, `"ON, 1"`},
		{"PRAGMA foreign_keys =", "foreign_keys", false, true, `""`},
		{"PRAGMA foreign_keys(1", "foreign_keys", false, true, `"(1"`},
		{"PRAGMA foreign_keys = x'01'", "foreign_keys", false, true, `"x'01'"`},
		// not a setting
		{"PRAGMA foreign_keys", "", false, false, ""},
		{"PRAGMA foreign_keys;", "", false, false, ""},
		{"PRAGMA user_version = 1", "", false, false, ""},
		{"PRAGMA foreign_keys = ON; INSERT INTO t VALUES(1)", "", false, false, ""},
		{"INSERT INTO t VALUES(1); PRAGMA foreign_keys = ON", "", false, false, ""},
		{"PRAGMA other.foreign_keys = ON", "", false, false, ""},
		{"PRAGMA foreign_keys ON", "", false, false, ""},
		{"SELECT 'PRAGMA foreign_keys = ON'", "", false, false, ""},
		{"-- PRAGMA foreign_keys = ON", "", false, false, ""},
		{"", "", false, false, ""},
	}
	for _, tt := range tests {
		name, on, ok, err := ConnPragma(tt.sql)
		if name != tt.name || on != tt.on || ok != tt.ok {
			t.Errorf("ConnPragma(%q) = %q, %v, %v, %v; want %q, %v, %v", tt.sql, name, on, ok, err, tt.name, tt.on, tt.ok)
		}
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("ConnPragma(%q) error %v", tt.sql, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ConnPragma(%q) error %v, want one naming %s", tt.sql, err, tt.wantErr)
		}
	}
}

// TestLexerMatchesSQLite pins token boundaries that decide statement splits.
func TestLexerMatchesSQLite(t *testing.T) {
	tests := map[string][]string{
		"a.b 1.5e+3 .5 0x1F 1abc": {"a", ".", "b", "1.5e+3", ".5", "0x1F", "1abc"},
		"x'0A' X'' x'1' xy":       {"x'0A'", "X''", "x'1'", "xy"},
		"$a::b(c d) ?12 :n @m #o": {"$a::b(c", "d", ")", "?12", ":n", "@m", "#o"},
		"'a''b' \"c\"\"d\" [e\"]": {"'a''b'", `"c""d"`, `[e"]`},
		"a/**/b -- c\nd /":        {"a", "b", "d", "/"},
		"é_1$ a->>b":              {"é_1$", "a", "-", ">", ">", "b"},
	}
	for in, want := range tests {
		lx := lexer{src: in}
		var got []string
		for tok := lx.next(); tok.kind != tEOF; tok = lx.next() {
			got = append(got, in[tok.start:tok.end])
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("tokens of %q = %q, want %q", in, got, want)
		}
	}
}

func FuzzSplit(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		stmts := Split(sql)
		for _, s := range stmts {
			// A statement starts and ends with a token and splits to itself.
			if s == "" || isSpace(s[0]) || isSpace(s[len(s)-1]) {
				t.Fatalf("Split(%q) gave untrimmed %q", sql, s)
			}
			if one := Split(s); len(one) != 1 || one[0] != s {
				t.Fatalf("Split(%q) gave %q, which splits to %q", sql, s, one)
			}
		}
		if again := Split(strings.Join(stmts, ";")); !reflect.DeepEqual(again, stmts) {
			t.Fatalf("Split(%q) = %q, but its join re-splits to %q", sql, stmts, again)
		}
		Keyword(sql)
	})
}

func FuzzCheckWrite(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		err := CheckWrite(sql)
		if err != nil {
			var re *RefusedError
			if !errors.As(err, &re) || re.Reason == "" || len(re.Statement) > 80 {
				t.Fatalf("CheckWrite(%q) = %#v", sql, err)
			}
		}
		// Checking statement by statement finds the same first refusal.
		var first error
		for _, s := range Split(sql) {
			if first = CheckWrite(s); first != nil {
				break
			}
		}
		if (err == nil) != (first == nil) || (err != nil && err.Error() != first.Error()) {
			t.Fatalf("CheckWrite(%q) = %v, but per statement %v", sql, err, first)
		}
		if _, _, ok, perr := ConnPragma(sql); !ok && perr != nil {
			t.Fatalf("ConnPragma(%q): error %v without ok", sql, perr)
		}
	})
}

var fuzzSeeds = []string{
	"INSERT INTO t VALUES('a;b'); SELECT 2",
	"CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT CASE WHEN 1 THEN 2 END; END; SELECT 2",
	"SELECT $a(x;y); ATTACH 'x' AS y",
	"PRAGMA main.foreign_keys = 'off';",
	"CREATE TEMP TABLE x(a); VACUUM INTO 'f'",
	"SELECT \"load_extension\"('x') -- c\n; /* d",
	"x'0A' [a;b] `c;d` \"e;f\" 1.5e+3 ?1 :a @b #c",
	"BEGIN; COMMIT; END; ROLLBACK",
	"EXPLAIN QUERY PLAN CREATE TRIGGER t DELETE ON u BEGIN SELECT 1; END",
}

func BenchmarkCheckWrite(b *testing.B) {
	const sql = "INSERT INTO orders(id, customer, amount, created) VALUES(?, ?, ?, CURRENT_TIMESTAMP)"
	b.ReportAllocs()
	for b.Loop() {
		if CheckWrite(sql) != nil {
			b.Fatal("refused")
		}
	}
}

func BenchmarkSplit(b *testing.B) {
	const sql = "INSERT INTO orders(id, amount) VALUES(?, ?); UPDATE stock SET n = n - 1 WHERE id = ?"
	b.ReportAllocs()
	for b.Loop() {
		Split(sql)
	}
}
