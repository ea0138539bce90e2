package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"time"

	"github.com/lni/dragonboat/v4"
)

// Status is a node's view of itself and its databases, as served on
// /status. Leaders and terms are this node's knowledge, without a raft
// round trip.
type Status struct {
	ReplicaID   uint64 `json:"replica_id"`
	RaftAddress string `json:"raft_address"`
	Dir         string `json:"dir"`
	NonVoting   bool   `json:"non_voting"`
	// Build is what this node applies writes with (see Build); every node
	// of a cluster must run the same SQLite.
	Build
	// PreviousBuild is the build this node ran before its last start,
	// when that differs (an upgrade).
	PreviousBuild *Build     `json:"previous_build,omitempty"`
	Catalog       ShardState `json:"catalog"`
	// NonVoters are the cluster's non-voting members (read through the
	// catalog; empty when it could not be read in time).
	NonVoters map[uint64]string `json:"non_voters,omitempty"`
	Databases []DBStatus        `json:"databases"`
	// DiskFault says why this node's raft log cannot be written now, if so.
	DiskFault string `json:"disk_fault,omitempty"`
}

// ShardState is one raft group as the node sees it.
type ShardState struct {
	ShardID  uint64            `json:"shard_id"`
	Leader   string            `json:"leader"` // raft address, "" if unknown
	LeaderID uint64            `json:"leader_id"`
	IsLeader bool              `json:"is_leader"`
	Term     uint64            `json:"term"`
	Voters   map[uint64]string `json:"voters"`
}

// DBStatus is one database on this node.
type DBStatus struct {
	Name string `json:"name"`
	ShardState
	Applied   uint64 `json:"applied_index"`
	SizeBytes int64  `json:"size_bytes"` // the SQLite file and its WAL
	Ready     bool   `json:"ready"`
	// Asleep: nobody used the database for Config.Hibernate, so its raft
	// group is stopped on every node until it is used again.
	Asleep bool `json:"asleep,omitempty"`
	// DiskFault says why committed writes cannot be applied here now.
	DiskFault string `json:"disk_fault,omitempty"`
	// Halted says why this replica stopped at a committed entry it must
	// not apply (proposed by another SQLite build or a newer rsqlite); it
	// applies nothing more until this node runs the proposer's version.
	Halted string `json:"halted,omitempty"`
}

// Status reports the node's state.
func (n *Node) Status() Status {
	st := Status{ReplicaID: n.replicaID, RaftAddress: n.nh.RaftAddress(), Dir: n.cfg.Dir, NonVoting: n.id.NonVoting,
		Build: CurrentBuild(), PreviousBuild: n.previousBuild}
	shards := map[uint64]ShardState{}
	if info := n.nh.GetNodeHostInfo(dragonboat.NodeHostInfoOption{SkipLogInfo: true}); info != nil {
		for _, s := range info.ShardInfoList {
			// dragonboat leaves ShardInfo.IsLeader unset.
			ss := ShardState{ShardID: s.ShardID, LeaderID: s.LeaderID, IsLeader: s.LeaderID != 0 && s.LeaderID == n.replicaID, Term: s.Term, Voters: s.Replicas}
			if s.LeaderID != 0 {
				ss.Leader = s.Replicas[s.LeaderID]
			}
			shards[s.ShardID] = ss
		}
	}
	st.Catalog = shards[catalogShardID]
	if f := n.disk.Fault(); f != nil {
		st.DiskFault = f.Error()
	}
	n.mu.Lock()
	dbs := make([]*DB, 0, len(n.dbs))
	for _, db := range n.dbs {
		if db.shardID != 0 {
			dbs = append(dbs, db)
		}
	}
	n.mu.Unlock()
	for _, db := range dbs {
		ds := DBStatus{Name: db.name, ShardState: shards[db.shardID], Asleep: db.Asleep()}
		ds.ShardID = db.shardID
		if s := db.cur(); s != nil {
			select {
			case <-s.Ready():
				ds.Ready = true
				ds.Applied = s.Applied()
				if f := s.Fault(); f != nil {
					ds.DiskFault = f.Error()
				}
				if err := s.Halted(); err != nil {
					ds.Halted = err.Error()
				}
			default:
			}
		}
		for _, p := range []string{db.Path(), db.Path() + "-wal"} {
			if fi, err := os.Stat(p); err == nil {
				ds.SizeBytes += fi.Size()
			}
		}
		st.Databases = append(st.Databases, ds)
	}
	sort.Slice(st.Databases, func(i, j int) bool { return st.Databases[i].Name < st.Databases[j].Name })
	return st
}

