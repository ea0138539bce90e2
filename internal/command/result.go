package command

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Error is an error raised while applying: a SQLite error (Code/ExtendedCode as sqlite3.ErrNo /
// ErrNoExtended values, Message the sqlite3_errmsg text) or, with Code 0, another error of the
// applier (e.g. "not enough args to execute query") carried as text.
type Error struct {
	Code         int
	ExtendedCode int
	Message      string
}

// Error returns Message.
func (e *Error) Error() string { return e.Message }

// Result is what applying a command produced on the state machine. Exactly one of Err or the
// data fields is meaningful; when Err is set only Err is encoded.
type Result struct {
	Err          *Error
	RowsAffected int64
	LastInsertID int64
	Columns      []string
	DeclTypes    []string
	Rows         [][]any // values: nil, int64, float64, bool, []byte, string, time.Time
}

// Result status byte, after the version.
const (
	statusOK    byte = 0
	statusError byte = 1
)

// EncodeResult appends the versioned binary encoding of r to dst and returns it. It fails only
// for a row value of an unsupported type (the error names the type and its row and column).
func EncodeResult(dst []byte, r *Result) ([]byte, error) {
	if r == nil {
		return dst, errors.New("command: EncodeResult of a nil *Result")
	}
	dst = append(dst, Version)
	if r.Err != nil {
		dst = append(dst, statusError)
		dst = binary.AppendVarint(dst, int64(r.Err.Code))
		dst = binary.AppendVarint(dst, int64(r.Err.ExtendedCode))
		return appendString(dst, r.Err.Message), nil
	}
	dst = append(dst, statusOK)
	dst = binary.AppendVarint(dst, r.RowsAffected)
	dst = binary.AppendVarint(dst, r.LastInsertID)
	dst = appendStrings(dst, r.Columns)
	dst = appendStrings(dst, r.DeclTypes)
	dst = binary.AppendUvarint(dst, uint64(len(r.Rows)))
	for i, row := range r.Rows {
		// Each row carries its own width so a ragged Rows round-trips instead of corrupting.
		dst = binary.AppendUvarint(dst, uint64(len(row)))
		for j, v := range row {
			var ok bool
			if dst, ok = appendValue(dst, v); !ok {
				return dst, fmt.Errorf("command: result row %d column %d: unsupported type %T", i, j, v)
			}
		}
	}
	return dst, nil
}

func appendStrings(dst []byte, ss []string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ss)))
	for _, s := range ss {
		dst = appendString(dst, s)
	}
	return dst
}

// DecodeResult parses b with the same rules as Decode: malformed input returns an error, never
// panics, and allocates at most O(len(b)). The result does not alias b.
func DecodeResult(b []byte) (*Result, error) {
	d := decoder{buf: b}
	d.version()
	r := &Result{}
	switch status := d.byte(); status {
	case statusError:
		e := &Error{}
		e.Code = d.int()
		e.ExtendedCode = d.int()
		e.Message = d.string()
		r.Err = e
	case statusOK:
		r.RowsAffected = d.varint()
		r.LastInsertID = d.varint()
		r.Columns = d.strings("column")
		r.DeclTypes = d.strings("declared type")
		if n := d.count("row", 1); n > 0 {
			r.Rows = make([][]any, n)
			for i := range r.Rows {
				r.Rows[i] = d.row()
			}
		}
	default:
		d.fail("unknown result status %d", status)
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	return r, nil
}

func (d *decoder) row() []any {
	n := d.count("value", 1)
	if n == 0 {
		return nil
	}
	row := make([]any, n)
	for i := range row {
		row[i] = d.value()
	}
	return row
}
