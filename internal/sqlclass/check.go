// Package sqlclass classifies SQLite SQL text for rsqlite: it splits
// statements, finds their leading keyword, refuses what a replicated write
// must not contain, and recognises per-connection setting pragmas.
//
// It works on tokens, with SQLite's lexical rules (strings, quoted
// identifiers, comments, blobs, trigger bodies), so words inside literals,
// identifiers or comments never count. It is pure and allocation-free on the
// hot path: CheckWrite runs before every replicated write.
package sqlclass

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// RefusedError says why a statement cannot be replicated. Statement is the
// offending statement text (shortened to ~80 chars), Reason a sentence that
// tells the user what to do instead.
type RefusedError struct{ Statement, Reason string }

func (e *RefusedError) Error() string {
	return "rsqlite: cannot replicate " + e.Statement + ": " + e.Reason
}

func refuse(stmt, reason string) *RefusedError {
	return &RefusedError{Statement: shorten(stmt), Reason: reason}
}

// shorten folds whitespace runs to one space and cuts to about 80 bytes at
// a rune boundary, so the error stays one readable line.
func shorten(s string) string {
	const maxLen = 80
	var b strings.Builder
	space := false
	for _, r := range s {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\v' {
			space = true
			continue
		}
		sep := space && b.Len() > 0
		space = false
		if n := b.Len() + utf8.RuneLen(r); n > maxLen-3 || (sep && n+1 > maxLen-3) {
			b.WriteString("...")
			break
		}
		if sep {
			b.WriteByte(' ')
		}
		b.WriteRune(r) // invalid UTF-8 becomes U+FFFD: errors stay printable
	}
	return b.String()
}

// headLen is how many leading tokens of a statement the rules look at:
// enough for EXPLAIN QUERY PLAN CREATE UNIQUE INDEX IF NOT EXISTS temp . x
// and PRAGMA main . name = - value.
const headLen = 12

// CheckWrite returns a *RefusedError for the first statement of sql that a
// replicated write must not contain, or nil:
//   - BEGIN, COMMIT, END, ROLLBACK, SAVEPOINT, RELEASE (the driver owns transactions)
//   - ATTACH, DETACH, VACUUM in any form (outside the database, or impossible in the apply transaction)
//   - CREATE TEMP|TEMPORARY ... and CREATE ... temp.name (per connection)
//   - calls of load_extension() and total_changes(), anywhere, trigger bodies included
//   - PRAGMAs other than user_version, application_id and read-only introspection
//     (page_size only without a value); ConnPragma settings get their own reason
//
// A leading EXPLAIN [QUERY PLAN] is looked through, to stay on the safe side.
// Read versus write is not decided here, and rules that depend on the
// database (the reserved _rsqlite_ tables) belong to the state machine.
func CheckWrite(sql string) error {
	lx := lexer{src: sql}
	sp := splitter{lx: &lx}
	for {
		var head [headLen]token
		n, start, end := 0, -1, 0
		var prev, prev2 token
		call := token{kind: tEOF} // first refused function call
		done := false
		for {
			t := lx.next()
			if t.kind == tEOF {
				done = true
				break
			}
			if sp.feed(t) {
				if start >= 0 {
					break
				}
				continue
			}
			if start < 0 {
				start = t.start
			}
			end = t.end
			if n < headLen {
				head[n] = t
				n++
			}
			if t.kind == tLParen && call.kind == tEOF && refusedCall(&lx, prev, prev2) {
				call = prev
			}
			prev2, prev = prev, t
		}
		if start >= 0 {
			if err := checkStmt(&lx, head[:n], call, sql[start:end]); err != nil {
				return err
			}
		}
		if done {
			return nil
		}
	}
}

