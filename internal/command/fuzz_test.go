package command

import (
	"bytes"
	"math"
	"testing"
	"time"
)

// smallSamples skips the multi-megabyte samples, which make poor fuzz seeds.
func smallSamples[T any](m map[string]T) []T {
	var out []T
	for name, v := range m {
		if name != "huge" && name != "huge strings" && name != "10000 args" {
			out = append(out, v)
		}
	}
	return out
}

func FuzzDecode(f *testing.F) {
	for _, c := range smallSamples(sampleCommands()) {
		b, err := Encode(nil, c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{Version + 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Decode(b)
		if err != nil {
			return
		}
		again, err := Encode(nil, c)
		if err != nil {
			t.Fatalf("decoded command does not re-encode: %v", err)
		}
		// Only minimal varints and one form per value are accepted, so the encoding is canonical.
		if b[0] == Version && !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, b)
		}
		c2, err := Decode(again)
		if err != nil {
			t.Fatalf("re-encoded command does not decode: %v", err)
		}
		if d := diffCommand(c, c2); d != "" {
			t.Fatal(d)
		}
	})
}

func FuzzDecodeResult(f *testing.F) {
	for _, r := range smallSamples(sampleResults()) {
		b, err := EncodeResult(nil, r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{Version + 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeResult(b)
		if err != nil {
			return
		}
		again, err := EncodeResult(nil, r)
		if err != nil {
			t.Fatalf("decoded result does not re-encode: %v", err)
		}
		if b[0] == Version && !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, b)
		}
		r2, err := DecodeResult(again)
		if err != nil {
			t.Fatalf("re-encoded result does not decode: %v", err)
		}
		if d := diffResult(r, r2); d != "" {
			t.Fatal(d)
		}
	})
}

// FuzzRoundTrip builds a command and a result holding every value type from fuzzed fields
// and checks that both survive encoding and decoding unchanged.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint8(0), uint64(1), uint64(2), int64(1700000000000), uint64(3), uint32(ForeignKeys), uint64(0),
		"INSERT INTO t VALUES (?, :n)", "n", 1, int64(-5), 2.5, "text", []byte("blob"), uint8(0),
		int64(1700000000), uint32(5), int32(3600), "CET", int32(19), "constraint failed")
	f.Add(uint8(2), uint64(0), uint64(0), int64(-1), uint64(1<<63), uint32(0), uint64(1<<40),
		"", "", 0, int64(-1<<63), math.Copysign(0, -1), "", []byte{}, uint8(7),
		int64(-62135596800), uint32(0), int32(0), "UTC", int32(0), "")
	f.Fuzz(func(t *testing.T, kind uint8, clientID, seq uint64, clock int64, seed uint64, settings uint32, base uint64,
		sql, name string, ordinal int, i int64, fl float64, s string, bs []byte, flags uint8,
		sec int64, nsec uint32, offset int32, zone string, code int32, message string) {
		if flags&1 != 0 {
			bs = nil
		} else if bs == nil {
			bs = []byte{}
		}
		tm := time.Unix(sec, int64(nsec%nanosPerSecond)).In(time.FixedZone(zone, int(offset)))
		values := []any{nil, i, fl, flags&2 != 0, bs, s, tm}
		args := make([]Arg, len(values))
		for j, v := range values {
			args[j] = Arg{Name: name, Ordinal: ordinal + j, Value: v}
		}
		c := &Command{
			Kind: KindExec + Kind(kind%3), ClientID: clientID, Seq: seq, Time: clock, Seed: seed,
			Settings: Settings(settings), BaseIndex: base,
			Statements: []Statement{{SQL: sql, Args: args}, {SQL: name}},
		}
		b, err := Encode(nil, c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if d := diffCommand(c, got); d != "" {
			t.Fatal(d)
		}

		r := &Result{RowsAffected: i, LastInsertID: clock, Columns: []string{name, sql}, DeclTypes: []string{s}, Rows: [][]any{values, values[:flags%8]}}
		if flags&4 != 0 {
			r = &Result{Err: &Error{Code: int(code), ExtendedCode: int(offset), Message: message}}
		}
		rb, err := EncodeResult(nil, r)
		if err != nil {
			t.Fatal(err)
		}
		gotR, err := DecodeResult(rb)
		if err != nil {
			t.Fatal(err)
		}
		if d := diffResult(r, gotR); d != "" {
			t.Fatal(d)
		}
	})
}
