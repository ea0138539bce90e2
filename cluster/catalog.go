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
	// Asleep: every node stops its replica (hibernate.go). Epoch counts
	// wakes; Idle holds the idle votes of the current epoch (never changed
	// in place: readers share it).
	Asleep bool            `json:"asleep,omitempty"`
	Epoch  uint64          `json:"epoch,omitempty"`
	Idle   map[uint64]bool `json:"idle,omitempty"`
	// Reconciled is the catalog's ConfigChangeID at which the group's
	// members last matched the cluster's: the reconciler skips it until
	// the membership changes again (and need not wake it).
	Reconciled uint64 `json:"reconciled,omitempty"`
}

// catalogCommand is a catalog raft entry. JSON: rare, small, and easy to
// evolve (unknown fields are ignored, Op values never reused).
type catalogCommand struct {
	Op      string            `json:"op"` // "create", "idle", "wake" or "reconciled"
	Name    string            `json:"name"`
	Members map[uint64]string `json:"members,omitempty"` // create
	// create, reconciled: the group's members match the cluster's as of
	// this catalog ConfigChangeID (reconciled: for every database in Names).
	ConfigChangeID uint64   `json:"ccid,omitempty"`
	Names          []string `json:"names,omitempty"`
	// idle: replica Replica has not used the databases in Votes during
	// their epochs; each sleeps once every replica in Need has said so.
	Votes   []idleVote `json:"votes,omitempty"`
	Replica uint64     `json:"replica,omitempty"`
	Need    []uint64   `json:"need,omitempty"`
}

type idleVote struct {
	Name  string `json:"name"`
	Epoch uint64 `json:"epoch"`
}

type catalogState struct {
	NextShardID uint64             `json:"next_shard_id"`
	Databases   map[string]*dbInfo `json:"databases"`
}

// catalogSM is the catalog state machine. onChange is told of every database
// the catalog learns about (from an entry or a snapshot) and of every change
// of its Asleep state; it must not block.
type catalogSM struct {
	mu       sync.RWMutex
	state    catalogState
	onChange func(dbInfo)
}

func newCatalogSM(onChange func(dbInfo)) *catalogSM {
	return &catalogSM{
		state:    catalogState{NextShardID: firstDBShardID, Databases: map[string]*dbInfo{}},
		onChange: onChange,
	}
}

var _ sm.IStateMachine = (*catalogSM)(nil)

// Update applies a command. Result.Value is the database's shard ID, 0 for
// a refused command (0 is never a shard ID). create: the first create of a
// name assigns the next shard ID, later ones return the same ID. idle and
// wake: see hibernate.go; both name an existing database.
func (c *catalogSM) Update(e sm.Entry) (sm.Result, error) {
	var cmd catalogCommand
	if err := json.Unmarshal(e.Cmd, &cmd); err != nil || cmd.Name == "" && cmd.Op != "idle" && cmd.Op != "reconciled" {
		return refused(e.Cmd), nil
	}
	switch cmd.Op {
	case "idle":
		return c.idle(cmd), nil
	case "reconciled":
		c.mu.Lock()
		for _, name := range cmd.Names {
			if info, ok := c.state.Databases[name]; ok && cmd.ConfigChangeID > info.Reconciled {
				info.Reconciled = cmd.ConfigChangeID
			}
		}
		c.mu.Unlock()
		return sm.Result{Value: 1}, nil
	}
	c.mu.Lock()
	info, ok := c.state.Databases[cmd.Name]
	changed := false
	switch {
	case cmd.Op == "create" && !ok:
		info = &dbInfo{Name: cmd.Name, ShardID: c.state.NextShardID, Members: cmd.Members, Reconciled: cmd.ConfigChangeID}
		c.state.NextShardID++
		c.state.Databases[cmd.Name] = info
		changed = true
	case cmd.Op == "create":
	case cmd.Op == "wake" && ok:
		// Every node learns the new epoch, which voids the votes cast.
		changed = true
		info.Asleep, info.Idle = false, nil
		info.Epoch++
	default:
		c.mu.Unlock()
		return refused(e.Cmd), nil
	}
	out := *info
	c.mu.Unlock()
	if changed {
		c.onChange(out)
	}
	return sm.Result{Value: out.ShardID}, nil
}

// idle records one replica's idle votes; Result.Value is how many
// databases fell asleep.
func (c *catalogSM) idle(cmd catalogCommand) sm.Result {
	var slept []dbInfo
	c.mu.Lock()
	for _, v := range cmd.Votes {
		info, ok := c.state.Databases[v.Name]
		if !ok || info.Asleep || v.Epoch != info.Epoch {
			continue // unknown, or a vote from before the last wake
		}
		idle := make(map[uint64]bool, len(info.Idle)+1)
		for id := range info.Idle {
			idle[id] = true
		}
		idle[cmd.Replica] = true
		info.Idle = idle
		if len(cmd.Need) > 0 && all(cmd.Need, idle) {
			info.Asleep, info.Idle = true, nil
			slept = append(slept, *info)
		}
	}
	c.mu.Unlock()
	for _, d := range slept {
		c.onChange(d)
	}
	return sm.Result{Value: uint64(len(slept))}
}

func refused(cmd []byte) sm.Result {
	return sm.Result{Value: 0, Data: []byte(fmt.Sprintf("bad catalog command %q", cmd))}
}

func all(ids []uint64, set map[uint64]bool) bool {
	for _, id := range ids {
		if !set[id] {
			return false
		}
	}
	return true
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
		c.onChange(d)
	}
	return nil
}

func (c *catalogSM) Close() error { return nil }
