//go:build !linux

package raftdisk

import "github.com/lni/vfs"

func datasync(f vfs.File) error { return f.Sync() }
