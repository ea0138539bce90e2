package cluster

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sm "github.com/lni/dragonboat/v4/statemachine"

	"github.com/rsqlite/rsqlite/internal/command"
	"github.com/rsqlite/rsqlite/statemachine"
)

// A replica halted by an entry from another SQLite build is reported by
// DB.Halted, /status and Ready (so /readyz answers 503 with the cause),
// not only logged.
//
// The halted state machine runs outside raft and stands in for the
// database's: stopping a raft replica whose Update waits at such an entry
// ends that Update with an error, on which dragonboat panics.
func TestHaltedReplicaIsNotReady(t *testing.T) {
	n, err := Acquire(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Release()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	db, err := n.Open(ctx, "h.db")
	if err != nil {
		t.Fatal(err)
	}
	waitReady := func(ok func(error) bool) error {
		t.Helper()
		var err error
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if err = n.Ready(); ok(err) {
				return err
			}
		}
		t.Fatalf("Ready did not change in time: last %v", err)
		return nil
	}
	waitReady(func(err error) bool { return err == nil })

	foreign := &command.Command{Kind: command.KindExec, Engine: statemachine.Engine + 1,
		Statements: []command.Statement{{SQL: "CREATE TABLE t(x)"}}}
	b, err := command.Encode(nil, foreign)
	if err != nil {
		t.Fatal(err)
	}
	halted := statemachine.New(statemachine.Options{Path: filepath.Join(t.TempDir(), "h.db")})
	stop := make(chan struct{})
	if _, err := halted.Open(stop); err != nil {
		t.Fatal(err)
	}
	updated := make(chan error, 1)
	go func() {
		_, err := halted.Update([]sm.Entry{{Index: 1, Cmd: b}})
		updated <- err
	}()
	defer func() {
		close(stop)
		<-updated
		halted.Close()
	}()
	for deadline := time.Now().Add(10 * time.Second); halted.Halted() == nil; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the state machine did not halt")
		}
	}
	real := db.cur()
	db.sm.Store(halted)
	defer db.sm.Store(real)

	const want = "replica halted: entry 1 "
	if err := n.Ready(); err == nil || !strings.HasPrefix(err.Error(), "database h.db: "+want) || !strings.Contains(err.Error(), "another SQLite build") {
		t.Errorf("Ready() = %v, want it to name the database and the cause", err)
	}
	if err := db.Halted(); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("DB.Halted() = %v", err)
	}
	srv := httptest.NewServer(n.AdminHandler())
	defer srv.Close()
	get := func(path string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(string(body), want) {
		t.Errorf("/readyz: %d %q, want 503 with the cause", code, body)
	}
	var st Status
	if _, body := get("/status"); json.Unmarshal(body, &st) != nil || len(st.Databases) != 1 || !strings.Contains(st.Databases[0].Halted, want) {
		t.Errorf("/status does not report the halt: %s", body)
	}

	// Ready again once the database's own replica is back.
	db.sm.Store(real)
	waitReady(func(err error) bool { return err == nil })
	if _, body := get("/status"); strings.Contains(string(body), `"halted"`) {
		t.Errorf("/status reports a halt of a replica that applies: %s", body)
	}
}
