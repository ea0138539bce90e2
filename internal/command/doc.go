// Package command encodes the writes that rsqlite replicates through raft, and the results
// that travel back from the state machine to the proposer.
//
// # Wire format (Versions 1 and 2)
//
// Version 2 has the layout of version 1; only what a KindTx with base index 0 means changed
// (see Command.Conditional).
//
// Integers are encoding/binary varints: "uvarint" unsigned, "varint" zigzag signed. Only
// minimal varints are accepted, so every value has exactly one encoding. A "string" is a
// uvarint byte length followed by the bytes (not required to be UTF-8). A "count" is a uvarint.
//
// Command:
//
//	version   byte     = Version
//	kind      byte     Kind (1 exec, 2 query, 3 tx)
//	clientID  uvarint
//	seq       uvarint
//	time      varint   Unix milliseconds
//	seed      8 bytes  little-endian
//	settings  uvarint  Settings bits (< 2^32)
//	baseIndex uvarint
//	engine    uvarint  EngineID of the proposer's SQLite (< 2^32), 0 = unchecked
//	count     statements, each:
//	    sql       string
//	    failCode  varint   expected SQLite extended error code in a transaction, 0 = none
//	    count     arguments, each:
//	        name     string (empty for positional)
//	        ordinal  varint
//	        value    tagged value
//
// Result:
//
//	version  byte  = Version
//	status   byte  0 ok, 1 error
//	error:   code varint, extendedCode varint, message string
//	ok:      rowsAffected varint, lastInsertID varint,
//	         count + column name strings, count + declared type strings,
//	         count rows, each: count + tagged values
//
// A tagged value is one tag byte followed by its payload:
//
//	0 nil
//	1 int64       varint
//	2 float64     8 bytes little-endian IEEE 754 bits (NaN payloads and -0 preserved)
//	3 false
//	4 true
//	5 []byte(nil) (binds NULL; distinct from an empty blob)
//	6 []byte      string-encoded bytes (length 0 decodes as a non-nil empty slice)
//	7 string      string
//	8 time.Time   varint Unix seconds, uvarint nanoseconds (< 1e9), varint zone offset in
//	              seconds, zone name string. Name "UTC" with offset 0 decodes as time.UTC,
//	              anything else as time.FixedZone(name, offset). No monotonic reading.
//
// # Compatibility
//
// Raft logs and snapshots outlive binaries: a newer node must be able to read every entry an
// older node wrote. So a tag, kind or status number is never reused for another meaning, and
// any change to the layout (or to what an existing field means, such as a new Settings bit)
// bumps Version while the decoder keeps reading every older version. A node that meets a
// version newer than its own refuses it with an error that says to upgrade, instead of
// applying it differently from the nodes that understand it.
package command
