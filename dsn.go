package rsqlite

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Consistency selects how reads are served.
type Consistency int

const (
	Linearizable Consistency = iota // default: ReadIndex barrier before each read
	Stale                           // read the local replica without a barrier
)

// Defaults of the DSN parameters.
const (
	dsnDefaultTimeout     = 10 * time.Second
	dsnDefaultBusyTimeout = 5 * time.Second // go-sqlite3's default
)

// Config is a parsed DSN.
type Config struct {
	Dir         string   // absolute data directory of the node (the directory part of the path)
	Name        string   // database name: the file's base name, e.g. "orders.db"
	RaftAddress string   // this node's raft address host:port; "" allowed only when Peers is empty
	Peers       []string // initial members, sorted and de-duplicated; empty = single-node cluster
	Consistency Consistency
	Timeout     time.Duration // default deadline for calls whose context has none (default 10s)
	Admin       string        // host:port for the node's admin HTTP API; "" = none
	Join        string        // admin address of a member to join through (first start only)
	NonVoting   bool          // join as a non-voting member
	Hibernate   time.Duration // stop the raft groups of databases idle this long; 0 = never
	TLSCA       string        // CA file for mutual TLS between nodes
	TLSCert     string        // this node's certificate file
	TLSKey      string        // this node's key file

	// go-sqlite3 compatible settings
	ForeignKeys, RecursiveTriggers, CaseSensitiveLike, IgnoreCheckConstraints, DeferForeignKeys bool

	BusyTimeout time.Duration  // default 5s (go-sqlite3's default)
	TxLock      string         // "deferred" (default), "immediate", "exclusive"
	Loc         *time.Location // nil unless _loc given ("auto" = time.Local)
	ReadOnly    bool           // mode=ro or _query_only=1: writes are refused locally
	CacheSize   int            // _cache_size for local read connections, 0 = SQLite default
}

const dsnHelp = "see the DSN parameters in the rsqlite README"

// dsnAliases maps go-sqlite3's second spellings to the first, so that giving
// both is caught as a repeated parameter.
var dsnAliases = map[string]string{
	"_foreign_keys": "_fk",
	"_rt":           "_recursive_triggers",
	"_cslike":       "_case_sensitive_like",
	"_defer_fk":     "_defer_foreign_keys",
	"_timeout":      "_busy_timeout",
	"_journal":      "_journal_mode",
	"_sync":         "_synchronous",
	"_locking":      "_locking_mode",
	"_vacuum":       "_auto_vacuum",
}

// dsnInapplicable lists go-sqlite3 and SQLite URI parameters that make no sense
// for a replicated database, with the reason shown to the user.
var dsnInapplicable = map[string]string{
	"_synchronous":     "durability comes from the raft log, and rsqlite sets synchronous for its own files",
	"_locking_mode":    "the node's applier and its readers share the file, so rsqlite manages locking",
	"vfs":              "rsqlite installs its own VFS to make time functions deterministic on every node",
	"immutable":        "a replicated database changes whenever the cluster applies a write",
	"nolock":           "the node's applier and its readers share the file, so locking is required",
	"_auth":            "SQLite user authentication lives in one file, not in the replicated data",
	"_auth_user":       "SQLite user authentication lives in one file, not in the replicated data",
	"_auth_pass":       "SQLite user authentication lives in one file, not in the replicated data",
	"_auth_crypt":      "SQLite user authentication lives in one file, not in the replicated data",
	"_auth_salt":       "SQLite user authentication lives in one file, not in the replicated data",
	"_secure_delete":   "it is a per-node storage setting, not part of the replicated data",
	"_auto_vacuum":     "the file layout must be the same on every node and rsqlite creates the file",
	"_writable_schema": "the schema may only change through replicated statements",
	"_stmt_cache_size": "rsqlite runs statements on connections it manages itself",
}