// Ready reports nil when the catalog and every database this node hosts
// have a leader and their local replicas are open and applying, else what
// is missing: a disk fault or a halted replica first, as an operator must
// act on those.
func (n *Node) Ready() error {
	st := n.Status()
	if st.DiskFault != "" {
		return errors.New(st.DiskFault)
	}
	for _, d := range st.Databases {
		if d.DiskFault != "" {
			return fmt.Errorf("database %s: %s", d.Name, d.DiskFault)
		}
	}
	for _, d := range st.Databases {
		if d.Halted != "" {
			return fmt.Errorf("database %s: %s", d.Name, d.Halted)
		}
	}
	if st.Catalog.LeaderID == 0 {
		return errors.New("the catalog has no leader")
	}
	for _, d := range st.Databases {
		if d.Asleep {
			continue // it starts when used
		}
		if !d.Ready {
			return fmt.Errorf("database %s is not open yet", d.Name)
		}
		if d.LeaderID == 0 {
			return fmt.Errorf("database %s has no leader", d.Name)
		}
	}
	return nil
}

// AdminHandler serves the node's admin API:
//
//	GET  /status              the node and its databases, as JSON (Status)
//	GET  /readyz              200 when every group has a leader, the disk takes writes and no
//	                          replica is halted, else 503 with the cause
//	GET  /metrics             Prometheus metrics
//	POST /join                {"raft_address": "...", "non_voting": false} -> {"replica_id": N}
//	POST /remove              {"raft_address": "..."}
//	GET  /backup?db=NAME      a consistent, plain SQLite copy of the database
//	POST /restore?db=NAME     body: a SQLite file, loaded as a new database (Restore);
//	                          answers progress lines ending "ok N rows" or "error: ..."
//
// It has no authentication: bind it to a private address.
func (n *Node) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		st := n.Status()
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if _, nonVoters, err := n.Members(ctx); err == nil {
			st.NonVoters = nonVoters
		}
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := n.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	mux.Handle("GET /metrics", n.metricsHandler())
	mux.HandleFunc("POST /join", func(w http.ResponseWriter, r *http.Request) {
		var req joinRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil || req.RaftAddress == "" {
			http.Error(w, "body must be {\"raft_address\": \"host:port\", \"non_voting\": bool}", http.StatusBadRequest)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		id, err := n.AddNode(ctx, req.RaftAddress, req.NonVoting)
		if err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		writeJSON(w, http.StatusOK, joinResponse{ReplicaID: id})
	})
	mux.HandleFunc("POST /remove", func(w http.ResponseWriter, r *http.Request) {
		var req joinRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil || req.RaftAddress == "" {
			http.Error(w, "body must be {\"raft_address\": \"host:port\"}", http.StatusBadRequest)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		if err := n.RemoveNode(ctx, req.RaftAddress); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"removed": req.RaftAddress})
	})
	mux.HandleFunc("POST /restore", n.serveRestore)
	mux.HandleFunc("GET /backup", func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("db")
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		db := n.DB(name)
		if db == nil {
			http.Error(w, fmt.Sprintf("no database %q on this node", name), http.StatusNotFound)
			return
		}
		done, err := db.use(ctx) // keeps the replica (and its SM) running
		if err == nil {
			defer done()
			err = db.Barrier(ctx)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.sqlite3")
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
		if err := db.cur().Backup(w); err != nil {
			// Headers are gone; cut the body so the client sees a failure.
			panic(http.ErrAbortHandler)
		}
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// ServeAdmin serves AdminHandler on addr until the node stops, and returns
// the address it listens on.
func (n *Node) ServeAdmin(addr string) (net.Addr, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("rsqlite: admin address: %w", err)
	}
	srv := &http.Server{Handler: n.AdminHandler(), ReadHeaderTimeout: 10 * time.Second}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		<-n.done
		srv.Close()
	}()
	go srv.Serve(l)
	return l.Addr(), nil
}
