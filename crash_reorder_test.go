package runnel

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/vfs"
)

// TestBrokerCrashReorder is TestBrokerCrash over crashes with
// vfs.CrashOptions.Reorder: part of what was not synced (directory
// operations up to a point, overwritten sectors, truncations) reached the
// disk before the power went, as a real disk may leave it. Each crash
// point takes each of the four tail modes with one reorder, its seed
// drawn from the run's sample seed (testkit.SampleSeed:
// RUNNEL_SAMPLE_SEED replays a run's), so that runs after runs try other
// reorders at each point; -short takes drop and torn, RUNNEL_CRASH_POINTS=all
// every tail with 3 reorders each (seeds 0 to 2).
func TestBrokerCrashReorder(t *testing.T) {
	_, trace := crashScenarioOps(t)
	ops := len(trace)
	sample := rand.New(rand.NewPCG(testkit.SampleSeed(t), 1))
	ks := crashPoints(trace, 5)
	// The scenario runs once for each k (its runs are alike: see
	// TestBrokerCrashSameOpsEachRun), and each crash is a clone of it.
	for _, k := range ks {
		mem := vfs.NewMem()
		acked, maybe, failed := runCrashScenario(t, vfs.WithFaults(mem, vfs.FailFrom(k)))
		tails := []vfs.TailMode{vfs.TailDrop, vfs.TailTorn, vfs.TailZeros, vfs.TailGarbage}
		if testing.Short() && !testkit.CrashPointsAll() {
			tails = tails[:2]
		}
		for _, tail := range tails {
			seeds := []uint64{sample.Uint64N(1 << 16)}
			if testkit.CrashPointsAll() {
				seeds = []uint64{0, 1, 2}
			}
			for _, seed := range seeds {
				r := rand.New(rand.NewPCG(uint64(k), uint64(tail)<<8|seed))
				clone := mem.CrashClone(vfs.CrashOptions{Tail: tail, Rand: r, Reorder: true})
				t.Run(fmt.Sprintf("%s/k=%d/%d", tail, k, seed), func(t *testing.T) {
					b, err := Open(crashConfig(clone))
					require.NoError(t, err, "crash at operation %d of %d (%s)", k, ops, failed)
					defer func() { require.NoError(t, b.Close()) }()
					checkCrashState(t, b, acked, maybe)
				})
				checkStillWorks(t, clone)
			}
		}
	}
}
