package main

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
	"testing"
)

// TestBenchQuick runs W1 and W3 briefly against every target and checks
// that the table has a row with a non-zero rate for each. Timing is not
// asserted.
func TestBenchQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("starts clusters and runs workloads for several seconds")
	}
	var out, log bytes.Buffer
	err := bench([]string{"-quick", "-workloads", "w1,w3", "-duration", "400ms", "-rows", "20000", "-dir", t.TempDir()}, &out, &log)
	if err != nil {
		t.Fatalf("bench: %v\nprogress:\n%s\noutput:\n%s", err, log.String(), out.String())
	}
	rows := map[string]float64{}
	sc := bufio.NewScanner(&out)
	inTable := false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) > 0 && f[0] == "workload":
			inTable = true
		case len(f) == 0:
			inTable = false
		case inTable:
			if len(f) < 10 {
				t.Fatalf("short table row %q", sc.Text())
			}
			rate, err := strconv.ParseFloat(f[3], 64)
			if err != nil || rate <= 0 {
				t.Errorf("row %q: rate %q is not a positive number", sc.Text(), f[3])
			}
			if f[8] != "0" {
				t.Errorf("row %q: errors", sc.Text())
			}
			rows[f[0]+" "+f[1]+" "+f[2]] = rate
		}
	}
	var want []string
	for _, tg := range allTargets {
		for _, c := range []string{"1", "16", "64"} {
			want = append(want, "W1 "+tg+" "+c)
		}
		w3 := []string{"W3-lin", "W3-stale"}
		if strings.HasPrefix(tg, "plain") {
			w3 = []string{"W3"}
		}
		for _, wl := range w3 {
			for _, c := range []string{"1", "16"} {
				want = append(want, wl+" "+tg+" "+c)
			}
		}
	}
	for _, k := range want {
		if _, ok := rows[k]; !ok {
			t.Errorf("no table row for %s", k)
		}
	}
	if len(rows) != len(want) {
		t.Errorf("table has %d rows, want %d:\n%s", len(rows), len(want), out.String())
	}
	if t.Failed() {
		t.Logf("output:\n%s", out.String())
	}
}
