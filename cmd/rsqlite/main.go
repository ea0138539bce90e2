// Command rsqlite is the rsqlite node and tool binary.
//
//	rsqlite demo        run a 3-node cluster in this process and show replication and failover
//	rsqlite node        run a standalone node; status, join, add-nonvoter,
//	                    remove, backup and restore operate a running cluster
package main

import (
	"fmt"
	"os"
)

func usage() {
	fmt.Fprintf(os.Stderr, `usage: rsqlite <command> [flags]

commands:
  demo    start three nodes on loopback in this process, write through one,
          read through the others, stop the leader, keep writing, restart it
  bench   compare plain SQLite with rsqlite on 1 and 3 nodes (rsqlite bench -h)

operations (rsqlite <command> -h for each):
`+opsCommands)
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "demo":
		err = runDemo(os.Args[2:])
	case "bench":
		err = runBench(os.Args[2:])
	case "node", "status", "join", "add-nonvoter", "remove", "backup", "restore":
		err = runOps(os.Args[1], os.Args[2:])
	case "-h", "-help", "--help", "help":
		usage()
		return
	default:
		fmt.Fprintf(os.Stderr, "rsqlite: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rsqlite:", err)
		os.Exit(1)
	}
}
