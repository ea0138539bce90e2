// Package clustertest starts real rsqlite clusters for tests: N nodes in
// this process, each with its own data directory and a free loopback port,
// talking real raft over TCP. It is the one way tests start, stop and
// restart nodes.
package clustertest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/rsqlite/rsqlite" // the driver under test

	"github.com/rsqlite/rsqlite/cluster"
)

// Cluster is a set of nodes started for one test.
type Cluster struct {
	t     testing.TB
	Nodes []*Node
	peers string
	// Params are added to every DSN (e.g. "timeout=20s").
	Params string
}

// Node is one member: a data directory and a raft address.
type Node struct {
	Index int
	Dir   string
	Raft  string
	// Params are added to this node's DSNs (e.g. "admin=127.0.0.1:9001").
	Params  string
	cluster *Cluster
	dbs     map[string]*sql.DB
	running bool
}

// New prepares an n-node cluster; nodes start on first Open.
func New(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	var addrs []string
	base := t.TempDir()
	for i := 0; i < n; i++ {
		addr := FreeAddr(t)
		addrs = append(addrs, addr)
		c.Nodes = append(c.Nodes, &Node{
			Index:   i,
			Dir:     filepath.Join(base, fmt.Sprintf("node%d", i)),
			Raft:    addr,
			cluster: c,
			dbs:     map[string]*sql.DB{},
		})
	}
	c.peers = strings.Join(addrs, ",")
	t.Cleanup(c.Close)
	return c
}

// FreeAddr returns a loopback host:port that was free a moment ago. Its
// port is below the kernel's ephemeral range: between picking it and a node
// binding it, no outgoing connection (of this or another test process) can
// take it, which a kernel-assigned port does not guarantee.
func FreeAddr(t testing.TB) string {
	t.Helper()
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				lo = v
			}
		}
	}
	for try := 0; lo > 12000 && try < 200; try++ {
		addr := fmt.Sprintf("127.0.0.1:%d", 10000+rand.IntN(lo-10000))
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			return addr
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// DSN is the data source name of database name on node i.
func (c *Cluster) DSN(i int, name string) string {
	n := c.Nodes[i]
	dsn := fmt.Sprintf("file:%s?raft=%s&peers=%s", filepath.Join(n.Dir, name), n.Raft, c.peers)
	for _, p := range []string{c.Params, n.Params} {
		if p != "" {
			dsn += "&" + p
		}
	}
	return dsn
}

// Open opens database name on node i (once; later calls return the same
// *sql.DB) and waits until it answers a linearizable read, which needs a
// quorum of the nodes to be running.
func (c *Cluster) Open(i int, name string) *sql.DB {
	c.t.Helper()
	return c.OpenAll(name, i)[0]
}

// OpenAll opens name on the given nodes (all when none are given) at once,
// and waits until each answers a linearizable read. Nodes must start
// together: the first cannot answer before a quorum is up.
func (c *Cluster) OpenAll(name string, nodes ...int) []*sql.DB {
	c.t.Helper()
	if len(nodes) == 0 {
		for i := range c.Nodes {
			nodes = append(nodes, i)
		}
	}
	dbs := make([]*sql.DB, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for k, i := range nodes {
		n := c.Nodes[i]
		if db, ok := n.dbs[name]; ok {
			dbs[k] = db
			continue
		}
		db, err := sql.Open("rsqlite", c.DSN(i, name))
		if err != nil {
			c.t.Fatal(err)
		}
		dbs[k] = db
		n.dbs[name] = db
		n.running = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := db.PingContext(ctx); err != nil {
				errs[k] = fmt.Errorf("node %d: open %s: %w", i, name, err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.t.Fatal(err)
	}
	return dbs
}

// Stop closes every *sql.DB of node i, which stops its node (NodeHost,
// replicas, port) as a crash of the process would, minus the lost page cache.
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	n := c.Nodes[i]
	for name, db := range n.dbs {
		db.Close()
		delete(n.dbs, name)
	}
	if cluster.Running(n.Dir) != nil {
		c.t.Fatalf("node %d still running after its databases were closed", i)
	}
	n.running = false
}

// Restart starts node i again from its data directory with the databases it
// had open.
func (c *Cluster) Restart(i int, names ...string) {
	c.t.Helper()
	for _, name := range names {
		c.Open(i, name)
	}
}

// Leader returns the index of the node leading database name's group, as
// seen by any running node, waiting up to 10s for one.
func (c *Cluster) Leader(name string) int {
	c.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for i := range c.Nodes {
			db := c.LocalDB(i, name)
			if db == nil {
				continue
			}
			if addr, ok := db.LeaderAddress(); ok {
				for j, m := range c.Nodes {
					if m.Raft == addr && m.running {
						return j
					}
				}
			}
		}
	}
	c.t.Fatalf("no leader for %s", name)
	return -1
}

// LocalDB returns node i's replica of name (nil if not running).
func (c *Cluster) LocalDB(i int, name string) *cluster.DB {
	node := cluster.Running(c.Nodes[i].Dir)
	if node == nil {
		return nil
	}
	return node.DB(name)
}

// Close stops every node.
func (c *Cluster) Close() {
	for _, n := range c.Nodes {
		for name, db := range n.dbs {
			db.Close()
			delete(n.dbs, name)
		}
		n.running = false
	}
}
