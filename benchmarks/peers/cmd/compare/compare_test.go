package main

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestParseLine(t *testing.T) {
	name, m, ok := parseLine("BenchmarkProduce/sys=kfake/store=mem/size=100/parts=1/acks=all/sync=never-2   \t  100000\t       732.9 ns/op\t 136.45 MB/s\t        84.07 peak-RSS-MB\t   1364546 records/s\t     885 B/op\t       1 allocs/op\n")
	if !ok || name != "BenchmarkProduce/sys=kfake/store=mem/size=100/parts=1/acks=all/sync=never" {
		t.Fatalf("%q %v", name, ok)
	}
	if m["records/s"] != 1364546 || m["ns/op"] != 732.9 || m["allocs/op"] != 1 {
		t.Fatalf("%v", m)
	}
	for _, bad := range []string{"PASS", "goos: linux", "BenchmarkX-2 10 abc ns/op", "BenchmarkX-2 10 5"} {
		if _, _, ok := parseLine(bad); ok {
			t.Errorf("parsed %q", bad)
		}
	}
}

func TestPattern(t *testing.T) {
	name := "BenchmarkRSS/sys=runnel/size=100"
	re := regexp.MustCompile(strings.ReplaceAll(pattern(name), "$/^", "$|^")) // each element alone
	for _, e := range strings.Split(name, "/") {
		if !re.MatchString(e) {
			t.Errorf("%q does not match %s", e, pattern(name))
		}
	}
	if got, want := pattern("BenchmarkA/x=1.5"), `^BenchmarkA$/^x=1\.5$`; got != want {
		t.Errorf("pattern = %s, want %s", got, want)
	}
}

// TestTable checks the pairing by round and the verdicts on made-up
// results.
func TestTable(t *testing.T) {
	res := results{}
	a, b := "BenchmarkProduce/sys=runnel/x", "BenchmarkProduce/sys=kfake/x"
	for round, v := range [][2]float64{{300, 100}, {200, 100}, {900, 100}, {400, 200}} {
		res.add(a, round, map[string]float64{"records/s": v[0], "p99-us": v[1]})
		res.add(b, round, map[string]float64{"records/s": v[1], "p99-us": v[0]})
	}
	res.add(b, 5, map[string]float64{"records/s": 1}) // round 5: no runnel result, not paired
	for round := range 4 {
		res[a][round]["log/value"], res[b][round]["log/value"] = 0.33, 0.3
	}
	rows := []row{
		{label: "produce", a: a, b: b, peer: "kfake", metric: "records/s", goal: 3},
		{label: "log", a: a, b: b, peer: "kfake", metric: "log/value", lowerBetter: true},
		{label: "produce, goal 2", a: a, b: b, peer: "kfake", metric: "records/s", goal: 2},
		{label: "latency", a: a, b: b, peer: "kfake", metric: "p99-us", lowerBetter: true, goal: 0.25},
		{label: "rss", a: a, metric: "records/s", lowerBetter: true, goal: 1.5, absolute: true},
	}
	_, _, cmp := evaluate(rows[0], res, 6)
	// ratios 3, 2, 9, 2: median 2.5
	if cmp.n != 4 || cmp.med != 2.5 || cmp.min != 2 || cmp.max != 9 {
		t.Fatalf("%+v", cmp)
	}
	var out strings.Builder
	if err := writeTable(&out, rows, res, 6); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| produce | records/s | 350/s | kfake | 100/s | 2.50 (2.00–9.00, 4) | ≥ 3 | **no** |",
		"| latency | p99-us | 100µs | kfake | 350µs | 0.42 (0.11–0.50, 4) | ≤ 0.25 | **no** |",
		"| produce, goal 2 | records/s | 350/s | kfake | 100/s | 2.50 (2.00–9.00, 4) | ≥ 2 | yes |",
		"| rss | records/s | 350/s | (absolute) | – | 350.00 (200.00–900.00, 4) | ≤ 1.5x | **no** |",
		"| log | log/value | 0.330 | kfake | 0.300 | 1.10 (1.10–1.10, 4) |  |  |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q in\n%s", want, out.String())
		}
	}
}

// TestPlan checks that every row names runs of the plan, in one group.
func TestPlan(t *testing.T) {
	p := makePlan(1)
	group := map[string]int{}
	for i, g := range p.groups {
		for _, r := range g.runs {
			if _, dup := group[r.name]; dup {
				t.Errorf("%s in two groups", r.name)
			}
			group[r.name] = i
		}
	}
	for _, r := range p.rows {
		ga, ok := group[r.a]
		if !ok {
			t.Errorf("row %q: %s is not run", r.label, r.a)
		}
		if r.b == "" {
			continue
		}
		if gb, ok := group[r.b]; !ok || gb != ga {
			t.Errorf("row %q: %s is not run with %s", r.label, r.b, r.a)
		}
	}
	if q := p.filter(regexp.MustCompile(`^BenchmarkRSS/`)); len(q.groups) != 2 || len(q.rows) != 6 {
		t.Errorf("filter RSS: %d groups, %d rows", len(q.groups), len(q.rows))
	}
}

