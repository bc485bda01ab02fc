// Package leakcheck is the measuring part of runnel's leak tests (the
// leak_test.go files of the root package, log and vfs): they run a
// workload for many cycles and check that what it holds returns, after
// each cycle's cleanup, to about its level after the first few cycles, so
// that they catch growth per cycle, not noise. The memory tests of the
// root package and the producer measure the heap with it too
// (HeapInUse). It is internal: test support, imported only by tests.
package leakcheck

import (
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// Warm is the number of cycles run before the first measurement.
const Warm = 5

// Cycles is the number of cycles of a leak test: n (a quarter under
// -short), or RUNNEL_LEAK_CYCLES if set, for a long run.
func Cycles(t testing.TB, n int) int {
	if v := os.Getenv("RUNNEL_LEAK_CYCLES"); v != "" {
		c, err := strconv.Atoi(v)
		require.NoError(t, err, "RUNNEL_LEAK_CYCLES")
		return c
	}
	if testing.Short() {
		return n / 4
	}
	return n
}

// HeapInUse is the heap's bytes in use (its spans, with the room
// fragmentation keeps in them) after two collections: a sync.Pool keeps
// what it drops at one collection until the next.
func HeapInUse() int64 { return int64(collected().HeapInuse) }

// LiveHeap is the heap that is live after two collections.
func LiveHeap() int64 { return int64(collected().HeapAlloc) }

// collected reads the memory statistics after two collections.
func collected() *runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return &ms
}

// Bounded runs cycle Warm times, measures, runs it n times more, and
// checks that the live heap stayed within twice its level after the
// warm-up plus 4 MiB, the goroutines at their level plus a few (when
// goroutines is set: a package whose tests start none need not wait for
// them), and what measure reports (0 if nil) within twice its level plus
// slack. It returns the measure's two levels.
func Bounded(t testing.TB, n int, slack int64, goroutines bool, measure func() int64, cycle func(i int)) (m0, m1 int64) {
	t.Helper()
	if measure == nil {
		measure = func() int64 { return 0 }
	}
	for i := range Warm {
		cycle(i)
	}
	h0, g0 := LiveHeap(), runtime.NumGoroutine()
	m0 = measure()
	for i := Warm; i < Warm+n; i++ {
		cycle(i)
	}
	h1, g1 := LiveHeap(), runtime.NumGoroutine()
	m1 = measure()
	t.Logf("%d cycles: live heap %d -> %d (%+.0f B/cycle), goroutines %d -> %d, measure %d -> %d (%+.1f/cycle)",
		n, h0, h1, float64(h1-h0)/float64(n), g0, g1, m0, m1, float64(m1-m0)/float64(n))
	require.LessOrEqual(t, h1, 2*h0+4<<20, "the live heap grew with the cycles")
	if goroutines {
		require.LessOrEqual(t, g1, g0+5, "goroutines were left")
	}
	require.LessOrEqual(t, m1, 2*m0+slack, "the measure grew with the cycles")
	return m0, m1
}
