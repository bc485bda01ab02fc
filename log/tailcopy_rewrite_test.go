package log

import (
	"context"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/internal/leakcheck"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
)

// rewriteTail is the unsynced tail of the logs of these tests: 16 MiB.
const rewriteTail = 16 << 20

// rewriteHeapBound is how far above where it was the live heap of an Open
// that writes a 16 MiB tail anew (or puts it back from its copy) may
// peak: a few blocks of 1 MiB, not the tail.
const rewriteHeapBound = 4 << 20

// TestTailRewriteOpenHeapBounded: the Open after a failed fsync writes each
// segment's bytes past the durable offset anew, through a tail copy
// (see Segment.Rewrite and tailcopy.go), and the Open after one of those
// failed puts the copy back first (restoreTail): both stream the tail a
// block at a time, so that the live heap, sampled at every file
// operation, stays within a few MiB of where it was for a tail of 16
// MiB (1.1 MB). Before, each read the tail onto the heap at once (16.8
// MB above, as measured by the test this replaces), up to SegmentBytes
// (1 GiB by default) under SyncNever.
func TestTailRewriteOpenHeapBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("16 MiB on disk")
	}
	for _, restore := range []bool{false, true} {
		name := "rewrite"
		if restore {
			name = "restore"
		}
		t.Run(name, func(t *testing.T) {
			var armedSync, armedWrite, sampling atomic.Bool
			var peak atomic.Int64
			fsys := vfs.WithFaults(vfs.OS, vfs.InjectorFunc(func(op vfs.Op, name string) error {
				if strings.HasSuffix(name, ".log") {
					if op == vfs.OpSync && armedSync.CompareAndSwap(true, false) {
						return vfs.ErrInjected
					}
					if op == vfs.OpWrite && armedWrite.CompareAndSwap(true, false) {
						return vfs.ErrInjected
					}
				}
				if sampling.Load() {
					if h := leakcheck.LiveHeap(); h > peak.Load() {
						peak.Store(h)
					}
				}
				return nil
			}))
			dir := testkit.FastTempDir(t) // 16 MiB written and rewritten: on a disk, most of its time
			clock := newClock()
			cfg := Config{Sync: SyncNever, RetentionTime: -1}
			l, err := Open(dir, cfg, Options{FS: fsys, Clock: clock})
			require.NoError(t, err)
			v := strings.Repeat("v", 128<<10)
			for range rewriteTail / (256 << 10) {
				appendOK(t, l, valueBatch(t, clock.Now().UnixMilli(), v))
			}
			armedSync.Store(true)
			require.ErrorIs(t, l.Close(), vfs.ErrInjected, "the flush of Close fails")
			if restore {
				// The rewrite's write back fails, after the cut: the tail
				// is in its copy alone, which the next Open puts back.
				armedWrite.Store(true)
				_, err := Open(dir, cfg, Options{FS: fsys, Clock: clock})
				require.ErrorIs(t, err, vfs.ErrInjected)
				require.False(t, armedWrite.Load())
				names, err := vfs.OS.List(dir)
				require.NoError(t, err)
				require.Contains(t, names, "00000000000000000000.log"+tailCopySuffix)
			}

			base := leakcheck.LiveHeap()
			sampling.Store(true)
			l, err = Open(dir, cfg, Options{FS: fsys, Clock: clock})
			sampling.Store(false)
			require.NoError(t, err)
			defer l.Close()
			rewritten := l.Recovery().RewrittenBytes
			rose := max(peak.Load(), leakcheck.LiveHeap()) - base
			t.Logf("Open rewrote %d bytes after a failed fsync (restore first: %t): its live heap peaked %.1f MB above where it was", rewritten, restore, float64(rose)/1e6)
			require.Greater(t, rewritten, int64(rewriteTail/2))
			require.LessOrEqual(t, rose, int64(rewriteHeapBound), "the heap held the tail")
			require.Equal(t, int64(rewriteTail/(256<<10)), l.LogEndOffset(), "every record is back")
			last, err := l.Read(l.LogEndOffset()-1, 1, l.LogEndOffset())
			require.NoError(t, err)
			require.Len(t, last, len(valueBatch(t, clock.Now().UnixMilli(), v)), "the last batch read back whole")
		})
	}
}

