package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/rsqlite/rsqlite"

	"github.com/rsqlite/rsqlite/cluster"
)

// demoNode is one of the demo's three nodes: a data directory, a loopback
// raft address, and the *sql.DB the "application" on that node uses.
type demoNode struct {
	name, dir, raft string
	db              *sql.DB
}

func runDemo(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ExitOnError)
	dir := fs.String("dir", "", "directory for the nodes' data (default: a new temporary directory, removed afterwards)")
	writes := fs.Int("writes", 200, "rows to write while the leader is down")
	verbose := fs.Bool("v", false, "also print the raft library's warnings (a stopped node makes its peers warn that they cannot reach it)")
	fs.Parse(args)
	if !*verbose {
		cluster.SetLogLevel(slog.LevelError + 4)
	}

	base := *dir
	if base == "" {
		tmp, err := os.MkdirTemp("", "rsqlite-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		base = tmp
	}
	step := func(format string, a ...any) { fmt.Printf("\n==> "+format+"\n", a...) }
	say := func(format string, a ...any) { fmt.Printf("    "+format+"\n", a...) }

	nodes := make([]*demoNode, 3)
	var addrs []string
	for i := range nodes {
		addr, err := freeLoopbackAddr()
		if err != nil {
			return err
		}
		nodes[i] = &demoNode{name: fmt.Sprintf("node%d", i+1), dir: filepath.Join(base, fmt.Sprintf("node%d", i+1)), raft: addr}
		addrs = append(addrs, addr)
	}
	peers := strings.Join(addrs, ",")
	dsn := func(n *demoNode) string {
		return fmt.Sprintf("file:%s?raft=%s&peers=%s", filepath.Join(n.dir, "orders.db"), n.raft, peers)
	}
	open := func(n *demoNode) error {
		db, err := sql.Open("rsqlite", dsn(n))
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			return fmt.Errorf("%s: %w", n.name, err)
		}
		n.db = db
		return nil
	}
	defer func() {
		for _, n := range nodes {
			if n.db != nil {
				n.db.Close()
			}
		}
	}()

	step("Starting three nodes in this process, on %s", peers)
	for _, n := range nodes {
		say("%s: sql.Open(\"rsqlite\", %q)", n.name, dsn(n))
	}
	start := time.Now()
	// The nodes start together, as separate machines would: none can answer
	// before a majority is up.
	errs := make(chan error, len(nodes))
	for _, n := range nodes {
		go func() { errs <- open(n) }()
	}
	for range nodes {
		if err := <-errs; err != nil {
			return err
		}
	}
	say("all three answered a linearizable read after %v; orders.db exists on every node", time.Since(start).Round(time.Millisecond))

	step("Writing through %s", nodes[0].name)
	if _, err := nodes[0].db.Exec(`CREATE TABLE orders(id INTEGER PRIMARY KEY, item TEXT NOT NULL, placed_at TEXT DEFAULT CURRENT_TIMESTAMP)`); err != nil {
		return err
	}
	for _, item := range []string{"apples", "bread", "coffee"} {
		res, err := nodes[0].db.Exec("INSERT INTO orders(item) VALUES (?)", item)
		if err != nil {
			return err
		}
		id, _ := res.LastInsertId()
		say("INSERT %s -> id %d (committed by a majority before Exec returned)", item, id)
	}

	step("Reading through the other nodes")
	for _, n := range nodes[1:] {
		items, err := listItems(n.db)
		if err != nil {
			return err
		}
		say("%s sees %d orders: %s", n.name, len(items), strings.Join(items, ", "))
	}

	leader := leaderOf(nodes, "orders.db")
	if leader == nil {
		return fmt.Errorf("no leader found")
	}
	step("Stopping the leader, %s, as if its machine died", leader.name)
	leader.db.Close()
	leader.db = nil
	var survivor *demoNode
	for _, n := range nodes {
		if n != leader {
			survivor = n
			break
		}
	}

	step("Writing %d more rows through %s while %s is down", *writes, survivor.name, leader.name)
	t0 := time.Now()
	var firstOK time.Duration
	for i := 0; i < *writes; i++ {
		if _, err := survivor.db.Exec("INSERT INTO orders(item) VALUES (?)", fmt.Sprintf("item-%d", i)); err != nil {
			return fmt.Errorf("write %d: %w", i, err)
		}
		if i == 0 {
			firstOK = time.Since(t0)
		}
	}
	say("first write after the stop succeeded after %v (a new leader was elected meanwhile)", firstOK.Round(time.Millisecond))
	say("all %d writes succeeded in %v, no error reached the application", *writes, time.Since(t0).Round(time.Millisecond))

	step("Restarting %s from its data directory", leader.name)
	if err := open(leader); err != nil {
		return err
	}
	var want, got int
	survivor.db.QueryRow("SELECT count(*) FROM orders").Scan(&want)
	if err := leader.db.QueryRow("SELECT count(*) FROM orders").Scan(&got); err != nil {
		return err
	}
	say("%s has %d orders, %s has %d: caught up", leader.name, got, survivor.name, want)
	if got != want {
		return fmt.Errorf("%s has %d rows, want %d", leader.name, got, want)
	}

	step("Comparing the three SQLite files")
	say("each node's orders.db read with plain go-sqlite3; every row, in id order, hashed")
	var first string
	for _, n := range nodes {
		// A linearizable read first: once it answers, the node has applied
		// every acknowledged write to its file.
		if err := n.db.QueryRow("SELECT count(*) FROM orders").Scan(new(int)); err != nil {
			return fmt.Errorf("%s: %w", n.name, err)
		}
		path := filepath.Join(n.dir, "orders.db")
		rows, maxID, sum, err := dumpOrders(path)
		if err != nil {
			return fmt.Errorf("%s: %w", n.name, err)
		}
		say("%s: %d rows, max id %d, SHA-256 of the rows %.8x...  (%s)", n.name, rows, maxID, sum, path)
		if first == "" {
			first = string(sum)
		} else if string(sum) != first {
			return fmt.Errorf("%s's file differs from %s's", n.name, nodes[0].name)
		}
	}
	say("the three files hold the same rows")
	if *dir != "" {
		fmt.Println("\nDone. Each node's orders.db is an ordinary SQLite file; open it with sqlite3 to look inside.")
	} else {
		fmt.Println("\nDone. Each node's orders.db is an ordinary SQLite file (removed now; run with -dir DIR to keep them).")
	}
	return nil
}