// refusedCall reports whether fn '(' calls load_extension or total_changes.
// SQLite takes a quoted identifier as a function name too ("load_extension"(...)),
// so those count. A table or CTE of that name followed by its column list
// (CREATE TABLE total_changes(a), INSERT INTO x.total_changes(a)) does not.
func refusedCall(lx *lexer, fn, before token) bool {
	if fn.kind != tWord && fn.kind != tQuoted {
		return false
	}
	name, ok := lx.name(fn)
	if !ok || !(eqFold(name, "LOAD_EXTENSION") || eqFold(name, "TOTAL_CHANGES")) {
		return false
	}
	if before.kind == tDot {
		return false
	}
	for _, kw := range [...]string{"TABLE", "INTO", "VIEW", "EXISTS", "REFERENCES", "WITH", "RECURSIVE"} {
		if lx.isWord(before, kw) {
			return false
		}
	}
	return true
}

const (
	reasonTx = "transactions are handled by the driver: use db.BeginTx and tx.Commit or tx.Rollback " +
		"instead of BEGIN, COMMIT, ROLLBACK, SAVEPOINT or RELEASE statements"
	reasonAttach = "each node has its own files, so ATTACH and DETACH would reach outside the replicated " +
		"database; open the other database with its own rsqlite DSN instead"
	reasonVacuum = "VACUUM cannot run inside the transaction that applies replicated writes, and VACUUM INTO " +
		"would write a file on every node; run it on each node with the rsqlite admin tools"
	reasonTemp = "TEMP objects belong to one connection and would not exist on the other nodes; " +
		"create a regular object (and drop it when done)"
	reasonLoadExt = "load_extension runs code from outside the database that other nodes may not have; " +
		"register extensions and functions identically on every node from the application instead"
	reasonTotalChanges = "total_changes() depends on how long the connection has been open, so every node " +
		"would compute a different value; use changes() for the rows of the last statement"
	reasonPragmaSchema = "only the main database is replicated; name no other schema in a PRAGMA"
)

func checkStmt(lx *lexer, head []token, call token, stmt string) error {
	i := 0
	if i < len(head) && lx.isWord(head[i], "EXPLAIN") { // conservative: refuse what EXPLAIN shows too
		i++
		if i < len(head) && lx.isWord(head[i], "QUERY") {
			i++
			if i < len(head) && lx.isWord(head[i], "PLAN") {
				i++
			}
		}
	}
	if i < len(head) && head[i].kind == tWord {
		w := lx.src[head[i].start:head[i].end]
		switch {
		case eqFold(w, "BEGIN"), eqFold(w, "COMMIT"), eqFold(w, "END"), eqFold(w, "ROLLBACK"),
			eqFold(w, "SAVEPOINT"), eqFold(w, "RELEASE"):
			return refuse(stmt, reasonTx)
		case eqFold(w, "ATTACH"), eqFold(w, "DETACH"):
			return refuse(stmt, reasonAttach)
		case eqFold(w, "VACUUM"):
			return refuse(stmt, reasonVacuum)
		case eqFold(w, "CREATE"):
			if isTempCreate(lx, head[i+1:]) {
				return refuse(stmt, reasonTemp)
			}
		case eqFold(w, "PRAGMA"):
			if reason := pragmaReason(lx, head[i+1:]); reason != "" {
				return refuse(stmt, reason)
			}
		}
	}
	if call.kind != tEOF {
		if name, _ := lx.name(call); eqFold(name, "LOAD_EXTENSION") {
			return refuse(stmt, reasonLoadExt)
		}
		return refuse(stmt, reasonTotalChanges)
	}
	return nil
}

// isTempCreate reports CREATE TEMP|TEMPORARY ... and CREATE ... temp.name.
// rest starts after CREATE.
func isTempCreate(lx *lexer, rest []token) bool {
	if len(rest) == 0 {
		return false
	}
	if lx.isWord(rest[0], "TEMP") || lx.isWord(rest[0], "TEMPORARY") {
		return true
	}
	j := 0
	for j < len(rest) && (lx.isWord(rest[j], "UNIQUE") || lx.isWord(rest[j], "VIRTUAL")) {
		j++
	}
	if j >= len(rest) || !(lx.isWord(rest[j], "TABLE") || lx.isWord(rest[j], "VIEW") ||
		lx.isWord(rest[j], "INDEX") || lx.isWord(rest[j], "TRIGGER")) {
		return false
	}
	j++
	if j+2 < len(rest) && lx.isWord(rest[j], "IF") && lx.isWord(rest[j+1], "NOT") && lx.isWord(rest[j+2], "EXISTS") {
		j += 3
	}
	if j+1 >= len(rest) || rest[j+1].kind != tDot {
		return false
	}
	schema, ok := lx.name(rest[j])
	return ok && eqFold(schema, "TEMP")
}

