// Command compare runs the benchmarks of the peers module interleaved —
// in every round each group of runs (runnel and its peers on one case)
// back to back, one process per run, in an order that changes from round
// to round (rotated every two rounds, reversed in every other one) — and
// prints one table: workload, runnel, peer, the median of the per-round
// ratios runnel/peer (with their range), the goal, and whether it is
// met. Ratios are only ever taken between runs of the same
// round, never between absolute numbers from different minutes.
//
// Run it from the peers module's directory (run.sh does):
//
//	go run ./cmd/compare [-rounds 6] [-scale 1] [-run regexp] [-sys runnel,raw] [-out out]
//
// -run keeps the groups with a benchmark whose name matches; without it
// the default plan runs, which leaves out the opt-in groups: the
// compressed ones (BenchmarkProduceCompressed, BenchmarkConsumeCompressed:
// runnel against kfake with codec=none|snappy|lz4|zstd), which
// -run Compressed selects.
//
// -sys keeps only the runs of the systems named (the sys=… element of the
// benchmark names), and the rows between them: -sys runnel,raw is runnel
// alone, against the raw write and against itself (group commit, RSS),
// which is what benchmarks/run.sh e2e runs.
//
// It writes out/peers.test (the test binary), out/peers.txt (every
// benchmark line, for benchstat) and out/table.md (the table, also
// printed).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

