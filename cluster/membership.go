package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/lni/dragonboat/v4"
)

// Membership changes go through the catalog group: it is the record of who
// belongs to the cluster. A reconciler on the catalog's leader then brings
// every database group in line with the catalog (adding and removing
// replicas), so a database created during a join, or a leader that changed
// half way, still ends with the right members.

// AddNode adds the node at raftAddress to the cluster (as a voter, or a
// non-voting member) and returns its replica ID. Adding a node that is
// already a member returns its ID. The node then starts with join=true and
// receives every database from the reconcilers.
//
// Every change names the catalog configuration it was decided on, so two
// joins sent to different members at once cannot both take the same replica
// ID: the second is rejected by raft, re-reads the membership and picks the
// next free ID.
func (n *Node) AddNode(ctx context.Context, raftAddress string, nonVoting bool) (uint64, error) {
	n.joinMu.Lock()
	defer n.joinMu.Unlock()
	for {
		id, err := n.addNodeOnce(ctx, raftAddress, nonVoting)
		if !errors.Is(err, errMembershipChanged) {
			return id, err
		}
	}
}

func (n *Node) addNodeOnce(ctx context.Context, raftAddress string, nonVoting bool) (uint64, error) {
	m, err := n.catalogMembership(ctx)
	if err != nil {
		return 0, err
	}
	for id, addr := range m.Nodes {
		if addr == raftAddress {
			if nonVoting {
				return 0, fmt.Errorf("rsqlite: %s is already a voting member (replica %d)", raftAddress, id)
			}
			return id, nil
		}
	}
	for id, addr := range m.NonVotings {
		if addr == raftAddress {
			if !nonVoting {
				return 0, fmt.Errorf("rsqlite: %s is a non-voting member (replica %d); promoting it is not supported", raftAddress, id)
			}
			return id, nil
		}
	}
	var next uint64
	for _, ids := range []map[uint64]string{m.Nodes, m.NonVotings, m.Witnesses} {
		for id := range ids {
			next = max(next, id)
		}
	}
	for id := range m.Removed {
		next = max(next, id) // removed IDs can never come back
	}
	next++
	err = n.retry(ctx, catalogShardID, "add "+raftAddress+" to the catalog", 0, func(actx context.Context) error {
		if nonVoting {
			return changeResult(n.nh.SyncRequestAddNonVoting(actx, catalogShardID, next, raftAddress, m.ConfigChangeID))
		}
		return changeResult(n.nh.SyncRequestAddReplica(actx, catalogShardID, next, raftAddress, m.ConfigChangeID))
	})
	if err != nil {
		return 0, err
	}
	n.kickReconciler()
	return next, nil
}

// errMembershipChanged: a membership change was rejected because the
// catalog's configuration moved on since it was read (another change, or
// this one applied by an earlier attempt whose answer was lost).
var errMembershipChanged = errors.New("rsqlite: cluster membership changed meanwhile")

// changeResult turns raft's rejection of a stale configuration change into
// errMembershipChanged, which retry does not repeat as is.
func changeResult(err error) error {
	if errors.Is(err, dragonboat.ErrRejected) {
		return errMembershipChanged
	}
	return err
}

// RemoveNode removes the node at raftAddress from the cluster. Its replicas
// are removed from every database group by the reconcilers; the data stays
// on the remaining members. Stop the removed node's process afterwards.
func (n *Node) RemoveNode(ctx context.Context, raftAddress string) error {
	n.joinMu.Lock()
	defer n.joinMu.Unlock()
	var tried uint64 // replica ID an earlier attempt removed, maybe
	for {
		err := n.removeNodeOnce(ctx, raftAddress, &tried)
		if !errors.Is(err, errMembershipChanged) {
			return err
		}
	}
}

