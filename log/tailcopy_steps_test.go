package log

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// stepVals are the records of the step fixtures' logs, one a batch: a1
// and a2 flushed (acknowledged as durable), the others not; a1 to a4 in
// the first segment, b1 and b2 in the second, c1 in the third.
var stepVals = []string{"a1", "a2", "a3", "a4", "b1", "b2", "c1"}

// stepFixture is a log of stepVals, on a MemFS, that the step tests open
// after an fsync of it failed.
type stepFixture struct {
	name string
	// kept is how many of stepVals every crash must keep, whatever step
	// of the Opens after failed: those acknowledged as durable, and those
	// below the recovery point when the fsync failed.
	kept int
	make func(t *testing.T) (*env, *vfs.MemFS)
}

// stepFixtures are the logs the step tests start from: under SyncNever,
// where the bytes the Open rewrites were never durable, and under
// SyncPeriodic, where rolls made most of them durable.
var stepFixtures = []stepFixture{
	{"never", 2, multiSegFailed},
	{"rolled", 6, multiSegRolled},
}

// multiSegFailed leaves on a MemFS a SyncNever log of stepVals whose Close
// failed to fsync: the next Open rewrites the first segment from a3 on
// and the others whole, each through its own tail copy.
func multiSegFailed(t *testing.T) (*env, *vfs.MemFS) {
	return failedStepLog(t, false)
}

// multiSegRolled leaves on a MemFS a SyncPeriodic log of stepVals whose
// rolls synced the first two segments (the recovery point 6, at c1) and
// whose fsync of the third (the Flush after c1) failed, the durable
// offset still 2: the next Open rewrites as multiSegFailed's, but a3 to
// b2, in the tails it saves first, were durable. A crash at any step of
// it must keep them (see TestRestoreTailSyncsCopyNameFirst).
func multiSegRolled(t *testing.T) (*env, *vfs.MemFS) {
	return failedStepLog(t, true)
}

// failedStepLog is multiSegFailed's log, or multiSegRolled's if rolled.
func failedStepLog(t *testing.T, rolled bool) (*env, *vfs.MemFS) {
	t.Helper()
	ctx := context.Background()
	mem := vfs.NewMem()
	var armed atomic.Bool
	e := newEnv(t)
	e.fs = vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && strings.HasSuffix(name, ".log") && armed.CompareAndSwap(true, false) {
			return vfs.ErrInjected
		}
		return nil
	}))
	cfg := Config{Sync: SyncNever}
	if rolled {
		cfg.Sync = SyncPeriodic
	}
	l := e.open(cfg)
	for i, v := range stepVals {
		_, err := l.Append(ctx, valueBatch(t, 1, v), AppendOptions{})
		require.NoError(t, err)
		switch i {
		case 1:
			require.NoError(t, l.Flush(ctx))
		case 3, 5:
			require.NoError(t, l.Roll())
		}
	}
	if !rolled {
		armed.Store(true)
		require.ErrorIs(t, l.Close(), vfs.ErrInjected)
		require.False(t, armed.Load())
		return e, mem
	}
	require.Equal(t, int64(2), l.DurableOffset(), "a roll's fsync moves the recovery point, not the durable offset")
	rp, err := readOffset(mem, e.dir, recoveryPointFile, 0)
	require.NoError(t, err)
	require.Equal(t, int64(6), rp)
	armed.Store(true)
	require.ErrorIs(t, l.Flush(ctx), vfs.ErrInjected, "the fsync of the third segment fails")
	require.False(t, armed.Load())
	require.NoError(t, l.Close(), "a fenced log closes without the marker")
	return e, mem
}

type offVal struct {
	off int64
	v   string
}

// offVals are l's records, with their offsets.
func offVals(t *testing.T, l *Log) []offVal {
	t.Helper()
	var out []offVal
	for _, r := range readAll(t, l, 0) {
		out = append(out, offVal{r.Offset, string(r.Value)})
	}
	return out
}

// stepPrefix is the first n of stepVals, then extra, at their offsets.
func stepPrefix(n int, extra ...string) []offVal {
	var out []offVal
	for i, v := range append(append([]string(nil), stepVals[:n]...), extra...) {
		out = append(out, offVal{int64(i), v})
	}
	return out
}

