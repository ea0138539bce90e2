package command

import (
	"bytes"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"
)

var (
	zoneIndia  = time.FixedZone("IST", 5*3600+1800)
	zonePacing = time.FixedZone("", -8*3600)
	zoneOdd    = time.FixedZone("odd\x00zone", -(3*3600 + 17*60 + 9))
)

// sampleTimes covers zones, the zero time and years outside the int64-nanosecond range.
func sampleTimes() []time.Time {
	return []time.Time{
		{},
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1500, 6, 15, 12, 30, 45, 123456789, zoneIndia),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2024, 2, 29, 1, 2, 3, 4, zonePacing),
		time.Date(1969, 12, 31, 23, 59, 59, 1, zoneOdd),
		time.Date(-4000, 3, 1, 0, 0, 0, 0, time.UTC),
		time.Date(300000, 3, 1, 0, 0, 0, 7, zoneIndia),
		time.Unix(0, 0).UTC(),
		time.Unix(1700000000, 500).In(time.FixedZone("UTC", 0)),
	}
}

func insertCommand() *Command {
	return &Command{
		Engine: 0xdeadbeef,
		Kind:   KindExec, ClientID: 0xdeadbeefcafe, Seq: 42, Time: 1700000000123, Seed: 0x9e3779b97f4a7c15,
		Settings: ForeignKeys | CaseSensitiveLike, BaseIndex: 0,
		Statements: []Statement{{
			SQL: "INSERT INTO users(name, age, avatar) VALUES (?, ?, ?)",
			Args: []Arg{
				{Ordinal: 1, Value: "alice"},
				{Ordinal: 2, Value: int64(31)},
				{Ordinal: 3, Value: []byte{0x89, 'P', 'N', 'G'}},
			},
		}},
	}
}

// valueArgs returns one positional argument per interesting value.
func valueArgs() []Arg {
	values := []any{
		nil, int64(0), int64(1), int64(-1), int64(math.MaxInt64), int64(math.MinInt64),
		float64(0), math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.NaN(),
		math.Float64frombits(0x7ff8_0000_dead_beef), math.Float64frombits(0xfff0_0000_0000_0001),
		math.SmallestNonzeroFloat64, math.MaxFloat64, 3.14159,
		true, false, []byte(nil), []byte{}, []byte{0, 1, 2, 0xff}, "", "héllo, 世界 🎉", "nul\x00inside", "\xff\xfe invalid utf-8",
	}
	for _, t := range sampleTimes() {
		values = append(values, t)
	}
	args := make([]Arg, len(values))
	for i, v := range values {
		args[i] = Arg{Ordinal: i + 1, Value: v}
	}
	return args
}

func sampleCommands() map[string]*Command {
	manyArgs := make([]Arg, 10000)
	for i := range manyArgs {
		manyArgs[i] = Arg{Ordinal: i + 1, Value: int64(i * 7919)}
	}
	huge := strings.Repeat("x\x00é", 1<<20/4)
	return map[string]*Command{
		"insert":            insertCommand(),
		"empty statements":  {Kind: KindExec, ClientID: 1, Seq: 1},
		"empty statement":   {Kind: KindExec, Statements: []Statement{{}}},
		"failed statements": {Kind: KindTx, Statements: []Statement{{SQL: "INSERT OR FAIL INTO t VALUES (1)", FailCode: 2067}, {SQL: "x", FailCode: -5}}},
		"query returning": {Kind: KindQuery, ClientID: math.MaxUint64, Seq: math.MaxUint64, Time: math.MinInt64,
			Seed: math.MaxUint64, Settings: RecursiveTriggers | IgnoreCheckConstraints | DeferForeignKeys, BaseIndex: math.MaxUint64,
			Statements: []Statement{{SQL: "INSERT INTO t(v) VALUES (?) RETURNING id", Args: []Arg{{Ordinal: 1, Value: 2.5}}}}},
		"named args": {Kind: KindExec, Time: -1, Statements: []Statement{{
			SQL:  "UPDATE t SET a = :a, b = @b WHERE c = $c",
			Args: []Arg{{Name: "a", Ordinal: 1, Value: "x"}, {Name: "b", Ordinal: 2, Value: nil}, {Name: "ç", Ordinal: 3, Value: true}},
		}}},
		"every value type": {Kind: KindExec, Statements: []Statement{{SQL: "INSERT INTO t VALUES (?)", Args: valueArgs()}}},
		"tx": {Kind: KindTx, ClientID: 7, Seq: 9, BaseIndex: 12345, Statements: []Statement{
			{SQL: "CREATE TABLE a(x)"},
			{SQL: "INSERT INTO a VALUES (?)", Args: []Arg{{Ordinal: 1, Value: int64(1)}}},
			{SQL: "DELETE FROM a WHERE x = ?", Args: []Arg{{Ordinal: 1, Value: "1"}}},
		}},
		"unicode and NUL SQL": {Kind: KindExec, Statements: []Statement{{SQL: "SELECT 'ñ\x00🎉'; -- \x00\xff"}}},
		"huge strings": {Kind: KindExec, Statements: []Statement{{SQL: huge, Args: []Arg{
			{Ordinal: 1, Value: huge}, {Ordinal: 2, Value: []byte(huge)}}}}},
		"10000 args":       {Kind: KindExec, Statements: []Statement{{SQL: "INSERT", Args: manyArgs}}},
		"odd ordinals":     {Kind: KindExec, Statements: []Statement{{Args: []Arg{{Ordinal: 0}, {Ordinal: -5}, {Ordinal: math.MaxInt, Value: int64(1)}}}}},
		"unknown settings": {Kind: KindExec, Settings: 1<<32 - 1},
	}
}