func (n *Node) removeNodeOnce(ctx context.Context, raftAddress string, tried *uint64) error {
	m, err := n.catalogMembership(ctx)
	if err != nil {
		return err
	}
	if _, gone := m.Removed[*tried]; gone && *tried != 0 {
		return nil // an earlier attempt did it; its answer was lost
	}
	var id uint64
	for _, ids := range []map[uint64]string{m.Nodes, m.NonVotings} {
		for rid, addr := range ids {
			if addr == raftAddress {
				id = rid
			}
		}
	}
	if id == 0 {
		return fmt.Errorf("rsqlite: %s is not a member of the cluster", raftAddress)
	}
	if len(m.Nodes) == 1 && m.Nodes[id] != "" {
		return fmt.Errorf("rsqlite: %s is the last voting member", raftAddress)
	}
	*tried = id
	err = n.retry(ctx, catalogShardID, "remove "+raftAddress+" from the catalog", 0, func(actx context.Context) error {
		return changeResult(n.nh.SyncRequestDeleteReplica(actx, catalogShardID, id, m.ConfigChangeID))
	})
	if err == nil {
		n.kickReconciler()
	}
	return err
}

// Members returns the catalog's voting and non-voting members by replica ID.
func (n *Node) Members(ctx context.Context) (voters, nonVoters map[uint64]string, err error) {
	m, err := n.catalogMembership(ctx)
	if err != nil {
		return nil, nil, err
	}
	return m.Nodes, m.NonVotings, nil
}

func (n *Node) catalogMembership(ctx context.Context) (*dragonboat.Membership, error) {
	var m *dragonboat.Membership
	err := n.retry(ctx, catalogShardID, "read cluster membership", 0, func(actx context.Context) (err error) {
		m, err = n.nh.SyncGetShardMembership(actx, catalogShardID)
		return err
	})
	return m, err
}

func (n *Node) kickReconciler() {
	select {
	case n.reconcileNow <- struct{}{}:
	default:
	}
}

// reconcileEvery is how often a node checks that the database groups it
// leads have the catalog's members.
const reconcileEvery = 2 * time.Second

func (n *Node) reconciler() {
	defer n.wg.Done()
	t := time.NewTicker(reconcileEvery)
	defer t.Stop()
	done := map[uint64]uint64{} // shard -> catalog config change ID reconciled
	for {
		select {
		case <-n.done:
			return
		case <-t.C:
		case <-n.reconcileNow:
		}
		ctx, cancel := context.WithTimeout(n.ctx, 30*time.Second)
		n.reconcileOnce(ctx, done)
		cancel()
	}
}

// reconcileOnce runs on the catalog's leader only: it is a member by
// definition (a removed node is not, so it cannot keep a group to itself),
// and one node making the changes avoids competing configuration changes.
func (n *Node) reconcileOnce(ctx context.Context, done map[uint64]uint64) {
	if leader, _, ok, err := n.nh.GetLeaderID(catalogShardID); err != nil || !ok || leader != n.replicaID {
		clear(done) // a future leadership must check every group again
		return
	}
	cctx, cancel := context.WithTimeout(ctx, reconcileCallTimeout)
	cat, err := n.nh.SyncGetShardMembership(cctx, catalogShardID)
	cancel()
	if err != nil {
		return // no quorum now; next tick
	}
	n.mu.Lock()
	var dbs []*DB
	for _, db := range n.dbs {
		if db.shardID != 0 {
			dbs = append(dbs, db)
		}
	}
	n.mu.Unlock()
	reconciled := map[string]uint64{}
	if v, err := n.catalog.Lookup(nil); err == nil {
		for _, d := range v.([]dbInfo) {
			reconciled[d.Name] = d.Reconciled
		}
	}
	var todo, fixed []*DB
	for _, db := range dbs {
		if done[db.shardID] == cat.ConfigChangeID || reconciled[db.name] == cat.ConfigChangeID {
			continue
		}
		todo = append(todo, db)
		if db.Asleep() {
			// A sleeping group must change too: wake them all first, so
			// their elections overlap.
			if err := n.wakeDB(ctx, db.name, false); err != nil {
				return
			}
		}
	}
	for _, db := range todo {
		release, err := db.use(ctx)
		if err == nil {
			err = n.reconcileDB(ctx, db, cat)
			release()
		}
		if err != nil {
			n.log.Warn("rsqlite: bringing a database's members in line with the cluster", "db", db.name, "err", err.Error())
			continue
		}
		done[db.shardID] = cat.ConfigChangeID
		fixed = append(fixed, db)
	}
	if len(fixed) > 0 {
		// Recorded in the catalog, so a later leader need not check (and
		// wake) them again.
		cmd := catalogCommand{Op: "reconciled", ConfigChangeID: cat.ConfigChangeID}
		for _, db := range fixed {
			cmd.Names = append(cmd.Names, db.name)
		}
		if _, err := n.proposeCatalog(ctx, "record reconciled databases", cmd); err != nil {
			n.log.Warn("rsqlite: recording reconciled databases", "err", err.Error())
		}
	}
}