// rewriteVals are the records of rewriteFixture's log, one a batch: a1
// flushed, three of 400 KiB (each batch twice that, its key holding the
// value too) synced by the roll after them, c1 in the next segment, not
// synced.
var rewriteVals = []string{
	"a1",
	strings.Repeat("b", 400<<10),
	strings.Repeat("c", 400<<10),
	strings.Repeat("d", 400<<10),
	"e1",
}

// rewriteKept is how many of rewriteVals every crash must keep, whatever
// step of the Opens after failed: a1 acknowledged as durable, the big
// ones below the recovery point when the fsync failed.
const rewriteKept = 4

// rewriteFixture leaves on a MemFS a SyncPeriodic log of rewriteVals whose
// roll synced the first segment and whose fsync of the second (the Flush
// after e1) failed, the durable offset 1: the next Open rewrites the
// first segment from the first big batch on, 2.4 MB, through a tail copy
// of three blocks (segment.RewriteBlock), their boundaries inside
// batches, and the second whole.
func rewriteFixture(t *testing.T) (*env, *vfs.MemFS) {
	t.Helper()
	ctx := context.Background()
	mem, armed := vfs.NewMem(), new(atomic.Bool)
	e := newEnv(t)
	e.fs = failLogSync(mem, armed, nil)
	l := e.open(Config{Sync: SyncPeriodic, RetentionTime: -1})
	for i, v := range rewriteVals {
		if i == len(rewriteVals)-1 {
			require.NoError(t, l.Roll())
		}
		appendOK(t, l, valueBatch(t, 1, v))
		if i == 0 {
			require.NoError(t, l.Flush(ctx))
		}
	}
	require.Equal(t, int64(1), l.DurableOffset())
	armed.Store(true)
	require.ErrorIs(t, l.Flush(ctx), vfs.ErrInjected, "the fsync of the second segment fails")
	require.NoError(t, l.Close(), "a fenced log closes without the marker")
	return e, mem
}

// rewriteSummary is a record's offset, and its value's length and
// checksum: a failure prints this, not 400 KiB.
type rewriteSummary struct {
	off      int64
	len      int
	crc, was uint32
}

// rewritePrefix requires the log on fsys to hold the first n of
// rewriteVals (n at least min) at their offsets and nothing else, and
// returns n.
func rewritePrefix(t *testing.T, e *env, fsys vfs.FS, min int, what string) int {
	t.Helper()
	l, err := Open(e.dir, Config{}, Options{FS: fsys, Clock: e.clock})
	require.NoError(t, err, what)
	defer func() { require.NoError(t, l.Close(), what) }()
	recs := readAll(t, l, 0)
	require.GreaterOrEqual(t, len(recs), min, what)
	require.LessOrEqual(t, len(recs), len(rewriteVals), what)
	for i, r := range recs {
		want := rewriteVals[i]
		got := rewriteSummary{r.Offset, len(r.Value), crc32.ChecksumIEEE(r.Value), crc32.ChecksumIEEE([]byte(want))}
		require.Equal(t, rewriteSummary{int64(i), len(want), got.was, got.was}, got, "%s: record %d", what, i)
	}
	return len(recs)
}

