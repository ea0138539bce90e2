package cluster

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestRecordBuild: a node records the build it runs with and reports the
// one it ran before when it changed (an upgrade), once.
func TestRecordBuild(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".rsqlite")
	read := func() Build {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, "build.json"))
		if err != nil {
			t.Fatal(err)
		}
		var got Build
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	cur := CurrentBuild()
	if cur.SQLite == "" || cur.Engine == "" || cur.Encoding == 0 {
		t.Fatalf("current build incomplete: %+v", cur)
	}
	for i := range 2 { // first start, then an unchanged restart
		if prev, err := recordBuild(dir); err != nil || prev != nil {
			t.Fatalf("start %d: previous %+v, %v; want none", i, prev, err)
		}
		if got := read(); got != cur {
			t.Fatalf("recorded %+v, want %+v", got, cur)
		}
	}
	old := Build{SQLite: "2020-01-01 00:00:00 older", Engine: "01234567", Encoding: 1}
	b, _ := json.Marshal(old)
	if err := os.WriteFile(filepath.Join(dir, "build.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if prev, err := recordBuild(dir); err != nil || prev == nil || *prev != old {
		t.Fatalf("after an upgrade: previous %+v, %v; want %+v", prev, err, old)
	}
	if got := read(); got != cur {
		t.Fatalf("recorded %+v after the upgrade, want %+v", got, cur)
	}
	if err := os.WriteFile(filepath.Join(dir, "build.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if prev, err := recordBuild(dir); err != nil || prev != nil {
		t.Fatalf("corrupt record: previous %+v, %v; want it overwritten", prev, err)
	}
	if got := read(); got != cur {
		t.Fatalf("recorded %+v after a corrupt record, want %+v", got, cur)
	}
}
