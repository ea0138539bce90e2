package command

// Golden fixtures pin the bytes of every encoding version. The other tests build their inputs
// with the current encoder or Version, so they would silently follow a change of layout; raft
// logs and snapshots written by older nodes would not.
//
// testdata/v<N>-commands.golden and testdata/v<N>-results.golden hold, per named case, the
// hex encoding of the values in goldenSets for version N:
//   - TestGoldenEncode: the encoder still writes exactly the current Version's files;
//   - TestGoldenDecode: every version's files still decode to their expected values.
//
// After adding a case, regenerate the current Version's files with
//
//	go test ./internal/command/ -run TestGolden -update
//
// and review the diff: an existing case must not change, since its bytes are already in raft
// logs. To bump Version, keep the old entry of goldenSets and its files as they are (their
// values then say what the new decoder makes of old bytes), add an entry for the new version,
// and run -update, which writes only the current Version's files.

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/v<Version>-*.golden from the golden values")

type goldenCommand struct {
	name string
	c    *Command
}

type goldenResult struct {
	name string
	r    *Result
}

// goldenSet is what one encoding version's files decode to. Never edit a released version's set.
type goldenSet struct {
	version  int
	commands []goldenCommand
	results  []goldenResult
}

func goldenSets() []goldenSet {
	return []goldenSet{
		{version: 1, commands: goldenCommandsV1(), results: goldenResultsV1()},
		// Version 2 changed a meaning (Command.Conditional), not the layout.
		{version: 2, commands: goldenCommandsV1(), results: goldenResultsV1()},
	}
}

// Literal values, not the shared samples, so that editing a sample cannot move a fixture.
var (
	goldenCET     = time.FixedZone("CET", 3600)
	goldenNoName  = time.FixedZone("", -(3*3600 + 30*60))
	goldenZoned   = time.Date(2024, 11, 26, 9, 30, 15, 123456789, goldenCET)
	goldenUTC     = time.Date(2024, 11, 26, 8, 30, 15, 0, time.UTC)
	goldenOldTime = time.Date(1969, 7, 20, 20, 17, 40, 5, goldenNoName)
)

func goldenCommandsV1() []goldenCommand {
	return []goldenCommand{
		{"exec every argument type", &Command{
			Kind: KindExec, ClientID: 0x5eedc0ffee12, Seq: 17, Time: 1732613415123, Seed: 0x9e3779b97f4a7c15,
			Settings: ForeignKeys | CaseSensitiveLike, Engine: 0x8a7f3c21,
			Statements: []Statement{{
				SQL: "INSERT INTO t(i, big, neg, f, negzero, yes, no, blob, empty, nilblob, s, es, at, atutc, old, n) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
				Args: []Arg{
					{Ordinal: 1, Value: int64(42)},
					{Ordinal: 2, Value: int64(1) << 40},
					{Ordinal: 3, Value: int64(-7)},
					{Ordinal: 4, Value: 3.25},
					{Ordinal: 5, Value: math.Copysign(0, -1)},
					{Ordinal: 6, Value: true},
					{Ordinal: 7, Value: false},
					{Ordinal: 8, Value: []byte{0x00, 0xff, 'P'}},
					{Ordinal: 9, Value: []byte{}},
					{Ordinal: 10, Value: []byte(nil)},
					{Ordinal: 11, Value: "héllo, 世界"},
					{Ordinal: 12, Value: ""},
					{Ordinal: 13, Value: goldenZoned},
					{Ordinal: 14, Value: goldenUTC},
					{Ordinal: 15, Value: goldenOldTime},
					{Ordinal: 16, Value: nil},
				},
			}},
		}},
		{"exec named args", &Command{
			Kind: KindExec, ClientID: 3, Seq: 1, Time: 1732613415999, Seed: 1, Settings: RecursiveTriggers, Engine: 1,
			Statements: []Statement{{
				SQL: "UPDATE t SET a = :a, b = @b WHERE c = $c AND d = ?4",
				Args: []Arg{
					{Name: "a", Ordinal: 1, Value: "x"},
					{Name: "b", Ordinal: 2, Value: int64(2)},
					{Name: "c", Ordinal: 3, Value: nil},
					{Ordinal: 4, Value: 0.5},
				},
			}},
		}},
		{"exec multi-statement SQL", &Command{
			Kind: KindExec, ClientID: 3, Seq: 2, Time: 1732613416000, Seed: 2,
			Statements: []Statement{{SQL: "CREATE TABLE u(a); INSERT INTO u VALUES (?1); INSERT INTO u VALUES (?1)", Args: []Arg{{Ordinal: 1, Value: "twice"}}}},
		}},
		{"query returning conditional", &Command{
			Kind: KindQuery, ClientID: 9, Seq: 300, Time: 1732613417000, Seed: 0xfeedfacecafebeef,
			Settings: IgnoreCheckConstraints | DeferForeignKeys, BaseIndex: 1234567, Engine: 0x8a7f3c21,
			Statements: []Statement{{SQL: "INSERT INTO t(v) VALUES (?) RETURNING id, v", Args: []Arg{{Ordinal: 1, Value: -2.5e300}}}},
		}},
		{"tx with failed statement", &Command{
			Kind: KindTx, ClientID: 0x5eedc0ffee12, Seq: 18, Time: 1732613418000, Seed: 0x0123456789abcdef,
			Settings: ForeignKeys, BaseIndex: 88, Engine: 0x8a7f3c21,
			Statements: []Statement{
				{SQL: "INSERT INTO t(id) VALUES (?)", Args: []Arg{{Ordinal: 1, Value: int64(1)}}},
				{SQL: "INSERT OR FAIL INTO t(id) VALUES (?), (?)", Args: []Arg{{Ordinal: 1, Value: int64(2)}, {Ordinal: 2, Value: int64(1)}}, FailCode: 2067},
				{SQL: "UPDATE t SET at = :at WHERE id = :id", Args: []Arg{{Name: "at", Ordinal: 1, Value: goldenUTC}, {Name: "id", Ordinal: 2, Value: int64(2)}}},
			},
		}},
		{"tx base 0", &Command{Kind: KindTx, Seq: 1, Statements: []Statement{{SQL: "DELETE FROM t"}}}},
		{"exec no statements", &Command{Kind: KindExec}},
		{"extremes", &Command{
			Kind: KindExec, ClientID: math.MaxUint64, Seq: math.MaxUint64, Time: math.MinInt64, Seed: math.MaxUint64,
			Settings:  ForeignKeys | RecursiveTriggers | CaseSensitiveLike | IgnoreCheckConstraints | DeferForeignKeys,
			BaseIndex: math.MaxUint64, Engine: math.MaxUint32,
			Statements: []Statement{{SQL: "SELECT ?", FailCode: -1, Args: []Arg{
				{Name: "n", Ordinal: math.MaxInt32, Value: int64(math.MaxInt64)},
				{Ordinal: 2, Value: int64(math.MinInt64)},
			}}},
		}},
	}
}