// rewriteCheck checks mem after an Open of it that failed (err) or not: a
// crash then keeps at least rewriteKept records (a strict one, and one of
// each tail mode, reordered: under the race detector, one of the two,
// picked by what's length, each Open of the 2.4 MB log taking about a
// second), and without one the next Open finds them all.
func rewriteCheck(t *testing.T, e *env, mem *vfs.MemFS, l *Log, err error, what string) {
	t.Helper()
	if err == nil {
		require.NoError(t, l.Close(), what)
	}
	strict := rewritePrefix(t, e, mem.CrashClone(vfs.CrashOptions{}), rewriteKept, what+", strict crash")
	tails := []vfs.TailMode{vfs.TailTorn, vfs.TailGarbage}
	if testkit.RaceEnabled {
		tails = tails[len(what)%2 : len(what)%2+1]
	}
	for _, tail := range tails {
		o := vfs.CrashOptions{Tail: tail, Reorder: true, Rand: rand.New(rand.NewPCG(uint64(len(what)), uint64(tail)))}
		rewritePrefix(t, e, mem.CrashClone(o), strict, fmt.Sprintf("%s, crash %s", what, tail))
	}
	require.Equal(t, len(rewriteVals), rewritePrefix(t, e, mem, len(rewriteVals), what+", no crash"), what)
}

// TestTailRewriteFailsAtEachBlock: each operation of the Open after a
// failed fsync that makes, puts back and removes the first tail copy
// fails in turn, and the first of each kind of change of the others
// (see rewriteFailEachOp; every one with RUNNEL_TAILCOPY_STEPS=all): that
// one alone, and, but with -short, every one from it on, over a tail
// copied and written back in several blocks:
// a read of the segment's tail or a write of its copy part way (nothing
// is cut yet), the copy's sync, rename or the directory's sync, the cut,
// a read of the copy or a write back part way (the segment then ends
// inside the tail, which is in the copy alone), the segment's sync, the
// copy's removal. On the FS as it is after, and on what a crash leaves
// of it, the next Open finds every record it must.
func TestTailRewriteFailsAtEachBlock(t *testing.T) {
	e, mem := rewriteFixture(t)
	ops := rewriteOps(t, e, mem)
	t.Logf("%d operations", len(ops))
	var reads, writes int
	for _, op := range ops {
		if op == "read "+segment.FileName(0, segment.LogSuffix+tailCopySuffix) {
			reads++
		}
		if op == "write "+segment.FileName(0, segment.LogSuffix+tailCopySuffix+tmpSuffix) {
			writes++
		}
	}
	require.GreaterOrEqual(t, reads, 3, "the copy read back in blocks")
	require.GreaterOrEqual(t, writes, 4, "the copy written in blocks (and its header)")
	rewriteFailEachOp(t, ops, rewriteFixture, "")
}

