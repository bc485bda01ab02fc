package main

import (
	"strings"
	"testing"
)

// TestReview30RatioAtGoal: a median just on the wrong side of its goal is
// printed with the digits that show it, not rounded onto the goal next to
// a "no" (2.996 printed "3.00" against "≥ 3", 0.2504 printed "0.25"
// against "≤ 0.25"); a median on the right side keeps two decimals.
func TestReview30RatioAtGoal(t *testing.T) {
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