// reconcileCallTimeout bounds each membership call of the reconciler: a
// request that reached a node just removed is never answered.
const reconcileCallTimeout = 3 * time.Second

// reconcileDB makes db's group have the catalog's members. One change at a
// time: dragonboat accepts a single pending configuration change per group.
func (n *Node) reconcileDB(ctx context.Context, db *DB, cat *dragonboat.Membership) error {
	call := func(f func(context.Context) error) error {
		cctx, cancel := context.WithTimeout(ctx, reconcileCallTimeout)
		defer cancel()
		return f(cctx)
	}
	var m *dragonboat.Membership
	if err := call(func(c context.Context) (err error) {
		m, err = n.nh.SyncGetShardMembership(c, db.shardID)
		return err
	}); err != nil {
		return err
	}
	for id, addr := range cat.Nodes {
		if _, ok := m.Nodes[id]; !ok {
			if err := call(func(c context.Context) error { return n.nh.SyncRequestAddReplica(c, db.shardID, id, addr, 0) }); err != nil {
				return fmt.Errorf("add replica %d: %w", id, err)
			}
		}
	}
	for id, addr := range cat.NonVotings {
		if _, ok := m.NonVotings[id]; !ok {
			if err := call(func(c context.Context) error { return n.nh.SyncRequestAddNonVoting(c, db.shardID, id, addr, 0) }); err != nil {
				return fmt.Errorf("add non-voting replica %d: %w", id, err)
			}
		}
	}
	for _, ids := range []map[uint64]string{m.Nodes, m.NonVotings} {
		for id := range ids {
			if _, removed := cat.Removed[id]; removed {
				if err := call(func(c context.Context) error { return n.nh.SyncRequestDeleteReplica(c, db.shardID, id, 0) }); err != nil {
					return fmt.Errorf("remove replica %d: %w", id, err)
				}
			}
		}
	}
	return nil
}

// joinRequest is the body of POST /join on the admin API.
type joinRequest struct {
	RaftAddress string `json:"raft_address"`
	NonVoting   bool   `json:"non_voting"`
}

type joinResponse struct {
	ReplicaID uint64 `json:"replica_id"`
}

// AdminURL turns an admin address (host:port or URL) into a base URL.
func AdminURL(addr string) string {
	if strings.Contains(addr, "://") {
		return strings.TrimRight(addr, "/")
	}
	return "http://" + addr
}

// requestJoin asks the member at adminAddr to add this node.
func requestJoin(ctx context.Context, adminAddr, raftAddress string, nonVoting bool) (uint64, error) {
	body, _ := json.Marshal(joinRequest{RaftAddress: raftAddress, NonVoting: nonVoting})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, AdminURL(adminAddr)+"/join", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("rsqlite: join through %s: %w", adminAddr, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("rsqlite: join through %s: %s: %s", adminAddr, resp.Status, strings.TrimSpace(string(b)))
	}
	var jr joinResponse
	if err := json.Unmarshal(b, &jr); err != nil || jr.ReplicaID == 0 {
		return 0, fmt.Errorf("rsqlite: join through %s: bad answer %q", adminAddr, b)
	}
	return jr.ReplicaID, nil
}