func main() {
	rounds := flag.Int("rounds", 6, "rounds (every group runs once per round)")
	sc := flag.Float64("scale", 1, "multiply the number of records of every run (0.1 for a quick look)")
	only := flag.String("run", "", "run only the groups with a benchmark whose name matches this regexp (the compressed groups only so: -run Compressed)")
	sys := flag.String("sys", "", "run only the runs of these systems (comma-separated: runnel, kfake, jetstream, raw) and the rows among them")
	out := flag.String("out", "out", "directory for the outputs")
	bin := flag.String("bin", "", "a test binary of this module (default: build out/peers.test)")
	flag.Parse()
	var syss []string
	if *sys != "" {
		syss = strings.Split(*sys, ",")
	}
	if err := compare(*rounds, scale(*sc), *only, syss, *out, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func compare(rounds int, s scale, only string, systems []string, out, bin string) error {
	if rounds < 1 || s <= 0 {
		return fmt.Errorf("-rounds %d, -scale %v: both must be positive", rounds, s)
	}
	p := makePlan(s)
	if systems != nil {
		var err error
		if p, err = p.withSystems(systems); err != nil {
			return err
		}
	}
	var re *regexp.Regexp
	if only != "" {
		var err error
		if re, err = regexp.Compile(only); err != nil {
			return err
		}
	}
	p = p.filter(re)
	if len(p.groups) == 0 {
		return fmt.Errorf("-run %q matches no benchmark", only)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if bin == "" {
		bin = filepath.Join(out, "peers.test")
		build := exec.Command("go", "test", "-c", "-o", bin, ".")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building the test binary: %w", err)
		}
	}
	raw, err := os.Create(filepath.Join(out, "peers.txt"))
	if err != nil {
		return err
	}
	defer raw.Close()

	res := results{}
	failed := 0
	start := time.Now()
	for round := range rounds {
		for gi, g := range p.groups {
			fmt.Fprintf(os.Stderr, "round %d/%d, group %d/%d (%s)\n", round+1, rounds, gi+1, len(p.groups), time.Since(start).Round(time.Second))
			for _, k := range order(round, len(g.runs)) {
				r := g.runs[k]
				m, err := runOne(bin, r, raw)
				if err != nil {
					fmt.Fprintf(os.Stderr, "  %s: %v\n", r.name, err)
					failed++
					continue
				}
				res.add(r.name, round, m)
			}
		}
	}
	fmt.Fprintf(os.Stderr, "done in %s\n", time.Since(start).Round(time.Second))

	table, err := os.Create(filepath.Join(out, "table.md"))
	if err != nil {
		return err
	}
	w := io.MultiWriter(os.Stdout, table)
	err = writeTable(w, p.rows, res, rounds)
	if failed > 0 {
		// A run that fails every round (a name that matches no benchmark,
		// say) would otherwise only leave its rows empty.
		err = errors.Join(err, fmt.Errorf("%d runs failed (see above); the table has the others", failed))
	}
	return errors.Join(err, table.Close(), raw.Close())
}

// order returns the order in which the n runs of a group run in a round:
// a rotation of 0, 1, …, n-1 by round/2, reversed in odd rounds. Every two
// rounds, each run goes before each other run once and after it once, so
// that a run's effect on the one after it (a disk still writing, memory
// just freed) favours neither of two runs compared; a rotation alone puts
// run 0 (runnel) before run 1 (kfake) in all rounds but one of every n.
func order(round, n int) []int {
	o := make([]int, n)
	for k := range o {
		o[k] = (round/2 + k) % n
	}
	if round%2 == 1 {
		slices.Reverse(o)
	}
	return o
}

// filter keeps the groups with a run matching re, and the rows whose runs
// are all kept. A nil re keeps the default plan: every group but the
// opt-in ones.
func (p plan) filter(re *regexp.Regexp) plan {
	var q plan
	kept := map[string]bool{}
	for _, g := range p.groups {
		for _, r := range g.runs {
			if re == nil && !g.optIn || re != nil && re.MatchString(r.name) {
				q.groups = append(q.groups, g)
				for _, r := range g.runs {
					kept[r.name] = true
				}
				break
			}
		}
	}
	q.rows = p.rowsOf(kept)
	return q
}

// withSystems keeps the runs of the named systems, the groups left with a
// run, and the rows whose runs are all kept. A name that no run has is an
// error.
func (p plan) withSystems(names []string) (plan, error) {
	var q plan
	kept := map[string]bool{}
	found := map[string]bool{}
	for _, g := range p.groups {
		var runs []run
		for _, r := range g.runs {
			if sys := systemOf(r.name); slices.Contains(names, sys) {
				runs = append(runs, r)
				kept[r.name], found[sys] = true, true
			}
		}
		if len(runs) > 0 {
			q.groups = append(q.groups, group{runs: runs, optIn: g.optIn})
		}
	}
	for _, n := range names {
		if !found[n] {
			return plan{}, fmt.Errorf("-sys: no run of a system %q", n)
		}
	}
	q.rows = p.rowsOf(kept)
	return q, nil
}

// rowsOf returns the rows whose runs are all in kept.
func (p plan) rowsOf(kept map[string]bool) []row {
	var rows []row
	for _, r := range p.rows {
		if kept[r.a] && (r.b == "" || kept[r.b]) {
			rows = append(rows, r)
		}
	}
	return rows
}

// systemOf returns the system of a run: the sys=… element of its name.
func systemOf(name string) string {
	for e := range strings.SplitSeq(name, "/") {
		if sys, ok := strings.CutPrefix(e, "sys="); ok {
			return sys
		}
	}
	return ""
}

// pattern is the -test.bench regexp that selects the benchmark name, and
// the benchmarks named deeper below it: -test.bench cannot say "no more
// elements", so a run of BenchmarkProduceCompressed/…/codec=zstd also
// runs …/codec=zstd/level=1, after it (runOne keeps only its own line).
func pattern(name string) string {
	parts := strings.Split(name, "/")
	for i, e := range parts {
		parts[i] = "^" + regexp.QuoteMeta(e) + "$"
	}
	return strings.Join(parts, "/")
}

// runOne runs one benchmark in a new process and returns its metrics. Its
// benchmark line is appended to raw (not those of benchmarks named below
// it, which pattern also selects: each has its own run).
func runOne(bin string, r run, raw io.Writer) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-test.run=^$", "-test.bench="+pattern(r.name),
		"-test.benchtime="+r.benchtime, "-test.count=1")
	outb, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, outb)
	}
	var found map[string]float64
	for line := range strings.Lines(string(outb)) {
		name, m, ok := parseLine(line)
		if !ok || name != r.name {
			continue
		}
		if _, err := io.WriteString(raw, line); err != nil {
			return nil, err
		}
		found = m
	}
	if found == nil {
		return nil, fmt.Errorf("no result line (skipped?):\n%s", outb)
	}
	return found, nil
}

// parseLine parses a benchmark result line: its name without the
// -GOMAXPROCS suffix and its metrics by unit.
func parseLine(line string) (string, map[string]float64, bool) {
	f := strings.Fields(line)
	if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
		return "", nil, false
	}
	name := f[0]
	if i := strings.LastIndexByte(name, '-'); i > 0 && !strings.ContainsAny(name[i+1:], "/=") {
		name = name[:i]
	}
	m := map[string]float64{}
	for i := 2; i+1 < len(f); i += 2 {
		var v float64
		if _, err := fmt.Sscan(f[i], &v); err != nil {
			return "", nil, false
		}
		m[f[i+1]] = v
	}
	return name, m, true
}

// results holds each run's metrics by round (nil: the run failed).
type results map[string][]map[string]float64

func (res results) add(name string, round int, m map[string]float64) {
	s := res[name]
	for len(s) <= round {
		s = append(s, nil)
	}
	s[round] = m
	res[name] = s
}

// metric returns name's metric in round, if that run succeeded.
func (res results) metric(name string, round int, unit string) (float64, bool) {
	s := res[name]
	if round >= len(s) || s[round] == nil {
		return 0, false
	}
	v, ok := s[round][unit]
	return v, ok
}