func TestRoundTrip(t *testing.T) {
	for name, c := range sampleCommands() {
		t.Run(name, func(t *testing.T) {
			prefix := []byte("prefix")
			b, err := Encode(prefix, c)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b, []byte("prefix")) {
				t.Fatal("Encode did not append to dst")
			}
			got, err := Decode(b[len(prefix):])
			if err != nil {
				t.Fatal(err)
			}
			if d := diffCommand(c, got); d != "" {
				t.Fatal(d)
			}
		})
	}
}

func TestTimeZonesRoundTrip(t *testing.T) {
	const layout = "2006-01-02 15:04:05.999999999-07:00"
	for _, want := range append(sampleTimes(), time.Now().UTC(), time.Now().In(zoneIndia)) {
		b, err := Encode(nil, &Command{Kind: KindExec, Statements: []Statement{{Args: []Arg{{Value: want}}}}})
		if err != nil {
			t.Fatal(err)
		}
		c, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		got := c.Statements[0].Args[0].Value.(time.Time)
		if !got.Equal(want) || got.Format(layout) != want.Format(layout) || got.Location().String() != want.Location().String() {
			t.Errorf("got %s (%s), want %s (%s)", got.Format(layout), got.Location(), want.Format(layout), want.Location())
		}
		if got != want.Round(0) && want.Location() == time.UTC {
			t.Errorf("UTC time %v did not decode to the identical value", want)
		}
	}
}

func TestLocalZoneKeepsInstantAndOffset(t *testing.T) {
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	for _, want := range []time.Time{time.Date(2024, 1, 15, 8, 0, 0, 0, loc), time.Date(2024, 7, 15, 8, 0, 0, 0, loc)} {
		b, _ := Encode(nil, &Command{Kind: KindExec, Statements: []Statement{{Args: []Arg{{Value: want}}}}})
		c, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if d := diffTime(want, c.Statements[0].Args[0].Value.(time.Time)); d != "" {
			t.Error(d)
		}
	}
}

func TestDecodeDoesNotAliasInput(t *testing.T) {
	c := &Command{Kind: KindExec, Statements: []Statement{{SQL: "sql", Args: []Arg{{Name: "n", Value: []byte("blob")}, {Value: "str"}}}}}
	b, _ := Encode(nil, c)
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 'Z'
	}
	if d := diffCommand(c, got); d != "" {
		t.Fatal(d)
	}
}

func TestDecodeEveryTruncationFails(t *testing.T) {
	for name, c := range sampleCommands() {
		if name == "huge strings" || name == "10000 args" {
			continue // quadratic; the other samples cover every field
		}
		b, err := Encode(nil, c)
		if err != nil {
			t.Fatal(err)
		}
		for i := range b {
			if _, err := Decode(b[:i]); err == nil {
				t.Fatalf("%s: Decode of %d of %d bytes succeeded", name, i, len(b))
			}
		}
	}
}

// header returns a command header with the given kind and zero fields, followed by rest
// (which starts at the statement count).
func header(kind byte, rest ...byte) []byte {
	b := []byte{Version, kind, 0, 0, 0} // clientID, seq, time
	b = append(b, make([]byte, 8)...)   // seed
	b = append(b, 0, 0, 0)              // settings, baseIndex, engine
	return append(b, rest...)
}

