package leakcheck

// The checker's own tests. The leak tests that use it pass whether or not
// it would catch a leak, so each test here fails against a mutant of it.

import (
	"strings"
	"testing"

	"github.com/runnel/runnel/internal/testkit"

	"github.com/stretchr/testify/require"
)

// TestBoundedCatchesGrowth: Bounded passes cycles that hold nothing more
// after the warm-up (5 MiB all along, more than its slack of 4 MiB, which
// the heap's level after the warm-up allows for), and fails those whose live heap, goroutines or
// measure grow with every cycle; goroutines only when told to count them.
func TestBoundedCatchesGrowth(t *testing.T) {
	var held [][]byte
	var count int64
	release := make(chan struct{})
	defer close(release)
	for _, c := range []struct {
		name       string
		goroutines bool
		cycle      func(i int)
		fails      string // what the failure says, "" if none
	}{
		{"steady", true, func(int) { held = append(held[:0], make([]byte, 5<<20)) }, ""},
		{"heap", false, func(i int) {
			if i >= Warm {
				held = append(held, make([]byte, 1<<20))
			}
		}, "live heap"},
		{"goroutines", true, func(i int) {
			if i >= Warm {
				go func() { <-release }()
			}
		}, "goroutines were left"},
		{"goroutines not counted", false, func(i int) {
			if i >= Warm {
				go func() { <-release }()
			}
		}, ""},
		{"measure", false, func(i int) {
			if i >= Warm {
				count += 10
			}
		}, "measure grew"},
	} {
		held, count = nil, 1
		var m0, m1 int64
		r := testkit.Record(t, func(tb testing.TB) {
			m0, m1 = Bounded(tb, 20, 5, c.goroutines, func() int64 { return count }, c.cycle)
		})
		if c.fails == "" {
			require.False(t, r.Failed(), "%s: %v", c.name, r.Msgs)
			require.Equal(t, [2]int64{1, count}, [2]int64{m0, m1}, c.name)
		} else {
			require.True(t, r.Failed(), c.name)
			require.Contains(t, strings.Join(r.Msgs, "\n"), c.fails, c.name)
		}
	}
	held = nil
}

// TestBoundedRunsEveryCycleOnce: Bounded runs the cycles 0 to Warm+n-1,
// in order, measuring after the warm-up and after the last; a nil measure
// counts as 0.
func TestBoundedRunsEveryCycleOnce(t *testing.T) {
	var ran []int
	measured := 0
	m0, m1 := Bounded(t, 7, 100, false, func() int64 { measured++; return int64(len(ran)) }, func(i int) { ran = append(ran, i) })
	want := make([]int, Warm+7)
	for i := range want {
		want[i] = i
	}
	require.Equal(t, want, ran)
	require.Equal(t, 2, measured)
	require.Equal(t, [2]int64{Warm, Warm + 7}, [2]int64{m0, m1})

	m0, m1 = Bounded(t, 1, 0, false, nil, func(int) {})
	require.Zero(t, m0)
	require.Zero(t, m1)
}

// TestCycles: n, a quarter of it under -short, or RUNNEL_LEAK_CYCLES; a
// RUNNEL_LEAK_CYCLES that is no number fails the test.
func TestCycles(t *testing.T) {
	t.Setenv("RUNNEL_LEAK_CYCLES", "")
	want := 100
	if testing.Short() {
		want = 25
	}
	require.Equal(t, want, Cycles(t, 100))
	t.Setenv("RUNNEL_LEAK_CYCLES", "7")
	require.Equal(t, 7, Cycles(t, 100))
	t.Setenv("RUNNEL_LEAK_CYCLES", "many")
	r := testkit.Record(t, func(tb testing.TB) { Cycles(tb, 100) })
	require.True(t, r.Failed())
}
