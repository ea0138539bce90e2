package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rsqlite/rsqlite/cluster"
)

// rsqlite status marks a halted replica in the READY column and prints why
// after the table.
func TestPrintStatusShowsHalt(t *testing.T) {
	const cause = "replica halted: entry 7 was proposed by a node running another SQLite build"
	st := &cluster.Status{ReplicaID: 1, Databases: []cluster.DBStatus{
		{Name: "ok.db", Ready: true},
		{Name: "stuck.db", Ready: true, Halted: cause},
	}}
	var buf bytes.Buffer
	printStatus(&buf, st)
	out := buf.String()
	rows := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasSuffix(f[0], ".db") {
			rows[f[0]] = f[len(f)-1]
		}
	}
	if rows["ok.db"] != "yes" || rows["stuck.db"] != "halted" {
		t.Errorf("READY column: %v\n%s", rows, out)
	}
	if !strings.Contains(out, "stuck.db: "+cause) || strings.Contains(out, "ok.db: ") {
		t.Errorf("the cause is not printed for the halted database only:\n%s", out)
	}
}

// rsqlite status names the node's build, and the one it ran before when an
// upgrade changed it.
func TestPrintStatusShowsBuild(t *testing.T) {
	st := &cluster.Status{ReplicaID: 1, Build: cluster.CurrentBuild()}
	var buf bytes.Buffer
	printStatus(&buf, st)
	if out := buf.String(); !strings.Contains(out, "engine "+st.Engine) || strings.Contains(out, "changed at the last start") {
		t.Errorf("build line:\n%s", out)
	}
	st.PreviousBuild = &cluster.Build{SQLite: "2020-01-01 00:00:00 0123456789abcdef", Engine: "01234567", Encoding: 1}
	buf.Reset()
	printStatus(&buf, st)
	if out := buf.String(); !strings.Contains(out, "changed at the last start: was SQLite 2020-01-01 00:00:00 0123456789 (engine 01234567)") {
		t.Errorf("previous build line:\n%s", out)
	}
}
