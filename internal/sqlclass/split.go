package sqlclass

// splitter decides which ';' ends a statement. Only CREATE TRIGGER needs
// care: its body is BEGIN stmt; stmt; ... END, and the ';' inside belong to it.
// Grammar: the END that closes the body always follows a ';' (the last body
// statement's), which no other END does (CASE ... END, a column named end).
type splitter struct {
	lx    *lexer
	state uint8
}

const (
	sStart      uint8 = iota // no token yet
	sExplain                 // EXPLAIN
	sQuery                   // EXPLAIN QUERY
	sPlan                    // EXPLAIN QUERY PLAN
	sCreate                  // [EXPLAIN ...] CREATE
	sCreateTemp              // CREATE TEMP
	sNormal                  // any other statement: ';' ends it
	sTrigger                 // CREATE TRIGGER before the body: ';' ends it
	sBody                    // inside BEGIN ... : ';' does not end it
	sBodySemi                // inside the body, right after a ';'
	sEnded                   // after the closing END: ';' ends it
)

// feed advances the state with t (not EOF) and reports whether t is the ';'
// that ends the current statement.
func (sp *splitter) feed(t token) bool {
	l := sp.lx
	switch sp.state {
	case sStart, sExplain, sPlan:
		switch {
		case t.kind == tSemi:
			sp.state = sStart
			return true
		case sp.state == sStart && l.isWord(t, "EXPLAIN"):
			sp.state = sExplain
		case sp.state == sExplain && l.isWord(t, "QUERY"):
			sp.state = sQuery
		case l.isWord(t, "CREATE"):
			sp.state = sCreate
		default:
			sp.state = sNormal
		}
	case sQuery:
		if t.kind == tSemi {
			sp.state = sStart
			return true
		}
		sp.state = sNormal
		if l.isWord(t, "PLAN") {
			sp.state = sPlan
		}
	case sCreate, sCreateTemp:
		switch {
		case t.kind == tSemi:
			sp.state = sStart
			return true
		case sp.state == sCreate && (l.isWord(t, "TEMP") || l.isWord(t, "TEMPORARY")):
			sp.state = sCreateTemp
		case l.isWord(t, "TRIGGER"):
			sp.state = sTrigger
		default:
			sp.state = sNormal
		}
	case sNormal, sEnded:
		if t.kind == tSemi {
			sp.state = sStart
			return true
		}
	case sTrigger:
		if t.kind == tSemi {
			sp.state = sStart
			return true
		}
		// A trigger named "begin" enters the body early; harmless, because
		// only "; END" leaves it.
		if l.isWord(t, "BEGIN") {
			sp.state = sBody
		}
	case sBody:
		if t.kind == tSemi {
			sp.state = sBodySemi
		}
	case sBodySemi:
		switch {
		case t.kind == tSemi:
		case l.isWord(t, "END"):
			sp.state = sEnded
		default:
			sp.state = sBody
		}
	}
	return false
}

// stmtScanner yields the statements of a text one after the other.
type stmtScanner struct {
	lx lexer
	sp splitter
}

func newStmtScanner(sql string) *stmtScanner {
	sc := &stmtScanner{lx: lexer{src: sql}}
	sc.sp.lx = &sc.lx
	return sc
}

// nextStmt returns the bounds of the next non-empty statement (first token
// start, last token end); ok is false at the end of the text.
func (sc *stmtScanner) nextStmt() (start, end int, ok bool) {
	start = -1
	for {
		t := sc.lx.next()
		if t.kind == tEOF {
			// Only an unterminated literal can end in white space; trim it
			// too so that every statement is trimmed.
			for end > start && start >= 0 && isSpace(sc.lx.src[end-1]) {
				end--
			}
			return start, end, start >= 0
		}
		if sc.sp.feed(t) {
			if start >= 0 {
				return start, end, true
			}
			continue
		}
		if start < 0 {
			start = t.start
		}
		end = t.end
	}
}

// Split returns the statements of sql, each trimmed, without empty ones;
// CREATE TRIGGER bodies stay whole. A statement runs from its first token to
// its last, so comments around it are dropped and comments inside are kept.
func Split(sql string) []string {
	var out []string
	sc := newStmtScanner(sql)
	for {
		start, end, ok := sc.nextStmt()
		if !ok {
			return out
		}
		out = append(out, sql[start:end])
	}
}

// Keyword returns the upper-cased first keyword of the statement, skipping
// comments and whitespace (e.g. "INSERT", "WITH", "PRAGMA", "CREATE"); ""
// for an empty statement or one that does not start with a keyword.
func Keyword(stmt string) string {
	lx := lexer{src: stmt}
	t := lx.next()
	if t.kind != tWord {
		return ""
	}
	w := stmt[t.start:t.end]
	for _, kw := range commonKeywords {
		if eqFold(w, kw) {
			return kw // no allocation for the usual statements
		}
	}
	b := []byte(w)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
	return string(b)
}

var commonKeywords = [...]string{
	"SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "WITH", "VALUES",
	"CREATE", "DROP", "ALTER", "PRAGMA", "BEGIN", "COMMIT", "END", "ROLLBACK",
	"SAVEPOINT", "RELEASE", "ATTACH", "DETACH", "VACUUM", "ANALYZE", "REINDEX",
	"EXPLAIN",
}
