package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rsqlite/rsqlite"
	"github.com/rsqlite/rsqlite/cluster"
)

const nodeUsage = `usage: rsqlite node -dir DIR -raft HOST:PORT [-peers A,B,C | -join ADMIN [-nonvoting]]
                   [-admin HOST:PORT] [-tls-ca FILE -tls-cert FILE -tls-key FILE]

Runs a standalone rsqlite node: it holds a replica of every database of the
cluster (for machines that run no application) and serves the admin HTTP API.
The flags mirror the DSN parameters (raft, peers, join, nonvoting, admin,
tls_ca, tls_cert, tls_key).

First start, one of:
  -peers A,B,C     bootstrap a new cluster with these initial members (the
                   same list on every initial node, this node's -raft among them)
  -join ADMIN      join a running cluster through the admin API of any member
                   (add -nonvoting for a read-only, non-voting member)
  neither          bootstrap a new single-node cluster others can -join later
Later starts take the membership from the data directory: -dir and -raft are
enough, and -peers or -join (kept, e.g. in a service file) are ignored.

It prints "ready" once the catalog and every database it hosts have a
leader, and stops cleanly on SIGTERM or SIGINT (exit status 0).

flags:
`

// nodeFlags are the flags of rsqlite node, as given.
type nodeFlags struct {
	dir, raft, peers, join, admin string
	nonVoting                     bool
	hibernate                     string
	tlsCA, tlsCert, tlsKey        string
	logLevel                      string
}

func runNode(args []string) error {
	fs := newFlagSet("node", nodeUsage)
	var f nodeFlags
	fs.StringVar(&f.dir, "dir", "", "data `directory` (created if missing; raft state in DIR/.rsqlite, one SQLite file per database)")
	fs.StringVar(&f.raft, "raft", "", "this node's raft address `host:port`, which the other nodes dial")
	fs.StringVar(&f.peers, "peers", "", "initial members' raft addresses, comma-separated, the same `list` on every initial node")
	fs.StringVar(&f.join, "join", "", "admin address (`host:port` or URL) of a running member to join through, on first start")
	fs.BoolVar(&f.nonVoting, "nonvoting", false, "join as a non-voting member: receives every write, serves reads, no vote (needs -join)")
	fs.StringVar(&f.admin, "admin", "", "serve the admin HTTP API (/status, /readyz, /metrics, /join, /remove, /backup, /restore) on `host:port`; no authentication, bind it to a private address")
	fs.StringVar(&f.hibernate, "hibernate", "", "put databases no node has used for this `duration` to sleep (their raft groups stop until next use); give every node the same value, as a node without it never agrees")
	fs.StringVar(&f.tlsCA, "tls-ca", "", "CA certificate `file` (PEM) for mutual TLS between nodes")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "this node's certificate `file` (PEM), signed by the CA")
	fs.StringVar(&f.tlsKey, "tls-key", "", "this node's private key `file` (PEM)")
	fs.StringVar(&f.logLevel, "log-level", "warn", "lowest `level` of log messages: debug, info, warn or error")
	if _, err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	cfg, level, err := f.config()
	if err != nil {
		return usageError{cmd: "node", msg: err.Error()}
	}
	cluster.SetLogLevel(level)
	cluster.SetLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	return serveNode(cfg)
}

