package command

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func sampleResults() map[string]*Result {
	row := make([]any, 0, len(valueArgs()))
	for _, a := range valueArgs() {
		row = append(row, a.Value)
	}
	return map[string]*Result{
		"empty":          {},
		"exec":           {RowsAffected: 3, LastInsertID: 99},
		"exec extremes":  {RowsAffected: math.MaxInt64, LastInsertID: math.MinInt64},
		"sqlite error":   {Err: &Error{Code: 19, ExtendedCode: 2067, Message: "UNIQUE constraint failed: users.email"}},
		"applier error":  {Err: &Error{Message: "not enough args to execute query: want 2 got 1"}},
		"negative codes": {Err: &Error{Code: -1, ExtendedCode: math.MinInt, Message: "ñ\x00"}},
		"empty message":  {Err: &Error{Code: 1}},
		"no rows":        {Columns: []string{"id"}, DeclTypes: []string{"INTEGER"}},
		"returning": {
			Columns:   []string{"id", "name", "blob", "at"},
			DeclTypes: []string{"INTEGER", "TEXT", "", "DATETIME"},
			Rows: [][]any{
				{int64(1), "alice", []byte{}, sampleTimes()[3]},
				{int64(2), nil, []byte(nil), sampleTimes()[2]},
			},
		},
		"every value type": {Columns: []string{"v"}, Rows: [][]any{row, {}, row[:1]}},
		"huge": {Columns: []string{strings.Repeat("c", 1<<20)}, Rows: [][]any{
			{strings.Repeat("é\x00", 1<<19)}, {[]byte(strings.Repeat("b", 1<<20))},
		}},
	}
}

func TestResultRoundTrip(t *testing.T) {
	for name, r := range sampleResults() {
		t.Run(name, func(t *testing.T) {
			b, err := EncodeResult([]byte{0xAA}, r)
			if err != nil {
				t.Fatal(err)
			}
			if b[0] != 0xAA {
				t.Fatal("EncodeResult did not append to dst")
			}
			got, err := DecodeResult(b[1:])
			if err != nil {
				t.Fatal(err)
			}
			if d := diffResult(r, got); d != "" {
				t.Fatal(d)
			}
		})
	}
}

func TestResultErrorOnlyEncodesErr(t *testing.T) {
	r := &Result{Err: &Error{Code: 5, Message: "database is locked"}, RowsAffected: 7, Columns: []string{"x"}}
	b, _ := EncodeResult(nil, r)
	got, err := DecodeResult(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.RowsAffected != 0 || got.Columns != nil || *got.Err != *r.Err {
		t.Fatalf("got %+v", got)
	}
	var asErr error = got.Err
	var target *Error
	if !errors.As(asErr, &target) || target.Error() != "database is locked" {
		t.Fatalf("Error() = %q", asErr)
	}
}

func TestDecodeResultEveryTruncationFails(t *testing.T) {
	for name, r := range sampleResults() {
		if name == "huge" {
			continue
		}
		b, err := EncodeResult(nil, r)
		if err != nil {
			t.Fatal(err)
		}
		for i := range b {
			if _, err := DecodeResult(b[:i]); err == nil {
				t.Fatalf("%s: DecodeResult of %d of %d bytes succeeded", name, i, len(b))
			}
		}
	}
}

func TestDecodeResultRejects(t *testing.T) {
	valid, _ := EncodeResult(nil, sampleResults()["returning"])
	tests := []struct {
		name    string
		input   []byte
		wantErr string
	}{
		{"empty", nil, "empty"},
		{"newer version", append([]byte{Version + 1}, valid[1:]...), "upgrade"},
		{"trailing garbage", append(valid[:len(valid):len(valid)], 1, 2), "2 trailing bytes"},
		{"unknown status", []byte{Version, 2}, "status 2"},
		{"unknown value tag", []byte{Version, statusOK, 0, 0, 0, 0, 1, 1, 200}, "tag 200"},
		{"huge row width", []byte{Version, statusOK, 0, 0, 0, 0, 1, 0xff, 0x7f}, "exceeds"},
		{"code overflows int64", []byte{Version, statusError, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, "overflow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := DecodeResult(tt.input)
			if err == nil {
				t.Fatalf("DecodeResult succeeded: %+v", r)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestEncodeResultUnsupportedType(t *testing.T) {
	r := &Result{Columns: []string{"a", "b"}, Rows: [][]any{{int64(1), "x"}, {int64(2), uint8(3)}}}
	_, err := EncodeResult(nil, r)
	if err == nil {
		t.Fatal("EncodeResult succeeded")
	}
	for _, want := range []string{"uint8", "row 1", "column 1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, err := EncodeResult(nil, nil); err == nil {
		t.Error("EncodeResult of nil succeeded")
	}
}

func TestDecodeResultSharesZoneAcrossRows(t *testing.T) {
	zone := time.FixedZone("CET", 3600)
	r := &Result{Columns: []string{"at"}, Rows: [][]any{
		{time.Date(2024, 1, 1, 0, 0, 0, 0, zone)}, {time.Date(2024, 1, 2, 0, 0, 0, 0, zone)},
		{time.Date(2024, 1, 3, 0, 0, 0, 0, zoneIndia)}, {time.Date(2024, 1, 4, 0, 0, 0, 0, zone)},
	}}
	b, _ := EncodeResult(nil, r)
	got, err := DecodeResult(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffResult(r, got); d != "" {
		t.Fatal(d)
	}
	loc := func(i int) *time.Location { return got.Rows[i][0].(time.Time).Location() }
	if loc(0) != loc(1) || loc(1) == loc(2) {
		t.Error("consecutive times in one zone do not share a *time.Location")
	}
}
