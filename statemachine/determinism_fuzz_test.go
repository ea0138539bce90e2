package statemachine

import (
	"fmt"
	"math/rand"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rsqlite/rsqlite/internal/command"
)

// nondeterministic expressions SQLite could evaluate differently on two
// machines; the state machine must make every replica agree on them.
var fuzzExprs = []string{
	"random()", "randomblob(8)", "hex(randomblob(3))", "abs(random()) % 1000",
	"CURRENT_TIMESTAMP", "CURRENT_DATE", "CURRENT_TIME", "datetime('now')",
	"strftime('%Y-%m-%d %H:%M:%f', 'now')", "julianday('now')", "unixepoch('now', 'subsec')",
	"date('now', 'localtime')", "datetime('now', '+1 day', 'utc')", "time('now', 'start of day')",
	"changes()", "last_insert_rowid()", "typeof(random())", "42", "'x'",
}

// defaultExprs are the ones SQLite accepts in a column DEFAULT.
var defaultExprs = []string{
	"random()", "randomblob(8)", "CURRENT_TIMESTAMP", "CURRENT_DATE", "CURRENT_TIME",
	"datetime('now')", "julianday('now')", "strftime('%f', 'now')", "42",
}

// fuzzCommands turns a seed into a deterministic list of commands using the
// expressions in values, DEFAULTs and triggers, with varying clocks and seeds.
func fuzzCommands(seed int64, n int) []*command.Command {
	rng := rand.New(rand.NewSource(seed))
	pick := func() string { return fuzzExprs[rng.Intn(len(fuzzExprs))] }
	pickDefault := func() string { return defaultExprs[rng.Intn(len(defaultExprs))] }
	cmds := []*command.Command{
		execCmd(fmt.Sprintf(`CREATE TABLE t(id INTEGER PRIMARY KEY, a DEFAULT (%s), b DEFAULT (%s), c)`, pickDefault(), pickDefault())),
		execCmd(`CREATE TABLE audit(id INTEGER PRIMARY KEY, what, v)`),
		execCmd(fmt.Sprintf(`CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN INSERT INTO audit(what, v) VALUES ('ins', %s); END`, pick())),
		execCmd(fmt.Sprintf(`CREATE TRIGGER t_upd AFTER UPDATE ON t BEGIN INSERT INTO audit(what, v) VALUES ('upd', %s); END`, pick())),
	}
	for i := 0; i < n; i++ {
		var q string
		switch rng.Intn(4) {
		case 0:
			q = fmt.Sprintf("INSERT INTO t(c) VALUES (%s)", pick())
		case 1:
			q = fmt.Sprintf("INSERT INTO t(a, c) VALUES (%s, %s), (%s, %s)", pick(), pick(), pick(), pick())
		case 2:
			q = fmt.Sprintf("UPDATE t SET c = %s WHERE id %% 3 = %d", pick(), rng.Intn(3))
		case 3:
			q = fmt.Sprintf("INSERT INTO t(c) SELECT %s FROM t WHERE id < %d", pick(), 1+rng.Intn(5))
		}
		c := execCmd(q)
		c.Time = 946684800000 + rng.Int63n(1e12)
		c.Seed = rng.Uint64()
		c.Kind = []command.Kind{command.KindExec, command.KindQuery, command.KindTx}[rng.Intn(3)]
		cmds = append(cmds, c)
	}
	return cmds
}

// schemaCommands is how many of fuzzCommands' commands build the schema.
const schemaCommands = 4

// FuzzDeterminism applies the same generated entries on two replicas, one
// batch at a time on one and in other batch sizes on the other, and requires
// identical databases.
func FuzzDeterminism(f *testing.F) {
	for _, s := range []int64{1, 2, 3, 42, 2024} {
		f.Add(s, uint8(20))
	}
	f.Fuzz(func(t *testing.T, seed int64, n uint8) {
		cmds := fuzzCommands(seed, int(n%40))
		dir := t.TempDir()
		a := openSM(t, filepath.Join(dir, "a.db"))
		b := openSM(t, filepath.Join(dir, "b.db"))
		a.mustApply(cmds[:schemaCommands]...)
		b.mustApply(cmds[:schemaCommands]...)
		cmds = cmds[schemaCommands:]
		a.apply(cmds...)
		for i := 0; i < len(cmds); {
			k := 1 + int(uint64(seed+int64(i))%5)
			if i+k > len(cmds) {
				k = len(cmds) - i
			}
			b.apply(cmds[i : i+k]...)
			i += k
		}
		da, db := dump(t, a.Path()), dump(t, b.Path())
		if da != db {
			t.Fatalf("replicas differ for seed %d n %d:\n%s\n---\n%s", seed, n, da, db)
		}
		if !strings.Contains(da, "table t ") {
			t.Fatalf("schema missing:\n%s", da)
		}
	})
}
