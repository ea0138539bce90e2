package command

import (
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
)

// Version is the encoding version written by Encode. Decode accepts every version <= Version
// and refuses newer ones with an error that says to upgrade the node. A new version must keep
// decoding every older one: testdata/v<N>-*.golden pin each version's bytes (golden_test.go).
//
// History (the layout has not changed since 1):
//   - 2: a KindTx with BaseIndex 0 is conditional (it began before the first write); in 1 it
//     was applied unconditionally. See Command.Conditional.
const Version = 2

// Kind says how the state machine applies a command and what result it returns.
type Kind uint8

const (
	KindExec  Kind = 1 // run the SQL (possibly several statements); result: RowsAffected, LastInsertID of the last statement
	KindQuery Kind = 2 // run the SQL; result: the rows of the last statement (INSERT ... RETURNING etc.)
	KindTx    Kind = 3 // a committed transaction: Statements run in order, all or nothing
)

func (k Kind) valid() bool { return k >= KindExec && k <= KindTx }

func (k Kind) String() string {
	switch k {
	case KindExec:
		return "exec"
	case KindQuery:
		return "query"
	case KindTx:
		return "tx"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Settings are per-connection SQLite settings that change the meaning of SQL; the applier sets
// them before running the command. Adding a setting requires bumping Version, so that nodes
// that would ignore it refuse the entry instead of applying it differently.
type Settings uint32

const (
	ForeignKeys Settings = 1 << iota
	RecursiveTriggers
	CaseSensitiveLike
	IgnoreCheckConstraints
	DeferForeignKeys
)

// Arg is one bound argument, as database/sql's driver.NamedValue: Name without its prefix
// character (empty for positional), Ordinal 1-based, Value one of: nil, int64, float64, bool,
// []byte, string, time.Time. A nil []byte binds NULL and an empty one a zero-length blob; the
// encoding preserves the difference.
type Arg struct {
	Name    string
	Ordinal int
	Value   any
}

// Statement is one SQL text with its bound arguments.
type Statement struct {
	SQL  string
	Args []Arg
	// FailCode, in a transaction, is the SQLite extended error code the
	// statement failed with when the transaction ran on its node; 0 means
	// it succeeded. A statement that fails inside a SQLite transaction
	// keeps its partial effects (INSERT OR FAIL, a multi-statement Exec),
	// so the replay runs it too and expects the same failure.
	FailCode int
}

// Command is one replicated write, as proposed through raft.
type Command struct {
	Kind     Kind
	ClientID uint64 // proposer's client identity (exactly-once)
	Seq      uint64 // proposer's sequence number for ClientID
	Time     int64  // proposer's clock, Unix milliseconds (SQLite 'now')
	Seed     uint64 // seed for random()/randomblob()
	Settings Settings
	// BaseIndex: apply only if nothing was written after this raft index,
	// when the command is Conditional.
	BaseIndex uint64
	// Engine identifies the proposer's SQLite build (see EngineID). A node
	// whose build differs must not apply the command: the same SQL may
	// give different results on another SQLite. 0 = unchecked.
	Engine     uint32
	Statements []Statement
	// Encoding is the version Decode read the command from; 0 for one
	// built in memory (Encode always writes Version).
	Encoding uint8
}

// Conditional reports whether the command applies only if nothing was
// written after BaseIndex. A KindTx always is (base 0: it began before the
// database's first write), except in version 1 entries, where base 0 meant
// unconditional: they are applied as they were when written, or replicas
// that applied them under the old rule would diverge from a replay.
func (c *Command) Conditional() bool {
	return c.BaseIndex != 0 || c.Kind == KindTx && c.Encoding != 1
}

// Smallest encodings, used to bound counts against the remaining input before allocating.
const (
	minStatementSize = 3 // SQL length, fail code, argument count
	minArgSize       = 3 // name length, ordinal, value tag
)

// Encode appends the versioned binary encoding of c to dst and returns it. It fails for an
// argument value of an unsupported type (the error names the type and the argument position)
// and for an unknown Kind, which every node would refuse to decode.
func Encode(dst []byte, c *Command) ([]byte, error) {
	if c == nil {
		return dst, errors.New("command: Encode of a nil *Command")
	}
	if !c.Kind.valid() {
		return dst, fmt.Errorf("command: cannot encode unknown kind %d", uint8(c.Kind))
	}
	dst = append(dst, Version, byte(c.Kind))
	dst = binary.AppendUvarint(dst, c.ClientID)
	dst = binary.AppendUvarint(dst, c.Seq)
	dst = binary.AppendVarint(dst, c.Time)
	// Fixed width: a random seed would take 10 bytes as a varint.
	dst = binary.LittleEndian.AppendUint64(dst, c.Seed)
	dst = binary.AppendUvarint(dst, uint64(c.Settings))
	dst = binary.AppendUvarint(dst, c.BaseIndex)
	dst = binary.AppendUvarint(dst, uint64(c.Engine))
	dst = binary.AppendUvarint(dst, uint64(len(c.Statements)))
	for i := range c.Statements {
		s := &c.Statements[i]
		dst = appendString(dst, s.SQL)
		dst = binary.AppendVarint(dst, int64(s.FailCode))
		dst = binary.AppendUvarint(dst, uint64(len(s.Args)))
		for j := range s.Args {
			a := &s.Args[j]
			dst = appendString(dst, a.Name)
			dst = binary.AppendVarint(dst, int64(a.Ordinal))
			var ok bool
			if dst, ok = appendValue(dst, a.Value); !ok {
				return dst, fmt.Errorf("command: statement %d argument %d (ordinal %d, name %q): unsupported type %T",
					i, j, a.Ordinal, a.Name, a.Value)
			}
		}
	}
	return dst, nil
}

// Decode parses b. Any malformed input (truncated, bad tag, trailing bytes, unknown kind,
// newer version, lengths beyond the input) returns an error, never panics, and allocates at
// most O(len(b)). The result does not alias b.
func Decode(b []byte) (*Command, error) {
	d := decoder{buf: b}
	v := d.version()
	// Most commands hold one statement: allocate it together with the Command.
	block := &struct {
		c     Command
		first [1]Statement
	}{}
	c := &block.c
	c.Encoding = v
	c.Kind = Kind(d.byte())
	if d.err == nil && !c.Kind.valid() {
		d.fail("unknown command kind %d", uint8(c.Kind))
	}
	c.ClientID = d.uvarint()
	c.Seq = d.uvarint()
	c.Time = d.varint()
	c.Seed = d.uint64Fixed()
	settings := d.uvarint()
	if settings > 1<<32-1 {
		d.fail("settings %#x overflow 32 bits", settings)
	}
	c.Settings = Settings(settings)
	c.BaseIndex = d.uvarint()
	engine := d.uvarint()
	if engine > 1<<32-1 {
		d.fail("engine %#x overflows 32 bits", engine)
	}
	c.Engine = uint32(engine)
	if n := d.count("statement", minStatementSize); n == 1 {
		c.Statements = block.first[:]
	} else if n > 1 {
		c.Statements = make([]Statement, n)
	}
	for i := range c.Statements {
		d.statement(&c.Statements[i])
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	return c, nil
}

func (d *decoder) statement(s *Statement) {
	s.SQL = d.string()
	s.FailCode = d.int()
	n := d.count("argument", minArgSize)
	if n == 0 {
		return
	}
	s.Args = make([]Arg, n)
	for i := range s.Args {
		a := &s.Args[i]
		a.Name = d.string()
		a.Ordinal = d.int()
		a.Value = d.value()
	}
}

// EngineID is a short identity of a SQLite build: FNV-1a of its
// sqlite_source_id() (which names the exact source check-in). It is never 0.
func EngineID(sourceID string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(sourceID); i++ {
		h ^= uint32(sourceID[i])
		h *= 16777619
	}
	if h == 0 {
		h = 1
	}
	return h
}

// StatementSeed is the random seed of the i-th write statement of a
// transaction. The driver's local execution of the transaction and every
// node's replay draw random() and randomblob() from the same per-statement
// streams, so reads inside the transaction (which are not replayed) do not
// shift what later writes see.
func StatementSeed(txSeed uint64, i int) uint64 {
	z := txSeed + uint64(i+1)*0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// ArgsFromNamed converts database/sql's arguments to command arguments.
func ArgsFromNamed(args []driver.NamedValue) []Arg {
	if len(args) == 0 {
		return nil
	}
	out := make([]Arg, len(args))
	for i, a := range args {
		out[i] = Arg{Name: a.Name, Ordinal: a.Ordinal, Value: a.Value}
	}
	return out
}

// NamedValues converts command arguments back to database/sql's form, for
// binding with go-sqlite3.
func NamedValues(args []Arg) []driver.NamedValue {
	if len(args) == 0 {
		return nil
	}
	out := make([]driver.NamedValue, len(args))
	for i, a := range args {
		out[i] = driver.NamedValue{Name: a.Name, Ordinal: a.Ordinal, Value: a.Value}
	}
	return out
}