// rewriteFailEachOp fails each of ops, the operations of an Open of the
// log that fixture makes, in turn: that one alone, and, but with -short,
// every one from it on (an operation of the copies one of the two, drawn
// from the run's sample seed); then checks with rewriteCheck what the
// Open left.
// what names the Open in the messages. It fails every operation of the
// first tail copy, from the reads of the segment's tail it is made of (or
// from the first look at it, when the Open puts it back) to its removal
// and the directory's sync after it, block by block; of those before
// (the scan of the log) and after (the other segments' copies, the syncs
// and checkpoints of the Open and the Close), the first of each kind of
// change, as TestRewriteFailsAtEachStep fails the scan's and the
// checkpoints' at each path. With RUNNEL_TAILCOPY_STEPS=all, every
// operation.
func rewriteFailEachOp(t *testing.T, ops []string, fixture func(*testing.T) (*env, *vfs.MemFS), what string) {
	t.Helper()
	lo, hi := -1, -1 // the first tail copy's operations, ops[lo:hi+1] (0-based)
	for i, op := range ops {
		if strings.Contains(op, tailCopySuffix) && lo < 0 {
			lo = i
		}
		if strings.HasPrefix(op, "remove ") && strings.Contains(op, tailCopySuffix) {
			hi = i
			break
		}
	}
	for lo > 0 && strings.HasPrefix(ops[lo-1], "read ") && strings.HasSuffix(ops[lo-1], segment.LogSuffix) {
		lo-- // the reads of the tail that the first copy is made of
	}
	if hi+1 < len(ops) && strings.HasPrefix(ops[hi+1], "syncdir ") {
		hi++
	}
	require.True(t, lo >= 0 && lo < hi, "the Open makes or puts back a tail copy, and removes it")
	all := os.Getenv("RUNNEL_TAILCOPY_STEPS") == "all"
	// Each operation of the copies fails alone or from it on, one of the
	// two drawn from the run's sample seed (RUNNEL_SAMPLE_SEED replays a
	// run's), so that runs after runs take both: the copies' blocks are
	// alike, and each way is taken at about half of them each run. Those
	// around the copies, and every one with RUNNEL_TAILCOPY_STEPS=all,
	// fail both ways.
	coin := rand.New(rand.NewPCG(testkit.SampleSeed(t), 0))
	seen := make(map[string]bool)
	points := 0
	defer func() { t.Logf("%d of %d operations failed, those from %d to %d each", points, len(ops), lo+1, hi+1) }()
	for k := 1; k <= len(ops); k++ {
		// Under the race detector, where each Open and its checks take
		// more than a second (its shadow of every copy of the 2.4 MB
		// tail), only the first of each kind of change fails (create,
		// mkdir, write, sync, rename, syncdir, truncate, remove): a
		// few Opens, not 143 (the whole -short package took 490 s
		// under -race, 380 of them here). go test without -race fails
		// each operation of the tail copies, and the first of each
		// kind of change around them.
		kind, changes := rewriteChange(ops[k-1])
		inCopies := k-1 >= lo && k-1 <= hi
		if !testkit.RaceEnabled && !inCopies {
			kind += fmt.Sprint(" ", k-1 > hi) // before the copies, or after
		}
		if !all && (testkit.RaceEnabled || !inCopies) && (!changes || seen[kind]) {
			continue
		}
		seen[kind] = true
		points++
		ways := []bool{false, true}
		if inCopies && !all && !testing.Short() {
			ways = ways[coin.IntN(2):][:1]
		}
		for _, sticky := range ways {
			if sticky && testing.Short() {
				continue
			}
			e, mem := fixture(t)
			inj := vfs.FailNth(k)
			if sticky {
				inj = vfs.FailFrom(k)
			}
			var stop atomic.Bool
			l, err := Open(e.dir, Config{}, Options{FS: failingFS(mem, inj, &stop), Clock: e.clock})
			stop.Store(true)
			rewriteCheck(t, e, mem, l, err, fmt.Sprintf("op %d (%s)%s fails (sticky %t): %v", k, ops[k-1], what, sticky, err))
		}
	}
}

// rewriteChange returns the kind of op, of rewriteOps, and whether it
// changes the file system.
func rewriteChange(op string) (kind string, changes bool) {
	kind, _, _ = strings.Cut(op, " ")
	switch kind {
	case "create", "mkdir", "write", "sync", "rename", "syncdir", "truncate", "remove":
		return kind, true
	}
	return kind, false
}

// rewriteOps are the operations of an Open of the log on mem, with the
// names of their files, and of the Close after it.
func rewriteOps(t *testing.T, e *env, mem *vfs.MemFS) []string {
	t.Helper()
	var ops []string
	fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		ops = append(ops, op.String()+" "+filepath.Base(name))
		return nil
	}))
	l, err := Open(e.dir, Config{}, Options{FS: fsys, Clock: e.clock})
	require.NoError(t, err)
	require.NoError(t, l.Close())
	return ops
}

// rewriteCutInside fails the Open of rewriteFixture's log at the second
// block written back to the first segment: the segment then ends inside
// the tail, which is whole in its copy alone.
func rewriteCutInside(t *testing.T) (*env, *vfs.MemFS) {
	t.Helper()
	e, mem := rewriteFixture(t)
	seg, writes := segment.FileName(0, segment.LogSuffix), 0
	_, err := Open(e.dir, Config{}, Options{FS: vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpWrite && filepath.Base(name) == seg {
			if writes++; writes == 2 {
				return vfs.ErrInjected
			}
		}
		return nil
	})), Clock: e.clock})
	require.ErrorIs(t, err, vfs.ErrInjected)
	require.Equal(t, 2, writes)
	_, err = mem.Stat(filepath.Join(e.dir, segment.FileName(0, segment.LogSuffix+tailCopySuffix)))
	require.NoError(t, err, "the tail copy is there")
	return e, mem
}

