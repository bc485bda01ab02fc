package producer

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// TestTruncMilliIsTruncate: truncMilli is t.Truncate(time.Millisecond),
// the same Time by ==, not only Equal (wall and ext, with no monotonic
// reading, and the same Location pointer), and subMilli reports whether
// it changes t's instant: for times in UTC (a nil Location), time.Local
// and fixed zones; with a monotonic reading (time.Now, and Add of it)
// and without; from before year 1 to past 2262, across 1885 and 2157,
// where time's wall encoding of a time with a monotonic reading ends, and
// 1970, where Unix seconds turn negative; at every part below the second
// from 0 to 999999999's edges; and at random Unix seconds of the whole
// int64 range.
func TestTruncMilliIsTruncate(t *testing.T) {
	zones := []*time.Location{time.UTC, time.Local, time.FixedZone("UTC+3", 3*60*60), time.FixedZone("UTC-5:30", -(5*60+30)*60)}
	nanos := []int{0, 1, 999_999, 1_000_000, 1_000_001, 123_456_789, 500_000_000, 999_000_000, 999_999_999}
	years := []int{-1000, 0, 1, 1000, 1884, 1885, 1969, 1970, 1971, 2026, 2157, 2158, 2262, 2263, 2300, 9999, 300_000}
	check := func(t0 time.Time) {
		t.Helper()
		want := t0.Truncate(time.Millisecond)
		if got := truncMilli(t0); got != want {
			t.Fatalf("truncMilli(%v) = %#v, Truncate = %#v", t0, got, want)
		}
		if got, want := subMilli(t0), !t0.Equal(want); got != want {
			t.Fatalf("subMilli(%v) = %v, want %v", t0, got, want)
		}
	}
	var times []time.Time
	for _, loc := range zones {
		for _, y := range years {
			for _, ns := range nanos {
				times = append(times, time.Date(y, time.December, 31, 23, 59, 59, ns, loc), time.Date(y, time.January, 1, 0, 0, 0, ns, loc))
			}
		}
	}
	now := time.Now()
	for _, d := range []time.Duration{0, 1, 123456, -987654321, 100 * 365 * 24 * time.Hour, -100 * 365 * 24 * time.Hour, 200 * 365 * 24 * time.Hour, -200 * 365 * 24 * time.Hour, math.MaxInt64, math.MinInt64} {
		times = append(times, now.Add(d), now.Add(d).In(time.FixedZone("UTC+3", 3*60*60)))
	}
	times = append(times, time.Time{}.Add(123456789), time.Unix(-1, 999_999_999), time.Unix(0, 1).UTC(),
		time.Unix(math.MaxInt64, 999_999_999), time.Unix(math.MinInt64, 1), time.UnixMilli(math.MaxInt64).Add(999_999))
	r := rand.New(rand.NewPCG(1, 2))
	for range 10_000 {
		times = append(times, time.Unix(int64(r.Uint64()), r.Int64N(1e9)).In(zones[r.IntN(len(zones))]))
	}
	for _, t0 := range times {
		check(t0)
	}
}
