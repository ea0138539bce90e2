package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lni/dragonboat/v4"
	sm "github.com/lni/dragonboat/v4/statemachine"
)

// Hibernation. A running dragonboat replica costs CPU (ticks, heartbeats)
// and about 2 MiB of queues whether or not anyone uses it, so a cluster
// with thousands of mostly idle databases pays that thousands of times.
// With Config.Hibernate set, a database that no node has used for that long
// sleeps: its raft group stops on every node (the SQLite file and the raft
// log stay on disk) and starts again when it is next used.
//
// The catalog decides, so every node agrees:
//   - each node votes "idle" for the databases it has not used for
//     Hibernate: no local write, read barrier or transaction, and nothing
//     applied (an apply means someone wrote);
//   - once every member of the cluster has voted within the same epoch, the
//     catalog marks the database asleep and every node stops its replica;
//   - a node that needs a sleeping database proposes "wake": the epoch
//     advances, so older votes no longer count, and every node starts its
//     replica, which catches up from the raft log as after a restart. A node
//     that voted and then used the database, or applied a write to it,
//     proposes wake too, withdrawing its vote.
//
// Stopping and starting a replica is what a crash and a restart do, so
// safety rests on raft, and exactly-once on the request IDs kept in the
// file. An operation whose replica stops under it (the last vote landed
// while it ran) wakes the database and retries. A member that is down never
// votes, so nothing sleeps while one is. Stale reads of a sleeping database
// read the local file as it was when the group stopped.

// lifecycle is a DB's replica state on this node.
type lifecycle struct {
	mu       sync.Mutex
	running  bool   // the local replica is started
	known    bool   // asleep and epoch come from the catalog
	asleep   bool   // the catalog says the database sleeps
	epoch    uint64 // the catalog's wake count for it
	startErr error  // why the last start failed

	sleeps   atomic.Uint64 // replica stops for sleep since the node started
	voted    atomic.Bool   // this node voted idle in epoch
	users    atomic.Int32  // operations of this node in progress
	lastUsed atomic.Int64  // UnixNano of the last use or apply
}

// touch records activity: the database is not idle now.
func (db *DB) touch() { db.life.lastUsed.Store(time.Now().UnixNano()) }

// applied records an apply (someone wrote): activity, and the end of this
// node's idle vote, if it cast one.
func (db *DB) applied() {
	db.touch()
	db.withdrawVote()
}

// withdrawVote voids this node's idle vote, if it cast one, before the
// others complete it: a wake advances the epoch. Load first: this runs on
// every use and apply, and a vote is rare.
func (db *DB) withdrawVote() {
	if db.life.voted.Load() && db.life.voted.Swap(false) {
		go db.node.wakeDB(db.node.ctx, db.name, true) //nolint:errcheck // best effort
	}
}

// Asleep reports whether the catalog has put the database to sleep.
func (db *DB) Asleep() bool {
	db.life.mu.Lock()
	defer db.life.mu.Unlock()
	return db.life.asleep
}

// Sleeps is how many times this node stopped the database's replica
// because it fell asleep, since the node started.
func (db *DB) Sleeps() uint64 { return db.life.sleeps.Load() }

// use marks the database in use by this node until done is called, waking
// it first if it sleeps.
func (db *DB) use(ctx context.Context) (done func(), err error) {
	db.life.users.Add(1)
	db.touch()
	db.withdrawVote()
	if err := db.awake(ctx); err != nil {
		db.life.users.Add(-1)
		return nil, err
	}
	return func() { db.touch(); db.life.users.Add(-1) }, nil
}

// opened returns once the local file has been opened by a replica, now or
// before: local reads may use it. Only a sleeping database that never ran
// on this node is woken; opening a handle to one that sleeps does not.
func (db *DB) opened(ctx context.Context) error {
	if s := db.cur(); s != nil {
		select {
		case <-s.Ready():
			return nil
		default:
		}
	}
	return db.awake(ctx)
}

// awake returns once the local replica runs and its file is open, proposing
// a wake if the database sleeps.
func (db *DB) awake(ctx context.Context) error {
	var wokeIn uint64
	woke := false
	for pause := time.Millisecond; ; pause = min(2*pause, 20*time.Millisecond) {
		db.life.mu.Lock()
		running, asleep, epoch, startErr := db.life.running, db.life.asleep, db.life.epoch, db.life.startErr
		db.life.mu.Unlock()
		switch {
		case running:
			select {
			case <-db.cur().Ready():
				return nil
			default:
			}
		case asleep && (!woke || epoch > wokeIn):
			if err := db.node.wakeDB(ctx, db.name, false); err != nil {
				return err
			}
			woke, wokeIn = true, epoch
		case startErr != nil && !asleep:
			return startErr
		}
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return db.node.ended(ctx, db.shardID, "start database "+db.name, nil)
		}
	}
}

// stoppedMeanwhile turns the error of an attempt whose replica was stopped
// by hibernation into a retryable one, once the database is awake again.
func (db *DB) stoppedMeanwhile(ctx context.Context, err error) error {
	if err == nil || !errors.Is(err, dragonboat.ErrShardNotFound) {
		return err
	}
	db.life.mu.Lock()
	running := db.life.running
	db.life.mu.Unlock()
	if running {
		return err
	}
	if werr := db.awake(ctx); werr != nil {
		return werr
	}
	return dragonboat.ErrShardNotReady
}

