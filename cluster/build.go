package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mattn/go-sqlite3"

	"github.com/rsqlite/rsqlite/internal/command"
	"github.com/rsqlite/rsqlite/statemachine"
)

// Build identifies the software a node applies writes with. Every node of a
// cluster must run the same SQLite build: a replica halts at a write
// proposed by a node with another (Engine differs) rather than risk applying
// it differently, and at a write encoded with a newer command encoding than
// it reads.
type Build struct {
	SQLite   string `json:"sqlite_source_id"` // sqlite_source_id()
	Engine   string `json:"engine"`           // short ID of SQLite carried by every command
	Encoding int    `json:"command_encoding"` // newest command encoding this node reads
}

// CurrentBuild is this process's Build.
func CurrentBuild() Build {
	_, _, sourceID := sqlite3.Version()
	return Build{SQLite: sourceID, Engine: fmt.Sprintf("%08x", statemachine.Engine), Encoding: command.Version}
}

// recordBuild writes the running Build to the node's data directory
// (.rsqlite/build.json) and returns the one recorded by the node's previous
// start when it differs (nil on a first start, when unchanged, or when the
// record does not parse), so a changed build is reported the moment the
// node starts, not at its first halted write. Call it only while holding
// the directory (after dragonboat locked it).
func recordBuild(metaDir string) (previous *Build, err error) {
	path := filepath.Join(metaDir, "build.json")
	cur := CurrentBuild()
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		// A record that does not parse only loses the report: overwrite it.
		var prev Build
		if json.Unmarshal(b, &prev) == nil {
			if prev == cur {
				return nil, nil
			}
			previous = &prev
		}
	}
	if err := os.MkdirAll(metaDir, 0o755); err != nil {
		return nil, err
	}
	b, _ = json.Marshal(cur)
	return previous, writeFileSync(path, b)
}
