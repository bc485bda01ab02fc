package runnel

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/vfs"
)

// TestBrokerCrashReorder is TestBrokerCrash over crashes with
// vfs.CrashOptions.Reorder: part of what was not synced (directory
// operations up to a point, overwritten sectors, truncations) reached the
// disk before the power went, as a real disk may leave it.
func TestBrokerCrashReorder(t *testing.T) {
	counter := vfs.Count()
	_, _, failed := runCrashScenario(t, vfs.WithFaults(vfs.NewMem(), counter))
	require.Empty(t, failed, "the scenario fails without a fault")
	ops := counter.N()
	tails := []vfs.TailMode{vfs.TailDrop, vfs.TailTorn, vfs.TailZeros, vfs.TailGarbage}
	stride, seeds := 1, 3
	if testing.Short() {
		tails, stride, seeds = tails[:2], 5, 1
	}
	for _, tail := range tails {
		t.Run(tail.String(), func(t *testing.T) {
			for k := 1; k <= ops+1; k += stride {
				mem := vfs.NewMem()
				acked, maybe, failed := runCrashScenario(t, vfs.WithFaults(mem, vfs.FailFrom(k)))
				for seed := range seeds {
					r := rand.New(rand.NewPCG(uint64(k), uint64(tail)<<8|uint64(seed)))
					clone := mem.CrashClone(vfs.CrashOptions{Tail: tail, Rand: r, Reorder: true})
					t.Run(fmt.Sprintf("k=%d/%d", k, seed), func(t *testing.T) {
						b, err := Open(crashConfig(clone))
						require.NoError(t, err, "crash at operation %d of %d (%s)", k, ops, failed)
						defer func() { require.NoError(t, b.Close()) }()
						checkCrashState(t, b, acked, maybe)
					})
					checkStillWorks(t, clone)
				}
			}
		})
	}
}
