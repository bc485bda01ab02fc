package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/runnel/runnel/benchmarks/internal/e2e"
)

// A run is one benchmark in one process: its full name (without the
// -GOMAXPROCS suffix) and its -benchtime.
type run struct {
	name      string
	benchtime string
}

// A group is the runs done back to back in each round, in an order that
// changes from round to round (see order), so that the runs compared with each other
// share the machine's weather. An optIn group runs only when -run selects
// it, not in the default plan.
type group struct {
	runs  []run
	optIn bool
}

// A row is one line of the table: a metric of run a against run b of the
// same group and round (the ratio a/b, then the median over rounds), or of
// a alone against an absolute goal when b is "".
type row struct {
	label       string
	a, b        string // run names
	peer        string // b's short name in the table
	metric      string // a benchmark unit: records/s, p99-us, …
	lowerBetter bool   // for the goal: a/b ≤ goal instead of ≥
	goal        float64
	absolute    bool // compare a's median with goal, not a/b
}

// plan is what one invocation runs and reports.
type plan struct {
	groups []group
	rows   []row
}

// scale sets the number of records per run: 1 for the recorded runs, less
// for a quick look.
type scale float64

func (s scale) n(base int) string { return fmt.Sprintf("%dx", max(int(float64(base)*float64(s)), 100)) }

// records is the number of records of a produce or consume run. Runs
// with fsync write 20 MB (100 B) and 100 MB (1 KiB): a few dozen
// batches, so that the first fsyncs and the last one (waited for by
// Flush) do not decide the result; kfake DataDir takes up to a second
// there.
func records(c e2e.Case) int {
	switch {
	case c.Sync && c.Size >= 1024:
		return 100_000
	case c.Sync:
		return 200_000
	case c.Size >= 1024:
		return 100_000
	default:
		return 200_000
	}
}

func name(bench, sys string, c e2e.Case) string {
	return "Benchmark" + bench + "/sys=" + sys + "/" + c.Name()
}

// label is a row's workload column.
func label(what string, c e2e.Case) string {
	sync := ""
	if c.Store == e2e.Disk {
		sync = " fsync=never"
		if c.Sync {
			sync = " fsync=batch"
		}
	}
	if c.Codec != "" {
		sync += " " + c.Codec
	}
	if c.Level != 0 {
		sync += fmt.Sprintf(" level=%d", c.Level)
	}
	return fmt.Sprintf("%s %s %dB p=%d acks=%s%s", what, c.Store, c.Size, c.Partitions, c.Acks, sync)
}

// planCodecs are the codecs of the compressed groups: gzip, several times
// slower than the others for both systems, is left to
// BenchmarkProduceCompressed/…/codec=gzip run by name.
var planCodecs = []string{"none", "snappy", "lz4", "zstd"}

