package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	_ "github.com/mattn/go-sqlite3" // to check backups and restore sources

	"github.com/rsqlite/rsqlite"
	"github.com/rsqlite/rsqlite/cluster"
)

// opsCommands are the operations subcommands, for usage().
const opsCommands = `  node          run a standalone node (rsqlite node -h)
  status        print a node's view of the cluster as a table
  join          add a node to the cluster through any member, before it starts
  add-nonvoter  add a non-voting (read-only) node, before it starts
  remove        remove a node from the cluster through any member
  backup        write a consistent plain SQLite copy of a database to a file
  restore       load a plain SQLite file as a new replicated database
`

// runOps runs an operations subcommand. A bad command line is printed with
// a hint and exits with status 2; -h prints the subcommand's help.
func runOps(cmd string, args []string) error {
	var err error
	switch cmd {
	case "node":
		err = runNode(args)
	case "status":
		err = runStatus(args)
	case "join":
		err = runJoin(args, false)
	case "add-nonvoter":
		err = runJoin(args, true)
	case "remove":
		err = runRemove(args)
	case "backup":
		err = runBackup(args)
	case "restore":
		err = runRestore(args)
	default:
		err = usageError{cmd: cmd, msg: "unknown command " + cmd}
	}
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	var ue usageError
	if errors.As(err, &ue) {
		if !ue.printed {
			fmt.Fprintf(os.Stderr, "rsqlite %s: %s\n(rsqlite %s -h for help)\n", ue.cmd, ue.msg, ue.cmd)
		}
		os.Exit(2)
	}
	if err != nil {
		// main adds its own "rsqlite: ".
		return errors.New(strings.TrimPrefix(err.Error(), "rsqlite: "))
	}
	return nil
}

// adminFlag registers the -admin flag every client subcommand has.
func adminFlag(fs *flag.FlagSet) *string {
	return fs.String("admin", "", "admin address of a member (`host:port` or http URL), as given to its rsqlite node -admin")
}

func needAdmin(cmd, admin string) error {
	if admin == "" {
		return usageError{cmd: cmd, msg: "-admin is required: the admin address (host:port) of a running member"}
	}
	return nil
}

// normalizeRaft spells a raft address the way nodes record it (the DSN's
// rules), so -raft finds the member however it is written.
func normalizeRaft(cmd, addr string) (string, error) {
	if addr == "" {
		return "", usageError{cmd: cmd, msg: "-raft is required: the node's raft address host:port"}
	}
	c, err := rsqlite.ParseDSN("/rsqlite-tool/flags.db?raft=" + url.QueryEscape(addr))
	if err != nil {
		return "", usageError{cmd: cmd, msg: dsnErrorToFlags(err.Error())}
	}
	return c.RaftAddress, nil
}

// signalContext is cancelled by SIGINT or SIGTERM.
func signalContext(timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if timeout <= 0 {
		return ctx, stop
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	return tctx, func() { cancel(); stop() }
}

// adminCall sends one request to a member's admin API and returns the body
// of a 200 answer; any other status is an error carrying the body.
func adminCall(ctx context.Context, method, admin, path string, in any) ([]byte, error) {
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, cluster.AdminURL(admin)+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin API at %s: %w", admin, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("admin API at %s: %s %s: %w", admin, method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("admin API at %s: %s %s: %s: %s", admin, method, path, resp.Status, serverMessage(b))
	}
	return b, nil
}

// status

const statusUsage = `usage: rsqlite status -admin HOST:PORT [-json]

Prints the node at -admin, its view of every database it hosts (role, leader,
term, applied index, size) and the cluster's members. Leaders and terms are
that node's knowledge.

flags:
`

func runStatus(args []string) error {
	fs := newFlagSet("status", statusUsage)
	admin := adminFlag(fs)
	asJSON := fs.Bool("json", false, "print the node's /status JSON as it is")
	if _, err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	if err := needAdmin("status", *admin); err != nil {
		return err
	}
	ctx, cancel := signalContext(30 * time.Second)
	defer cancel()
	b, err := adminCall(ctx, http.MethodGet, *admin, "/status", nil)
	if err != nil {
		return err
	}
	if *asJSON {
		os.Stdout.Write(b)
		return nil
	}
	var st cluster.Status
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("admin API at %s: /status: %v", *admin, err)
	}
	printStatus(os.Stdout, &st)
	return nil
}

