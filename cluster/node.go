package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/config"
	sm "github.com/lni/dragonboat/v4/statemachine"
	"github.com/lni/vfs"

	"github.com/rsqlite/rsqlite/internal/raftdisk"
	"github.com/rsqlite/rsqlite/statemachine"
)

// Config describes a node. Every process that opens the same Dir must pass
// the same RaftAddress and Peers.
type Config struct {
	// Dir is the node's data directory: the raft state under Dir/.rsqlite and
	// one SQLite file per database.
	Dir string
	// RaftAddress is the host:port other nodes reach this node on. Empty
	// only for a single-node cluster, which then uses an in-process
	// transport and opens no port.
	RaftAddress string
	// Peers are the initial members' raft addresses, the same list on every
	// node. Empty means a single-node cluster.
	Peers []string

	// RTT is dragonboat's logical tick (default 10ms); elections take 10 to
	// 20 ticks, heartbeats go every tick.
	RTT time.Duration
	// SnapshotEntries is how many entries a database's raft log keeps before
	// it is compacted (default 10,000); a replica further behind than that
	// receives a snapshot of the database instead.
	SnapshotEntries uint64
	// CompactionOverhead is how many entries stay after compaction
	// (default 5,000).
	CompactionOverhead uint64
	// TLSCAFile, TLSCertFile and TLSKeyFile turn on mutual TLS between
	// nodes: each node presents its certificate and accepts only peers whose
	// certificates the CA signed. All three or none.
	TLSCAFile, TLSCertFile, TLSKeyFile string

	// AdminAddress, if set, is where the node serves its admin HTTP API
	// (AdminHandler).
	AdminAddress string
	// JoinAddress is the admin HTTP address (host:port or URL) of a running
	// member. A node with no identity yet asks it to add this node to the
	// cluster (catalog and every database) instead of bootstrapping from
	// Peers. Ignored once the node has joined.
	JoinAddress string
	// NonVoting makes a joining node a non-voting member: it receives every
	// write and serves reads, but does not count towards quorum.
	NonVoting bool

	// Hibernate, if set, puts a database that no node has used for this
	// long to sleep: its raft group stops on every node, and starts again,
	// in about an election timeout, when the database is next used
	// (hibernate.go). For clusters with many mostly idle databases. Zero
	// (the default) keeps every group running.
	Hibernate time.Duration

	// ProposeAttempt bounds the first attempt of a proposal or read barrier
	// before it is retried (default 300ms, doubling on each timeout up to
	// 1s). A proposal forwarded to a leader that just died is lost silently,
	// so this is also how long a write waits before trying the new leader. A
	// retry is safe: commands carry request IDs.
	ProposeAttempt time.Duration
}

// Defaults fill the zero fields of every Config. Tests lower
// SnapshotEntries to exercise snapshot transfer; change it only before
// nodes start.
var Defaults = Config{
	RTT:                10 * time.Millisecond,
	SnapshotEntries:    10000,
	CompactionOverhead: 5000,
	ProposeAttempt:     300 * time.Millisecond,
}

func (c *Config) setDefaults() {
	if c.RTT == 0 {
		c.RTT = Defaults.RTT
	}
	if c.SnapshotEntries == 0 {
		c.SnapshotEntries = Defaults.SnapshotEntries
	}
	if c.CompactionOverhead == 0 {
		c.CompactionOverhead = Defaults.CompactionOverhead
	}
	if c.ProposeAttempt == 0 {
		c.ProposeAttempt = Defaults.ProposeAttempt
	}
	if c.Hibernate == 0 {
		c.Hibernate = Defaults.Hibernate
	}
}

