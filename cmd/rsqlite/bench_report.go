package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// baseWorkload is the plain-SQLite row a workload is compared with: plain
// SQLite has one kind of read.
func baseWorkload(wl string) string {
	if strings.HasPrefix(wl, "W3") {
		return "W3"
	}
	return wl
}

func (b *bencher) find(wl, target string, conc int) *result {
	for _, r := range b.results {
		if r.Workload == wl && r.Target == target && r.Conc == conc {
			return r
		}
	}
	return nil
}

func (b *bencher) computeRatios() {
	for _, r := range b.results {
		base := b.find(baseWorkload(r.Workload), "plain-full", r.Conc)
		if base != nil && base.Rate > 0 {
			r.Ratio = r.Rate / base.Rate
		}
	}
}

func (b *bencher) printTable(out io.Writer) {
	fmt.Fprintf(out, "rsqlite bench: %d x %s, Linux %s, %s; %v per measurement\n",
		b.machine.CPUs, b.machine.Model, b.machine.Kernel, b.machine.Go, b.o.duration)
	fmt.Fprintf(out, "fdatasync floor (4 KiB write + fdatasync): p50 %.3f ms, p99 %.3f ms (%d samples)\n", ms(b.floor.p50), ms(b.floor.p99), b.floor.n)
	if b.o.repeat > 1 {
		fmt.Fprintf(out, "W1-W3 ran %d times, targets alternating; each row is the run with the median rate (every run's rate in the note)\n", b.o.repeat)
	}
	fmt.Fprintf(out, "plain: go-sqlite3 WAL, writes through %s; rsqlite-3: 3 nodes on loopback in this process, clients on the %s's node\n",
		map[string]string{"single": "one connection", "shared": "c connections"}[b.o.plainPool], b.o.via)
	if len(b.results) > 0 {
		fmt.Fprintln(out, "cpu_us/op: CPU time of the whole process (all three nodes for rsqlite-3) per call; a W2/W2m call is 100 rows")
		fmt.Fprintln(out)
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "workload\ttarget\tconc\trate\tunit\tp50_ms\tp99_ms\tcpu_us/op\terrors\tvs_full\tnote")
		for _, r := range b.results {
			p50, p99 := "-", "-"
			if r.Unit == "ops/s" {
				p50, p99 = fmt.Sprintf("%.3f", r.P50ms), fmt.Sprintf("%.3f", r.P99ms)
			}
			ratio := "-"
			if r.Ratio > 0 {
				ratio = fmt.Sprintf("%.2fx", r.Ratio)
			}
			note := r.Note
			if r.Errors > 0 {
				note = strings.TrimPrefix(note+"; first error: "+r.FirstError, "; ")
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%s\t%s\t%s\t%.0f\t%d\t%s\t%s\n",
				r.Workload, r.Target, r.Conc, r.Rate, r.Unit, p50, p99, r.CPUus, r.Errors, ratio, note)
		}
		tw.Flush()
	}
	if w := b.w4; w != nil {
		fmt.Fprintf(out, "\nW4 (%d databases on one 3-node cluster, all nodes in this process):\n", w.DBs)
		fmt.Fprintf(out, "  created %d in %.1f s through node1, %d at a time (p50 %.0f ms, p99 %.0f ms per database), %d errors\n",
			w.Created, w.CreateSeconds, w.Concurrency, w.CreateP50ms, w.CreateP99ms, w.CreateErrors)
		if w.FirstError != "" {
			fmt.Fprintf(out, "  first error: %s\n", w.FirstError)
		}
		fmt.Fprintf(out, "  replicas started on all nodes: %v (%.1f s)\n", w.ReplicasReady, w.ReplicaSeconds)
		if w.Hibernate > 0 {
			fmt.Fprintf(out, "  hibernate=%.0fs: %d databases asleep on every node %.1f s after the replicas started; a write to a sleeping one took p50 %.0f ms, max %.0f ms\n",
				w.Hibernate, w.Asleep, w.SleepSeconds, w.WakeP50ms, w.WakeMaxMs)
		} else {
			fmt.Fprintf(out, "  hibernate off: every raft group keeps running\n")
		}
		fmt.Fprintf(out, "  idle CPU over %.0f s: %.1f%% of a core for the process = %.1f%% per node (process/3); last 5 s: %.1f%% per node\n",
			w.IdleSeconds, w.CPUProcessPct, w.CPUPerNodePct, w.CPULastPct/3)
		fmt.Fprintf(out, "  RSS: %.0f MiB for the process = %.0f MiB per node (process/3; one Go runtime shared by the three); Go heap in use %.0f MiB, Go runtime total %.0f MiB\n",
			w.RSSProcessMiB, w.RSSPerNodeMiB, w.GoHeapMiB, w.GoSysMiB)
		fmt.Fprintf(out, "  RSS after a garbage collection that returns free memory to the OS: %.0f MiB per node\n", w.RSSAfterGCPerNodeMiB)
	}
	if w := b.w5; w != nil {
		fmt.Fprintf(out, "\nW5 (leader stopped under W1 at c=%d, writing through %s; stopped %s, new leader %s):\n",
			w.Writers, w.Via, w.Stopped, w.NewLeader)
		rec := "never (30 s)"
		if w.Recovered {
			rec = fmt.Sprintf("%.0f ms", w.RecoveryMs)
		}
		fmt.Fprintf(out, "  writes succeeded again after %s (closing the leader took %.0f ms; slowest call %.0f ms)\n", rec, w.CloseMs, w.MaxCallMs)
		fmt.Fprintf(out, "  errors surfaced: %d; acknowledged %d, present %d, lost %d, duplicated %d, present but not acknowledged %d\n",
			w.Errors, w.Acked, w.Present, w.Lost, w.Duplicated, w.Unconfirmed)
		if w.FirstError != "" {
			fmt.Fprintf(out, "  first error: %s\n", w.FirstError)
		}
	}
	if gs := b.goals(); len(gs) > 0 {
		fmt.Fprintln(out, "\nTargets (rsqlite-3 against plain-full in this run):")
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		for _, g := range gs {
			verdict := "MISS"
			if g.Met {
				verdict = "met"
			}
			fmt.Fprintf(tw, "  %s\t%s\t(goal %s)\t%s\n", g.Name, g.Measured, g.Goal, verdict)
		}
		tw.Flush()
	}
	for _, f := range b.failures {
		fmt.Fprintf(out, "\nFAILED: %s\n", f)
	}
}