type pragmaClass uint8

const (
	pragmaRefused  pragmaClass = iota // per-node or per-connection: not replicable
	pragmaAllowed                     // persistent or read-only introspection
	pragmaReadOnly                    // allowed only without a value
	pragmaConn                        // a ConnPragma setting
)

var pragmas = map[string]pragmaClass{
	"user_version": pragmaAllowed, "application_id": pragmaAllowed,
	"table_info": pragmaAllowed, "table_xinfo": pragmaAllowed, "table_list": pragmaAllowed,
	"index_list": pragmaAllowed, "index_info": pragmaAllowed, "index_xinfo": pragmaAllowed,
	"foreign_key_list": pragmaAllowed, "foreign_key_check": pragmaAllowed,
	"integrity_check": pragmaAllowed, "quick_check": pragmaAllowed,
	"collation_list": pragmaAllowed, "function_list": pragmaAllowed, "pragma_list": pragmaAllowed,
	"module_list": pragmaAllowed, "database_list": pragmaAllowed, "compile_options": pragmaAllowed,
	"freelist_count": pragmaAllowed, "page_count": pragmaAllowed, "data_version": pragmaAllowed,
	"page_size":    pragmaReadOnly,
	"foreign_keys": pragmaConn, "recursive_triggers": pragmaConn, "case_sensitive_like": pragmaConn,
	"ignore_check_constraints": pragmaConn, "defer_foreign_keys": pragmaConn,
}

// dsnParam names the DSN parameter that sets each per-connection pragma.
var dsnParam = map[string]string{
	"foreign_keys": "_fk", "recursive_triggers": "_recursive_triggers",
	"case_sensitive_like": "_cslike", "ignore_check_constraints": "_ignore_check_constraints",
	"defer_foreign_keys": "_defer_foreign_keys",
}

// pragmaReason returns why the PRAGMA whose tokens after the keyword are
// rest cannot be replicated, or "" when it can.
func pragmaReason(lx *lexer, rest []token) string {
	if len(rest) == 0 {
		return "" // "PRAGMA" alone is a syntax error on every node alike
	}
	j := 0
	if len(rest) >= 3 && rest[1].kind == tDot {
		schema, ok := lx.name(rest[0])
		if !ok || !eqFold(schema, "MAIN") {
			return reasonPragmaSchema
		}
		j = 2
	}
	name, ok := lx.name(rest[j])
	if !ok {
		return ""
	}
	var buf [32]byte
	if len(name) > len(buf) {
		return "PRAGMA " + name + " is a per-node or per-connection setting that would not be replicated"
	}
	lower := buf[:len(name)]
	for k := 0; k < len(name); k++ {
		c := name[k]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[k] = c
	}
	hasValue := j+1 < len(rest)
	switch pragmas[string(lower)] {
	case pragmaAllowed:
		return ""
	case pragmaReadOnly:
		if !hasValue {
			return ""
		}
		return "changing the page size takes effect only on an empty database or after VACUUM, " +
			"so nodes would differ; it can only be read in a replicated write"
	case pragmaConn:
		n := string(lower)
		return "PRAGMA " + n + " is a per-connection setting that would be lost on restart; run it as its own " +
			"statement (db.Exec(\"PRAGMA " + n + " = ON\")) or set it in the DSN (" + dsnParam[n] + "=1)"
	}
	switch n := string(lower); n {
	case "optimize":
		return "PRAGMA optimize depends on each connection's query history, so nodes would build " +
			"different statistics and plans; run ANALYZE instead, which is replicated"
	case "wal_checkpoint", "journal_mode", "synchronous", "locking_mode":
		return "PRAGMA " + n + " is a per-node storage setting that rsqlite manages (the journal is WAL " +
			"and durability comes from the raft log); use the rsqlite admin tools on each node"
	default:
		return "PRAGMA " + n + " is a per-node or per-connection setting that would not be replicated; " +
			"only user_version, application_id and read-only introspection pragmas can be part of a write"
	}
}

