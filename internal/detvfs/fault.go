package detvfs

/*
#include <stdlib.h>
#include "detvfs.h"
*/
import "C"

import (
	"fmt"
	"path/filepath"
	"unsafe"
)

// Fault is a disk fault that InjectFault makes SQLite's writes fail with, in
// files opened through a shim VFS (any VFS from New). The codes are the ones
// the "unix" VFS returns for the real errors.
type Fault int

const (
	// NoFault clears a prefix.
	NoFault Fault = iota
	// NoSpace is a full disk: xWrite fails with SQLITE_FULL (as unixWrite
	// reports ENOSPC). xSync and xTruncate still work: "unix" never reports a
	// full disk from them, and shrinking a file frees space.
	NoSpace
	// IOError is a failing disk (EIO): xWrite fails with SQLITE_IOERR_WRITE,
	// xSync with SQLITE_IOERR_FSYNC, xTruncate with SQLITE_IOERR_TRUNCATE.
	IOError
)

func (f Fault) String() string {
	switch f {
	case NoFault:
		return "NoFault"
	case NoSpace:
		return "NoSpace"
	case IOError:
		return "IOError"
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// MaxFaults is how many prefixes can carry a fault at once.
const MaxFaults = 8

// InjectFault makes every write (and, for IOError, sync and truncate) to
// files under the directory dirPrefix fail with f from now on, including
// files already open; f == NoFault clears dirPrefix. It is for tests: the
// fault is process-wide, so it hits every shim connection on those files.
//
// dirPrefix is a directory: it covers itself and the paths below it, and
// ".../node1" does not cover ".../node10". It is made absolute and its
// symlinks resolved, as SQLite does with database paths. Registering a
// prefix again replaces its fault; the longest covering prefix wins.
//
// Faulted: files under dirPrefix opened through a shim (main database, WAL,
// journals). Not faulted: reads, the -shm file, temp files, and connections
// opened with another VFS (e.g. vfs=unix readers, and the checkpoint they
// run when they close a WAL database last).
//
// It panics if f is invalid, dirPrefix is empty or too long, or MaxFaults
// prefixes are already registered.
func InjectFault(dirPrefix string, f Fault) {
	if f < NoFault || f > IOError {
		panic(fmt.Sprintf("detvfs: InjectFault: invalid fault %v", f))
	}
	if dirPrefix == "" {
		panic("detvfs: InjectFault: empty dirPrefix")
	}
	dir := faultDir(dirPrefix)
	cdir := C.CString(dir)
	defer C.free(unsafe.Pointer(cdir))
	switch rc := C.detvfs_inject_fault(cdir, C.int(f)); rc {
	case C.SQLITE_OK:
	case C.SQLITE_FULL:
		panic(fmt.Sprintf("detvfs: InjectFault(%q): %d prefixes already registered", dir, MaxFaults))
	default:
		panic(fmt.Sprintf("detvfs: InjectFault(%q): path too long", dir))
	}
}

// ClearFaults clears every prefix registered with InjectFault.
func ClearFaults() { C.detvfs_clear_faults() }

// FaultHits returns how many operations injected faults have failed since
// the process started (all prefixes), so a test can check a fault fired.
func FaultHits() uint64 { return uint64(C.detvfs_fault_hits()) }

// faultDir normalizes p as SQLite's xFullPathname does (absolute, symlinks
// resolved); a path that does not exist is only made absolute.
func faultDir(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		return r
	}
	return abs
}

// probeResult is what detvfs_probe saw (tests only).
type probeResult struct {
	open, write, sync, truncate int
	mirrored                    bool // method table mirrors the real one / pMethods NULL on failure
}

// probe opens path through v as a main database file (created if
// createFile), then writes, syncs and truncates it (tests only).
func probe(v *VFS, path string, createFile bool) probeResult {
	cvfs := C.CString(v.name)
	defer C.free(unsafe.Pointer(cvfs))
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	flags := C.int(C.SQLITE_OPEN_READWRITE)
	if createFile {
		flags |= C.SQLITE_OPEN_CREATE
	}
	var rc [4]C.int
	open := C.detvfs_probe(cvfs, cpath, flags, &rc[0])
	return probeResult{int(open), int(rc[0]), int(rc[1]), int(rc[2]), rc[3] != 0}
}
