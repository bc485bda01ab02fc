package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// stats are the median, minimum and maximum of some values.
type stats struct {
	n             int
	med, min, max float64
}

func summarize(v []float64) stats {
	if len(v) == 0 {
		return stats{}
	}
	s := slices.Sorted(slices.Values(v))
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return stats{n: n, med: med, min: s[0], max: s[n-1]}
}

// format writes v in the unit's customary way.
func format(v float64, unit string) string {
	switch unit {
	case "records/s":
		switch {
		case v >= 1e6:
			return fmt.Sprintf("%.2fM/s", v/1e6)
		case v >= 1e3:
			return fmt.Sprintf("%.0fk/s", v/1e3)
		}
		return fmt.Sprintf("%.0f/s", v)
	case "p50-us", "p99-us", "max-us":
		if v >= 1000 {
			return fmt.Sprintf("%.2fms", v/1000)
		}
		return fmt.Sprintf("%.0fµs", v)
	case "RSS/payload":
		return fmt.Sprintf("%.2fx", v)
	case "log/value":
		return fmt.Sprintf("%.3f", v)
	}
	return fmt.Sprintf("%.3g %s", v, unit)
}

// evaluate computes a row: the median of a's metric and of b's, and the
// per-round ratios a/b (or a's values, for an absolute row).
func evaluate(r row, res results, rounds int) (a, b, cmp stats) {
	var av, bv, rv []float64
	for round := range rounds {
		x, okA := res.metric(r.a, round, r.metric)
		if okA {
			av = append(av, x)
		}
		if r.b == "" {
			continue
		}
		y, okB := res.metric(r.b, round, r.metric)
		if okB {
			bv = append(bv, y)
		}
		if okA && okB && y != 0 {
			rv = append(rv, x/y)
		}
	}
	a, b = summarize(av), summarize(bv)
	if r.absolute {
		return a, b, a
	}
	return a, b, summarize(rv)
}

// verdict says whether the row's median meets its goal.
func verdict(r row, cmp stats) (goal, met string) {
	if r.goal == 0 {
		return "", ""
	}
	op := "≥"
	ok := cmp.med >= r.goal
	if r.lowerBetter {
		op, ok = "≤", cmp.med <= r.goal
	}
	goal = fmt.Sprintf("%s %g", op, r.goal)
	if r.absolute {
		goal += "x"
	}
	switch {
	case cmp.n == 0:
		return goal, "no data"
	case ok:
		return goal, "yes"
	}
	return goal, "**no**"
}

// median writes a row's median with two decimals, or with as many more
// (up to six) as it takes to print it on the side of the goal it is on:
// 2.996 against "≥ 3" is "2.996", not a "3.00" next to a "no".
func median(r row, cmp stats) string {
	s := fmt.Sprintf("%.2f", cmp.med)
	if r.goal == 0 {
		return s
	}
	met := func(v float64) bool {
		if r.lowerBetter {
			return v <= r.goal
		}
		return v >= r.goal
	}
	for prec := 3; prec <= 6; prec++ {
		var printed float64
		if _, err := fmt.Sscan(s, &printed); err == nil && met(printed) == met(cmp.med) {
			break
		}
		s = fmt.Sprintf("%.*f", prec, cmp.med)
	}
	return s
}

// writeTable writes the table as Markdown.
func writeTable(w io.Writer, rows []row, res results, rounds int) error {
	var b strings.Builder
	b.WriteString("| workload | metric | runnel | peer | peer's | runnel/peer: median (min–max, rounds) | goal | met? |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		a, p, cmp := evaluate(r, res, rounds)
		goal, met := verdict(r, cmp)
		runnel, peer, peerVal, ratio := "–", "–", "–", "–"
		if a.n > 0 {
			runnel = format(a.med, r.metric)
		}
		switch {
		case r.absolute:
			peer, ratio = "(absolute)", fmt.Sprintf("%s (%.2f–%.2f, %d)", median(r, cmp), cmp.min, cmp.max, cmp.n)
		default:
			peer = r.peer
			if p.n > 0 {
				peerVal = format(p.med, r.metric)
			}
			if cmp.n > 0 {
				ratio = fmt.Sprintf("%s (%.2f–%.2f, %d)", median(r, cmp), cmp.min, cmp.max, cmp.n)
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", r.label, r.metric, runnel, peer, peerVal, ratio, goal, met)
	}
	b.WriteString("\nrunnel and peer's: medians over the rounds; the ratio is the median of the per-round ratios " +
		"(runs of one round ran back to back), never a ratio of the two medians.\n")
	_, err := io.WriteString(w, b.String())
	return err
}
