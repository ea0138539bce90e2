package cluster

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/mattn/go-sqlite3"

	"github.com/rsqlite/rsqlite/internal/raftdisk"
)

// ErrDiskFault: this node cannot write to its disk (full, or failing with
// I/O errors). Errors that wrap it are *DiskFaultError, or a timeout whose
// outcome is unknown because the disk failed while the write was in flight.
var ErrDiskFault = errors.New("rsqlite: this node cannot write to its disk")

// DiskFaultError refuses an operation up front because this node's disk is
// failing writes: its raft log cannot take entries (internal/raftdisk) or
// its replica cannot apply committed ones (statemachine.ApplyFault). Nothing
// was proposed, so retrying is safe: on another node now, or here once the
// disk has space again; the node resumes by itself.
//
// It unwraps to the cause, so errors.Is(err, syscall.ENOSPC) works, and
// errors.As(err, &sqlite3.Error{}) finds the code plain SQLite would give on
// that disk: SQLITE_FULL for a full one, SQLITE_IOERR otherwise.
type DiskFaultError struct {
	Op    string
	Cause error
}

func (e *DiskFaultError) Error() string {
	return fmt.Sprintf("rsqlite: %s refused (nothing proposed; retry on another node or once the disk is fixed): this node cannot write to its disk: %v", e.Op, e.Cause)
}

func (e *DiskFaultError) Unwrap() error { return e.Cause }

func (e *DiskFaultError) Is(target error) bool { return target == ErrDiskFault }

// As gives callers that test for sqlite3.Error the code SQLite reports for
// the same disk condition.
func (e *DiskFaultError) As(target any) bool {
	p, ok := target.(*sqlite3.Error)
	if !ok {
		return false
	}
	var se sqlite3.Error
	if errors.As(e.Cause, &se) {
		*p = se
		return true
	}
	if errors.Is(e.Cause, syscall.ENOSPC) {
		*p = sqlite3.Error{Code: sqlite3.ErrFull, ExtendedCode: sqlite3.ErrNoExtended(sqlite3.ErrFull), SystemErrno: syscall.ENOSPC}
		return true
	}
	*p = sqlite3.Error{Code: sqlite3.ErrIoErr, ExtendedCode: sqlite3.ErrIoErrWrite}
	var rf *raftdisk.Fault
	if errors.As(e.Cause, &rf) && rf.Fatal {
		p.ExtendedCode = sqlite3.ErrIoErrFsync
	}
	var errno syscall.Errno
	if errors.As(e.Cause, &errno) {
		p.SystemErrno = errno
	}
	return true
}

// diskFault returns why this node cannot write for shardID now, or nil.
// Only retry's failure paths ask, so the scan of the databases is cheap.
func (n *Node) diskFault(shardID uint64) error {
	n.mu.Lock()
	var db *DB
	for _, d := range n.dbs {
		if d.shardID == shardID {
			db = d
		}
	}
	n.mu.Unlock()
	if db != nil {
		return db.diskFault()
	}
	return n.logFault() // the catalog: no SQLite file of ours
}

// logFault is the raft log's fault, as an error (nil when none).
func (n *Node) logFault() error {
	if f := n.disk.Fault(); f != nil {
		return f
	}
	return nil
}

func (db *DB) diskFault() error {
	s := db.cur()
	if err := db.node.logFault(); err != nil || s == nil {
		return err
	}
	if f := s.Fault(); f != nil {
		return f
	}
	return nil
}