// dumpOrders reads the SQLite file at path itself, read-only with plain
// go-sqlite3 (not through rsqlite), and hashes every value of every row of
// orders, with its type, in id order.
func dumpOrders(path string) (rows, maxID int64, sum []byte, err error) {
	db, err := sql.Open("sqlite3", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro")
	if err != nil {
		return 0, 0, nil, err
	}
	defer db.Close()
	rs, err := db.Query("SELECT * FROM orders ORDER BY id")
	if err != nil {
		return 0, 0, nil, err
	}
	defer rs.Close()
	cols, err := rs.Columns()
	if err != nil {
		return 0, 0, nil, err
	}
	h := sha256.New()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rs.Next() {
		if err := rs.Scan(ptrs...); err != nil {
			return 0, 0, nil, err
		}
		for _, v := range vals {
			fmt.Fprintf(h, "%T %q\x00", v, fmt.Sprint(v))
		}
		h.Write([]byte{'\n'})
		rows++
		if id, ok := vals[0].(int64); ok {
			maxID = max(maxID, id)
		}
	}
	return rows, maxID, h.Sum(nil), rs.Err()
}

func listItems(db *sql.DB) ([]string, error) {
	rows, err := db.Query("SELECT item FROM orders ORDER BY id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var items []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		items = append(items, s)
	}
	return items, rows.Err()
}

// leaderOf finds the node that leads the database's raft group.
func leaderOf(nodes []*demoNode, name string) *demoNode {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, n := range nodes {
			node := cluster.Running(n.dir)
			if node == nil || node.DB(name) == nil {
				continue
			}
			if addr, ok := node.DB(name).LeaderAddress(); ok {
				for _, m := range nodes {
					if m.raft == addr && m.db != nil {
						return m
					}
				}
			}
		}
	}
	return nil
}

func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