// TestPlanDefault: without -run the plan is the comparison, as
// before the compressed groups came: 48 groups, none of them compressed.
func TestPlanDefault(t *testing.T) {
	p := makePlan(1).filter(nil)
	if len(p.groups) != 48 {
		t.Errorf("%d groups, want 48", len(p.groups))
	}
	for _, g := range p.groups {
		for _, r := range g.runs {
			if strings.Contains(r.name, "Compressed") || strings.Contains(r.name, "codec=") {
				t.Errorf("%s in the default plan", r.name)
			}
		}
	}
	for _, r := range p.rows {
		if r.metric == "log/value" {
			t.Errorf("row %q in the default plan", r.label)
		}
	}
}

// TestPlanCompressed: -run Compressed keeps the compressed groups alone:
// for each case of the matrix in memory (2 sizes, 2 partition counts, 2
// acks) and each codec but gzip (zstd also at level 1), a produce group
// and a consume group of runnel and kfake with the same case and codec, each with a records/s
// row against kfake (consume with the goal, ≥ 2), produce with a
// log/value row as well; JetStream runs in none.
func TestPlanCompressed(t *testing.T) {
	p := makePlan(1).filter(regexp.MustCompile("Compressed"))
	if len(p.groups) != 80 {
		t.Errorf("%d groups, want 80", len(p.groups))
	}
	codecs := map[string]int{}
	for _, g := range p.groups {
		if !g.optIn || len(g.runs) != 2 || systemOf(g.runs[0].name) != "runnel" || systemOf(g.runs[1].name) != "kfake" {
			t.Errorf("group %v", g)
			continue
		}
		if caseOf(g.runs[0].name) != caseOf(g.runs[1].name) {
			t.Errorf("group of %s and %s", g.runs[0].name, g.runs[1].name)
		}
		_, codec, _ := strings.Cut(g.runs[0].name, "/codec=")
		codecs[codec]++
	}
	if want := map[string]int{"none": 16, "snappy": 16, "lz4": 16, "zstd": 16, "zstd/level=1": 16}; !maps.Equal(codecs, want) {
		t.Errorf("groups by codec: %v, want %v", codecs, want)
	}
	rows := map[string]int{}
	for _, r := range p.rows {
		if r.peer != "kfake" {
			t.Errorf("row %q against %q", r.label, r.peer)
		}
		k := benchOf(r.a) + " " + r.metric
		rows[k]++
		if want := map[string]float64{"BenchmarkConsumeCompressed records/s": 2}[k]; r.goal != want {
			t.Errorf("row %q (%s): goal %v, want %v", r.label, r.metric, r.goal, want)
		}
	}
	want := map[string]int{"BenchmarkProduceCompressed records/s": 40, "BenchmarkProduceCompressed log/value": 40, "BenchmarkConsumeCompressed records/s": 40}
	if !maps.Equal(rows, want) {
		t.Errorf("rows: %v, want %v", rows, want)
	}
	// A -run over both selects among all the groups.
	if q := makePlan(1).filter(regexp.MustCompile(`Compressed/.*size=100/parts=1/acks=all/.*codec=zstd$|^BenchmarkRSS/`)); len(q.groups) != 4 || len(q.rows) != 9 {
		t.Errorf("a -run over both: %d groups, %d rows; want 4 and 9", len(q.groups), len(q.rows))
	}
}

// TestPlanSystems: -sys runnel,raw keeps runnel's and the raw write's runs
// and exactly the rows among them: produce against the raw write (16
// cases on disk, 8 in memory), latency on disk against the write alone
// (2 cases, p50 and p99), group commit (2) and the absolute RSS rows (2).
func TestPlanSystems(t *testing.T) {
	p, err := makePlan(1).withSystems([]string{"runnel", "raw"})
	if err != nil {
		t.Fatal(err)
	}
	runs := map[string]bool{}
	for _, g := range p.groups {
		if len(g.runs) == 0 {
			t.Errorf("an empty group")
		}
		for _, r := range g.runs {
			if s := systemOf(r.name); s != "runnel" && s != "raw" {
				t.Errorf("%s is run", r.name)
			}
			runs[r.name] = true
		}
	}
	peers := map[string]int{}
	for _, r := range p.rows {
		if !runs[r.a] || (r.b != "" && !runs[r.b]) {
			t.Errorf("row %q: %s or %s is not run", r.label, r.a, r.b)
		}
		peers[r.peer]++
	}
	if want := map[string]int{"raw write": 24, "raw write alone": 4, "runnel fsync=never": 2, "": 2}; !maps.Equal(peers, want) {
		t.Errorf("rows by peer: %v, want %v", peers, want)
	}
	if _, err := makePlan(1).withSystems([]string{"runnel", "rwa"}); err == nil {
		t.Error("-sys with an unknown system: no error")
	}
}

