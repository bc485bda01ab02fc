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
// point and tail mode takes 2 seeds of the reorder (3 with
// RUNNEL_CRASH_POINTS=all; -short: 2 tails, 1 seed).
func TestBrokerCrashReorder(t *testing.T) {
	_, trace := crashScenarioOps(t)
	ops := len(trace)
	tails := []vfs.TailMode{vfs.TailDrop, vfs.TailTorn, vfs.TailZeros, vfs.TailGarbage}
	seeds := 2
	switch {
	case testkit.CrashPointsAll():
		seeds = 3
	case testing.Short():
		tails, seeds = tails[:2], 1
	}
	ks := crashPoints(trace, 5)
	// The scenario runs once for each k (its runs are alike: see
	// TestBrokerCrashSameOpsEachRun), and each crash is a clone of it.
	for _, k := range ks {
		mem := vfs.NewMem()
		acked, maybe, failed := runCrashScenario(t, vfs.WithFaults(mem, vfs.FailFrom(k)))
		for _, tail := range tails {
			for seed := range seeds {
				r := rand.New(rand.NewPCG(uint64(k), uint64(tail)<<8|uint64(seed)))
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
