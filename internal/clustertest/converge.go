package clustertest

import (
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/rsqlite/rsqlite/statemachine"
)

// Convergence is what Converged found.
type Convergence struct {
	Applied uint64        // the applied index every running node reached
	Dump    string        // node 0's (first running node's) dump, with its SHA-256 on the first line
	Took    time.Duration // until the applied indexes were equal
}

// Converged waits up to within for every running node's replica of name to
// have applied the same raft index, then checks that every running node's
// file has the same logical Dump and passes PRAGMA integrity_check. Nodes
// must be quiet (no writes in flight). Stopped nodes are left out.
func (c *Cluster) Converged(name string, within time.Duration) (Convergence, error) {
	c.t.Helper()
	start := time.Now()
	var running []int
	for i, n := range c.Nodes {
		if n.running {
			running = append(running, i)
		}
	}
	if len(running) == 0 {
		return Convergence{}, fmt.Errorf("no node is running")
	}
	var applied []uint64
	for {
		applied = applied[:0]
		same := true
		for _, i := range running {
			var a uint64
			if db := c.LocalDB(i, name); db != nil {
				a = db.Applied()
			}
			applied = append(applied, a)
			same = same && a == applied[0] && a != 0
		}
		if same {
			break
		}
		if time.Since(start) > within {
			return Convergence{}, fmt.Errorf("applied indexes of %s still differ after %v: nodes %v applied %v", name, within, running, applied)
		}
		time.Sleep(20 * time.Millisecond)
	}
	conv := Convergence{Applied: applied[0], Took: time.Since(start)}
	for k, i := range running {
		path := filepath.Join(c.Nodes[i].Dir, name)
		if err := IntegrityCheck(path); err != nil {
			return conv, fmt.Errorf("node %d: %w", i, err)
		}
		d := Dump(c.t, path)
		if k == 0 {
			conv.Dump = d
			continue
		}
		if d != conv.Dump {
			return conv, fmt.Errorf("node %d's %s differs from node %d's at the same applied index %d:\n%s\n--- vs ---\n%s",
				i, name, running[0], conv.Applied, firstLines(d, 40), firstLines(conv.Dump, 40))
		}
	}
	return conv, nil
}

// IntegrityCheck runs PRAGMA integrity_check on a SQLite file, read-only.
func IntegrityCheck(path string) error {
	db, err := sql.Open("sqlite3", statemachine.FileURI(path, url.Values{"mode": {"ro"}}))
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.Query("PRAGMA integrity_check")
	if err != nil {
		return fmt.Errorf("integrity_check of %s: %w", path, err)
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(msgs) != 1 || msgs[0] != "ok" {
		return fmt.Errorf("integrity_check of %s: %s", path, strings.Join(msgs, "; "))
	}
	return nil
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return strings.Join(lines, "\n")
}

// Running reports whether node i is started (opened and not stopped).
func (c *Cluster) Running(i int) bool { return c.Nodes[i].running }
