package rsqlite_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rsqlite/rsqlite/internal/clustertest"
)

// TestExternalProgram builds testdata/external, a program in a module of its
// own that only imports the driver for its side effect, and runs it against
// three nodes it opens itself: create, write and read on every node, lose
// each node in turn and go on. It checks what a user outside this module
// gets from `go get` plus `sql.Open("rsqlite", dsn)`, nothing internal.
func TestExternalProgram(t *testing.T) {
	if raceEnabled {
		t.Skip("builds and runs a separate program; nothing for the race detector here")
	}
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	mod := t.TempDir()
	src, err := os.ReadFile(filepath.Join("testdata", "external", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	goMod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goSum, err := os.ReadFile("go.sum")
	if err != nil {
		t.Fatal(err)
	}
	// The same requirements as this module (so the build needs no network),
	// under another module path, with the driver replaced by this checkout.
	mf := strings.Replace(string(goMod), "module github.com/rsqlite/rsqlite", "module example.com/external", 1) +
		"\nrequire github.com/rsqlite/rsqlite v0.0.0\n\nreplace github.com/rsqlite/rsqlite => " + root + "\n"
	for name, data := range map[string][]byte{"main.go": src, "go.mod": []byte(mf), "go.sum": goSum} {
		if err := os.WriteFile(filepath.Join(mod, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command to build the program with: %v", err)
	}
	bin := filepath.Join(mod, "external")
	build := exec.Command(goTool, "build", "-o", bin, ".")
	build.Dir = mod
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build of the external program: %v\n%s", err, out)
	}

	peers := []string{clustertest.FreeAddr(t), clustertest.FreeAddr(t), clustertest.FreeAddr(t)}
	ctx := context.Background()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-10*time.Second))
		defer cancel()
	}
	run := exec.CommandContext(ctx, bin, "-dir", t.TempDir(), "-peers", strings.Join(peers, ","))
	out, err := run.CombinedOutput()
	t.Logf("external program:\n%s", out)
	if err != nil {
		t.Fatalf("external program failed: %v", err)
	}
	for _, want := range []string{
		"wrote 15 rows through three nodes, read them on each",
		"node 1 lost: the others wrote on, it came back with all 25 rows",
		"node 2 lost: the others wrote on, it came back with all 35 rows",
		"node 3 lost: the others wrote on, it came back with all 45 rows",
		"ok",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
