// Package rsqlite is a database/sql driver for SQLite databases replicated
// with Raft.
//
// Existing code changes the driver name and the DSN:
//
//	db, err := sql.Open("rsqlite", "file:/data/orders.db?raft=10.0.0.1:7001&peers=10.0.0.1:7001,10.0.0.2:7001,10.0.0.3:7001")
//
// Every write is proposed through the database's raft group and applied by
// every node to its own SQLite file; every read runs on the local file after
// a ReadIndex barrier (or without it, with consistency=stale). With no peers
// the driver runs a single-node cluster in the data directory.
//
// Errors SQLite raises reach the caller as sqlite3.Error values with
// SQLite's codes and message, as with mattn/go-sqlite3.
package rsqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"sync"

	"github.com/jmoiron/sqlx"

	"github.com/rsqlite/rsqlite/cluster"
)

// DriverName is the name the driver registers with database/sql.
const DriverName = "rsqlite"

func init() {
	sql.Register(DriverName, &Driver{})
	sqlx.BindDriver(DriverName, sqlx.QUESTION)
}

// Driver is the rsqlite database/sql driver.
type Driver struct{}

var (
	_ driver.Driver        = (*Driver)(nil)
	_ driver.DriverContext = (*Driver)(nil)
)

// Open opens a connection that owns its own reference to the node; prefer
// sql.Open, which uses OpenConnector and shares one per *sql.DB.
func (d *Driver) Open(dsn string) (driver.Conn, error) {
	c, err := d.OpenConnector(dsn)
	if err != nil {
		return nil, err
	}
	dc, err := c.Connect(context.Background())
	if err != nil {
		c.(*Connector).Close()
		return nil, err
	}
	dc.(*conn).ownsConnector = true
	return dc, nil
}

// OpenConnector parses the DSN and starts the node it names (or takes a
// reference to it, if this process already runs it), so sql.Open reports a
// bad DSN or a node that cannot start. The node starts at sql.Open, not at
// the first query: it is a member of the cluster, and the other members
// need it running to have a quorum whether or not this process has used
// the database yet. The database itself is opened on the first connection.
func (d *Driver) OpenConnector(dsn string) (driver.Connector, error) {
	cfg, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	c := NewConnector(cfg)
	if err := c.start(); err != nil {
		return nil, err
	}
	return c, nil
}

// Connector opens connections to one database. database/sql closes it when
// the *sql.DB is closed, which releases the node.
type Connector struct {
	cfg *Config

	mu     sync.Mutex
	node   *cluster.Node
	db     *cluster.DB
	closed bool
}

var (
	_ driver.Connector = (*Connector)(nil)
)

// NewConnector returns a connector for cfg, for sql.OpenDB. Unlike
// sql.Open, it starts nothing: the node starts with the first connection.
func NewConnector(cfg *Config) *Connector { return &Connector{cfg: cfg} }

// Driver returns the rsqlite driver.
func (c *Connector) Driver() driver.Driver { return &Driver{} }

// Connect returns a connection, starting the node and creating the
// database on first use.
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) {
	ctx, cancel := withDefaultTimeout(ctx, c.cfg)
	defer cancel()
	db, err := c.database(ctx)
	if err != nil {
		return nil, err
	}
	return newConn(c, db)
}

func (c *Connector) database(ctx context.Context) (*cluster.DB, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("rsqlite: %w", cluster.ErrClosed)
	}
	if c.db != nil {
		return c.db, nil
	}
	if err := c.acquire(); err != nil {
		return nil, err
	}
	db, err := c.node.Open(ctx, c.cfg.Name)
	if err != nil {
		return nil, err
	}
	c.db = db
	return db, nil
}

// start acquires the node for OpenConnector.
func (c *Connector) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.acquire()
}

// acquire starts the node or takes a reference to it; c.mu is held.
func (c *Connector) acquire() error {
	if c.node != nil {
		return nil
	}
	n, err := cluster.Acquire(cluster.Config{
		Dir: c.cfg.Dir, RaftAddress: c.cfg.RaftAddress, Peers: c.cfg.Peers,
		AdminAddress: c.cfg.Admin, JoinAddress: c.cfg.Join, NonVoting: c.cfg.NonVoting,
		Hibernate: c.cfg.Hibernate,
		TLSCAFile: c.cfg.TLSCA, TLSCertFile: c.cfg.TLSCert, TLSKeyFile: c.cfg.TLSKey,
	})
	if err != nil {
		return err
	}
	c.node = n
	return nil
}

// Close releases the node; it stops when no other *sql.DB uses it.
func (c *Connector) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if c.node != nil {
		return c.node.Release()
	}
	return nil
}

// withDefaultTimeout gives ctx the DSN's default deadline if it has none:
// raft calls need one, and a write must not wait forever without quorum.
func withDefaultTimeout(ctx context.Context, cfg *Config) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, cfg.Timeout)
}