// applyDBState brings the local replica in line with the catalog's record:
// started unless the database sleeps.
func (n *Node) applyDBState(d dbInfo) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	db := n.dbLocked(d.Name)
	if db.shardID == 0 {
		db.shardID = d.ShardID
	}
	n.mu.Unlock()
	l := &db.life
	l.mu.Lock()
	// Records arrive in catalog order, except one looked up by Open, which
	// may be older than a change queued meanwhile.
	if l.known && stateOrder(d.Epoch, d.Asleep) < stateOrder(l.epoch, l.asleep) {
		l.mu.Unlock()
		return
	}
	if d.Epoch != l.epoch {
		l.voted.Store(false)
	}
	l.known, l.asleep, l.epoch = true, d.Asleep, d.Epoch
	l.mu.Unlock()
	if d.Asleep {
		n.stopReplica(db)
	} else {
		n.startReplica(db, d)
	}
}

// stateOrder orders a database's catalog states: awake, then asleep, in
// each epoch.
func stateOrder(epoch uint64, asleep bool) uint64 {
	if asleep {
		return 2*epoch + 1
	}
	return 2 * epoch
}

// stopReplica stops the local replica; its state machine closes shortly
// after, asynchronously.
func (n *Node) stopReplica(db *DB) {
	db.life.mu.Lock()
	running := db.life.running
	db.life.running = false
	db.life.mu.Unlock()
	if !running {
		return
	}
	db.life.sleeps.Add(1)
	n.metrics.sleeps.WithLabelValues(db.name).Inc()
	if err := n.nh.StopShard(db.shardID); err != nil && !errors.Is(err, dragonboat.ErrShardNotFound) {
		n.log.Warn("rsqlite: stopping a sleeping database's replica", "db", db.name, "err", err.Error())
	}
}

// wakeDB asks the catalog to wake a database (or, withdraw, to void the
// idle votes of its current epoch; both advance the epoch).
func (n *Node) wakeDB(ctx context.Context, name string, withdraw bool) error {
	if withdraw {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	_, err := n.proposeCatalog(ctx, "wake database "+name, catalogCommand{Op: "wake", Name: name})
	return err
}

// proposeCatalog proposes a catalog command until it applies or ctx ends.
func (n *Node) proposeCatalog(ctx context.Context, op string, cmd catalogCommand) (sm.Result, error) {
	b, err := json.Marshal(cmd)
	if err != nil {
		return sm.Result{}, err
	}
	var r sm.Result
	err = n.retry(ctx, catalogShardID, op, 0, func(actx context.Context) (err error) {
		r, err = n.nh.SyncPropose(actx, n.nh.GetNoOPSession(catalogShardID), b)
		return err
	})
	if err == nil && r.Value == 0 && cmd.Op != "idle" {
		err = fmt.Errorf("rsqlite: catalog refused to %s: %s", op, r.Data)
	}
	return r, err
}

// hibernator votes idle, now and then, for the databases this node has not
// used for cfg.Hibernate.
func (n *Node) hibernator() {
	defer n.wg.Done()
	t := time.NewTicker(min(max(n.cfg.Hibernate/4, 50*time.Millisecond), 5*time.Second))
	defer t.Stop()
	for {
		select {
		case <-n.done:
			return
		case <-t.C:
		}
		n.voteIdle()
	}
}

func (n *Node) voteIdle() {
	cutoff := time.Now().Add(-n.cfg.Hibernate).UnixNano()
	var (
		dbs   []*DB
		votes []idleVote
	)
	n.mu.Lock()
	for _, db := range n.dbs {
		l := &db.life
		l.mu.Lock()
		// Not while a disk fault or a halt holds: the replica may be
		// waiting out a failed apply, and stopping it then would end that
		// apply with an error, which dragonboat treats as fatal.
		if l.running && l.known && !l.asleep && !l.voted.Load() && l.users.Load() == 0 && l.lastUsed.Load() < cutoff && db.diskFault() == nil && db.Halted() == nil {
			dbs = append(dbs, db)
			votes = append(votes, idleVote{Name: db.name, Epoch: l.epoch})
		}
		l.mu.Unlock()
	}
	n.mu.Unlock()
	if len(votes) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
	defer cancel()
	m, err := n.catalogMembership(ctx)
	if err != nil {
		return // next time
	}
	var need []uint64
	for id := range m.Nodes {
		need = append(need, id)
	}
	for id := range m.NonVotings {
		need = append(need, id)
	}
	sort.Slice(need, func(i, j int) bool { return need[i] < need[j] })
	// Mark first, so a use from now on withdraws the vote; then drop the
	// databases used since they were picked.
	var cast []idleVote
	for i, db := range dbs {
		db.life.voted.Store(true)
		if db.life.users.Load() != 0 || db.life.lastUsed.Load() >= cutoff {
			db.life.voted.Store(false)
			continue
		}
		cast = append(cast, votes[i])
	}
	if len(cast) == 0 {
		return
	}
	cmd := catalogCommand{Op: "idle", Votes: cast, Replica: n.replicaID, Need: need}
	if _, err := n.proposeCatalog(ctx, "vote idle", cmd); err != nil {
		for _, db := range dbs {
			db.life.voted.Store(false)
		}
	}
}
