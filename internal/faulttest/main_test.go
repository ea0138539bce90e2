package faulttest

import (
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/rsqlite/rsqlite/cluster"
	"github.com/rsqlite/rsqlite/internal/leakcheck"
)

// TestMain silences dragonboat (partitions make it log every refused
// connection) unless RSQLITE_LOG=1, and fails the run if a test left a
// node running.
func TestMain(m *testing.M) {
	if os.Getenv("RSQLITE_LOG") != "1" {
		cluster.SetLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	}
	os.Exit(leakcheck.Main(m))
}