func goldenResultsV1() []goldenResult {
	return []goldenResult{
		{"exec", &Result{RowsAffected: 3, LastInsertID: 42}},
		{"rows every value type", &Result{
			Columns:   []string{"id", "name", "score", "active", "avatar", "created", "seen", "note"},
			DeclTypes: []string{"INTEGER", "TEXT", "REAL", "BOOLEAN", "BLOB", "DATETIME", "TIMESTAMP", ""},
			Rows: [][]any{
				{int64(1), "alice", 9.75, true, []byte{0x89, 'P', 'N', 'G'}, goldenZoned, goldenUTC, nil},
				{int64(-2), "", math.Copysign(0, -1), false, []byte{}, goldenOldTime, goldenUTC, []byte(nil)},
			},
		}},
		{"no rows", &Result{Columns: []string{"id"}, DeclTypes: []string{"INTEGER"}}},
		{"sqlite error", &Result{Err: &Error{Code: 19, ExtendedCode: 2067, Message: "UNIQUE constraint failed: t.id"}}},
		{"applier error", &Result{Err: &Error{Message: "not enough args to execute query: want 2 got 1"}}},
		{"extremes", &Result{RowsAffected: math.MaxInt64, LastInsertID: math.MinInt64}},
		{"empty", &Result{}},
	}
}

// goldenCase is one named encoding of a golden file.
type goldenCase struct {
	name string
	// encode encodes the case's value with the current encoder.
	encode func() ([]byte, error)
	// check decodes b and describes how it differs from the case's value ("" if it does not).
	check func(b []byte) (string, error)
}

type goldenFile struct {
	version int
	path    string
	cases   []goldenCase
}

func goldenFiles() []goldenFile {
	var files []goldenFile
	for _, s := range goldenSets() {
		cmds := goldenFile{version: s.version, path: goldenPath(s.version, "commands")}
		for _, g := range s.commands {
			cmds.cases = append(cmds.cases, goldenCase{
				name:   g.name,
				encode: func() ([]byte, error) { return Encode(nil, g.c) },
				check: func(b []byte) (string, error) {
					got, err := Decode(b)
					if err != nil {
						return "", err
					}
					return diffCommand(g.c, got), nil
				},
			})
		}
		results := goldenFile{version: s.version, path: goldenPath(s.version, "results")}
		for _, g := range s.results {
			results.cases = append(results.cases, goldenCase{
				name:   g.name,
				encode: func() ([]byte, error) { return EncodeResult(nil, g.r) },
				check: func(b []byte) (string, error) {
					got, err := DecodeResult(b)
					if err != nil {
						return "", err
					}
					return diffResult(g.r, got), nil
				},
			})
		}
		files = append(files, cmds, results)
	}
	return files
}

