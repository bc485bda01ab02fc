package log

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"pgregory.net/rapid"

	"github.com/runnel/runnel/vfs"
)

// The crash matrix and the model again, over crashes with
// vfs.CrashOptions.Reorder: part of what was not synced reached the disk
// before the power went (directory operations up to a point, overwritten
// sectors, truncations), as a real disk may leave it, where the plain
// crashes lose all of it.

// crashReorderSeeds is how many reordered crashes each crash point and
// tail mode gets.
func crashReorderSeeds() int {
	if testing.Short() {
		return 1
	}
	return 2
}

func TestCrashReorderDelete(t *testing.T)  { testCrashReorder(t, false) }
func TestCrashReorderCompact(t *testing.T) { testCrashReorder(t, true) }

func testCrashReorder(t *testing.T, compact bool) {
	t.Parallel()
	w := newCrashWorkload(t, compact)
	ref, n := w.reference(t)
	for _, k := range crashPoints(n, 60) {
		mem := vfs.NewMem()
		fsys := vfs.WithFaults(mem, vfs.FailFrom(k))
		clock := newClock()
		tr := newCrashTrace()
		l, err := Open(crashDir, w.cfg, Options{FS: fsys, Clock: clock})
		if err == nil {
			err = w.run(l, clock, tr)
		}
		if err != nil && !errors.Is(err, vfs.ErrInjected) {
			t.Errorf("k=%d: the workload failed with an error not injected: %v", k, err)
			continue
		}
		type crash struct {
			name  string
			clone *vfs.MemFS
		}
		var crashes []crash
		for _, mode := range crashTails {
			for seed := range crashReorderSeeds() {
				r := rand.New(rand.NewPCG(uint64(k), uint64(mode)<<8|uint64(seed)))
				crashes = append(crashes, crash{fmt.Sprintf("k=%04d/%s/%d", k, mode, seed),
					mem.CrashClone(vfs.CrashOptions{Tail: mode, Rand: r, Reorder: true})})
			}
		}
		if l != nil {
			l.Close() // on a dead disk: it changes nothing durable
		}
		for _, c := range crashes {
			t.Run(c.name, func(t *testing.T) { checkCrashed(t, w, ref, tr, c.clone) })
		}
	}
}

// TestModelReorder is TestModel with its crashes reordered.
func TestModelReorder(t *testing.T) {
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
