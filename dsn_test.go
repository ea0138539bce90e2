package rsqlite

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// defaultConfig is what ParseDSN gives for a path without parameters.
func defaultConfig(dir, name string) Config {
	return Config{Dir: dir, Name: name, Timeout: 10 * time.Second, BusyTimeout: 5 * time.Second, TxLock: "deferred"}
}

func TestParseDSN(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	tests := []struct {
		dsn  string
		edit func(c *Config) // applied to defaultConfig("/data", "app.db") unless dir/name are edited
	}{
		// paths
		{"/data/app.db", nil},
		{"file:/data/app.db", nil},
		{"file:///data/app.db", nil},
		{"file://localhost/data/app.db", nil},
		{"/data//sub/../app.db", nil},
		{"file:/data/my%20app%3F.db", func(c *Config) { c.Name = "my app?.db" }},
		{"/data/100%.db", func(c *Config) { c.Name = "100%.db" }},
		{"/data/a#b.db", func(c *Config) { c.Name = "a#b.db" }},
		{"app.db", func(c *Config) { c.Dir = wd }},
		{"file:app.db", func(c *Config) { c.Dir = wd }},
		{"/data/app.db?hibernate=90s", func(c *Config) { c.Hibernate = 90 * time.Second }},
		{"/data/app.db?hibernate=60000", func(c *Config) { c.Hibernate = time.Minute }},
		{"/data/app.db?hibernate=off", nil},
		{"file:sub/app.db?", func(c *Config) { c.Dir = filepath.Join(wd, "sub") }},
		{"./app.db", func(c *Config) { c.Dir = wd }},
		// rsqlite parameters
		{"/data/app.db?raft=127.0.0.1:7001", func(c *Config) { c.RaftAddress = "127.0.0.1:7001" }},
		{"/data/app.db?raft=Node-1.Example:07001", func(c *Config) { c.RaftAddress = "node-1.example:7001" }},
		{"/data/app.db?raft=[0:0::1]:7001", func(c *Config) { c.RaftAddress = "[::1]:7001" }},
		{"/data/app.db?raft=[fe80::1%25eth0]:7001", func(c *Config) { c.RaftAddress = "[fe80::1%eth0]:7001" }},
		{"file:/data/app.db?raft=10.0.0.1:7001&peers=10.0.0.3:7001,10.0.0.1:7001,10.0.0.2:7001", func(c *Config) {
			c.RaftAddress, c.Peers = "10.0.0.1:7001", []string{"10.0.0.1:7001", "10.0.0.2:7001", "10.0.0.3:7001"}
		}},
		{"/data/app.db?peers=b:2,+A:1,a:01,[::1]:3&raft=a:1", func(c *Config) { // normalised, sorted, de-duplicated
			c.RaftAddress, c.Peers = "a:1", []string{"[::1]:3", "a:1", "b:2"}
		}},
		{"/data/app.db?peers=h:1&raft=H:0001", func(c *Config) { c.RaftAddress, c.Peers = "h:1", []string{"h:1"} }},
		{"/data/app.db?consistency=stale", func(c *Config) { c.Consistency = Stale }},
		{"/data/app.db?consistency=STRONG", nil},
		{"/data/app.db?consistency=linearizable", nil},
		{"/data/app.db?timeout=1m30s", func(c *Config) { c.Timeout = 90 * time.Second }},
		{"/data/app.db?timeout=500ms", func(c *Config) { c.Timeout = 500 * time.Millisecond }},
		{"/data/app.db?timeout=1500", func(c *Config) { c.Timeout = 1500 * time.Millisecond }},
		{"/data/app.db?timeout=1.5%C2%B5s", func(c *Config) { c.Timeout = 1500 }},
		// go-sqlite3 parameters, both spellings
		{"/data/app.db?_fk=1", func(c *Config) { c.ForeignKeys = true }},
		{"/data/app.db?_foreign_keys=TRUE", func(c *Config) { c.ForeignKeys = true }},
		{"/data/app.db?_fk=off", nil},
		{"/data/app.db?_recursive_triggers=yes", func(c *Config) { c.RecursiveTriggers = true }},
		{"/data/app.db?_rt=On", func(c *Config) { c.RecursiveTriggers = true }},
		{"/data/app.db?_case_sensitive_like=1", func(c *Config) { c.CaseSensitiveLike = true }},
		{"/data/app.db?_cslike=true", func(c *Config) { c.CaseSensitiveLike = true }},
		{"/data/app.db?_ignore_check_constraints=1", func(c *Config) { c.IgnoreCheckConstraints = true }},
		{"/data/app.db?_defer_foreign_keys=1", func(c *Config) { c.DeferForeignKeys = true }},
		{"/data/app.db?_defer_fk=no", nil},
		{"/data/app.db?_busy_timeout=250", func(c *Config) { c.BusyTimeout = 250 * time.Millisecond }},
		{"/data/app.db?_timeout=0", func(c *Config) { c.BusyTimeout = 0 }},
		{"/data/app.db?_txlock=IMMEDIATE", func(c *Config) { c.TxLock = "immediate" }},
		{"/data/app.db?_txlock=exclusive", func(c *Config) { c.TxLock = "exclusive" }},
		{"/data/app.db?_txlock=deferred", nil},
		{"/data/app.db?_loc=auto", func(c *Config) { c.Loc = time.Local }},
		{"/data/app.db?_loc=UTC", func(c *Config) { c.Loc = time.UTC }},
		{"/data/app.db?_loc=America/New_York", func(c *Config) { c.Loc = ny }},
		{"/data/app.db?mode=ro", func(c *Config) { c.ReadOnly = true }},
		{"/data/app.db?mode=rw", nil},
		{"/data/app.db?mode=rwc", nil},
		{"/data/app.db?_query_only=1", func(c *Config) { c.ReadOnly = true }},
		{"/data/app.db?_query_only=0&mode=ro", func(c *Config) { c.ReadOnly = true }},
		{"/data/app.db?_cache_size=-2000", func(c *Config) { c.CacheSize = -2000 }},
		{"/data/app.db?_journal_mode=WAL", nil},
		{"/data/app.db?_journal=wal", nil},
		{"/data/app.db?cache=private", nil},
		{"/data/app.db?_mutex=no", nil},
		{"/data/app.db?_mutex=FULL", nil},
		{"/data/app.db?&_fk=1&&", func(c *Config) { c.ForeignKeys = true }},
		{"/data/app.db?%5Ffk=%31", func(c *Config) { c.ForeignKeys = true }},
		{"file:/data/app.db?raft=127.0.0.1:7001&peers=127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003&consistency=stale" +
			"&timeout=3s&_fk=1&_rt=1&_cslike=1&_ignore_check_constraints=1&_defer_fk=1&_busy_timeout=100&_txlock=immediate" +
			"&_loc=auto&mode=ro&_cache_size=64&_journal_mode=wal&cache=private&_mutex=full", func(c *Config) {
			*c = Config{Dir: "/data", Name: "app.db", RaftAddress: "127.0.0.1:7001",
				Peers:       []string{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"},
				Consistency: Stale, Timeout: 3 * time.Second, ForeignKeys: true, RecursiveTriggers: true,
				CaseSensitiveLike: true, IgnoreCheckConstraints: true, DeferForeignKeys: true,
				BusyTimeout: 100 * time.Millisecond, TxLock: "immediate", Loc: time.Local, ReadOnly: true, CacheSize: 64}
		}},
	}
	for _, tt := range tests {
		want := defaultConfig("/data", "app.db")
		if tt.edit != nil {
			tt.edit(&want)
		}
		got, err := ParseDSN(tt.dsn)
		if err != nil {
			t.Errorf("ParseDSN(%q): %v", tt.dsn, err)
			continue
		}
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("ParseDSN(%q)\n got %+v\nwant %+v", tt.dsn, *got, want)
		}
		s := got.String()
		again, err := ParseDSN(s)
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("ParseDSN(%q).String() = %q, which parses to %+v, %v", tt.dsn, s, again, err)
		}
	}
}