func goldenPath(version int, what string) string {
	return filepath.Join("testdata", fmt.Sprintf("v%d-%s.golden", version, what))
}

// namedBytes is one case of a golden file as stored.
type namedBytes struct {
	name string
	b    []byte
}

const goldenBytesPerLine = 32

// formatGolden renders a golden file as text ("== name" then hex lines) so that a fixture
// change shows up readably in review.
func formatGolden(version int, cases []namedBytes) []byte {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# rsqlite internal/command encoding version %d, written by golden_test.go -update.\n", version)
	fmt.Fprintf(&buf, "# Raft logs hold these bytes: never edit them, and never regenerate them after a release.\n")
	for _, c := range cases {
		fmt.Fprintf(&buf, "\n== %s\n", c.name)
		for b := c.b; len(b) > 0; {
			n := min(len(b), goldenBytesPerLine)
			fmt.Fprintf(&buf, "%x\n", b[:n])
			b = b[n:]
		}
	}
	return buf.Bytes()
}

func parseGolden(data []byte) ([]namedBytes, error) {
	var cases []namedBytes
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "== "):
			cases = append(cases, namedBytes{name: strings.TrimPrefix(line, "== ")})
		case len(cases) == 0:
			return nil, fmt.Errorf("line %d: hex before the first \"== name\" line", i+1)
		default:
			b, err := hex.DecodeString(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", i+1, err)
			}
			last := &cases[len(cases)-1]
			last.b = append(last.b, b...)
		}
	}
	return cases, nil
}

