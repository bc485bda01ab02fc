package e2e

import (
	"testing"
	"time"
)

// TestPercentile: the nearest-rank percentile, the smallest latency with
// at least p% of them at or below it, at the counts the latency runs have
// (2,000: p99 is the 1,980th) and at small ones, where float rounding of
// p/100*n must not move the rank.
func TestPercentile(t *testing.T) {
	seq := func(n int) Result { // latencies 1..n µs
		r := Result{Latencies: make([]time.Duration, n)}
		for i := range r.Latencies {
			r.Latencies[i] = time.Duration(i+1) * time.Microsecond
		}
		return r
	}
	for _, c := range []struct {
		n    int
		p    float64
		want int // µs, i.e. the rank from 1
	}{
		{2000, 50, 1000}, {2000, 99, 1980}, {2000, 100, 2000},
		{1000, 99, 990}, {100, 99, 99}, {100, 50, 50}, {10, 99, 10},
		{7, 50, 4}, {3, 99, 3}, {1, 50, 1}, {1, 99, 1}, {1, 100, 1},
		{200, 99.5, 199}, {1999, 99, 1980},
	} {
		if got := seq(c.n).Percentile(c.p); got != time.Duration(c.want)*time.Microsecond {
			t.Errorf("n=%d p%v: %v, want %dµs", c.n, c.p, got, c.want)
		}
	}
	if got := (Result{}).Percentile(99); got != 0 {
		t.Errorf("no latencies: %v, want 0", got)
	}
}