// TestPlanGoalDirection: a row's goal points the way its metric improves:
// latencies and RSS are better lower (a/b ≤ goal), rates higher; and every
// rate row compares runs of one benchmark and one case, so that its ratio
// is of the same work.
func TestPlanGoalDirection(t *testing.T) {
	for _, r := range makePlan(1).rows {
		switch r.metric {
		case "p50-us", "p99-us", "RSS/payload", "log/value":
			if !r.lowerBetter {
				t.Errorf("row %q (%s): not lowerBetter", r.label, r.metric)
			}
		case "records/s":
			if r.lowerBetter {
				t.Errorf("row %q (%s): lowerBetter", r.label, r.metric)
			}
		default:
			t.Errorf("row %q: metric %q", r.label, r.metric)
		}
		if r.b == "" {
			continue
		}
		// The case is what follows sys=…; group commit compares sync=always
		// with sync=never by design.
		ca, cb := caseOf(r.a), caseOf(r.b)
		if strings.HasPrefix(r.a, "BenchmarkGroupCommit/") {
			ca = strings.Replace(ca, "sync=always", "sync=never", 1)
		}
		if ca != cb || benchOf(r.a) != benchOf(r.b) {
			t.Errorf("row %q: %s against %s", r.label, r.a, r.b)
		}
	}
}

func caseOf(name string) string {
	_, rest, _ := strings.Cut(name, "/sys=")
	_, c, _ := strings.Cut(rest, "/")
	return c
}

func benchOf(name string) string {
	b, _, _ := strings.Cut(name, "/")
	return b
}

// TestRatioAtGoal: a median just on the wrong side of its goal is
// printed with the digits that show it, not rounded onto the goal next to
// a "no" (2.996 printed "3.00" against "≥ 3", 0.2504 printed "0.25"
// against "≤ 0.25"); a median on the right side keeps two decimals.
func TestRatioAtGoal(t *testing.T) {
	a, b := "BenchmarkX/sys=runnel/c", "BenchmarkX/sys=kfake/c"
	for _, c := range []struct {
		x, y float64
		row  row
		want string
	}{
		{2996, 1000, row{label: "produce", metric: "records/s", goal: 3}, "| 2.996 (3.00–3.00, 3) | ≥ 3 | **no** |"},
		{3004, 1000, row{label: "produce", metric: "records/s", goal: 3}, "| 3.00 (3.00–3.00, 3) | ≥ 3 | yes |"},
		{2504, 10000, row{label: "latency", metric: "p99-us", lowerBetter: true, goal: 0.25}, "| 0.2504 (0.25–0.25, 3) | ≤ 0.25 | **no** |"},
		{2496, 10000, row{label: "latency", metric: "p99-us", lowerBetter: true, goal: 0.25}, "| 0.25 (0.25–0.25, 3) | ≤ 0.25 | yes |"},
		{1.5004, 0, row{label: "rss", metric: "RSS/payload", lowerBetter: true, goal: 1.5, absolute: true}, "| 1.5004 (1.50–1.50, 3) | ≤ 1.5x | **no** |"},
	} {
		res := results{}
		for round := range 3 {
			res.add(a, round, map[string]float64{c.row.metric: c.x})
			res.add(b, round, map[string]float64{c.row.metric: c.y})
		}
		r := c.row
		r.a = a
		if !r.absolute {
			r.b, r.peer = b, "kfake"
		}
		var out strings.Builder
		if err := writeTable(&out, []row{r}, res, 3); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), c.want) {
			t.Errorf("%v/%v: want %q in\n%s", c.x, c.y, c.want, out.String())
		}
	}
}

// TestOrder: every order is a permutation of the runs, and over every two
// rounds each run goes before each other run once and after it once
// (with a rotation alone, run 0 went before run 1 in all rounds but one
// of every n), while the first run changes from round to round.
func TestOrder(t *testing.T) {
	for n := 1; n <= 5; n++ {
		before := map[[2]int]int{} // {a, b} → rounds with a before b
		firsts := map[int]bool{}
		for round := range 2 * n {
			o := order(round, n)
			if got := slices.Sorted(slices.Values(o)); !slices.Equal(got, seq(n)) {
				t.Fatalf("n=%d round %d: order %v is not a permutation", n, round, o)
			}
			firsts[o[0]] = true
			for i := range o {
				for j := i + 1; j < n; j++ {
					before[[2]int{o[i], o[j]}]++
				}
			}
			if round%2 == 1 {
				for a := range n {
					for b := range n {
						if a != b && before[[2]int{a, b}] != (round+1)/2 {
							t.Fatalf("n=%d after round %d: %d before %d in %d rounds, want %d", n, round, a, b, before[[2]int{a, b}], (round+1)/2)
						}
					}
				}
			}
		}
		if len(firsts) != n {
			t.Errorf("n=%d: first runs %v over %d rounds, want each of the %d", n, firsts, 2*n, n)
		}
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}
