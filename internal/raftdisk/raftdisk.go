// Package raftdisk is the file system under a node's raft log (dragonboat's
// Expert.FS). It differs from the operating system's in one way: a write
// that fails (a full disk, an I/O error) is retried until it succeeds
// instead of being returned.
//
// Why: dragonboat treats any error from its log store as fatal and panics,
// which in an embedded driver takes the application down with it. A failed
// write(2) leaves the file offset and the data already written unchanged,
// so writing the rest again once space returns gives exactly the file an
// uninterrupted write would have. While a write is stalled this node's raft
// work stops (for its peers it looks paused: they elect another leader and
// go on), and Fault reports the cause so that callers get a clear error
// instead of a bare timeout.
//
// A failed fsync is different: after one, Linux may have dropped the dirty
// pages while marking them clean, so a retried fsync can succeed with the
// data gone. Sync errors are therefore returned; dragonboat then stops the
// raft worker that wrote (fail-stop, as PostgreSQL does since 2018), and
// Fault reports the failure until the process restarts. Nothing
// acknowledged depends on the failed sync.
//
// dragonboat accepts no file system of its own for its log store except
// *vfs.ErrorFS (its error-injection wrapper), so Wrap returns one around an
// FS; its injector does nothing, the FS below does the work.
//
// Inject lets tests make the writes of one node's files fail the way a
// full or failing disk would.
package raftdisk

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lni/vfs"
)

// FS wraps a vfs.FS; see the package comment.
type FS struct {
	vfs.FS
	fault  atomic.Pointer[Fault] // the write stalled now, if any
	synced atomic.Pointer[Fault] // the first fsync that failed; never cleared
}

// New wraps base.
func New(base vfs.FS) *FS { return &FS{FS: base} }

// Wrap returns the *vfs.ErrorFS dragonboat wants around fs.
func Wrap(fs *FS) *vfs.ErrorFS { return vfs.Wrap(fs, noInjection{}) }

type noInjection struct{}

func (noInjection) MaybeError(vfs.Op) error { return nil }

// Fault describes a write that is failing now, or an fsync that failed.
type Fault struct {
	Path  string
	Since time.Time
	Err   error // the last error, an *os.PathError around a syscall.Errno
	// Fatal: an fsync failed; the node's raft log stays unusable until
	// the process restarts (see the package comment).
	Fatal bool
}

func (f *Fault) Error() string {
	if f.Fatal {
		return fmt.Sprintf("raft log fsync of %s failed at %s (%v); this node stopped writing its raft log rather than risk losing acknowledged writes: fix the disk and restart the process", f.Path, f.Since.Format(time.RFC3339), f.Err)
	}
	return fmt.Sprintf("raft log write to %s failing since %s: %v", f.Path, f.Since.Format(time.RFC3339), f.Err)
}

func (f *Fault) Unwrap() error { return f.Err }

// Fault returns the failed fsync, else the write that is stalled now, or nil.
func (fs *FS) Fault() *Fault {
	if f := fs.synced.Load(); f != nil {
		return f
	}
	return fs.fault.Load()
}

func (fs *FS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	sf := &file{File: f, fs: fs, path: name}
	if fd, ok := f.(interface{ Fd() uintptr }); ok {
		// pebble uses the descriptor for fdatasync and preallocation.
		return &fdFile{sf, fd}, nil
	}
	return sf, nil
}

func (fs *FS) Create(name string) (vfs.File, error) {
	f, err := fs.FS.Create(name)
	return fs.wrap(name, f, err)
}

func (fs *FS) OpenForAppend(name string) (vfs.File, error) {
	f, err := fs.FS.OpenForAppend(name)
	return fs.wrap(name, f, err)
}

func (fs *FS) ReuseForWrite(oldname, newname string) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname)
	return fs.wrap(newname, f, err)
}

func (fs *FS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.Open(name)
	if err != nil {
		return nil, err
	}
	wf, _ := fs.wrap(name, f, nil)
	for _, o := range opts {
		o.Apply(wf)
	}
	return wf, nil
}

type file struct {
	vfs.File
	fs   *FS
	path string
}

type fdFile struct {
	*file
	fd interface{ Fd() uintptr }
}

func (f *fdFile) Fd() uintptr { return f.fd.Fd() }

// Write writes all of p, waiting out errors; see the package comment.
func (f *file) Write(p []byte) (int, error) {
	return f.retry(p, func(p []byte, done int) (int, error) {
		if err := injected(f.path, "write"); err != nil {
			return 0, err
		}
		return f.File.Write(p)
	})
}

func (f *file) WriteAt(p []byte, off int64) (int, error) {
	return f.retry(p, func(p []byte, done int) (int, error) {
		if err := injected(f.path, "write"); err != nil {
			return 0, err
		}
		return f.File.WriteAt(p, off+int64(done))
	})
}

// maxPause bounds the wait between two attempts of a stalled write.
const maxPause = time.Second

func (f *file) retry(p []byte, write func(p []byte, done int) (int, error)) (int, error) {
	var done int
	var stalled *Fault
	pause := 5 * time.Millisecond
	for {
		n, err := write(p[done:], done)
		done += n
		if err == nil || done == len(p) {
			if stalled != nil {
				f.fs.fault.CompareAndSwap(stalled, nil)
			}
			return done, nil
		}
		if errors.Is(err, os.ErrClosed) {
			return done, err // a bug, not the disk
		}
		since := time.Now()
		if stalled != nil {
			since = stalled.Since
		}
		stalled = &Fault{Path: f.path, Since: since, Err: err}
		f.fs.fault.Store(stalled)
		time.Sleep(pause)
		pause = min(2*pause, maxPause)
	}
}

// Sync returns errors; see the package comment. It is fdatasync where the
// file has a descriptor, as pebble's own Linux files do: the *vfs.ErrorFS
// dragonboat insists on hides the descriptor from pebble.
func (f *file) Sync() error {
	err := injected(f.path, "fsync")
	if err == nil {
		err = datasync(f.File)
	}
	if err != nil {
		fault := &Fault{Path: f.path, Since: time.Now(), Err: err, Fatal: true}
		f.fs.synced.CompareAndSwap(nil, fault)
		return fault
	}
	return nil
}

// Kind is a fault Inject can make.
type Kind int

const (
	NoFault     Kind = iota
	NoSpace          // writes fail with ENOSPC
	IOError          // writes fail with EIO
	SyncIOError      // fsyncs fail with EIO (the node stops)
)

var (
	injectMu sync.Mutex
	faults   atomic.Pointer[map[string]Kind] // dir prefix -> kind; nil when none
)

// Inject makes the raft log files under dir fail as k says, from now until
// Inject(dir, NoFault). For tests.
func Inject(dir string, k Kind) {
	injectMu.Lock()
	defer injectMu.Unlock()
	next := map[string]Kind{}
	if cur := faults.Load(); cur != nil {
		for d, k := range *cur {
			next[d] = k
		}
	}
	if k == NoFault {
		delete(next, dir)
	} else {
		next[dir] = k
	}
	if len(next) == 0 {
		faults.Store(nil)
		return
	}
	faults.Store(&next)
}

func injected(path, op string) error {
	m := faults.Load()
	if m == nil {
		return nil
	}
	for dir, k := range *m {
		if !strings.HasPrefix(path, dir) {
			continue
		}
		switch {
		case k == NoSpace && op == "write":
			return &os.PathError{Op: op, Path: path, Err: syscall.ENOSPC}
		case k == IOError && op == "write", k == SyncIOError && op == "fsync":
			return &os.PathError{Op: op, Path: path, Err: syscall.EIO}
		}
	}
	return nil
}