func readGolden(t *testing.T, path string) []namedBytes {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (to create the current Version's files: go test ./internal/command/ -run TestGolden -update)", err)
	}
	cases, err := parseGolden(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cases
}

func caseNames(cases []namedBytes) []string {
	names := make([]string, len(cases))
	for i, c := range cases {
		names[i] = c.name
	}
	return names
}

func TestGoldenEncode(t *testing.T) {
	var current int
	for _, f := range goldenFiles() {
		if f.version != Version {
			continue // older encoders are gone; only their bytes remain, checked by TestGoldenDecode
		}
		current++
		t.Run(filepath.Base(f.path), func(t *testing.T) {
			want := make([]namedBytes, len(f.cases))
			for i, c := range f.cases {
				b, err := c.encode()
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				want[i] = namedBytes{c.name, b}
			}
			text := formatGolden(f.version, want)
			if *update {
				if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(f.path, text, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			got := readGolden(t, f.path)
			if !slices.Equal(caseNames(got), caseNames(want)) {
				t.Fatalf("%s holds cases %q, want %q", f.path, caseNames(got), caseNames(want))
			}
			for i, w := range want {
				if g := got[i].b; !bytes.Equal(g, w.b) {
					at := 0
					for at < min(len(g), len(w.b)) && g[at] == w.b[at] {
						at++
					}
					t.Errorf("%s: encoding differs from the golden file at byte %d (%d bytes, golden %d)\n got    %x\n golden %x",
						w.name, at, len(w.b), len(g), w.b, g)
				}
			}
			if !t.Failed() && !bytes.Equal(mustRead(t, f.path), text) {
				t.Errorf("%s is not in the form -update writes", f.path)
			}
		})
	}
	if current == 0 {
		t.Fatalf("goldenSets has no entry for the current Version %d", Version)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGoldenDecode is the upgrade guarantee: what every version wrote still decodes.
func TestGoldenDecode(t *testing.T) {
	for _, f := range goldenFiles() {
		t.Run(filepath.Base(f.path), func(t *testing.T) {
			got := readGolden(t, f.path)
			var want []string
			for _, c := range f.cases {
				want = append(want, c.name)
			}
			if !slices.Equal(caseNames(got), want) {
				t.Fatalf("%s holds cases %q, want %q", f.path, caseNames(got), want)
			}
			for i, c := range f.cases {
				b := got[i].b
				if len(b) == 0 || int(b[0]) != f.version {
					t.Errorf("%s: stored bytes do not start with version %d: %x", c.name, f.version, b)
					continue
				}
				d, err := c.check(b)
				if err != nil {
					t.Errorf("%s: %v", c.name, err)
				} else if d != "" {
					t.Errorf("%s: decoded %s", c.name, d)
				}
			}
		})
	}
}

// TestGoldenFilesAreKnown catches a golden file left without its set (so no longer decoded).
func TestGoldenFilesAreKnown(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "*.golden"))
	if err != nil {
		t.Fatal(err)
	}
	var known []string
	for _, f := range goldenFiles() {
		known = append(known, f.path)
	}
	for _, p := range paths {
		if !slices.Contains(known, p) {
			t.Errorf("%s is not checked: add its version back to goldenSets", p)
		}
	}
}

// TestGoldenCoverage keeps the current Version's fixtures representative: every Kind, value
// tag and setting, and every field set to a non-zero value somewhere. A new Kind or tag fails
// here until a fixture uses it.
func TestGoldenCoverage(t *testing.T) {
	sets := goldenSets()
	i := slices.IndexFunc(sets, func(s goldenSet) bool { return s.version == Version })
	if i < 0 {
		t.Fatalf("goldenSets has no entry for the current Version %d", Version)
	}
	set := sets[i]

	var kinds []Kind
	var settings Settings
	var argTags, rowTags []byte
	has := map[string]bool{}
	tag := func(v any) byte {
		b, ok := appendValue(nil, v)
		if !ok {
			t.Fatalf("unsupported fixture value %T", v)
		}
		return b[0]
	}
	for _, g := range set.commands {
		c := g.c
		kinds = append(kinds, c.Kind)
		settings |= c.Settings
		has["ClientID"] = has["ClientID"] || c.ClientID != 0
		has["Seq"] = has["Seq"] || c.Seq != 0
		has["Time"] = has["Time"] || c.Time != 0
		has["Seed"] = has["Seed"] || c.Seed != 0
		has["BaseIndex"] = has["BaseIndex"] || c.BaseIndex != 0
		has["Engine"] = has["Engine"] || c.Engine != 0
		has["several statements"] = has["several statements"] || len(c.Statements) > 1
		for _, s := range c.Statements {
			has["FailCode"] = has["FailCode"] || s.FailCode != 0
			for _, a := range s.Args {
				has["named arg"] = has["named arg"] || a.Name != ""
				has["positional arg"] = has["positional arg"] || a.Name == ""
				argTags = append(argTags, tag(a.Value))
				if tm, ok := a.Value.(time.Time); ok {
					has["UTC time arg"] = has["UTC time arg"] || tm.Location() == time.UTC
					has["zoned time arg"] = has["zoned time arg"] || tm.Location() != time.UTC
				}
			}
		}
	}
	for _, g := range set.results {
		r := g.r
		if r.Err != nil {
			has["error code"] = has["error code"] || r.Err.Code != 0 && r.Err.ExtendedCode != 0
			continue
		}
		has["RowsAffected"] = has["RowsAffected"] || r.RowsAffected != 0
		has["LastInsertID"] = has["LastInsertID"] || r.LastInsertID != 0
		has["Columns"] = has["Columns"] || len(r.Columns) > 0
		has["DeclTypes"] = has["DeclTypes"] || len(r.DeclTypes) > 0
		for _, row := range r.Rows {
			for _, v := range row {
				rowTags = append(rowTags, tag(v))
			}
		}
	}

	for k := range 256 {
		if Kind(k).valid() && !slices.Contains(kinds, Kind(k)) {
			t.Errorf("no fixture of kind %v", Kind(k))
		}
	}
	for _, s := range []Settings{ForeignKeys, RecursiveTriggers, CaseSensitiveLike, IgnoreCheckConstraints, DeferForeignKeys} {
		if settings&s == 0 {
			t.Errorf("no fixture sets Settings bit %#x", uint32(s))
		}
	}
	for _, tg := range decodableTags() {
		if !slices.Contains(argTags, tg) {
			t.Errorf("no command argument with value tag %d", tg)
		}
		if !slices.Contains(rowTags, tg) {
			t.Errorf("no result value with tag %d", tg)
		}
	}
	for _, what := range []string{"ClientID", "Seq", "Time", "Seed", "BaseIndex", "Engine", "several statements",
		"FailCode", "named arg", "positional arg", "UTC time arg", "zoned time arg",
		"error code", "RowsAffected", "LastInsertID", "Columns", "DeclTypes"} {
		if !has[what] {
			t.Errorf("no fixture covers %s", what)
		}
	}
}

// decodableTags asks the decoder which value tags it knows, so a new tag needs no list update here.
func decodableTags() []byte {
	var tags []byte
	for tg := range 256 {
		d := decoder{buf: []byte{byte(tg)}}
		d.value()
		if d.err == nil || !strings.Contains(d.err.Error(), "unknown value tag") {
			tags = append(tags, byte(tg))
		}
	}
	return tags
}