// ParseDSN parses "file:<dir>/<name>?params" or "<dir>/<name>?params"
// (relative paths are made absolute). It does no I/O besides filepath.Abs
// (and time.LoadLocation for _loc).
func ParseDSN(dsn string) (*Config, error) {
	path, query, err := splitDSN(dsn)
	if err != nil {
		return nil, err
	}
	c := &Config{Timeout: dsnDefaultTimeout, BusyTimeout: dsnDefaultBusyTimeout, TxLock: "deferred"}
	if err := c.parsePath(path); err != nil {
		return nil, err
	}
	seen := map[string]string{} // canonical name -> spelling used
	var peers string
	for _, kv := range strings.Split(query, "&") {
		if kv == "" {
			continue
		}
		rawKey, rawVal, _ := strings.Cut(kv, "=")
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			return nil, fmt.Errorf("rsqlite: bad escape in DSN parameter name %q: %v", rawKey, err)
		}
		val, err := url.QueryUnescape(rawVal)
		if err != nil {
			return nil, fmt.Errorf("rsqlite: bad escape in DSN parameter %s=%q: %v", key, rawVal, err)
		}
		canon := key
		if a, ok := dsnAliases[key]; ok {
			canon = a
		}
		if why, ok := dsnInapplicable[canon]; ok {
			return nil, fmt.Errorf("rsqlite: DSN parameter %q does not apply to a replicated database: %s", key, why)
		}
		if !dsnKnown[canon] {
			return nil, fmt.Errorf("rsqlite: unknown DSN parameter %q (%s)", key, dsnHelp)
		}
		if prev, dup := seen[canon]; dup {
			if prev == key {
				return nil, fmt.Errorf("rsqlite: DSN parameter %q is given twice", key)
			}
			return nil, fmt.Errorf("rsqlite: DSN parameters %q and %q set the same option; give one", prev, key)
		}
		seen[canon] = key
		if val == "" {
			return nil, fmt.Errorf("rsqlite: DSN parameter %q needs a value (%s)", key, dsnHelp)
		}
		if canon == "peers" {
			peers = val // checked against raft once all parameters are read
			continue
		}
		if err := c.parseParam(canon, val); err != nil {
			return nil, fmt.Errorf("rsqlite: DSN parameter %s=%q: %v", key, val, err)
		}
	}
	if peers != "" {
		if err := c.parsePeers(peers); err != nil {
			return nil, fmt.Errorf("rsqlite: DSN parameter peers=%q: %v", peers, err)
		}
	}
	switch {
	case c.Join != "" && c.RaftAddress == "":
		return nil, fmt.Errorf("rsqlite: DSN parameter join needs raft (this node's address, which the cluster will dial)")
	case c.NonVoting && c.Join == "":
		return nil, fmt.Errorf("rsqlite: DSN parameter nonvoting applies only to a node that joins (join=<member admin address>)")
	case (c.TLSCA != "" || c.TLSCert != "" || c.TLSKey != "") && (c.TLSCA == "" || c.TLSCert == "" || c.TLSKey == ""):
		return nil, fmt.Errorf("rsqlite: DSN parameters tls_ca, tls_cert and tls_key go together: mutual TLS needs all three")
	}
	return c, nil
}

// splitDSN separates the path from the query. A "file:" URI is decoded as
// SQLite does (percent escapes, an empty or localhost authority); a plain
// path is taken literally up to the first '?', as go-sqlite3 does.
func splitDSN(dsn string) (path, query string, err error) {
	path, query, _ = strings.Cut(dsn, "?")
	rest, isURI := strings.CutPrefix(path, "file:")
	if !isURI {
		return path, query, nil
	}
	if strings.Contains(dsn, "#") {
		return "", "", fmt.Errorf("rsqlite: DSN %q has a fragment (#...); write '#' in a path as %%23", dsn)
	}
	if after, ok := strings.CutPrefix(rest, "//"); ok {
		host, p, _ := strings.Cut(after, "/")
		if host != "" && host != "localhost" {
			return "", "", fmt.Errorf("rsqlite: DSN %q names host %q; only local files can be opened", dsn, host)
		}
		rest = "/" + p
	}
	if path, err = url.PathUnescape(rest); err != nil {
		return "", "", fmt.Errorf("rsqlite: bad escape in DSN path %q: %v", rest, err)
	}
	return path, query, nil
}

func (c *Config) parsePath(path string) error {
	switch {
	case path == "":
		return errors.New("rsqlite: DSN has no path; want <dir>/<name>.db")
	case strings.ContainsRune(path, 0):
		return fmt.Errorf("rsqlite: DSN path %q contains a NUL byte", path)
	case strings.HasSuffix(path, "/") || strings.HasSuffix(path, string(filepath.Separator)):
		return fmt.Errorf("rsqlite: DSN path %q ends in a slash; want <dir>/<name>.db", path)
	}
	name := path[strings.LastIndexAny(path, "/"+string(filepath.Separator))+1:]
	switch {
	case name == ":memory:":
		return errors.New("rsqlite: in-memory databases cannot be replicated; name a file")
	case strings.HasPrefix(name, "."):
		return fmt.Errorf("rsqlite: database name %q starts with a dot; rsqlite keeps its own files there", name)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("rsqlite: DSN path %q: %v", path, err)
	}
	c.Dir, c.Name = filepath.Dir(abs), filepath.Base(abs)
	return nil
}

// dsnKnown lists the accepted parameters by their canonical spelling.
var dsnKnown = map[string]bool{
	"raft": true, "peers": true, "consistency": true, "timeout": true,
	"admin": true, "join": true, "nonvoting": true, "hibernate": true,
	"tls_ca": true, "tls_cert": true, "tls_key": true,
	"_fk": true, "_recursive_triggers": true, "_case_sensitive_like": true,
	"_ignore_check_constraints": true, "_defer_foreign_keys": true, "_busy_timeout": true,
	"_txlock": true, "_loc": true, "mode": true, "_query_only": true, "_cache_size": true,
	"_journal_mode": true, "cache": true, "_mutex": true,
}