func printStatus(w io.Writer, st *cluster.Status) {
	kind := "voter"
	if st.NonVoting {
		kind = "non-voter"
	}
	fmt.Fprintf(w, "node     replica %d (%s), raft %s, data %s\n", st.ReplicaID, kind, st.RaftAddress, st.Dir)
	// The source ID's date and the start of its hash are enough to tell builds apart.
	short := func(id string) string { return id[:min(len(id), 30)] }
	fmt.Fprintf(w, "build    SQLite %s (engine %s), command encoding %d\n", short(st.SQLite), st.Engine, st.Encoding)
	if p := st.PreviousBuild; p != nil {
		fmt.Fprintf(w, "         changed at the last start: was SQLite %s (engine %s), command encoding %d\n", short(p.SQLite), p.Engine, p.Encoding)
	}
	catLeader := "none"
	if st.Catalog.LeaderID != 0 {
		catLeader = fmt.Sprintf("%s (replica %d)", st.Catalog.Leader, st.Catalog.LeaderID)
	}
	fmt.Fprintf(w, "catalog  leader %s, term %d\n\n", catLeader, st.Catalog.Term)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DATABASE\tSHARD\tROLE\tLEADER\tTERM\tAPPLIED\tSIZE\tREADY")
	for _, d := range st.Databases {
		role := "follower"
		switch {
		case d.Asleep:
			role = "asleep" // hibernating: the group is stopped on every node
		case st.NonVoting:
			role = "non-voter"
		case d.IsLeader || d.LeaderID != 0 && d.LeaderID == st.ReplicaID:
			// (dragonboat leaves IsLeader unset; the leader's ID is reliable.)
			role = "leader"
		}
		leader := "none"
		if d.LeaderID != 0 {
			leader = d.Leader
		}
		ready := "yes"
		switch {
		case d.Halted != "":
			ready = "halted" // the cause follows the table
		case !d.Ready && !d.Asleep:
			ready = "no"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%d\t%s\t%s\n", d.Name, d.ShardID, role, leader, d.Term, d.Applied, humanBytes(d.SizeBytes), ready)
	}
	if len(st.Databases) == 0 {
		fmt.Fprintln(w, "no databases")
	} else {
		tw.Flush()
	}
	for _, d := range st.Databases {
		if d.Halted != "" {
			fmt.Fprintf(w, "\n%s: %s\n", d.Name, d.Halted)
		}
	}

	type member struct {
		id         uint64
		addr, kind string
	}
	var ms []member
	for id, a := range st.Catalog.Voters {
		k := "voter"
		if id == st.Catalog.LeaderID {
			k = "voter, catalog leader"
		}
		ms = append(ms, member{id, a, k})
	}
	for id, a := range st.NonVoters {
		ms = append(ms, member{id, a, "non-voter"})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].id < ms[j].id })
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tRAFT ADDRESS\tKIND")
	for _, m := range ms {
		self := ""
		if m.id == st.ReplicaID {
			self = " (this node)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s%s\n", m.id, m.addr, m.kind, self)
	}
	tw.Flush()
}

func humanBytes(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
}

// join, add-nonvoter, remove

const joinUsage = `usage: rsqlite join -admin MEMBER -raft NEWADDR [-nonvoting]

Adds the node whose raft address is NEWADDR to the cluster, through the admin
API of any member, and prints its replica ID. Every database gets a replica
on it once it runs. Start it afterwards with

    rsqlite node -dir DIR -raft NEWADDR -join MEMBER [-nonvoting]

(rsqlite node -join registers the node itself on its first start, so this
command is only needed to register a node ahead of time; registering twice
is harmless.) A voter added ahead of time counts towards quorum before it
runs: start it promptly.

flags:
`

const addNonVoterUsage = `usage: rsqlite add-nonvoter -admin MEMBER -raft NEWADDR

Adds a non-voting member (the same as rsqlite join -nonvoting): it receives
every write and serves reads without counting towards quorum. Start it with

    rsqlite node -dir DIR -raft NEWADDR -join MEMBER -nonvoting

flags:
`