// goal is one of issue 5's targets with what this run measured.
type goal struct {
	Name     string `json:"name"`
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

func (b *bencher) goals() []goal {
	var gs []goal
	ratio := func(name, wl string, conc int, want float64) {
		r := b.find(wl, "rsqlite-3", conc)
		if r == nil {
			return
		}
		g := goal{Name: name, Goal: fmt.Sprintf(">= %.1fx", want)}
		switch {
		case r.Ratio == 0:
			g.Measured = "no plain-full baseline"
		default:
			g.Measured = fmt.Sprintf("%.2fx", r.Ratio)
			g.Met = r.Ratio >= want && r.Errors == 0
		}
		gs = append(gs, g)
	}
	ratio("W1 c=64", "W1", 64, 1.5)
	if r := b.find("W1", "rsqlite-3", 1); r != nil && b.floor.p50 > 0 {
		x := r.P50ms / ms(b.floor.p50)
		gs = append(gs, goal{Name: "W1 c=1 p50 / fdatasync p50", Goal: "<= 3.0x",
			Measured: fmt.Sprintf("%.2fx (%.3f / %.3f ms)", x, r.P50ms, ms(b.floor.p50)), Met: x <= 3})
	}
	ratio("W2 c=16", "W2", 16, 1.0)
	ratio("W2m c=16 (multi-row INSERT)", "W2m", 16, 1.0)
	ratio("W3 linearizable c=16", "W3-lin", 16, 0.5)
	ratio("W3 stale c=16", "W3-stale", 16, 0.9)
	if w := b.w4; w != nil {
		gs = append(gs,
			goal{Name: fmt.Sprintf("W4 create %d databases", w.DBs), Goal: "< 60 s (for 1,000)",
				Measured: fmt.Sprintf("%.1f s, %d errors", w.CreateSeconds, w.CreateErrors), Met: w.CreateSeconds < 60 && w.Created == w.DBs},
			goal{Name: "W4 idle CPU per node", Goal: "< 5% of a core",
				Measured: fmt.Sprintf("%.1f%%", w.CPUPerNodePct), Met: w.CPUPerNodePct < 5},
			goal{Name: "W4 RSS per node", Goal: "< 1024 MiB",
				Measured: fmt.Sprintf("%.0f MiB", w.RSSPerNodeMiB), Met: w.RSSPerNodeMiB < 1024})
	}
	if w := b.w5; w != nil {
		gs = append(gs,
			goal{Name: "W5 writes resume", Goal: "< 2 s", Measured: fmt.Sprintf("%.0f ms", w.RecoveryMs), Met: w.Recovered && w.RecoveryMs < 2000},
			goal{Name: "W5 errors / lost / duplicated", Goal: "0 / 0 / 0",
				Measured: fmt.Sprintf("%d / %d / %d", w.Errors, w.Lost, w.Duplicated), Met: w.Errors == 0 && w.Lost == 0 && w.Duplicated == 0})
	}
	return gs
}