// config checks the flags and turns them into a cluster.Config. Addresses
// go through rsqlite.ParseDSN, so a node started with flags and one started
// by a DSN with the same values agree (peers sorted, addresses normalized).
func (f *nodeFlags) config() (cluster.Config, slog.Level, error) {
	var cfg cluster.Config
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return cfg, level, fmt.Errorf("-log-level %q: want debug, info, warn or error", f.logLevel)
	}
	switch {
	case f.dir == "":
		return cfg, level, errors.New("-dir is required: the node's data directory")
	case f.raft == "":
		return cfg, level, errors.New("-raft is required: this node's raft address host:port, which the other nodes dial")
	case f.peers != "" && f.join != "":
		return cfg, level, errors.New("-peers and -join exclude each other: -peers bootstraps a new cluster, -join joins a running one")
	case f.nonVoting && f.join == "":
		return cfg, level, errors.New("-nonvoting applies only to a node that joins a running cluster (-join ADMIN)")
	}
	tlsFiles := []string{f.tlsCA, f.tlsCert, f.tlsKey}
	if set := countNonEmpty(tlsFiles); set != 0 && set != 3 {
		return cfg, level, errors.New("mutual TLS needs all three of -tls-ca, -tls-cert and -tls-key")
	}
	if f.tlsCA != "" {
		if err := checkTLSFiles(f.tlsCA, f.tlsCert, f.tlsKey); err != nil {
			return cfg, level, err
		}
	}
	dir, err := filepath.Abs(f.dir)
	if err != nil {
		return cfg, level, fmt.Errorf("-dir: %v", err)
	}
	q := url.Values{}
	q.Set("raft", f.raft)
	if f.peers != "" {
		q.Set("peers", f.peers)
	}
	if f.join != "" {
		q.Set("join", f.join)
	}
	if f.nonVoting {
		q.Set("nonvoting", "1")
	}
	if f.hibernate != "" {
		q.Set("hibernate", f.hibernate)
	}
	if f.admin != "" {
		q.Set("admin", f.admin)
	}
	// The path is a placeholder: only the parameters are checked.
	dc, err := rsqlite.ParseDSN("/rsqlite-node/flags.db?" + q.Encode())
	if err != nil {
		return cfg, level, errors.New(dsnErrorToFlags(err.Error()))
	}
	return cluster.Config{
		Dir:          dir,
		RaftAddress:  dc.RaftAddress,
		Peers:        dc.Peers,
		AdminAddress: dc.Admin,
		JoinAddress:  dc.Join,
		NonVoting:    dc.NonVoting,
		Hibernate:    dc.Hibernate,
		TLSCAFile:    absOrEmpty(f.tlsCA),
		TLSCertFile:  absOrEmpty(f.tlsCert),
		TLSKeyFile:   absOrEmpty(f.tlsKey),
	}, level, nil
}

// dsnErrorToFlags rewrites a DSN error about the parameters the flags were
// turned into so that it names the flags.
func dsnErrorToFlags(msg string) string {
	msg = strings.TrimPrefix(msg, "rsqlite: ")
	for _, p := range []string{"raft", "peers", "join", "nonvoting", "admin", "hibernate"} {
		msg = strings.ReplaceAll(msg, "DSN parameter "+p+"=", "-"+p+" ")
		msg = strings.ReplaceAll(msg, "DSN parameter "+p+" ", "-"+p+" ")
	}
	return msg
}

func countNonEmpty(ss []string) int {
	n := 0
	for _, s := range ss {
		if s != "" {
			n++
		}
	}
	return n
}

