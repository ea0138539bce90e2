package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	sm "github.com/lni/dragonboat/v4/statemachine"
)

func TestCatalogAssignsIDsInLogOrder(t *testing.T) {
	var created []string
	c := newCatalogSM(func(d dbInfo) { created = append(created, d.Name) })
	apply := func(name string) uint64 {
		cmd, _ := json.Marshal(catalogCommand{Op: "create", Name: name, Members: map[uint64]string{1: "a"}})
		r, err := c.Update(sm.Entry{Cmd: cmd})
		if err != nil {
			t.Fatal(err)
		}
		return r.Value
	}
	a, b, a2 := apply("a.db"), apply("b.db"), apply("a.db")
	if a != firstDBShardID || b != firstDBShardID+1 || a2 != a {
		t.Fatalf("shard IDs %d %d %d", a, b, a2)
	}
	if len(created) != 2 {
		t.Fatalf("onCreate called for %v", created)
	}
	if r, _ := c.Update(sm.Entry{Cmd: []byte("garbage")}); r.Value != 0 {
		t.Fatal("bad command got a shard ID")
	}
	var buf bytes.Buffer
	if err := c.SaveSnapshot(&buf, nil, nil); err != nil {
		t.Fatal(err)
	}
	var recovered []string
	c2 := newCatalogSM(func(d dbInfo) { recovered = append(recovered, d.Name) })
	if err := c2.RecoverFromSnapshot(&buf, nil, nil); err != nil {
		t.Fatal(err)
	}
	if len(recovered) != 2 {
		t.Fatalf("recovered %v", recovered)
	}
	v, _ := c2.Lookup("b.db")
	if lr := v.(lookupResult); !lr.ok || lr.info.ShardID != b {
		t.Fatalf("lookup after recover: %+v", lr)
	}
	// The next ID continues after recovery.
	cmd, _ := json.Marshal(catalogCommand{Op: "create", Name: "c.db"})
	if r, _ := c2.Update(sm.Entry{Cmd: cmd}); r.Value != firstDBShardID+2 {
		t.Fatalf("next ID after recovery %d", r.Value)
	}
}

func TestValidateName(t *testing.T) {
	for _, bad := range []string{"", ".", "..", "a/b", `a\b`, ".hidden", "a\x00b", string(make([]byte, 201))} {
		if ValidateName(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, good := range []string{"orders.db", "tenant-1", "x"} {
		if err := ValidateName(good); err != nil {
			t.Errorf("%q: %v", good, err)
		}
	}
}

func TestSingleNodeSharedAndReleased(t *testing.T) {
	dir := t.TempDir()
	n1, err := Acquire(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	n2, err := Acquire(Config{Dir: filepath.Join(dir, ".")})
	if err != nil {
		t.Fatal(err)
	}
	if n1 != n2 {
		t.Fatal("same directory gave two nodes")
	}
	if _, err := Acquire(Config{Dir: dir, RaftAddress: "127.0.0.1:1", Peers: []string{"127.0.0.1:1", "127.0.0.1:2"}}); err == nil {
		t.Fatal("conflicting configuration for a running directory accepted")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	db, err := n1.Open(ctx, "x.db")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Propose(ctx, make([]byte, maxCommandSize+1)); err == nil {
		t.Fatal("oversized command accepted")
	}
	if _, err := db.Propose(context.Background(), nil); err == nil {
		t.Fatal("context without deadline accepted")
	}
	n1.Release()
	if Running(dir) == nil {
		t.Fatal("node stopped while still acquired")
	}
	n2.Release()
	if Running(dir) != nil {
		t.Fatal("node still registered after the last release")
	}
	if err := db.Barrier(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("barrier on a stopped node: %v", err)
	}
	// It restarts from its directory with the database.
	n3, err := Acquire(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer n3.Release()
	if got := n3.Databases(); len(got) != 1 || got[0] != "x.db" {
		// The catalog replays asynchronously; Open waits for it.
		if _, err := n3.Open(ctx, "x.db"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDeadlineErrors(t *testing.T) {
	e := &deadlineError{kind: ErrNoQuorum, op: "write", last: errors.New("x")}
	if !errors.Is(e, ErrNoQuorum) || !errors.Is(e, context.DeadlineExceeded) || errors.Is(e, ErrTimeout) {
		t.Fatal("deadline error does not match its kind")
	}
}
