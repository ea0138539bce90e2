package detvfs

/*
#include <stdlib.h>
#include "detvfs.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	// The C code calls sqlite3_* functions compiled into go-sqlite3's
	// amalgamation; importing it makes the final (external) link resolve them.
	_ "github.com/mattn/go-sqlite3"
)

// VFS is one deterministic shim VFS instance, wrapping "unix", meant for
// exactly ONE SQLite connection (the state machine's applying connection),
// opened with the DSN parameter vfs=<Name()>.
//
// Set, Clear, ResetConn, SetGuard and LastDenied must be called by the single
// goroutine that owns the connection, between statements. The connection
// must not be closed concurrently with those calls (hold a *sql.Conn, or keep
// the pool from expiring it).
type VFS struct {
	p    *C.detvfs
	name string
}

var (
	installOnce sync.Once
	installErr  error
	nextID      atomic.Uint64
)

// ErrConnOpen is returned by Close while a connection opened with the VFS is
// still open.
var ErrConnOpen = errors.New("detvfs: a connection using this VFS is still open")

// New registers a uniquely named shim VFS ("rsqlite-det-<n>"), never as the
// default VFS, and installs (once per process) the auto-extension that binds
// random(), randomblob() and the replication authorizer to every connection
// opened with a shim.
func New() (*VFS, error) {
	installOnce.Do(func() {
		if rc := C.detvfs_install_autoext(); rc != C.SQLITE_OK {
			installErr = fmt.Errorf("detvfs: sqlite3_auto_extension failed: %s", errstr(rc))
		}
	})
	if installErr != nil {
		return nil, installErr
	}
	name := fmt.Sprintf("rsqlite-det-%d", nextID.Add(1))
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var rc C.int
	p := C.detvfs_new(cname, &rc)
	if p == nil {
		return nil, fmt.Errorf("detvfs: registering VFS %s: %s", name, errstr(rc))
	}
	return &VFS{p: p, name: name}, nil
}

// Name returns the registered VFS name, for the DSN parameter vfs=<Name()>.
func (v *VFS) Name() string { return v.name }

// Set stamps the clock (Unix milliseconds; SQLite's 'now',
// CURRENT_TIMESTAMP/DATE/TIME, in statements, DEFAULTs and triggers) and the
// seed for random()/randomblob() for the statements run after it. It restarts
// the PRNG sequence from the seed, so the same Set + same statements give the
// same values on every machine.
//
// The PRNG: the i-th 64-bit word (i = 0, 1, ... since Set) is splitmix64's
// finalizer applied to seed + (i+1)*0x9E3779B97F4A7C15. random() takes one
// word (negative values r become -(r & INT64_MAX), as in SQLite);
// randomblob(N) takes ceil(N/8) words and emits each little-endian, the last
// one truncated.
func (v *VFS) Set(unixMilli int64, seed uint64) {
	if v.p != nil {
		C.detvfs_set(v.p, C.int64_t(unixMilli), C.uint64_t(seed))
	}
}

// Clear returns to the real clock and real (sqlite3_randomness) randomness.
func (v *VFS) Clear() {
	if v.p != nil {
		C.detvfs_clear(v.p)
	}
}

// ResetConn resets per-connection state that leaks between entries: it calls
// sqlite3_set_last_insert_rowid(db, 0) on the connection opened with this
// VFS. No-op if no connection is open. (changes() is not reset; see doc.go.)
func (v *VFS) ResetConn() {
	if v.p != nil {
		C.detvfs_reset_conn(v.p)
	}
}

// SetGuard turns the replication authorizer on the connection on (true) or
// off. SetGuard(true) clears LastDenied. Turning it on after the guard-off
// period prepared something the guard would deny (bookkeeping writes,
// SAVEPOINT, ...) expires the connection's prepared statements, so cached
// statements are re-authorized before they run again (see doc.go).
func (v *VFS) SetGuard(on bool) {
	if v.p == nil {
		return
	}
	var c C.int
	if on {
		c = 1
	}
	C.detvfs_set_guard(v.p, c)
}

// TrustPrepared tells the guard that the connection's owner never runs a
// statement prepared with the guard off while the guard is on (a statement
// cache, if any, holds only statements prepared with the guard on). SetGuard(true) then
// skips expiring the connection's prepared statements, which would otherwise
// make the owner's own bookkeeping statements re-prepare on every use.
func (v *VFS) TrustPrepared() {
	if v.p == nil {
		return
	}
	C.detvfs_set_trusted(v.p, 1)
}

// LastDenied names the last action the guard denied, e.g. "ATTACH",
// "PRAGMA foreign_keys" or "write to _rsqlite_meta"; "" if none since the
// last SetGuard(true).
func (v *VFS) LastDenied() string {
	if v.p == nil {
		return ""
	}
	return C.GoString(C.detvfs_last_denied(v.p))
}

// Close unregisters the VFS and frees it. Call it only after the connection
// using it is closed; while one is open it returns ErrConnOpen and keeps the
// VFS. Closing twice is a no-op.
func (v *VFS) Close() error {
	if v.p == nil {
		return nil
	}
	if rc := C.detvfs_close(v.p); rc != C.SQLITE_OK {
		return fmt.Errorf("%w (%s)", ErrConnOpen, v.name)
	}
	v.p = nil
	return nil
}

// openConns reports how many connections currently use the VFS (tests).
func (v *VFS) openConns() int {
	if v.p == nil {
		return 0
	}
	return int(C.detvfs_nconn(v.p))
}

var pinOnce sync.Once

// PinLocaltime makes SQLite's 'localtime' and 'utc' modifiers behave as if
// the process time zone were UTC, process-wide (SQLITE_TESTCTRL_LOCALTIME_FAULT
// with an xAlt that calls gmtime_r), so every node evaluates them the same
// whatever its TZ. Idempotent. Call it at start-up, before opening databases.
func PinLocaltime() {
	pinOnce.Do(func() { C.detvfs_pin_localtime() })
}

func errstr(rc C.int) string {
	return C.GoString(C.sqlite3_errstr(rc))
}