func absOrEmpty(p string) string {
	if p == "" {
		return ""
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// checkTLSFiles loads the TLS files before the node starts, so a typo is
// reported as such (and before a -join has registered the node).
func checkTLSFiles(ca, cert, key string) error {
	pem, err := os.ReadFile(ca)
	if err != nil {
		return fmt.Errorf("-tls-ca: %v", err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		return fmt.Errorf("-tls-ca %s: no PEM certificate in the file", ca)
	}
	if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
		return fmt.Errorf("-tls-cert %s / -tls-key %s: %v", cert, key, err)
	}
	return nil
}

// serveNode runs the node until SIGTERM or SIGINT.
func serveNode(cfg cluster.Config) error {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	type started struct {
		n   *cluster.Node
		err error
	}
	startc := make(chan started, 1)
	go func() {
		n, err := cluster.Acquire(cfg)
		startc <- started{n, err}
	}()
	var node *cluster.Node
	select {
	case s := <-startc:
		if s.err != nil {
			return s.err
		}
		node = s.n
	case sig := <-sigs:
		// Starting (a join may wait up to a minute) cannot be cancelled:
		// let it finish, then stop. A second signal exits at once.
		fmt.Printf("rsqlite node: %v while starting; stopping once started\n", sig)
		go forceExitOnSignal(sigs)
		s := <-startc
		if s.err != nil {
			return s.err
		}
		s.n.Release()
		fmt.Println("rsqlite node: stopped")
		return nil
	}

	role := "voter"
	if node.Status().NonVoting {
		role = "non-voting member"
	}
	admin := "none"
	if cfg.AdminAddress != "" {
		admin = cluster.AdminURL(cfg.AdminAddress)
	}
	tlsState := "off"
	if cfg.TLSCAFile != "" {
		tlsState = "mutual"
	}
	fmt.Printf("rsqlite node: replica %d (%s), raft %s, admin %s, tls %s, data %s\n",
		node.ReplicaID(), role, node.RaftAddress(), admin, tlsState, node.Dir())

	// Report readiness changes; a database being created is briefly not
	// ready, so a lapse is reported only once it lasts.
	ready, everReady := false, false
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	startedAt := time.Now()
	var notReadySince, lastComplaint time.Time
	lastComplaint = startedAt
	for {
		select {
		case sig := <-sigs:
			fmt.Printf("rsqlite node: %v, stopping\n", sig)
			go forceExitOnSignal(sigs)
			t0 := time.Now()
			node.Release()
			fmt.Printf("rsqlite node: stopped in %v\n", time.Since(t0).Round(time.Millisecond))
			return nil
		case now := <-tick.C:
			err := node.Ready()
			if err == nil {
				notReadySince = time.Time{}
				if !ready {
					ready, everReady = true, true
					fmt.Printf("rsqlite node: ready (%d databases)\n", len(node.Databases()))
				}
				continue
			}
			if notReadySince.IsZero() {
				notReadySince = now
			}
			switch {
			case ready && now.Sub(notReadySince) >= 3*time.Second:
				ready = false
				lastComplaint = now
				fmt.Printf("rsqlite node: not ready: %v\n", err)
			case !ready && now.Sub(lastComplaint) >= 10*time.Second:
				lastComplaint = now
				if everReady {
					fmt.Printf("rsqlite node: still not ready after %v: %v\n", now.Sub(notReadySince).Round(time.Second), err)
				} else {
					fmt.Printf("rsqlite node: not ready after %v: %v\n", now.Sub(startedAt).Round(time.Second), err)
				}
			}
		}
	}
}

func forceExitOnSignal(sigs <-chan os.Signal) {
	sig := <-sigs
	fmt.Fprintf(os.Stderr, "rsqlite node: second %v, exiting without a clean stop\n", sig)
	os.Exit(1)
}

// Shared by every subcommand.

// usageError is a bad command line: runOps prints it with a hint and exits 2.
type usageError struct {
	cmd, msg string
	printed  bool // the flag package has already printed it, with the usage
}

func (e usageError) Error() string { return e.msg }

// newFlagSet makes a subcommand's flag set whose -h prints synopsis, then flags.
func newFlagSet(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses flags given before, between or after the positional
// arguments, and checks how many positional arguments there are.
func parseFlags(fs *flag.FlagSet, args []string, minPos, maxPos int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			// flag already printed the error and the usage.
			return nil, usageError{cmd: fs.Name(), msg: err.Error(), printed: true}
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	switch {
	case len(pos) < minPos:
		return nil, usageError{cmd: fs.Name(), msg: fmt.Sprintf("want %d arguments, got %d", minPos, len(pos))}
	case len(pos) > maxPos:
		return nil, usageError{cmd: fs.Name(), msg: fmt.Sprintf("unexpected argument %q", pos[maxPos])}
	}
	return pos, nil
}