// ConnPragma recognises a statement that is exactly one per-connection
// setting pragma, in any of SQLite's forms (PRAGMA foreign_keys = ON,
// PRAGMA foreign_keys=1, PRAGMA foreign_keys(true), pragma main.foreign_keys
// = 'off';), and returns the canonical pragma name and the boolean value.
// Names: foreign_keys, recursive_triggers, case_sensitive_like,
// ignore_check_constraints, defer_foreign_keys. Values: 1 yes true on /
// 0 no false off, case-insensitive, optionally quoted. ok is false for
// anything else, including the read form "PRAGMA foreign_keys". A recognised
// name with a bad value gives ok=true and an error naming the value (SQLite
// itself would silently take most bad values as false).
func ConnPragma(sql string) (name string, on bool, ok bool, err error) {
	lx := lexer{src: sql}
	var toks [12]token
	n, semi := 0, false
	for t := lx.next(); t.kind != tEOF; t = lx.next() {
		switch {
		case t.kind == tSemi:
			semi = true
		case semi || n == len(toks):
			return "", false, false, nil // more than one statement, or not a pragma
		default:
			toks[n] = t
			n++
		}
	}
	ts := toks[:n]
	if len(ts) < 2 || !lx.isWord(ts[0], "PRAGMA") {
		return "", false, false, nil
	}
	j := 1
	if len(ts) >= 4 && ts[2].kind == tDot {
		schema, sok := lx.name(ts[1])
		if !sok || !(eqFold(schema, "MAIN") || eqFold(schema, "TEMP")) {
			return "", false, false, nil
		}
		j = 3
	}
	raw, nok := lx.name(ts[j])
	if !nok {
		return "", false, false, nil
	}
	name = strings.ToLower(raw)
	if pragmas[name] != pragmaConn {
		return "", false, false, nil
	}
	rest := ts[j+1:]
	if len(rest) == 0 {
		return "", false, false, nil // read form
	}
	var val []token
	switch {
	case isOp(&lx, rest[0], '='):
		val = rest[1:]
		if len(val) > 0 && isOp(&lx, val[0], '=') && val[0].start == rest[0].end {
			val = val[1:] // "==" is one token to SQLite
		}
	case rest[0].kind == tLParen:
		val = rest[1:]
		if len(val) == 0 || val[len(val)-1].kind != tRParen {
			return name, false, true, badValue(name, sql[rest[0].start:rest[len(rest)-1].end])
		}
		val = val[:len(val)-1]
	default:
		return "", false, false, nil
	}
	if len(val) != 1 {
		text := ""
		if len(val) > 0 {
			text = sql[val[0].start:val[len(val)-1].end]
		}
		return name, false, true, badValue(name, text)
	}
	text := sql[val[0].start:val[0].end]
	v, vok := lx.name(val[0])
	if val[0].kind == tNumber {
		v, vok = text, true
	}
	if vok {
		switch strings.ToLower(v) {
		case "1", "yes", "true", "on":
			return name, true, true, nil
		case "0", "no", "false", "off":
			return name, false, true, nil
		}
	}
	return name, false, true, badValue(name, text)
}

func isOp(lx *lexer, t token, c byte) bool {
	return t.kind == tOp && lx.src[t.start] == c
}

func badValue(name, value string) error {
	if len(value) > 40 {
		value = shorten(value[:40])
	}
	return errors.New("rsqlite: PRAGMA " + name + ": bad value " + strconv.Quote(value) +
		": use 1, yes, true, on or 0, no, false, off")
}
