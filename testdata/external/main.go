// Command external is a program outside the rsqlite module, written as a user
// of plain go-sqlite3 would write it: it imports the driver for its side
// effect only and talks to it through database/sql. TestExternalProgram
// builds it in a module of its own and runs it.
//
// It opens one database on three nodes (three directories, three addresses,
// one peers list), writes and reads through every node, then loses each node
// in turn: the other two go on writing, and the node that comes back reads
// every row.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/rsqlite/rsqlite"
)

func main() {
	dir := flag.String("dir", "", "parent directory of the three nodes' data directories")
	addrs := flag.String("peers", "", "the three nodes' raft addresses, comma-separated")
	flag.Parse()
	peers := strings.Split(*addrs, ",")
	if *dir == "" || len(peers) != 3 {
		log.Fatal("usage: external -dir DIR -peers a:p,b:p,c:p")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	dsn := func(i int) string {
		return fmt.Sprintf("file:%s?raft=%s&peers=%s",
			filepath.Join(*dir, fmt.Sprintf("node%d", i+1), "orders.db"), peers[i], *addrs)
	}
	open := func(i int) *sql.DB {
		db, err := sql.Open("rsqlite", dsn(i))
		if err != nil {
			log.Fatalf("open node %d: %v", i+1, err)
		}
		return db
	}
	dbs := []*sql.DB{open(0), open(1), open(2)}

	if _, err := dbs[0].ExecContext(ctx, `CREATE TABLE orders(id INTEGER PRIMARY KEY, item TEXT NOT NULL, node INTEGER)`); err != nil {
		log.Fatalf("create: %v", err)
	}
	want := 0
	write := func(i int) {
		item := fmt.Sprintf("item-%d", want+1)
		res, err := dbs[i].ExecContext(ctx, `INSERT INTO orders(item, node) VALUES (?, ?)`, item, i+1)
		if err != nil {
			log.Fatalf("write %s through node %d: %v", item, i+1, err)
		}
		if id, err := res.LastInsertId(); err != nil || id != int64(want+1) {
			log.Fatalf("write %s through node %d: LastInsertId %d, %v; want %d", item, i+1, id, err, want+1)
		}
		want++
	}
	check := func(i int) {
		var n, last int
		if err := dbs[i].QueryRowContext(ctx, `SELECT count(*), coalesce(max(id), 0) FROM orders`).Scan(&n, &last); err != nil {
			log.Fatalf("read through node %d: %v", i+1, err)
		}
		if n != want || last != want {
			log.Fatalf("read through node %d: %d rows, max id %d; want %d", i+1, n, last, want)
		}
	}

	for i := range dbs {
		for range 5 {
			write(i)
		}
	}
	for i := range dbs {
		check(i)
	}
	fmt.Printf("wrote %d rows through three nodes, read them on each\n", want)

	for lost := range dbs {
		if err := dbs[lost].Close(); err != nil {
			log.Fatalf("close node %d: %v", lost+1, err)
		}
		for i := range dbs {
			if i != lost {
				for range 5 {
					write(i)
				}
			}
		}
		for i := range dbs {
			if i != lost {
				check(i)
			}
		}
		dbs[lost] = open(lost)
		check(lost)
		fmt.Printf("node %d lost: the others wrote on, it came back with all %d rows\n", lost+1, want)
	}
	for i, db := range dbs {
		if err := db.Close(); err != nil {
			log.Fatalf("close node %d: %v", i+1, err)
		}
	}
	fmt.Println("ok")
}
