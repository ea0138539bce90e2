package cluster

import (
	"bytes"
	"encoding/json"
	"testing"

	sm "github.com/lni/dragonboat/v4/statemachine"
)

// TestCatalogSleepAndWake: a database sleeps once every needed replica
// voted in its current epoch; a wake (asleep or not) starts a new epoch
// that voids older votes; every change is told to onChange; the state
// survives a snapshot.
func TestCatalogSleepAndWake(t *testing.T) {
	var changes []dbInfo
	c := newCatalogSM(func(d dbInfo) { changes = append(changes, d) })
	apply := func(cmd catalogCommand) sm.Result {
		t.Helper()
		b, _ := json.Marshal(cmd)
		r, err := c.Update(sm.Entry{Cmd: b})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	info := func(name string) dbInfo {
		v, _ := c.Lookup(name)
		return v.(lookupResult).info
	}
	need := []uint64{1, 2, 3}
	vote := func(replica, epoch uint64, names ...string) uint64 {
		cmd := catalogCommand{Op: "idle", Replica: replica, Need: need}
		for _, n := range names {
			cmd.Votes = append(cmd.Votes, idleVote{Name: n, Epoch: epoch})
		}
		return apply(cmd).Value
	}
	apply(catalogCommand{Op: "create", Name: "a.db", ConfigChangeID: 7})
	apply(catalogCommand{Op: "create", Name: "b.db"})
	if got := info("a.db").Reconciled; got != 7 {
		t.Fatalf("created reconciled at %d, want 7", got)
	}
	changes = nil

	if n := vote(1, 0, "a.db", "b.db", "missing.db"); n != 0 {
		t.Fatalf("%d asleep after one vote", n)
	}
	vote(2, 0, "a.db")
	vote(2, 0, "a.db") // a repeated vote counts once
	if info("a.db").Asleep {
		t.Fatal("asleep with two of three votes")
	}
	// A wake before the last vote voids the earlier ones.
	apply(catalogCommand{Op: "wake", Name: "a.db"})
	if n := vote(3, 0, "a.db"); n != 0 || info("a.db").Asleep {
		t.Fatal("a vote from the previous epoch completed a sleep")
	}
	for r := uint64(1); r <= 3; r++ {
		vote(r, 1, "a.db")
	}
	if a := info("a.db"); !a.Asleep || a.Idle != nil || a.Epoch != 1 {
		t.Fatalf("after every vote of epoch 1: %+v", a)
	}
	if n := vote(1, 1, "a.db"); n != 0 {
		t.Fatal("a vote for a sleeping database counted")
	}
	apply(catalogCommand{Op: "wake", Name: "a.db"})
	if a := info("a.db"); a.Asleep || a.Epoch != 2 {
		t.Fatalf("after the wake: %+v", a)
	}
	// onChange saw: the voiding wake, the sleep, the wake.
	if len(changes) != 3 || changes[0].Asleep || !changes[1].Asleep || changes[2].Asleep {
		t.Fatalf("onChange calls: %+v", changes)
	}
	if r := apply(catalogCommand{Op: "wake", Name: "missing.db"}); r.Value != 0 {
		t.Fatal("waking an unknown database was accepted")
	}
	apply(catalogCommand{Op: "reconciled", ConfigChangeID: 9, Names: []string{"a.db", "b.db"}})
	apply(catalogCommand{Op: "reconciled", ConfigChangeID: 8, Names: []string{"a.db"}}) // older: ignored
	if a, b := info("a.db"), info("b.db"); a.Reconciled != 9 || b.Reconciled != 9 {
		t.Fatalf("reconciled at %d and %d, want 9", a.Reconciled, b.Reconciled)
	}

	// Put b.db to sleep, then check a snapshot keeps it all.
	for r := uint64(1); r <= 3; r++ {
		vote(r, 0, "b.db")
	}
	var buf bytes.Buffer
	if err := c.SaveSnapshot(&buf, nil, nil); err != nil {
		t.Fatal(err)
	}
	recovered := map[string]dbInfo{}
	c2 := newCatalogSM(func(d dbInfo) { recovered[d.Name] = d })
	if err := c2.RecoverFromSnapshot(&buf, nil, nil); err != nil {
		t.Fatal(err)
	}
	if a, b := recovered["a.db"], recovered["b.db"]; a.Asleep || a.Epoch != 2 || !b.Asleep || b.Reconciled != 9 {
		t.Fatalf("recovered %+v and %+v", a, b)
	}
}
