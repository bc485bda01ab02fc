package log

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"pgregory.net/rapid"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/vfs"
)

// The crash matrix and the model again, over crashes with
// vfs.CrashOptions.Reorder: part of what was not synced reached the disk
// before the power went (directory operations up to a point, overwritten
// sectors, truncations), as a real disk may leave it, where the plain
// crashes lose all of it.

// crashReorderSeeds are the seeds of the reordered crashes each crash
// point and tail mode gets: one drawn with r (from the run's sample seed,
// so that runs after runs try other reorders), 0 and 1 with
// RUNNEL_CRASH_POINTS=all.
func crashReorderSeeds(r *rand.Rand) []uint64 {
	if testkit.CrashPointsAll() {
		return []uint64{0, 1}
	}
	return []uint64{r.Uint64N(1 << 16)}
}

func TestCrashReorderDelete(t *testing.T)  { testCrashReorder(t, false) }
func TestCrashReorderCompact(t *testing.T) { testCrashReorder(t, true) }

func testCrashReorder(t *testing.T, compact bool) {
	t.Parallel()
	w := newCrashWorkload(t, compact)
	ref, ops := w.referenceOps(t)
	sample := rand.New(rand.NewPCG(testkit.SampleSeed(t), 1))
	for _, k := range crashPointsOf(w, ops, 60) {
		w.crashAt(t, ref, k, func(mem *vfs.MemFS) []namedClone {
			var clones []namedClone
			for _, mode := range crashTailsAt(sample) {
				for _, seed := range crashReorderSeeds(sample) {
					r := rand.New(rand.NewPCG(uint64(k), uint64(mode)<<8|seed))
					clones = append(clones, namedClone{fmt.Sprintf("k=%04d/%s/%d", k, mode, seed),
						mem.CrashClone(vfs.CrashOptions{Tail: mode, Rand: r, Reorder: true})})
				}
			}
			return clones
		})
	}
}

// TestModelReorder is TestModel with its crashes reordered.
func TestModelReorder(t *testing.T) {
	testkit.RapidReplay(t)
	rapid.Check(t, func(t *rapid.T) {
		m := newLogModel(t)
		defer func() { m.l.Close() }()
		crash := func(t *rapid.T) {
			mode := rapid.SampledFrom(crashTails).Draw(t, "tail")
			seed := rapid.Uint64().Draw(t, "seed")
			clone := m.mem.CrashClone(vfs.CrashOptions{Tail: mode, Rand: rand.New(rand.NewPCG(seed, seed)), Reorder: true})
			m.l.Close()
			m.mem = clone
			m.open(t)
		}
		actions := map[string]func(*rapid.T){
			"append":         m.Append,
			"append-more":    m.Append,
			"roll":           m.Roll,
			"retention":      m.Retention,
			"delete-records": m.DeleteRecords,
			"truncate":       m.Truncate,
			"crash":          crash,
			"crash-more":     crash,
			"reopen":         m.Reopen,
			"":               m.Check,
		}
		for range 4 {
			t.Repeat(actions)
		}
	})
}