func TestParseDSNErrors(t *testing.T) {
	tests := []struct{ dsn, want string }{
		// paths
		{"", "no path"},
		{"?raft=a:1", "no path"},
		{"file:", "no path"},
		{"/data/", "ends in a slash"},
		{"file:/data/?_fk=1", "ends in a slash"},
		{"file://", "ends in a slash"},
		{":memory:", "in-memory"},
		{"file::memory:?cache=shared", "in-memory"},
		{"/data/.app.db", `".app.db" starts with a dot`},
		{"/data/..", "starts with a dot"},
		{"/data/app.db/.", "starts with a dot"},
		{"file://example.com/data/app.db", `host "example.com"`},
		{"file:/data/app.db#frag", "fragment"},
		{"file:/data/app%zz.db", "bad escape"},
		{"/data/a\x00.db", "NUL"},
		// unknown, repeated, empty
		{"/data/app.db?foo=1", `unknown DSN parameter "foo" (see the DSN parameters in the rsqlite README)`},
		{"/data/app.db?Raft=a:1", `unknown DSN parameter "Raft"`},
		{"/data/app.db?_fk=1&_fk=1", `"_fk" is given twice`},
		{"/data/app.db?_fk=1&_foreign_keys=0", `"_fk" and "_foreign_keys" set the same option`},
		{"/data/app.db?_busy_timeout=1&_timeout=2", `"_busy_timeout" and "_timeout"`},
		{"/data/app.db?_rt=1&_recursive_triggers=1", `"_rt" and "_recursive_triggers"`},
		{"/data/app.db?_fk", `"_fk" needs a value`},
		{"/data/app.db?hibernate=500ms", `hibernate="500ms": want at least 1s`},
		{"/data/app.db?hibernate=soon", `hibernate="soon": want a positive duration`},
		{"/data/app.db?raft=", `"raft" needs a value`},
		{"/data/app.db?%zz=1", "bad escape in DSN parameter name"},
		{"/data/app.db?_fk=%zz", "bad escape in DSN parameter _fk"},
		// rsqlite values
		{"/data/app.db?raft=localhost", `raft="localhost": want host:port`},
		{"/data/app.db?raft=:7001", "host is missing"},
		{"/data/app.db?raft=h:0", `port "0"`},
		{"/data/app.db?raft=h:65536", `port "65536"`},
		{"/data/app.db?raft=h:http", `port "http"`},
		{"/data/app.db?raft=h:%2B80", `port "+80"`},
		{"/data/app.db?raft=1.2.3:80", `host "1.2.3" is not a valid IP`},
		{"/data/app.db?raft=a/b:80", `host "a/b" is not a valid host name`},
		{"/data/app.db?peers=a:1,b:2", "raft (this node's address, one of the peers) is required"},
		{"/data/app.db?raft=c:3&peers=a:1,b:2", "raft address c:3 is not one of the peers"},
		{"/data/app.db?raft=a:1&peers=a:1,,b:2", `peer "": want host:port`},
		{"/data/app.db?raft=a:1&peers=a:1,b", `peers="a:1,b": peer "b"`},
		{"/data/app.db?consistency=eventual", `consistency="eventual": want linearizable, strong or stale`},
		{"/data/app.db?timeout=0", `timeout="0": want a positive duration`},
		{"/data/app.db?timeout=-1s", `timeout="-1s"`},
		{"/data/app.db?timeout=5x", `timeout="5x"`},
		{"/data/app.db?timeout=99999999999999999", `timeout="99999999999999999": too long`},
		// go-sqlite3 values
		{"/data/app.db?_fk=maybe", `_fk="maybe": want a boolean`},
		{"/data/app.db?_foreign_keys=2", `_foreign_keys="2": want a boolean`},
		{"/data/app.db?_rt=x", `_rt="x"`},
		{"/data/app.db?_cslike=x", `_cslike="x"`},
		{"/data/app.db?_case_sensitive_like=x", `_case_sensitive_like="x"`},
		{"/data/app.db?_ignore_check_constraints=x", `_ignore_check_constraints="x"`},
		{"/data/app.db?_defer_fk=x", `_defer_fk="x"`},
		{"/data/app.db?_defer_foreign_keys=x", `_defer_foreign_keys="x"`},
		{"/data/app.db?_query_only=x", `_query_only="x"`},
		{"/data/app.db?_busy_timeout=1s", `_busy_timeout="1s": want a number of milliseconds`},
		{"/data/app.db?_timeout=-1", `_timeout="-1"`},
		{"/data/app.db?_txlock=serializable", `_txlock="serializable": want deferred, immediate or exclusive`},
		{"/data/app.db?_loc=Mars/Olympus", `_loc="Mars/Olympus": want auto or a time zone name`},
		{"/data/app.db?mode=memory", `mode="memory": in-memory databases cannot be replicated`},
		{"/data/app.db?mode=rwx", `mode="rwx": want ro, rw or rwc`},
		{"/data/app.db?_cache_size=big", `_cache_size="big": want an integer`},
		{"/data/app.db?_journal_mode=DELETE", `_journal_mode="DELETE": rsqlite manages the journal itself and always uses WAL`},
		{"/data/app.db?_journal=memory", `_journal="memory"`},
		{"/data/app.db?cache=shared", `cache="shared": shared cache is not supported`},
		{"/data/app.db?cache=public", `cache="public": want private`},
		{"/data/app.db?_mutex=some", `_mutex="some": want no or full`},
		// go-sqlite3 parameters that cannot apply
		{"/data/app.db?_synchronous=FULL", `"_synchronous" does not apply to a replicated database: durability comes from the raft log`},
		{"/data/app.db?_sync=OFF", `"_sync" does not apply`},
		{"/data/app.db?_locking_mode=EXCLUSIVE", `"_locking_mode" does not apply`},
		{"/data/app.db?_locking=NORMAL", `"_locking" does not apply`},
		{"/data/app.db?vfs=unix-none", `"vfs" does not apply`},
		{"/data/app.db?immutable=1", `"immutable" does not apply`},
		{"/data/app.db?_auth", `"_auth" does not apply`},
		{"/data/app.db?_auth_user=u", `"_auth_user" does not apply`},
		{"/data/app.db?_auth_pass=p", `"_auth_pass" does not apply`},
		{"/data/app.db?_auth_crypt=sha1", `"_auth_crypt" does not apply`},
		{"/data/app.db?_auth_salt=s", `"_auth_salt" does not apply`},
		{"/data/app.db?_secure_delete=1", `"_secure_delete" does not apply`},
		{"/data/app.db?_auto_vacuum=full", `"_auto_vacuum" does not apply`},
		{"/data/app.db?_vacuum=1", `"_vacuum" does not apply`},
		{"/data/app.db?_writable_schema=1", `"_writable_schema" does not apply`},
		{"/data/app.db?_stmt_cache_size=32", `"_stmt_cache_size" does not apply`},
		{"/data/app.db?nolock=1", `"nolock" does not apply`},
	}
	for _, tt := range tests {
		c, err := ParseDSN(tt.dsn)
		if err == nil {
			t.Errorf("ParseDSN(%q) = %+v, want an error containing %q", tt.dsn, c, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "rsqlite: ") {
			t.Errorf("ParseDSN(%q) error %q, want it to contain %q", tt.dsn, err, tt.want)
		}
	}
}

func TestConfigString(t *testing.T) {
	c, err := ParseDSN("/data/app.db?peers=127.0.0.2:7001,127.0.0.1:7001&raft=127.0.0.1:7001&_fk=1&_loc=Etc/GMT%2B5&timeout=2s")
	if err != nil {
		t.Fatal(err)
	}
	want := "file:/data/app.db?raft=127.0.0.1:7001&peers=127.0.0.1:7001,127.0.0.2:7001&timeout=2s&_fk=1&_loc=Etc/GMT%2B5"
	if got := c.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	c = &Config{Dir: "/d i r", Name: "a?b#c%d.db", Timeout: 10 * time.Second, BusyTimeout: 5 * time.Second}
	if got, want := c.String(), "file:/d i r/a%3Fb%23c%25d.db"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func FuzzParseDSN(f *testing.F) {
	for _, s := range []string{
		"/data/app.db",
		"file:///data/x.db?raft=[::1]:7001&peers=[::1]:7001,a:2",
		"file:rel/x%3F.db?consistency=stale&timeout=1500&_fk=1&_rt=0",
		"x.db?_loc=auto&mode=ro&_cache_size=-5&_busy_timeout=7&_txlock=exclusive",
		"file:/x.db?_loc=Europe/Paris&_journal=wal&cache=private&_mutex=no&_query_only=yes",
		"/x.db?raft=h:1&peers=H:01,h:1,g:2&timeout=1h2m3.5s",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		c, err := ParseDSN(dsn)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "rsqlite: ") {
				t.Fatalf("ParseDSN(%q) error %q lacks the rsqlite: prefix", dsn, err)
			}
			return
		}
		if !filepath.IsAbs(c.Dir) || c.Name == "" || (c.RaftAddress == "" && len(c.Peers) > 0) || c.Timeout <= 0 {
			t.Fatalf("ParseDSN(%q) = %+v", dsn, c)
		}
		s := c.String()
		again, err := ParseDSN(s)
		if err != nil {
			t.Fatalf("ParseDSN(%q).String() = %q: %v", dsn, s, err)
		}
		if !reflect.DeepEqual(again, c) {
			t.Fatalf("ParseDSN(%q) = %+v\nString %q parses to %+v", dsn, c, s, again)
		}
	})
}
