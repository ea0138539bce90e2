package sqlclass

import "strings"

// kind is the class of a token. The lexer follows SQLite's own tokenizer
// (tokenize.c, sqlite3GetToken) closely enough to find the same statement
// boundaries, keywords and function names; it does not need token values.
type kind uint8

const (
	tEOF    kind = iota
	tWord        // unquoted identifier or keyword
	tQuoted      // "..." `...` [...] identifier
	tString      // '...'
	tBlob        // x'...'
	tNumber      // 1 1.5 .5e3 0x1F (and the illegal 1abc, as SQLite)
	tVar         // ? ?1 :a @a $a #a $a::b(c)
	tSemi        // ;
	tLParen      // (
	tRParen      // )
	tDot         // .
	tComma       // ,
	tOp          // any other byte: operators and illegal characters
)

type token struct {
	kind       kind
	start, end int
}

type lexer struct {
	src string
	pos int
}

// Byte classes, as SQLite's aiClass/sqlite3CtypeMap, in one table so the
// lexer does one lookup per byte.
const (
	cSpace  = 1 << iota // white space, including \v (SQLite: illegal at a token start)
	cID                 // IdChar: letters, digits, '_', '$', bytes >= 0x80
	cDigit              // 0-9
	cXDigit             // 0-9 a-f A-F
	cStart              // starts a word: IdChar but not a digit or '$'
)

var ctype = func() (t [256]uint8) {
	for _, c := range []byte(" \t\n\v\f\r") {
		t[c] = cSpace
	}
	for c := 0; c < 256; c++ {
		switch {
		case c >= '0' && c <= '9':
			t[c] = cID | cDigit | cXDigit
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			t[c] = cID | cStart
			if c <= 'f' || (c >= 'A' && c <= 'F') {
				t[c] |= cXDigit
			}
		case c == '_' || c >= 0x80:
			t[c] = cID | cStart
		case c == '$':
			t[c] = cID
		}
	}
	return t
}()

func isSpace(c byte) bool  { return ctype[c]&cSpace != 0 }
func isDigit(c byte) bool  { return ctype[c]&cDigit != 0 }
func isXDigit(c byte) bool { return ctype[c]&cXDigit != 0 }
func isIDChar(c byte) bool { return ctype[c]&cID != 0 }

func (l *lexer) byteAt(i int) byte {
	if i < len(l.src) {
		return l.src[i]
	}
	return 0
}

// next returns the next token, skipping whitespace and comments.
func (l *lexer) next() token {
	s := l.src
	for l.pos < len(s) {
		c := s[l.pos]
		switch {
		case ctype[c]&cSpace != 0:
			l.pos++
		case c == '-' && l.byteAt(l.pos+1) == '-':
			if i := strings.IndexByte(s[l.pos:], '\n'); i >= 0 {
				l.pos += i
			} else {
				l.pos = len(s)
			}
		case c == '/' && l.byteAt(l.pos+1) == '*' && l.pos+2 < len(s):
			// An unterminated comment runs to the end, as in SQLite.
			if i := strings.Index(s[l.pos+2:], "*/"); i >= 0 {
				l.pos += 2 + i + 2
			} else {
				l.pos = len(s)
			}
		case c == 0xEF && l.byteAt(l.pos+1) == 0xBB && l.byteAt(l.pos+2) == 0xBF:
			l.pos += 3 // a UTF-8 BOM is whitespace to SQLite
		default:
			start := l.pos
			k := l.scan()
			return token{kind: k, start: start, end: l.pos}
		}
	}
	return token{kind: tEOF, start: len(s), end: len(s)}
}