func runJoin(args []string, nonVotingCmd bool) error {
	name, synopsis := "join", joinUsage
	if nonVotingCmd {
		name, synopsis = "add-nonvoter", addNonVoterUsage
	}
	fs := newFlagSet(name, synopsis)
	admin := adminFlag(fs)
	raft := fs.String("raft", "", "the new node's raft address `host:port`")
	nonVoting := &nonVotingCmd
	if !nonVotingCmd {
		nonVoting = fs.Bool("nonvoting", false, "add it as a non-voting member")
	}
	if _, err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	if err := needAdmin(name, *admin); err != nil {
		return err
	}
	addr, err := normalizeRaft(name, *raft)
	if err != nil {
		return err
	}
	ctx, cancel := signalContext(60 * time.Second)
	defer cancel()
	b, err := adminCall(ctx, http.MethodPost, *admin, "/join", map[string]any{"raft_address": addr, "non_voting": *nonVoting})
	if err != nil {
		return err
	}
	var res struct {
		ReplicaID uint64 `json:"replica_id"`
	}
	if err := json.Unmarshal(b, &res); err != nil || res.ReplicaID == 0 {
		return fmt.Errorf("admin API at %s: /join: unexpected answer %q", *admin, b)
	}
	kind, flagNV := "voter", ""
	if *nonVoting {
		kind, flagNV = "non-voting member", " -nonvoting"
	}
	fmt.Printf("%s is replica %d (%s)\n", addr, res.ReplicaID, kind)
	fmt.Printf("start it with: rsqlite node -dir DIR -raft %s -join %s%s\n", addr, *admin, flagNV)
	return nil
}

const removeUsage = `usage: rsqlite remove -admin MEMBER -raft ADDR

Removes the node whose raft address is ADDR from the cluster (the catalog and
every database), through the admin API of any member. The data stays on the
remaining members; stop the removed node's process afterwards (its replica
ID is never reused: to bring the machine back, start it with an empty -dir
and -join). Removing a voter needs a majority of the voters, and the last
voter cannot be removed.

flags:
`

func runRemove(args []string) error {
	fs := newFlagSet("remove", removeUsage)
	admin := adminFlag(fs)
	raft := fs.String("raft", "", "raft address `host:port` of the node to remove")
	if _, err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	if err := needAdmin("remove", *admin); err != nil {
		return err
	}
	addr, err := normalizeRaft("remove", *raft)
	if err != nil {
		return err
	}
	ctx, cancel := signalContext(60 * time.Second)
	defer cancel()
	if _, err := adminCall(ctx, http.MethodPost, *admin, "/remove", map[string]any{"raft_address": addr}); err != nil {
		return err
	}
	fmt.Printf("removed %s from the cluster; stop its process now\n", addr)
	return nil
}

// backup and restore

const backupUsage = `usage: rsqlite backup -admin HOST:PORT DB FILE

Writes a consistent copy of database DB, as of a linearizable point, to FILE
as a plain SQLite file (without rsqlite's bookkeeping tables). The copy is
downloaded next to FILE, checked with PRAGMA integrity_check, then renamed
over FILE, so FILE is either the old file or the complete new one.

flags:
`

func runBackup(args []string) error {
	fs := newFlagSet("backup", backupUsage)
	admin := adminFlag(fs)
	pos, err := parseFlags(fs, args, 2, 2)
	if err != nil {
		return err
	}
	if err := needAdmin("backup", *admin); err != nil {
		return err
	}
	name, file := pos[0], pos[1]
	if err := cluster.ValidateName(name); err != nil {
		return usageError{cmd: "backup", msg: strings.TrimPrefix(err.Error(), "rsqlite: ")}
	}
	if fi, err := os.Stat(file); err == nil && fi.IsDir() {
		return usageError{cmd: "backup", msg: file + " is a directory; name the file to write"}
	}
	ctx, cancel := signalContext(0)
	defer cancel()
	t0 := time.Now()
	size, err := backupTo(ctx, *admin, name, file)
	if err != nil {
		return err
	}
	fmt.Printf("backed up %s to %s (%s, integrity ok) in %v\n", name, file, humanBytes(size), time.Since(t0).Round(time.Millisecond))
	return nil
}

