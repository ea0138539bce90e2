package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"sync"

	sm "github.com/lni/dragonboat/v4/statemachine"
)

// The catalog is a raft group of its own, hosted by every member, that maps
// database names to shard IDs. Its state is small, so it is an in-memory
// state machine that dragonboat rebuilds from its snapshot and log.

const (
	catalogShardID = 1
	firstDBShardID = 16 // room for more system groups later
)

// dbInfo is the catalog's record of one database.
type dbInfo struct {
	Name    string            `json:"name"`
	ShardID uint64            `json:"shard_id"`
	Members map[uint64]string `json:"members"` // initial raft members of its group
}

// catalogCommand is a catalog raft entry. JSON: rare, small, and easy to
// evolve (unknown fields are ignored, Op values never reused).
type catalogCommand struct {
	Op      string            `json:"op"` // "create"
	Name    string            `json:"name"`
	Members map[uint64]string `json:"members"`
}

type catalogState struct {
	NextShardID uint64             `json:"next_shard_id"`
	Databases   map[string]*dbInfo `json:"databases"`
}

// catalogSM is the catalog state machine. onCreate is told of every database
// the catalog learns about (from an entry or a snapshot); it must not block.
type catalogSM struct {
	mu       sync.RWMutex
	state    catalogState
	onCreate func(dbInfo)
}

func newCatalogSM(onCreate func(dbInfo)) *catalogSM {
	return &catalogSM{
		state:    catalogState{NextShardID: firstDBShardID, Databases: map[string]*dbInfo{}},
		onCreate: onCreate,
	}
}

var _ sm.IStateMachine = (*catalogSM)(nil)

// Update applies a create: the first create of a name assigns the next shard
// ID; later ones return the same ID. Result.Value is the shard ID.
func (c *catalogSM) Update(e sm.Entry) (sm.Result, error) {
	var cmd catalogCommand
	if err := json.Unmarshal(e.Cmd, &cmd); err != nil || cmd.Op != "create" || cmd.Name == "" {
		// Deterministic refusal; 0 is never a shard ID.
		return sm.Result{Value: 0, Data: []byte(fmt.Sprintf("bad catalog command %q", e.Cmd))}, nil
	}
	c.mu.Lock()
	info, ok := c.state.Databases[cmd.Name]
	if !ok {
		info = &dbInfo{Name: cmd.Name, ShardID: c.state.NextShardID, Members: cmd.Members}
		c.state.NextShardID++
		c.state.Databases[cmd.Name] = info
	}
	c.mu.Unlock()
	if !ok {
		c.onCreate(*info)
	}
	return sm.Result{Value: info.ShardID}, nil
}

// Lookup takes a database name and returns its dbInfo (ok=false if absent),
// or nil for the list of all databases sorted by name.
func (c *catalogSM) Lookup(q any) (any, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	switch q := q.(type) {
	case string:
		info, ok := c.state.Databases[q]
		if !ok {
			return lookupResult{}, nil
		}
		return lookupResult{info: *info, ok: true}, nil
	case nil:
		return c.listLocked(), nil
	}
	return nil, fmt.Errorf("rsqlite: bad catalog query %T", q)
}

type lookupResult struct {
	info dbInfo
	ok   bool
}

func (c *catalogSM) listLocked() []dbInfo {
	out := make([]dbInfo, 0, len(c.state.Databases))
	for _, d := range c.state.Databases {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (c *catalogSM) SaveSnapshot(w io.Writer, _ sm.ISnapshotFileCollection, _ <-chan struct{}) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return json.NewEncoder(w).Encode(&c.state)
}

func (c *catalogSM) RecoverFromSnapshot(r io.Reader, _ []sm.SnapshotFile, _ <-chan struct{}) error {
	var st catalogState
	if err := json.NewDecoder(r).Decode(&st); err != nil {
		return fmt.Errorf("rsqlite: decode catalog snapshot: %w", err)
	}
	if st.Databases == nil {
		st.Databases = map[string]*dbInfo{}
	}
	c.mu.Lock()
	c.state = st
	list := c.listLocked()
	c.mu.Unlock()
	for _, d := range list {
		c.onCreate(d)
	}
	return nil
}

func (c *catalogSM) Close() error { return nil }
