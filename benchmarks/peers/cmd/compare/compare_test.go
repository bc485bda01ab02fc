package main

import (
	"maps"
	"regexp"
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
	rows := []row{
		{label: "produce", a: a, b: b, peer: "kfake", metric: "records/s", goal: 3},
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
		case "p50-us", "p99-us", "RSS/payload":
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