// set applies one parameter; the caller wraps the error with its name and value.
func (c *Config) parseParam(key, val string) (err error) {
	lower := strings.ToLower(val)
	switch key {
	case "raft":
		c.RaftAddress, err = normalizeRaftAddr(val)
	case "consistency":
		switch lower {
		case "linearizable", "strong":
			c.Consistency = Linearizable
		case "stale":
			c.Consistency = Stale
		default:
			err = errors.New("want linearizable, strong or stale")
		}
	case "timeout":
		c.Timeout, err = dsnTimeout(val)
	case "admin":
		c.Admin, err = normalizeRaftAddr(val)
	case "join":
		// An admin address (host:port) or an http(s) URL.
		if strings.Contains(val, "://") {
			if !strings.HasPrefix(lower, "http://") && !strings.HasPrefix(lower, "https://") {
				err = errors.New("want host:port or an http(s) URL of a member's admin API")
			}
			c.Join = val
		} else {
			c.Join, err = normalizeRaftAddr(val)
		}
	case "nonvoting":
		c.NonVoting, err = dsnBool(lower)
	case "hibernate":
		if lower == "0" || lower == "off" {
			c.Hibernate = 0
		} else if c.Hibernate, err = dsnTimeout(val); err == nil && c.Hibernate < time.Second {
			err = errors.New("want at least 1s (or 0/off)")
		}
	case "tls_ca":
		c.TLSCA = val
	case "tls_cert":
		c.TLSCert = val
	case "tls_key":
		c.TLSKey = val
	case "_fk":
		c.ForeignKeys, err = dsnBool(lower)
	case "_recursive_triggers":
		c.RecursiveTriggers, err = dsnBool(lower)
	case "_case_sensitive_like":
		c.CaseSensitiveLike, err = dsnBool(lower)
	case "_ignore_check_constraints":
		c.IgnoreCheckConstraints, err = dsnBool(lower)
	case "_defer_foreign_keys":
		c.DeferForeignKeys, err = dsnBool(lower)
	case "_query_only":
		var ro bool
		ro, err = dsnBool(lower)
		c.ReadOnly = c.ReadOnly || ro
	case "_busy_timeout":
		var ms int64
		ms, err = strconv.ParseInt(val, 10, 64)
		if err != nil || ms < 0 || ms > math.MaxInt64/int64(time.Millisecond) {
			return errors.New("want a number of milliseconds, 0 or more")
		}
		c.BusyTimeout = time.Duration(ms) * time.Millisecond
	case "_txlock":
		if lower != "deferred" && lower != "immediate" && lower != "exclusive" {
			return errors.New("want deferred, immediate or exclusive")
		}
		c.TxLock = lower
	case "_loc":
		if lower == "auto" {
			c.Loc = time.Local
		} else if c.Loc, err = time.LoadLocation(val); err != nil {
			return fmt.Errorf("want auto or a time zone name like Europe/Paris: %v", err)
		}
	case "mode":
		switch lower {
		case "ro":
			c.ReadOnly = true
		case "rw", "rwc":
		case "memory":
			err = errors.New("in-memory databases cannot be replicated")
		default:
			err = errors.New("want ro, rw or rwc")
		}
	case "_cache_size":
		if c.CacheSize, err = strconv.Atoi(val); err != nil {
			return errors.New("want an integer (pages, or KiB if negative)")
		}
	case "_journal_mode":
		if lower != "wal" {
			err = errors.New("rsqlite manages the journal itself and always uses WAL; remove the parameter or set it to WAL")
		}
	case "cache":
		switch lower {
		case "private":
		case "shared":
			err = errors.New("shared cache is not supported: every node keeps its own connections to the file")
		default:
			err = errors.New("want private")
		}
	case "_mutex":
		if lower != "no" && lower != "full" {
			err = errors.New("want no or full")
		}
	}
	return err
}

func dsnBool(lower string) (bool, error) {
	switch lower {
	case "1", "yes", "true", "on":
		return true, nil
	case "0", "no", "false", "off":
		return false, nil
	}
	return false, errors.New("want a boolean: 1, yes, true, on or 0, no, false, off")
}

// dsnTimeout takes a Go duration or, like go-sqlite3's timeouts, plain
// milliseconds.
func dsnTimeout(val string) (time.Duration, error) {
	d, err := time.ParseDuration(val)
	if ms, ierr := strconv.ParseInt(val, 10, 64); ierr == nil {
		if ms > math.MaxInt64/int64(time.Millisecond) {
			return 0, errors.New("too long")
		}
		d, err = time.Duration(ms)*time.Millisecond, nil
	}
	if err != nil || d <= 0 {
		return 0, errors.New("want a positive duration like 5s or 500ms, or milliseconds")
	}
	return d, nil
}