// stepCrashes are the crashes the step tests try: every tail mode, with
// and without Reorder (a few under -short).
func stepCrashes(seed uint64) []vfs.CrashOptions {
	var out []vfs.CrashOptions
	for _, tail := range []vfs.TailMode{vfs.TailDrop, vfs.TailTorn, vfs.TailZeros, vfs.TailGarbage} {
		for _, reorder := range []bool{false, true} {
			if testing.Short() && tail != vfs.TailGarbage && !reorder {
				continue
			}
			out = append(out, vfs.CrashOptions{Tail: tail, Reorder: reorder, Rand: rand.New(rand.NewPCG(seed, uint64(tail)))})
		}
	}
	return out
}

// requireStepPrefix opens the log on fsys, a step fixture's FS or a crash
// clone of it, requires at least min of stepVals at their offsets and nothing else,
// appends "x" and syncs it, and requires every crash after that to keep
// them all: no tail copy left behind cuts it.
func requireStepPrefix(t *testing.T, e *env, fsys *vfs.MemFS, min int, what string) {
	t.Helper()
	ctx := context.Background()
	l, err := Open(e.dir, Config{}, Options{FS: fsys, Clock: e.clock})
	require.NoError(t, err, what)
	got := offVals(t, l)
	require.GreaterOrEqual(t, len(got), min, what)
	require.LessOrEqual(t, len(got), len(stepVals), what)
	require.Equal(t, stepPrefix(len(got)), got, what)
	_, err = l.Append(ctx, valueBatch(t, 1, "x"), AppendOptions{})
	require.NoError(t, err)
	require.NoError(t, l.Flush(ctx))
	require.NoError(t, l.Discard())
	for i, o := range stepCrashes(7) {
		l, err := Open(e.dir, Config{}, Options{FS: fsys.CrashClone(o), Clock: e.clock})
		require.NoError(t, err, "%s: crash %d after x", what, i)
		require.Equal(t, stepPrefix(len(got), "x"), offVals(t, l), "%s: crash %d after x", what, i)
		require.NoError(t, l.Close())
	}
}

// failingFS is mem under inj until stop is set.
func failingFS(mem *vfs.MemFS, inj vfs.Injector, stop *atomic.Bool) vfs.FS {
	return vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if stop.Load() {
			return nil
		}
		return inj.MaybeError(op, name)
	}))
}

// checkFailedOpen checks f's FS mem after an Open of it that failed
// (err) or not: a crash then keeps at least f.kept records and what a
// strict crash keeps (itself at least f.kept), and without a crash the
// next Open finds them all; either way appends after are kept by a
// crash.
func checkFailedOpen(t *testing.T, f stepFixture, e *env, mem *vfs.MemFS, l *Log, err error, what string) {
	t.Helper()
	if err == nil {
		require.Equal(t, stepPrefix(len(stepVals)), offVals(t, l), what)
		require.NoError(t, l.Discard())
		requireStepPrefix(t, e, mem, len(stepVals), what+", Open tolerated it")
		return
	}
	ls, err := Open(e.dir, Config{}, Options{FS: mem.CrashClone(vfs.CrashOptions{}), Clock: e.clock})
	require.NoError(t, err, what+", strict crash")
	strict := offVals(t, ls)
	require.GreaterOrEqual(t, len(strict), f.kept, what+", strict crash")
	require.LessOrEqual(t, len(strict), len(stepVals), what+", strict crash")
	require.Equal(t, stepPrefix(len(strict)), strict, what+", strict crash")
	require.NoError(t, ls.Close())
	for i, o := range stepCrashes(uint64(len(what))) {
		requireStepPrefix(t, e, mem.CrashClone(o), len(strict), fmt.Sprintf("%s, crash %d", what, i))
	}
	requireStepPrefix(t, e, mem, len(stepVals), what+", no crash")
}

// tailCopyStepPoints returns the operations of an Open (and the Close
// after it), ops, that the step tests fail: with
// RUNNEL_TAILCOPY_STEPS=all, every one; else opPathPoints' (each
// operation after a sequence of operations no earlier one followed, and
// the last four); in the quick race run (-race -short), every third of
// those and the last, as crashPointsOf takes a third.
func tailCopyStepPoints(ops []testkit.FSOp) []int {
	if os.Getenv("RUNNEL_TAILCOPY_STEPS") == "all" {
		ks := make([]int, len(ops))
		for i := range ks {
			ks[i] = i + 1
		}
		return ks
	}
	ks := opPathPoints(ops, func(int) string { return "open" })
	if testing.Short() && testkit.RaceEnabled {
		return testkit.EveryAndLast(ks, 3)
	}
	return ks
}