// makePlan builds the comparison of the issue: produce and consume over
// the matrix, latency, group commit and RSS; and, opt-in (-run
// Compressed), produce and consume with each codec of planCodecs against
// kfake.
func makePlan(s scale) plan {
	var p plan
	for _, c := range e2e.Matrix() {
		if c.Store == e2e.Mem && c.Sync {
			continue // no fsync in memory for the peers; runnel's is in benchmarks/
		}
		bt := s.n(records(c))
		// Produce: runnel against kfake, JetStream and the raw write of the
		// same bytes (to a file of the same store: a vfs.NewMem file in
		// memory). JetStream's file store with SyncAlways fsyncs every
		// message (about 5,000 records/s here), so it sits out fsync=batch.
		g := group{runs: []run{{name("Produce", "runnel", c), bt}, {name("Produce", "kfake", c), bt}}}
		if !c.Sync {
			g.runs = append(g.runs, run{name("Produce", "jetstream", c), bt})
		}
		g.runs = append(g.runs, run{name("Produce", "raw", c), bt})
		p.groups = append(p.groups, g)
		r := row{label: label("produce", c), a: g.runs[0].name, metric: "records/s"}
		if c.Store == e2e.Mem {
			raw := row{label: label("raw write", c), a: name("Produce", "raw", c), metric: "records/s"}
			p.rows = append(p.rows,
				with(r, g.runs[1].name, "kfake", 3),
				with(r, g.runs[2].name, "jetstream", 10),
				with(r, name("Produce", "raw", c), "raw write", 0),
				// The floor under the two goals: how far the write of the
				// bytes alone, with no producer at all, is from the peers.
				with(raw, g.runs[1].name, "kfake", 0),
				with(raw, g.runs[2].name, "jetstream", 0))
		} else {
			p.rows = append(p.rows, with(r, name("Produce", "raw", c), "raw write", 0.9), with(r, g.runs[1].name, "kfake DataDir", 1))
			if !c.Sync {
				p.rows = append(p.rows, with(r, g.runs[2].name, "jetstream file", 0))
			}
		}

		// Consume: fsync does not matter to reading; the goal is
		// for memory.
		if c.Sync {
			continue
		}
		g = group{runs: []run{{name("Consume", "runnel", c), bt}, {name("Consume", "kfake", c), bt}, {name("Consume", "jetstream", c), bt}}}
		p.groups = append(p.groups, g)
		r = row{label: label("consume", c), a: g.runs[0].name, metric: "records/s"}
		goal := 2.0
		if c.Store == e2e.Disk {
			goal = 0
		}
		p.rows = append(p.rows, with(r, g.runs[1].name, "kfake", goal), with(r, g.runs[2].name, "jetstream", 0))
	}

	// Latency at e2e.LatencyRate (1000 records/s), linger 0.
	for _, c := range []e2e.Case{
		{Store: e2e.Mem, Size: 100, Partitions: 1, Acks: e2e.AcksAll},
		{Store: e2e.Mem, Size: 1024, Partitions: 8, Acks: e2e.AcksLeader},
		{Store: e2e.Disk, Size: 100, Partitions: 1, Acks: e2e.AcksAll},
		{Store: e2e.Disk, Size: 100, Partitions: 1, Acks: e2e.AcksAll, Sync: true},
	} {
		bt := s.n(2000)
		g := group{runs: []run{{name("Latency", "runnel", c), bt}, {name("Latency", "kfake", c), bt}}}
		if !c.Sync {
			g.runs = append(g.runs, run{name("Latency", "jetstream", c), bt})
		}
		if c.Store == e2e.Disk {
			// The floor: the write (and fsync) alone of each record, those
			// queued behind a stall written and synced together.
			g.runs = append(g.runs, run{name("Latency", "raw", c), bt})
		}
		p.groups = append(p.groups, g)
		for _, m := range []struct {
			unit string
			goal float64
		}{{"p50-us", 0}, {"p99-us", 0.25}} {
			r := row{label: label("latency "+strings.TrimSuffix(m.unit, "-us"), c), a: g.runs[0].name, metric: m.unit, lowerBetter: true}
			p.rows = append(p.rows, with(r, g.runs[1].name, "kfake", m.goal))
			if !c.Sync {
				p.rows = append(p.rows, with(r, g.runs[2].name, "jetstream", 0))
			}
			if c.Store == e2e.Disk {
				p.rows = append(p.rows, with(r, name("Latency", "raw", c), "raw write alone", 0))
			}
		}
	}

	// Group commit: e2e.GroupCommitProducers producers with fsync per batch
	// against without. 1M records a run (0.2 s or so, 100 MB): at 200k a
	// run lasted 30-70 ms, and the start of the run (eight producers'
	// first batches, the first fsyncs) and the final Flush's fsync weighed
	// as much as the steady state the goal is about (benchmarks/README.md,
	// "Group commit run length"). Runnel runs alone here: no peer's run
	// time limits the length.
	for _, parts := range []int{1, 8} {
		on := e2e.Case{Store: e2e.Disk, Size: 100, Partitions: parts, Acks: e2e.AcksAll, Sync: true}
		off := on
		off.Sync = false
		bt := s.n(1_000_000)
		g := group{runs: []run{{name("GroupCommit", "runnel", on), bt}, {name("GroupCommit", "runnel", off), bt}}}
		p.groups = append(p.groups, g)
		p.rows = append(p.rows, row{
			label: fmt.Sprintf("group commit: %d producers os 100B p=%d, fsync=batch vs never", e2e.GroupCommitProducers, parts),
			a:     g.runs[0].name, b: g.runs[1].name, peer: "runnel fsync=never", metric: "records/s", goal: 0.7,
		})
	}

	// Peak RSS holding e2e.RSSPayload (100 MiB) of values in memory.
	for _, size := range e2e.RSSSizes() {
		rss := func(sys string) string { return fmt.Sprintf("BenchmarkRSS/sys=%s/size=%d", sys, size) }
		g := group{runs: []run{{rss("runnel"), "1x"}, {rss("kfake"), "1x"}, {rss("jetstream"), "1x"}}}
		p.groups = append(p.groups, g)
		lbl := fmt.Sprintf("peak RSS / %d MiB payload, %dB records", e2e.RSSPayload>>20, size)
		p.rows = append(p.rows,
			row{label: lbl, a: rss("runnel"), metric: "RSS/payload", lowerBetter: true, goal: 1.5, absolute: true},
			row{label: lbl, a: rss("runnel"), b: rss("kfake"), peer: "kfake", metric: "RSS/payload", lowerBetter: true},
			row{label: lbl, a: rss("runnel"), b: rss("jetstream"), peer: "jetstream", metric: "RSS/payload", lowerBetter: true})
	}

	// Compressed, opt-in: runnel against kfake with the same codec, the
	// same text values (e2e.TextValues) and the throughput settings, in
	// memory; JetStream has no per-message codec. The produce groups also
	// compare log/value, the compression each achieved. No goal for
	// produce (the 3× is for uncompressed records); consume keeps
	// the 2×.
	for _, c := range e2e.CompressedMatrix() {
		if !slices.Contains(planCodecs, c.Codec) {
			continue
		}
		bt := s.n(records(c))
		for _, w := range []struct {
			bench, what string
			goal        float64
		}{{"ProduceCompressed", "produce", 0}, {"ConsumeCompressed", "consume", 2}} {
			g := group{runs: []run{{name(w.bench, "runnel", c), bt}, {name(w.bench, "kfake", c), bt}}, optIn: true}
			p.groups = append(p.groups, g)
			r := row{label: label(w.what, c), a: g.runs[0].name, metric: "records/s"}
			p.rows = append(p.rows, with(r, g.runs[1].name, "kfake", w.goal))
			if w.what == "produce" {
				r.metric, r.lowerBetter = "log/value", true
				p.rows = append(p.rows, with(r, g.runs[1].name, "kfake", 0))
			}
		}
	}
	return p
}

func with(r row, b, peer string, goal float64) row {
	r.b, r.peer, r.goal = b, peer, goal
	return r
}