// TestTailRestoreFailsAtEachBlock: after an Open whose write back failed
// part way (rewriteCutInside), each operation of the next Open — which
// checks the copy a block at a time, cuts the segment, writes the copy
// back a block at a time, syncs, removes it, then rewrites — fails in
// turn (each of the putting back, the first of each kind of change of
// the others, see rewriteFailEachOp); then as in
// TestTailRewriteFailsAtEachBlock.
func TestTailRestoreFailsAtEachBlock(t *testing.T) {
	e, mem := rewriteCutInside(t)
	ops := rewriteOps(t, e, mem)
	restoreReads := 0
	for _, op := range ops {
		if op == "remove "+segment.FileName(0, segment.LogSuffix+tailCopySuffix) {
			break
		}
		if op == "read "+segment.FileName(0, segment.LogSuffix+tailCopySuffix) {
			restoreReads++
		}
	}
	require.GreaterOrEqual(t, restoreReads, 1+2*3, "the copy's header, then its blocks checked, then its blocks put back")
	rewriteFailEachOp(t, ops, rewriteCutInside, " of the restoring Open")
}

// tailCopyFlipFS flips a bit of the n-th read (1-based) of a tail copy,
// that read's last byte: a disk that gives back other bytes than it was
// given.
type tailCopyFlipFS struct {
	vfs.FS
	n     int64
	reads atomic.Int64
}

// Open opens name, a tail copy's reads counted.
func (f *tailCopyFlipFS) Open(name string) (vfs.File, error) {
	file, err := f.FS.Open(name)
	if err != nil || !strings.HasSuffix(name, tailCopySuffix) {
		return file, err
	}
	return &tailCopyFlipFile{File: file, fs: f}, nil
}

// tailCopyFlipFile is a tail copy of a tailCopyFlipFS.
type tailCopyFlipFile struct {
	vfs.File
	fs *tailCopyFlipFS
}

// ReadAt reads, and flips a bit on the n-th read.
func (f *tailCopyFlipFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	if f.fs.reads.Add(1) == f.fs.n && n > 0 {
		p[n-1] ^= 1
	}
	return n, err
}

// TestTailCopyReadBackChecked: the tail read back from its copy is checked
// against the copy's checksum, before the segment's fsync: a copy that
// reads back other than it was written — in the rewrite that wrote it,
// or at the second read of an Open that puts it back, the first having
// passed — fails the Open with ErrBadTailCopy, and leaves the copy; the
// next Open, which reads it right, puts it back, and a crash keeps what
// it must.
func TestTailCopyReadBackChecked(t *testing.T) {
	const blocks = 3 // 2.4 MB (see rewriteFixture)
	for name, c := range map[string]struct {
		make func(t *testing.T) (*env, *vfs.MemFS)
		n    int64
	}{
		"rewrite, first block": {rewriteFixture, 1},
		"rewrite, last block":  {rewriteFixture, blocks},
		"restore, put back":    {rewriteCutInside, 1 + blocks + 2},
	} {
		t.Run(name, func(t *testing.T) {
			e, mem := c.make(t)
			flip := &tailCopyFlipFS{FS: mem, n: c.n}
			_, openErr := Open(e.dir, Config{}, Options{FS: flip, Clock: e.clock})
			require.ErrorIs(t, openErr, ErrBadTailCopy)
			require.GreaterOrEqual(t, flip.reads.Load(), c.n)
			_, err := mem.Stat(filepath.Join(e.dir, segment.FileName(0, segment.LogSuffix+tailCopySuffix)))
			require.NoError(t, err, "the tail copy stays")
			rewriteCheck(t, e, mem, nil, openErr, name)
		})
	}
}