// Node is one rsqlite node: a dragonboat NodeHost, the catalog, and the
// replicas of every database. A process may run several (distinct Dirs);
// every *sql.DB naming the same Dir shares one Node.
type Node struct {
	cfg       Config
	nh        *dragonboat.NodeHost
	disk      *raftdisk.FS // under the raft log; reports stalled writes
	id        identity
	replicaID uint64
	catalog   *catalogSM
	metrics   *metrics
	joinMu    sync.Mutex // one membership change at a time through this node
	log       *slog.Logger
	// previousBuild: the build this node ran before this start, if another.
	previousBuild *Build

	mu   sync.Mutex
	refs int
	dbs  map[string]*DB
	// queue holds the names of databases whose catalog record changed, in
	// order, and pending their latest record: a replay of the catalog log
	// (a restart) may put a database to sleep and wake it many times, and
	// only the last state matters.
	queue   []string
	pending map[string]dbInfo
	wake    chan struct{}
	// reconcileNow asks the reconciler to run before its next tick.
	reconcileNow chan struct{}
	closed       bool
	done         chan struct{}
	// ctx is cancelled when the node stops, ending background work.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var registry = struct {
	sync.Mutex
	nodes map[string]*Node
}{nodes: map[string]*Node{}}

// Acquire returns the running node of cfg.Dir, starting it if needed. Each
// Acquire must be paired with a Release; the node stops at the last Release.
func Acquire(cfg Config) (*Node, error) {
	cfg.setDefaults()
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	cfg.Dir = dir
	registry.Lock()
	defer registry.Unlock()
	if n, ok := registry.nodes[dir]; ok {
		if n.cfg.RaftAddress != cfg.RaftAddress && cfg.RaftAddress != "" || !slices.Equal(n.cfg.Peers, cfg.Peers) && len(cfg.Peers) > 0 {
			return nil, fmt.Errorf("rsqlite: data directory %s is already used in this process by a node with raft=%s peers=%s; every DSN naming it must use the same raft and peers",
				dir, n.cfg.RaftAddress, strings.Join(n.cfg.Peers, ","))
		}
		n.mu.Lock()
		n.refs++
		n.mu.Unlock()
		return n, nil
	}
	n, err := start(cfg)
	if err != nil {
		return nil, err
	}
	registry.nodes[dir] = n
	return n, nil
}

// Release drops one reference; the last one stops the node.
func (n *Node) Release() error {
	registry.Lock()
	n.mu.Lock()
	n.refs--
	last := n.refs == 0
	n.mu.Unlock()
	if last {
		delete(registry.nodes, n.cfg.Dir)
	}
	registry.Unlock()
	if last {
		n.stop()
	}
	return nil
}

// identity is what a node remembers about itself across restarts.
type identity struct {
	ReplicaID   uint64 `json:"replica_id"`
	RaftAddress string `json:"raft_address"`
	// Joined: the node was added to a running cluster (rsqlite join), so
	// it starts its replicas by joining instead of bootstrapping them.
	Joined    bool `json:"joined,omitempty"`
	NonVoting bool `json:"non_voting,omitempty"`
}

func (c *Config) metaDir() string { return filepath.Join(c.Dir, ".rsqlite") }

