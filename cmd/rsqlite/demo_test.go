package main

import (
	"strings"
	"testing"
)

// TestDemo runs `rsqlite demo`, the README's first command, from the built
// binary: it must finish cleanly and show the leader's stop, the writes
// that went on, the catch-up and three equal files.
func TestDemo(t *testing.T) {
	out := mustTool(t, "demo")
	for _, want := range []string{
		"Stopping the leader",
		"all 200 writes succeeded",
		"caught up",
		"node3: 203 rows, max id 203",
		"Done.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