func backupTo(ctx context.Context, admin, name, file string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cluster.AdminURL(admin)+"/backup?db="+url.QueryEscape(name), nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("admin API at %s: %w", admin, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return 0, fmt.Errorf("back up %s through %s: %s: %s", name, admin, resp.Status, serverMessage(b))
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(abs), "."+filepath.Base(abs)+".rsqlite-backup-*")
	if err != nil {
		return 0, err
	}
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	size, err := io.Copy(tmp, resp.Body)
	if err != nil {
		return 0, fmt.Errorf("back up %s: download cut short after %d bytes: %w", name, size, err)
	}
	if err := tmp.Sync(); err != nil {
		return 0, err
	}
	if err := tmp.Close(); err != nil {
		return 0, err
	}
	if err := checkSQLiteFile(tmp.Name(), "integrity_check"); err != nil {
		return 0, fmt.Errorf("back up %s: the copy received is not sound: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), abs); err != nil {
		return 0, err
	}
	committed = true
	if d, err := os.Open(filepath.Dir(abs)); err == nil {
		d.Sync() // make the rename durable
		d.Close()
	}
	return size, nil
}

// checkSQLiteHeader reports whether path starts like a SQLite database.
func checkSQLiteHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var hdr [16]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil || string(hdr[:]) != "SQLite format 3\x00" {
		return fmt.Errorf("%s is not a SQLite database file", path)
	}
	return nil
}

// checkSQLiteFile opens path read-only with plain go-sqlite3 and runs
// PRAGMA integrity_check or quick_check.
func checkSQLiteFile(path, pragma string) error {
	if err := checkSQLiteHeader(path); err != nil {
		return err
	}
	db, err := sql.Open("sqlite3", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.Query("PRAGMA " + pragma)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return err
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s: %s failed: %s", path, pragma, strings.Join(problems, "; "))
	}
	return nil
}

const restoreUsage = `usage: rsqlite restore -admin HOST:PORT FILE DB

Loads the plain SQLite file FILE as a new replicated database DB on every
member (DB must not exist yet), through the admin API of any member, and
prints the node's progress. Exits with status 0 only if the load completed.

flags:
`

func runRestore(args []string) error {
	fs := newFlagSet("restore", restoreUsage)
	admin := adminFlag(fs)
	pos, err := parseFlags(fs, args, 2, 2)
	if err != nil {
		return err
	}
	if err := needAdmin("restore", *admin); err != nil {
		return err
	}
	file, name := pos[0], pos[1]
	if err := cluster.ValidateName(name); err != nil {
		return usageError{cmd: "restore", msg: strings.TrimPrefix(err.Error(), "rsqlite: ")}
	}
	// Only the header here: the node runs quick_check on what it receives.
	if err := checkSQLiteHeader(file); err != nil {
		return err
	}
	// Only FILE is sent: committed pages still in a WAL (or a hot journal)
	// would be missed.
	for _, side := range []string{"-wal", "-journal"} {
		if fi, err := os.Stat(file + side); err == nil && fi.Size() > 0 {
			return fmt.Errorf("%s%s exists: %s is in use or was not closed cleanly; close every program using it, or checkpoint it (sqlite3 %s 'PRAGMA wal_checkpoint(TRUNCATE)'), then restore", file, side, file, file)
		}
	}
	ctx, cancel := signalContext(0)
	defer cancel()
	t0 := time.Now()
	last, err := restoreFrom(ctx, *admin, file, name, os.Stdout)
	if err != nil {
		return err
	}
	fmt.Printf("restored %s into %s through %s in %v (%s)\n", file, name, *admin, time.Since(t0).Round(time.Millisecond), last)
	return nil
}

// restoreFrom streams file to POST /restore and copies the progress lines
// to out. The answer is 200 before the load starts, so success is the last
// line saying "ok".
func restoreFrom(ctx context.Context, admin, file, name string, out io.Writer) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cluster.AdminURL(admin)+"/restore?db="+url.QueryEscape(name), f)
	if err != nil {
		return "", err
	}
	req.ContentLength = fi.Size()
	req.Header.Set("Content-Type", "application/vnd.sqlite3")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("admin API at %s: %w", admin, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return "", fmt.Errorf("restore %s through %s: %s: %s", name, admin, resp.Status, serverMessage(b))
	}
	var last string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		last = line
		fmt.Fprintln(out, line)
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("restore %s: the node's answer was cut short (after %q): %w", name, last, err)
	}
	switch {
	case strings.HasPrefix(last, "ok"):
		return last, nil
	case last == "":
		return "", fmt.Errorf("restore %s: the node answered nothing", name)
	case strings.HasPrefix(last, "error"):
		return "", fmt.Errorf("restore %s failed: %s", name, strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(last, "error"), ":")))
	}
	return "", fmt.Errorf("restore %s: the node stopped answering without saying ok (last line %q)", name, last)
}

// serverMessage is an admin API error body, without the "rsqlite: " the
// node's errors start with.
func serverMessage(b []byte) string {
	return strings.TrimPrefix(strings.TrimSpace(string(b)), "rsqlite: ")
}