func (c *Config) parsePeers(list string) error {
	if c.RaftAddress == "" {
		return errors.New("raft (this node's address, one of the peers) is required with peers")
	}
	peers := make([]string, 0, strings.Count(list, ",")+1)
	for _, p := range strings.Split(list, ",") {
		addr, err := normalizeRaftAddr(strings.TrimSpace(p))
		if err != nil {
			return fmt.Errorf("peer %q: %v", p, err)
		}
		peers = append(peers, addr)
	}
	slices.Sort(peers)
	peers = slices.Compact(peers)
	if _, ok := slices.BinarySearch(peers, c.RaftAddress); !ok {
		return fmt.Errorf("raft address %s is not one of the peers; list every initial member, this node too", c.RaftAddress)
	}
	c.Peers = peers
	return nil
}

// normalizeRaftAddr validates host:port and gives it one spelling (lower-case
// host, canonical IP, port without leading zeros), so that the same member
// written two ways compares equal.
func normalizeRaftAddr(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("want host:port: %v", err)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", fmt.Errorf("port %q: want a number from 1 to 65535", port)
	}
	if host == "" {
		return "", errors.New("the host is missing; other nodes need an address to reach this one")
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.String()
	} else if strings.Trim(host, "0123456789.") == "" || strings.Contains(host, ":") {
		return "", fmt.Errorf("host %q is not a valid IP address", host)
	} else {
		for _, r := range host {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
				return "", fmt.Errorf("host %q is not a valid host name", host)
			}
		}
		host = strings.ToLower(host)
	}
	return net.JoinHostPort(host, strconv.FormatUint(n, 10)), nil
}

// String formats c back to a DSN that ParseDSN maps to an equal Config, with
// defaults left out. It is meant for logs and tests.
func (c *Config) String() string {
	var b strings.Builder
	b.WriteString("file:")
	b.WriteString(dsnEscape(filepath.Join(c.Dir, c.Name), false))
	sep := "?"
	add := func(k, v string) {
		b.WriteString(sep)
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(dsnEscape(v, true))
		sep = "&"
	}
	flag := func(k string, on bool) {
		if on {
			add(k, "1")
		}
	}
	if c.RaftAddress != "" {
		add("raft", c.RaftAddress)
	}
	if len(c.Peers) > 0 {
		add("peers", strings.Join(c.Peers, ","))
	}
	if c.Consistency == Stale {
		add("consistency", "stale")
	}
	if c.Timeout > 0 && c.Timeout != dsnDefaultTimeout {
		add("timeout", c.Timeout.String())
	}
	if c.Admin != "" {
		add("admin", c.Admin)
	}
	if c.Join != "" {
		add("join", c.Join)
	}
	flag("nonvoting", c.NonVoting)
	if c.Hibernate > 0 {
		add("hibernate", c.Hibernate.String())
	}
	if c.TLSCA != "" {
		add("tls_ca", c.TLSCA)
		add("tls_cert", c.TLSCert)
		add("tls_key", c.TLSKey)
	}
	flag("_fk", c.ForeignKeys)
	flag("_recursive_triggers", c.RecursiveTriggers)
	flag("_case_sensitive_like", c.CaseSensitiveLike)
	flag("_ignore_check_constraints", c.IgnoreCheckConstraints)
	flag("_defer_foreign_keys", c.DeferForeignKeys)
	if c.BusyTimeout != dsnDefaultBusyTimeout {
		add("_busy_timeout", strconv.FormatInt(c.BusyTimeout.Milliseconds(), 10))
	}
	if c.TxLock != "" && c.TxLock != "deferred" {
		add("_txlock", c.TxLock)
	}
	if c.Loc == time.Local {
		add("_loc", "auto")
	} else if c.Loc != nil {
		add("_loc", c.Loc.String())
	}
	if c.ReadOnly {
		add("mode", "ro")
	}
	if c.CacheSize != 0 {
		add("_cache_size", strconv.Itoa(c.CacheSize))
	}
	return b.String()
}

// dsnEscape percent-encodes what would change meaning in a DSN: in the path,
// '%', '?', '#' and control bytes; in a value also '&', '=', '+', ';' and
// space. Other bytes stay readable (host:port lists, time zone names).
func dsnEscape(s string, value bool) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		bad := c < 0x20 || c == 0x7f || c == '%' || c == '?' || c == '#'
		if value {
			bad = bad || c == '&' || c == '=' || c == '+' || c == ';' || c == ' '
		}
		if bad {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}