// TestRewriteFailsAtEachStep fails each operation of the Open after a
// failed fsync in turn (that one, and every one from it on), over several
// segments rewritten through their tail copies, for each of stepFixtures:
// on the FS as it is after, and on what a crash leaves of it, the next
// Open finds every record it must, at its offset, and a crash after later
// appends keeps them.
func TestRewriteFailsAtEachStep(t *testing.T) {
	for _, f := range stepFixtures {
		t.Run(f.name, func(t *testing.T) {
			e, mem := f.make(t)
			var ops []testkit.FSOp
			l, err := Open(e.dir, Config{}, Options{FS: recordOps(mem, &ops), Clock: e.clock})
			require.NoError(t, err)
			require.Equal(t, stepPrefix(len(stepVals)), offVals(t, l))
			require.NoError(t, l.Close())
			for _, k := range tailCopyStepPoints(ops) {
				for _, sticky := range []bool{false, true} {
					if sticky && testing.Short() {
						continue
					}
					e, mem := f.make(t)
					inj := vfs.FailNth(k)
					if sticky {
						inj = vfs.FailFrom(k)
					}
					var stop atomic.Bool
					l, err := Open(e.dir, Config{}, Options{FS: failingFS(mem, inj, &stop), Clock: e.clock})
					stop.Store(true)
					checkFailedOpen(t, f, e, mem, l, err, fmt.Sprintf("op %d fails (sticky %t): %v", k, sticky, err))
				}
			}
		})
	}
}

// TestRestoreFailsAtEachStep: for failures of the Open after a failed
// fsync that leave a tail copy (one drawn from every eight, the first
// and the last: testkit.Sample, from the run's sample seed, which
// RUNNEL_SAMPLE_SEED replays, so that runs after runs take each; all
// with RUNNEL_TAILCOPY_STEPS=all), operations of the next Open (which
// puts it back, then rewrites) fail in turn: half of those of
// tailCopyStepPoints, drawn anew for each failure of the first (each
// point of the second Open is taken after one of the first's or another
// in nearly every run), all with RUNNEL_TAILCOPY_STEPS=all; then as in
// TestRewriteFailsAtEachStep.
func TestRestoreFailsAtEachStep(t *testing.T) {
	if testing.Short() {
		t.Skip("long: the product of two Opens' operations")
	}
	every, every2 := 8, 2
	if os.Getenv("RUNNEL_TAILCOPY_STEPS") == "all" {
		every, every2 = 1, 1
	}
	seed := testkit.SampleSeed(t)
	for _, f := range stepFixtures {
		t.Run(f.name, func(t *testing.T) {
			first := func(k1 int) (*env, *vfs.MemFS, bool) {
				e, mem := f.make(t)
				_, err := Open(e.dir, Config{}, Options{FS: vfs.WithFaults(mem, vfs.FailNth(k1)), Clock: e.clock})
				if err == nil {
					return e, mem, false
				}
				names, err := mem.List(e.dir)
				require.NoError(t, err)
				for _, n := range names {
					if strings.HasSuffix(n, tailCopySuffix) {
						return e, mem, true
					}
				}
				return e, mem, false
			}
			c := vfs.Count()
			{
				e, mem := f.make(t)
				_, err := Open(e.dir, Config{}, Options{FS: vfs.WithFaults(mem, c), Clock: e.clock})
				require.NoError(t, err)
			}
			var leaving []int // the k1 whose failure leaves a tail copy
			for k1 := 1; k1 <= c.N(); k1++ {
				if _, _, ok := first(k1); ok {
					leaving = append(leaving, k1)
				}
			}
			require.NotEmpty(t, leaving)
			k1s := testkit.Sample(leaving, every, seed)
			t.Logf("%d of %d failures leave a tail copy; %d of them taken (one in %d, the first and the last), and one in %d of the next Open's points after each", len(leaving), c.N(), len(k1s), every, every2)
			for _, k1 := range k1s {
				var ops2 []testkit.FSOp
				{
					e, mem, _ := first(k1)
					l, err := Open(e.dir, Config{}, Options{FS: recordOps(mem, &ops2), Clock: e.clock})
					require.NoError(t, err)
					require.NoError(t, l.Close())
				}
				for _, k2 := range testkit.Sample(tailCopyStepPoints(ops2), every2, seed^uint64(k1)) {
					e, mem, _ := first(k1)
					var stop atomic.Bool
					l, err := Open(e.dir, Config{}, Options{FS: failingFS(mem, vfs.FailNth(k2), &stop), Clock: e.clock})
					stop.Store(true)
					checkFailedOpen(t, f, e, mem, l, err, fmt.Sprintf("op %d of the first Open fails, then op %d of the second: %v", k1, k2, err))
				}
			}
		})
	}
}
