package command

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"time"
)

// diffValue describes how got differs from want, or returns "" when they are the same value
// under the codec's contract: same dynamic type, float bits, nil-ness of []byte, and for times
// the same instant, zone name and offset.
func diffValue(want, got any) string {
	if fmt.Sprintf("%T", want) != fmt.Sprintf("%T", got) {
		return fmt.Sprintf("type %T, want %T", got, want)
	}
	switch w := want.(type) {
	case float64:
		if math.Float64bits(w) != math.Float64bits(got.(float64)) {
			return fmt.Sprintf("float bits %#x, want %#x", math.Float64bits(got.(float64)), math.Float64bits(w))
		}
	case []byte:
		g := got.([]byte)
		if (w == nil) != (g == nil) || !bytes.Equal(w, g) {
			return fmt.Sprintf("bytes %q (nil %t), want %q (nil %t)", trim(g), g == nil, trim(w), w == nil)
		}
	case string:
		if w != got.(string) {
			return fmt.Sprintf("string %q, want %q", trim(got.(string)), trim(w))
		}
	case time.Time:
		return diffTime(w, got.(time.Time))
	default:
		if want != got {
			return fmt.Sprintf("%v, want %v", got, want)
		}
	}
	return ""
}

func diffTime(want, got time.Time) string {
	const layout = "2006-01-02 15:04:05.999999999-07:00 MST"
	wn, wo := want.Zone()
	gn, go_ := got.Zone()
	if !got.Equal(want) || wn != gn || wo != go_ || got.Format(layout) != want.Format(layout) {
		return fmt.Sprintf("time %s, want %s", got.Format(layout), want.Format(layout))
	}
	return ""
}

func trim[T string | []byte](s T) string {
	if len(s) > 40 {
		return string(s[:40]) + "..."
	}
	return string(s)
}

// diffCommand returns "" when got equals want; nil and empty slices are the same.
func diffCommand(want, got *Command) string {
	if want.Kind != got.Kind || want.ClientID != got.ClientID || want.Seq != got.Seq ||
		want.Time != got.Time || want.Seed != got.Seed || want.Settings != got.Settings ||
		want.BaseIndex != got.BaseIndex || want.Engine != got.Engine {
		w, g := *want, *got
		w.Statements, g.Statements = nil, nil
		return fmt.Sprintf("header %+v, want %+v", g, w)
	}
	if len(want.Statements) != len(got.Statements) {
		return fmt.Sprintf("%d statements, want %d", len(got.Statements), len(want.Statements))
	}
	for i, ws := range want.Statements {
		gs := got.Statements[i]
		if ws.SQL != gs.SQL {
			return fmt.Sprintf("statement %d: SQL %q, want %q", i, trim(gs.SQL), trim(ws.SQL))
		}
		if ws.FailCode != gs.FailCode {
			return fmt.Sprintf("statement %d: FailCode %d, want %d", i, gs.FailCode, ws.FailCode)
		}
		if len(ws.Args) != len(gs.Args) {
			return fmt.Sprintf("statement %d: %d args, want %d", i, len(gs.Args), len(ws.Args))
		}
		for j, wa := range ws.Args {
			ga := gs.Args[j]
			if wa.Name != ga.Name || wa.Ordinal != ga.Ordinal {
				return fmt.Sprintf("statement %d arg %d: name %q ordinal %d, want %q %d", i, j, ga.Name, ga.Ordinal, wa.Name, wa.Ordinal)
			}
			if d := diffValue(wa.Value, ga.Value); d != "" {
				return fmt.Sprintf("statement %d arg %d: %s", i, j, d)
			}
		}
	}
	return ""
}

// diffResult returns "" when got equals want; when want.Err is set only Err is compared.
func diffResult(want, got *Result) string {
	if (want.Err == nil) != (got.Err == nil) {
		return fmt.Sprintf("Err %v, want %v", got.Err, want.Err)
	}
	if want.Err != nil {
		if *want.Err != *got.Err {
			return fmt.Sprintf("Err %+v, want %+v", *got.Err, *want.Err)
		}
		return ""
	}
	if want.RowsAffected != got.RowsAffected || want.LastInsertID != got.LastInsertID {
		return fmt.Sprintf("RowsAffected %d LastInsertID %d, want %d %d", got.RowsAffected, got.LastInsertID, want.RowsAffected, want.LastInsertID)
	}
	if !slices.Equal(want.Columns, got.Columns) {
		return fmt.Sprintf("Columns %q, want %q", got.Columns, want.Columns)
	}
	if !slices.Equal(want.DeclTypes, got.DeclTypes) {
		return fmt.Sprintf("DeclTypes %q, want %q", got.DeclTypes, want.DeclTypes)
	}
	if len(want.Rows) != len(got.Rows) {
		return fmt.Sprintf("%d rows, want %d", len(got.Rows), len(want.Rows))
	}
	for i, wr := range want.Rows {
		if len(wr) != len(got.Rows[i]) {
			return fmt.Sprintf("row %d: %d values, want %d", i, len(got.Rows[i]), len(wr))
		}
		for j, wv := range wr {
			if d := diffValue(wv, got.Rows[i][j]); d != "" {
				return fmt.Sprintf("row %d column %d: %s", i, j, d)
			}
		}
	}
	return ""
}