// scan consumes one token starting at l.pos (not whitespace or a comment).
func (l *lexer) scan() kind {
	s := l.src
	c := s[l.pos]
	if ctype[c]&cStart != 0 && !((c == 'x' || c == 'X') && l.byteAt(l.pos+1) == '\'') {
		l.pos++
		for l.pos < len(s) && ctype[s[l.pos]]&cID != 0 {
			l.pos++
		}
		return tWord
	}
	switch c {
	case ';':
		l.pos++
		return tSemi
	case '(':
		l.pos++
		return tLParen
	case ')':
		l.pos++
		return tRParen
	case ',':
		l.pos++
		return tComma
	case '.':
		if !isDigit(l.byteAt(l.pos + 1)) {
			l.pos++
			return tDot
		}
		l.number()
		return tNumber
	case '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		l.number()
		return tNumber
	case '\'', '"', '`':
		// A doubled delimiter is an escaped one; unterminated runs to the end.
		i := l.pos + 1
		for i < len(s) {
			if s[i] == c {
				if i+1 < len(s) && s[i+1] == c {
					i += 2
					continue
				}
				i++
				break
			}
			i++
		}
		l.pos = i
		if c == '\'' {
			return tString
		}
		return tQuoted
	case '[':
		if i := strings.IndexByte(s[l.pos:], ']'); i >= 0 {
			l.pos += i + 1
		} else {
			l.pos = len(s)
		}
		return tQuoted
	case '?':
		l.pos++
		for l.pos < len(s) && isDigit(s[l.pos]) {
			l.pos++
		}
		return tVar
	case '$', '@', ':', '#':
		l.variable()
		return tVar
	case 'x', 'X': // x'...' blob: words were handled above
		i := l.pos + 2
		for i < len(s) && isXDigit(s[i]) {
			i++
		}
		if i >= len(s) || s[i] != '\'' || (i-l.pos)%2 != 0 {
			// Illegal blob: SQLite swallows up to the next quote.
			for i < len(s) && s[i] != '\'' {
				i++
			}
		}
		if i < len(s) {
			i++
		}
		l.pos = i
		return tBlob
	}
	l.pos++
	return tOp
}

func (l *lexer) digits(hex bool) {
	s := l.src
	for l.pos < len(s) && (isDigit(s[l.pos]) || s[l.pos] == '_' || (hex && isXDigit(s[l.pos]))) {
		l.pos++
	}
}

func (l *lexer) number() {
	s := l.src
	if s[l.pos] == '0' && (l.byteAt(l.pos+1) == 'x' || l.byteAt(l.pos+1) == 'X') && isXDigit(l.byteAt(l.pos+2)) {
		l.pos += 2
		l.digits(true)
	} else {
		l.digits(false)
		if l.byteAt(l.pos) == '.' {
			l.pos++
			l.digits(false)
		}
		if e := l.byteAt(l.pos); e == 'e' || e == 'E' {
			d := l.byteAt(l.pos + 1)
			if isDigit(d) || ((d == '+' || d == '-') && isDigit(l.byteAt(l.pos+2))) {
				l.pos += 2
				l.digits(false)
			}
		}
	}
	for l.pos < len(s) && isIDChar(s[l.pos]) { // "1abc" is one (illegal) token
		l.pos++
	}
}

// variable scans $name, @name, :name, #name including Tcl-style $a::b(c).
// Unlike SQLite, the (...) suffix also stops at ';': a bound parameter whose
// name contains ';' is absurd, and stopping there keeps Split stable when its
// output is joined with ";" again. It only ever makes us see more statements.
func (l *lexer) variable() {
	s := l.src
	i := l.pos + 1
	n := 0
	for i < len(s) {
		c := s[i]
		if isIDChar(c) {
			n++
			i++
		} else if c == '(' && n > 0 {
			i++
			for i < len(s) && !isSpace(s[i]) && s[i] != ')' && s[i] != ';' {
				i++
			}
			if i < len(s) && s[i] == ')' {
				i++
			}
			break
		} else if c == ':' && i+1 < len(s) && s[i+1] == ':' {
			i += 2
		} else {
			break
		}
	}
	l.pos = i
}

// eqFold reports whether s equals the upper-case ASCII word kw, ignoring case.
func eqFold(s, kw string) bool {
	if len(s) != len(kw) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != kw[i] {
			return false
		}
	}
	return true
}

// isWord reports whether t is the unquoted keyword kw (upper case).
func (l *lexer) isWord(t token, kw string) bool {
	return t.kind == tWord && eqFold(l.src[t.start:t.end], kw)
}

// name returns the identifier that t spells: unquoted words as they are,
// quoted identifiers and strings (SQLite accepts 'x' as a name in many
// places) without their quotes. ok is false for other tokens.
func (l *lexer) name(t token) (string, bool) {
	text := l.src[t.start:t.end]
	switch t.kind {
	case tWord:
		return text, true
	case tQuoted, tString:
		if len(text) < 2 {
			return "", false
		}
		q := text[0]
		closing := q
		if q == '[' {
			closing = ']'
		}
		if text[len(text)-1] != closing {
			return "", false // unterminated
		}
		inner := text[1 : len(text)-1]
		if q != '[' && strings.IndexByte(inner, q) >= 0 {
			inner = strings.ReplaceAll(inner, string([]byte{q, q}), string(q))
		}
		return inner, true
	}
	return "", false
}
