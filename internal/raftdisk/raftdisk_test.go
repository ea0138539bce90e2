package raftdisk

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/lni/vfs"
)

// A write that fails is retried until the fault clears, Fault says why
// meanwhile, and the file ends up exactly as an uninterrupted write makes it.
func TestWriteStallsUntilTheDiskRecovers(t *testing.T) {
	for _, k := range []Kind{NoSpace, IOError} {
		dir := t.TempDir()
		fs := New(vfs.Default)
		path := filepath.Join(dir, "log")
		f, err := Wrap(fs).Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("before ")); err != nil {
			t.Fatal(err)
		}
		Inject(dir+"/", k)
		done := make(chan error, 1)
		go func() {
			_, err := f.Write([]byte("during"))
			done <- err
		}()
		deadline := time.Now().Add(5 * time.Second)
		for fs.Fault() == nil && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		fault := fs.Fault()
		want := map[Kind]syscall.Errno{NoSpace: syscall.ENOSPC, IOError: syscall.EIO}[k]
		if fault == nil || !errors.Is(fault, want) || fault.Fatal {
			t.Fatalf("kind %d: Fault() = %v, want a stalled write with %v", k, fault, want)
		}
		select {
		case err := <-done:
			t.Fatalf("kind %d: the write returned (%v) while the disk failed", k, err)
		case <-time.After(50 * time.Millisecond):
		}
		Inject(dir+"/", NoFault)
		if err := <-done; err != nil {
			t.Fatalf("kind %d: write after recovery: %v", k, err)
		}
		if fs.Fault() != nil {
			t.Errorf("kind %d: Fault() = %v after recovery", k, fs.Fault())
		}
		f.Close()
		if b, _ := os.ReadFile(path); !bytes.Equal(b, []byte("before during")) {
			t.Errorf("kind %d: file holds %q", k, b)
		}
	}
}

// A failed fsync is returned and stays reported: the data may be gone.
func TestFailedSyncIsFatal(t *testing.T) {
	dir := t.TempDir()
	fs := New(vfs.Default)
	f, err := fs.Create(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, ok := f.(interface{ Fd() uintptr }); !ok {
		t.Error("the wrapped file hides Fd(), which pebble uses for fdatasync")
	}
	Inject(dir+"/", SyncIOError)
	err = f.Sync()
	Inject(dir+"/", NoFault)
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("Sync = %v, want EIO", err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("second Sync after the fault cleared: %v", err)
	}
	if got := fs.Fault(); got == nil || !got.Fatal {
		t.Fatalf("Fault() = %v after a failed fsync, want it fatal until restart", got)
	}
}

// Faults apply to the injected directory only, not to one whose name
// merely starts the same way.
func TestInjectMatchesTheDirectoryOnly(t *testing.T) {
	base := t.TempDir()
	Inject(filepath.Join(base, "node1")+"/", NoSpace)
	defer Inject(filepath.Join(base, "node1")+"/", NoFault)
	if err := injected(filepath.Join(base, "node10", "log"), "write"); err != nil {
		t.Errorf("node10 got node1's fault: %v", err)
	}
	if err := injected(filepath.Join(base, "node1", "log"), "write"); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("node1: %v, want ENOSPC", err)
	}
}
