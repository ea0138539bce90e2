package rsqlite

import (
	"errors"
	"reflect"
	"syscall"
	"unsafe"

	"github.com/mattn/go-sqlite3"

	"github.com/rsqlite/rsqlite/cluster"
	"github.com/rsqlite/rsqlite/internal/command"
)

// Errors a call can end with besides SQLite's own. A write that ends with
// ErrNoQuorum or ErrTimeout may or may not have been applied; read it back
// before retrying anything that is not idempotent. ErrDiskFault: this
// node's disk is full or failing; a *DiskFaultError was refused before
// anything was proposed (safe to retry), a timeout that also matches
// ErrDiskFault was in flight when the disk failed (outcome unknown).
var (
	ErrNoQuorum  = cluster.ErrNoQuorum
	ErrTimeout   = cluster.ErrTimeout
	ErrClosed    = cluster.ErrClosed
	ErrDiskFault = cluster.ErrDiskFault
)

// DiskFaultError refuses a write or linearizable read up front because this
// node's raft log or SQLite file cannot be written (see cluster). errors.As
// to a sqlite3.Error gives SQLITE_FULL for a full disk, SQLITE_IOERR else.
type DiskFaultError = cluster.DiskFaultError

// sqliteErrorLayout mirrors sqlite3.Error, whose message field is
// unexported. Setting it lets callers get a genuine sqlite3.Error (type
// switches, errors.As, and Error() all as with go-sqlite3). layoutMatches
// checks the mirror against the real type once; if a go-sqlite3 upgrade
// changes it, errors keep their codes and lose only the detailed message.
type sqliteErrorLayout struct {
	Code         sqlite3.ErrNo
	ExtendedCode sqlite3.ErrNoExtended
	SystemErrno  syscall.Errno
	err          string
}

var layoutMatches = func() bool {
	real, mirror := reflect.TypeOf(sqlite3.Error{}), reflect.TypeOf(sqliteErrorLayout{})
	if real.Size() != mirror.Size() || real.NumField() != mirror.NumField() {
		return false
	}
	for i := 0; i < real.NumField(); i++ {
		a, b := real.Field(i), mirror.Field(i)
		if a.Name != b.Name || a.Type != b.Type || a.Offset != b.Offset {
			return false
		}
	}
	return true
}()

// sqliteError turns an error recorded by the state machine back into what
// go-sqlite3 would have returned.
func sqliteError(e *command.Error) error {
	if e.Code == 0 {
		// go-sqlite3's own errors (argument checks) are plain errors.
		return errors.New(e.Message)
	}
	se := sqlite3.Error{Code: sqlite3.ErrNo(e.Code), ExtendedCode: sqlite3.ErrNoExtended(e.ExtendedCode)}
	if layoutMatches {
		(*sqliteErrorLayout)(unsafe.Pointer(&se)).err = e.Message
	}
	return se
}