func TestDecodeRejects(t *testing.T) {
	valid, _ := Encode(nil, insertCommand())
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), valid...)) }
	tests := []struct {
		name, input, wantErr string
	}{
		{"empty", "", "empty"},
		{"version zero", string(edit(func(b []byte) []byte { b[0] = 0; return b })), "version 0"},
		{"newer version", string(edit(func(b []byte) []byte { b[0] = Version + 1; return b })), "upgrade"},
		{"trailing garbage", string(append(valid[:len(valid):len(valid)], 0)), "trailing"},
		{"kind zero", string(header(0, 0)), "kind 0"},
		{"unknown kind", string(header(9, 0)), "kind 9"},
		{"non-minimal varint", string(append([]byte{Version, 1, 0x80, 0x00}, header(1, 0)[3:]...)), "non-minimal"},
		{"varint overflow", string([]byte{Version, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}), "overflow"},
		{"settings beyond 32 bits", string([]byte{Version, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 0}), "settings"},
		{"huge statement count", string(header(1, 0xff, 0xff, 0xff, 0xff, 0x0f)), "exceeds"},
		{"huge argument count", string(header(1, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f)), "exceeds"},
		{"huge SQL length", string(header(1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f)), "exceeds"},
		{"unknown value tag", string(header(1, 1, 0, 0, 1, 0, 2, 99)), "tag 99"},
		{"time nanoseconds out of range", string(header(1, 1, 0, 0, 1, 0, 2, tagTime, 0, 0x80, 0x94, 0xeb, 0xdc, 0x03, 0, 0)), "nanoseconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Decode([]byte(tt.input))
			if err == nil {
				t.Fatalf("Decode succeeded: %+v", c)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestDecodeHeaderHelperIsValid(t *testing.T) {
	// The hand-built inputs above rely on this layout being accepted when well-formed.
	b := header(1, 1, 0, 0, 1, 0, 2, tagTime, 0, 0, 0, 0)
	if _, err := Decode(b); err != nil {
		t.Fatal(err)
	}
}

func TestEncodeUnsupportedType(t *testing.T) {
	type point struct{ X, Y int }
	tests := []struct {
		value    any
		wantType string
	}{
		{int32(1), "int32"}, {1, "int"}, {uint64(1), "uint64"}, {point{}, "command.point"},
		{&point{}, "*command.point"}, {float32(1), "float32"}, {[]any{}, "[]interface {}"},
	}
	for _, tt := range tests {
		c := &Command{Kind: KindExec, Statements: []Statement{{SQL: "a"}, {SQL: "b", Args: []Arg{{Ordinal: 1, Value: int64(1)}, {Name: "p", Ordinal: 2, Value: tt.value}}}}}
		_, err := Encode(nil, c)
		if err == nil {
			t.Fatalf("Encode of %T succeeded", tt.value)
		}
		for _, want := range []string{tt.wantType, "statement 1", "argument 1", "ordinal 2", `"p"`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
	}
}

func TestEncodeUnknownKind(t *testing.T) {
	for _, k := range []Kind{0, 4, 255} {
		if _, err := Encode(nil, &Command{Kind: k}); err == nil {
			t.Errorf("Encode of kind %d succeeded", k)
		}
	}
	if _, err := Encode(nil, nil); err == nil {
		t.Error("Encode of nil succeeded")
	}
}

func TestDecodeAllocationIsBoundedByInput(t *testing.T) {
	// Forged counts that claim far more than the input holds must fail before allocating.
	inputs := [][]byte{
		header(1, 0xff, 0xff, 0xff, 0xff, 0x7f),                 // statements
		header(1, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x7f),           // arguments
		header(1, 1, 0xff, 0xff, 0xff, 0xff, 0x7f),              // SQL bytes
		{Version, statusOK, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x7f}, // result columns
		{Version, statusOK, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f}, // result rows
	}
	for i, b := range inputs {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err1 := Decode(b)
		_, err2 := DecodeResult(b)
		runtime.ReadMemStats(&after)
		if err1 == nil || err2 == nil {
			t.Fatalf("input %d decoded: %v %v", i, err1, err2)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
			t.Errorf("input %d: %d bytes allocated for a rejected forged count", i, n)
		}
	}
}

// TestConditional: a KindTx is conditional whatever its base, except in
// version 1 entries (same layout), where base 0 meant unconditional.
func TestConditional(t *testing.T) {
	for _, tc := range []struct {
		kind     Kind
		base     uint64
		v1, want bool
	}{
		{KindTx, 0, false, true},
		{KindTx, 0, true, false},
		{KindTx, 7, true, true},
		{KindExec, 0, false, false},
		{KindExec, 7, false, true},
	} {
		b, err := Encode(nil, &Command{Kind: tc.kind, BaseIndex: tc.base})
		if err != nil {
			t.Fatal(err)
		}
		wantEncoding := uint8(Version)
		if tc.v1 {
			b[0], wantEncoding = 1, 1
		}
		c, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if c.Encoding != wantEncoding || c.Conditional() != tc.want {
			t.Errorf("kind %d base %d v1 %v: encoding %d, conditional %v; want %d, %v",
				tc.kind, tc.base, tc.v1, c.Encoding, c.Conditional(), wantEncoding, tc.want)
		}
	}
}
