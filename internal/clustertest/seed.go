package clustertest

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// Soak reports whether the long versions of the fault tests run
// (RSQLITE_SOAK=1, set by .ci/run).
func Soak() bool { return os.Getenv("RSQLITE_SOAK") == "1" }

// Seed returns RSQLITE_SEED or a fresh seed for a randomised test, logs it,
// and makes a failure print the command that reruns the test with it; pkg is
// the test's package path as given to go test (e.g. "./internal/faulttest/").
func Seed(t *testing.T, pkg string) uint64 {
	t.Helper()
	s := uint64(time.Now().UnixNano())
	if v := os.Getenv("RSQLITE_SEED"); v != "" {
		var err error
		if s, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("RSQLITE_SEED=%q: %v", v, err)
		}
	}
	t.Logf("seed %d", s)
	t.Cleanup(func() {
		if t.Failed() {
			env := ""
			if Soak() {
				env = "RSQLITE_SOAK=1 "
			}
			t.Logf("reproduce with: %sRSQLITE_SEED=%d go test -count=1 -run '^%s$' %s", env, s, t.Name(), pkg)
		}
	})
	return s
}
