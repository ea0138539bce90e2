package raftdisk

import (
	"os"
	"syscall"

	"github.com/lni/vfs"
)

// datasync is fdatasync(2) when f has a descriptor, else f.Sync.
func datasync(f vfs.File) error {
	fd, ok := f.(interface{ Fd() uintptr })
	if !ok {
		return f.Sync()
	}
	for {
		err := syscall.Fdatasync(int(fd.Fd()))
		if err != syscall.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Err: err}
			}
			return nil
		}
	}
}