// loadIdentity reads the node's identity, or derives and saves it on first
// start: the replica ID is the position of RaftAddress among the sorted
// peers, so every node computes the same IDs from the same list.
func loadIdentity(cfg *Config) (identity, error) {
	path := filepath.Join(cfg.metaDir(), "node.json")
	var id identity
	b, err := os.ReadFile(path)
	if err == nil {
		if err := json.Unmarshal(b, &id); err != nil {
			return id, fmt.Errorf("rsqlite: corrupt node identity %s: %w", path, err)
		}
		if cfg.RaftAddress != "" && cfg.RaftAddress != id.RaftAddress {
			return id, fmt.Errorf("rsqlite: data directory %s belongs to the node with raft address %s, not %s", cfg.Dir, id.RaftAddress, cfg.RaftAddress)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return id, err
	}
	if cfg.JoinAddress != "" {
		if cfg.RaftAddress == "" {
			return id, fmt.Errorf("rsqlite: joining a cluster needs this node's raft address")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		rid, err := requestJoin(ctx, cfg.JoinAddress, cfg.RaftAddress, cfg.NonVoting)
		if err != nil {
			return id, err
		}
		id = identity{ReplicaID: rid, RaftAddress: cfg.RaftAddress, Joined: true, NonVoting: cfg.NonVoting}
	} else if len(cfg.Peers) == 0 {
		id = identity{ReplicaID: 1, RaftAddress: cfg.RaftAddress}
		if id.RaftAddress == "" {
			var b [8]byte
			rand.Read(b[:])
			id.RaftAddress = "local-" + hex.EncodeToString(b[:])
		}
	} else {
		i := slices.Index(cfg.Peers, cfg.RaftAddress)
		if i < 0 {
			return id, fmt.Errorf("rsqlite: raft address %s is not among peers %s", cfg.RaftAddress, strings.Join(cfg.Peers, ","))
		}
		id = identity{ReplicaID: uint64(i + 1), RaftAddress: cfg.RaftAddress}
	}
	if err := os.MkdirAll(cfg.metaDir(), 0o755); err != nil {
		return id, err
	}
	b, _ = json.Marshal(id)
	if err := writeFileSync(path, b); err != nil {
		return id, err
	}
	return id, nil
}

func writeFileSync(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func start(cfg Config) (*Node, error) {
	installDragonboatLogger()
	// Before loadIdentity: a joining node must not register itself with a
	// cluster it then cannot talk to.
	if err := checkTLSFiles(cfg); err != nil {
		return nil, err
	}
	id, err := loadIdentity(&cfg)
	if err != nil {
		return nil, err
	}
	local := len(cfg.Peers) == 0 && strings.HasPrefix(id.RaftAddress, "local-")
	disk := raftdisk.New(vfs.Default)
	nhc := config.NodeHostConfig{
		ListenAddress:  ListenAddressHook(id.RaftAddress),
		NodeHostDir:    filepath.Join(cfg.metaDir(), "raft"),
		RTTMillisecond: uint64(max(cfg.RTT.Milliseconds(), 1)),
		RaftAddress:    id.RaftAddress,
		Expert:         config.ExpertConfig{LogDB: config.GetTinyMemLogDBConfig(), FS: raftdisk.Wrap(disk)},
	}
	if local {
		nhc.Expert.TransportFactory = localTransport{}
	}
	if tls := []string{cfg.TLSCAFile, cfg.TLSCertFile, cfg.TLSKeyFile}; tls[0] != "" {
		nhc.MutualTLS, nhc.CAFile, nhc.CertFile, nhc.KeyFile = true, tls[0], tls[1], tls[2]
	}
	nh, err := dragonboat.NewNodeHost(nhc)
	if err != nil {
		// dragonboat's ErrLockDirectory is internal; match its text.
		if strings.Contains(err.Error(), "failed to lock data directory") {
			return nil, fmt.Errorf("rsqlite: data directory %s is in use by another process", cfg.Dir)
		}
		return nil, fmt.Errorf("rsqlite: start node in %s: %w", cfg.Dir, err)
	}
	// After NewNodeHost, which locks the directory: another process that
	// fails to start on it must not overwrite the running node's record.
	previousBuild, err := recordBuild(cfg.metaDir())
	if err != nil {
		nh.Close()
		return nil, fmt.Errorf("rsqlite: record this node's build in %s: %w", cfg.Dir, err)
	}
	if previousBuild != nil {
		cur := CurrentBuild()
		currentLogger().Warn("rsqlite: this node's build changed since it last ran; every node must run the same SQLite, or replicas halt at each other's writes",
			"dir", cfg.Dir, "sqlite_was", previousBuild.SQLite, "sqlite_now", cur.SQLite,
			"encoding_was", previousBuild.Encoding, "encoding_now", cur.Encoding)
	}
	n := &Node{
		cfg:       cfg,
		nh:        nh,
		disk:      disk,
		id:        id,
		replicaID: id.ReplicaID,
		metrics:   newMetrics(),
		log:       currentLogger(),

		previousBuild: previousBuild,
		refs:          1,
		dbs:           map[string]*DB{},
		pending:       map[string]dbInfo{},
		wake:          make(chan struct{}, 1),
		done:          make(chan struct{}),

		reconcileNow: make(chan struct{}, 1),
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.catalog = newCatalogSM(n.enqueue)
	members := n.initialMembers(catalogShardID, id)
	join := members == nil && id.Joined && !nh.HasNodeInfo(catalogShardID, id.ReplicaID)
	err = nh.StartReplica(members, join, func(uint64, uint64) sm.IStateMachine { return n.catalog }, n.shardConfig(catalogShardID))
	if err != nil {
		nh.Close()
		return nil, fmt.Errorf("rsqlite: start catalog in %s: %w", cfg.Dir, err)
	}
	n.wg.Add(2)
	go n.starter()
	go n.reconciler()
	if cfg.Hibernate > 0 {
		n.wg.Add(1)
		go n.hibernator()
	}
	if cfg.AdminAddress != "" {
		if _, err := n.ServeAdmin(cfg.AdminAddress); err != nil {
			n.stop()
			return nil, err
		}
	}
	return n, nil
}

func checkTLSFiles(cfg Config) error {
	files := []string{cfg.TLSCAFile, cfg.TLSCertFile, cfg.TLSKeyFile}
	set := 0
	for _, f := range files {
		if f != "" {
			set++
		}
	}
	switch set {
	case 0:
		return nil
	case 3:
		for _, f := range files {
			if _, err := os.Stat(f); err != nil {
				return fmt.Errorf("rsqlite: TLS file: %w", err)
			}
		}
		return nil
	}
	return fmt.Errorf("rsqlite: mutual TLS needs a CA, a certificate and a key (tls_ca, tls_cert, tls_key)")
}

// initialMembers is nil on a restart: the raft log has the membership, and
// passing a list (perhaps changed since) would be refused.
func (n *Node) initialMembers(shardID uint64, id identity) map[uint64]dragonboat.Target {
	if n.nh.HasNodeInfo(shardID, n.replicaID) || id.Joined {
		return nil
	}
	if len(n.cfg.Peers) == 0 {
		return map[uint64]dragonboat.Target{id.ReplicaID: id.RaftAddress}
	}
	m := make(map[uint64]dragonboat.Target, len(n.cfg.Peers))
	for i, p := range n.cfg.Peers {
		m[uint64(i+1)] = p
	}
	return m
}

func (n *Node) shardConfig(shardID uint64) config.Config {
	c := config.Config{
		ShardID:            shardID,
		ReplicaID:          n.replicaID,
		IsNonVoting:        n.id.NonVoting,
		ElectionRTT:        10,
		HeartbeatRTT:       1,
		CheckQuorum:        true,
		PreVote:            true,
		SnapshotEntries:    n.cfg.SnapshotEntries,
		CompactionOverhead: n.cfg.CompactionOverhead,
		// Bounds the in-memory log and the size of one proposal.
		MaxInMemLogSize: maxCommandSize * 4,
		// Not Quiesce: with it, a group whose nodes all quiesced while
		// partitioned without quorum stayed leaderless for seconds after the
		// heal (faulttest liveness), and at a 10ms RTT it saved no CPU
		// (dragonboat ticks quiesced replicas too).
	}
	if shardID == catalogShardID {
		c.SnapshotEntries, c.CompactionOverhead = 1000, 100
	}
	return c
}

// ListenAddressHook maps a node's raft address to the address it binds.
// By default they are the same. Fault-injection tests put a proxy on the
// raft address (which peers dial) and bind the node elsewhere, so they can
// cut and restore its links.
var ListenAddressHook = func(raftAddress string) string { return "" }

// maxCommandSize bounds one encoded command (statements plus arguments).
const maxCommandSize = 64 << 20

// enqueue is the catalog's onChange: it runs inside the catalog's Update,
// which must not call into the NodeHost, so a goroutine starts the replica.
func (n *Node) enqueue(d dbInfo) {
	n.mu.Lock()
	if p, ok := n.pending[d.Name]; !ok {
		n.queue = append(n.queue, d.Name)
		n.pending[d.Name] = d
	} else if stateOrder(d.Epoch, d.Asleep) >= stateOrder(p.Epoch, p.Asleep) {
		n.pending[d.Name] = d
	}
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *Node) starter() {
	defer n.wg.Done()
	for {
		select {
		case <-n.done:
			return
		case <-n.wake:
		}
		for {
			n.mu.Lock()
			if len(n.queue) == 0 || n.closed {
				n.mu.Unlock()
				break
			}
			d := n.pending[n.queue[0]]
			delete(n.pending, n.queue[0])
			n.queue = n.queue[1:]
			n.mu.Unlock()
			n.applyDBState(d)
		}
	}
}

// startReplica starts the local replica of a database the catalog knows,
// unless it runs. A replica that ran before gets a new state machine once
// the old one has closed (two would apply the same entries to the file).
func (n *Node) startReplica(db *DB, d dbInfo) {
	db.life.mu.Lock()
	if db.life.running {
		db.life.mu.Unlock()
		return
	}
	db.life.mu.Unlock()
	old := db.cur()
	if old != nil && !n.waitClosed(db, old) {
		return
	}
	n.metrics.initDB(d.Name)
	s := statemachine.New(statemachine.Options{
		Path:     db.path,
		Logger:   n.log,
		Observer: smObserver{m: n.metrics, db: d.Name, applied: db.applied},
		LocalTxs: &db.locals,
	})
	db.sm.Store(s)

	// A restart takes the membership from the raft log; a database created
	// while this node was a member lists it among its initial members; one
	// created before this node joined is joined (the member that added this
	// node added it to that group too).
	var members map[uint64]dragonboat.Target
	join := false
	if !n.nh.HasNodeInfo(d.ShardID, n.replicaID) {
		if _, ok := d.Members[n.replicaID]; ok {
			members = make(map[uint64]dragonboat.Target, len(d.Members))
			for id, addr := range d.Members {
				members[id] = addr
			}
		} else {
			join = true
		}
	}
	db.touch() // a fresh replica is not idle
	err := n.nh.StartOnDiskReplica(members, join,
		func(uint64, uint64) sm.IOnDiskStateMachine { return s }, n.shardConfig(d.ShardID))
	db.life.mu.Lock()
	defer db.life.mu.Unlock()
	if err != nil {
		db.sm.Store(old)
		db.life.startErr = fmt.Errorf("rsqlite: start replica of %s (shard %d): %w", d.Name, d.ShardID, err)
		n.log.Error(db.life.startErr.Error())
		return
	}
	db.life.running, db.life.startErr = true, nil
}

// waitClosed waits until a stopped replica's state machine has closed.
func (n *Node) waitClosed(db *DB, s *statemachine.SM) bool {
	for start := time.Now(); !s.Closed(); time.Sleep(2 * time.Millisecond) {
		if n.ctx.Err() != nil {
			return false
		}
		if time.Since(start) > 30*time.Second {
			n.log.Error("rsqlite: a stopped replica's state machine did not close; not restarting it", "db", db.name)
			return false
		}
	}
	return true
}

// dbLocked returns the DB record for name, creating an unstarted one.
func (n *Node) dbLocked(name string) *DB {
	db, ok := n.dbs[name]
	if !ok {
		db = &DB{node: n, name: name, path: filepath.Join(n.cfg.Dir, name), txSlot: make(chan struct{}, 1)}
		n.dbs[name] = db
	}
	return db
}

func (n *Node) stop() {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	n.cancel()
	close(n.done)
	n.wg.Wait()
	n.closeNodeHost()
}

// closeNodeHost stops dragonboat. After a failed fsync of the raft log its
// log store reports that error again on close, and dragonboat panics with
// it; the node already refuses work for that reason, so closing it (to
// restart) must not take the process down.
func (n *Node) closeNodeHost() {
	if f := n.disk.Fault(); f != nil && f.Fatal {
		defer func() {
			if r := recover(); r != nil {
				n.log.Error("rsqlite: raft log closed with an error after a failed fsync", "dir", n.cfg.Dir, "err", r)
			}
		}()
	}
	n.nh.Close()
}

// ValidateName reports whether name can be a database: a plain file name.
func ValidateName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("rsqlite: empty database name")
	case strings.ContainsAny(name, `/\`+"\x00"):
		return fmt.Errorf("rsqlite: database name %q must be a file name, not a path", name)
	case strings.HasPrefix(name, "."):
		return fmt.Errorf("rsqlite: database name %q must not start with a dot", name)
	case len(name) > 200:
		return fmt.Errorf("rsqlite: database name is longer than 200 bytes")
	}
	return nil
}

// Open returns the database called name, creating it on every member if it
// does not exist yet, once its local replica has opened its file.
func (n *Node) Open(ctx context.Context, name string) (*DB, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	info, found, err := n.lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	if !found {
		if err := n.create(ctx, name); err != nil {
			return nil, err
		}
	} else {
		n.enqueue(info) // no-op when already known
	}
	n.mu.Lock()
	db := n.dbLocked(name)
	n.mu.Unlock()
	if err := db.opened(ctx); err != nil {
		return nil, err
	}
	return db, nil
}

// lookup reads the catalog after a read barrier, so a database created on
// any node before this call is found.
func (n *Node) lookup(ctx context.Context, name string) (dbInfo, bool, error) {
	var res lookupResult
	err := n.retry(ctx, catalogShardID, "look up database "+name, 0, func(actx context.Context) error {
		v, err := n.nh.SyncRead(actx, catalogShardID, name)
		if err == nil {
			res = v.(lookupResult)
		}
		return err
	})
	return res.info, res.ok, err
}

func (n *Node) create(ctx context.Context, name string) error {
	// The new group is bootstrapped by the catalog's voters; non-voting
	// members are added by the reconciler once it exists.
	m, err := n.catalogMembership(ctx)
	if err != nil {
		return err
	}
	cmd := catalogCommand{Op: "create", Name: name, Members: m.Nodes}
	if len(m.NonVotings) == 0 {
		// Its initial members are the cluster's: nothing to reconcile
		// until the membership changes.
		cmd.ConfigChangeID = m.ConfigChangeID
	}
	_, err = n.proposeCatalog(ctx, "create database "+name, cmd)
	return err
}

// Databases lists the databases the local catalog knows, sorted by name.
func (n *Node) Databases() []string {
	v, err := n.catalog.Lookup(nil)
	if err != nil {
		return nil
	}
	var names []string
	for _, d := range v.([]dbInfo) {
		names = append(names, d.Name)
	}
	return names
}

// Dir is the node's data directory.
func (n *Node) Dir() string { return n.cfg.Dir }

// RaftAddress is the address the node's raft transport is known by.
func (n *Node) RaftAddress() string { return n.nh.RaftAddress() }

// ReplicaID is this node's raft replica ID in every group.
func (n *Node) ReplicaID() uint64 { return n.replicaID }

// Running returns the node running in this process for dir, or nil. For
// tools and tests that need to look inside a node a *sql.DB started.
func Running(dir string) *Node {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil
	}
	registry.Lock()
	defer registry.Unlock()
	return registry.nodes[abs]
}

// DB returns the local replica of a database this node has started, or nil.
func (n *Node) DB(name string) *DB {
	n.mu.Lock()
	defer n.mu.Unlock()
	db := n.dbs[name]
	if db == nil || db.shardID == 0 {
		return nil
	}
	return db
}
