package log

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"io/fs"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// failedSyncNever leaves, on e's FS, a SyncNever log of "one" and "two"
// whose Close failed to fsync them: the next Open rewrites both.
func failedSyncNever(t *testing.T) (*env, *vfs.MemFS) {
	t.Helper()
	e, mem, armed, l := syncFailLog(t, Config{Sync: SyncNever}, nil)
	_, err := l.Append(context.Background(), valueBatch(t, 1, "two"), AppendOptions{})
	require.NoError(t, err)
	armed.Store(true)
	require.ErrorIs(t, l.Close(), vfs.ErrInjected)
	return e, mem
}

// TestOpenWhoseTailCopyFails: a rewrite whose tail copy cannot be saved
// fails the Open before anything is cut; the next Open rewrites it all.
// (A power cut meanwhile would lose the two records, which were never
// synced: SyncNever.)
func TestOpenWhoseTailCopyFails(t *testing.T) {
	for _, op := range []vfs.Op{vfs.OpCreate, vfs.OpWrite, vfs.OpSync, vfs.OpRename, vfs.OpSyncDir} {
		t.Run(op.String(), func(t *testing.T) {
			e, mem := failedSyncNever(t)
			var armed, copying atomic.Bool
			armed.Store(true)
			fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(o vfs.Op, name string) error {
				if strings.Contains(name, tailCopySuffix) {
					copying.Store(true) // the directory's next sync is the copy's
				}
				if o == op && copying.Load() && armed.CompareAndSwap(true, false) {
					return vfs.ErrInjected
				}
				return nil
			}))
			_, err := Open(e.dir, Config{}, Options{FS: fsys, Clock: e.clock})
			require.ErrorIs(t, err, vfs.ErrInjected)
			require.False(t, armed.Load())
			if op == vfs.OpWrite || op == vfs.OpSync {
				// A copy cut short (a full disk) does not keep the room
				// it took until the next Open.
				names, err := mem.List(e.dir)
				require.NoError(t, err)
				for _, n := range names {
					require.False(t, strings.HasSuffix(n, tailCopySuffix+tmpSuffix), "%s left", n)
				}
			}
			l := e.open(Config{})
			require.Equal(t, []string{"one", "two"}, values(readAll(t, l, 0)))
			e.requireCrashKeeps(mem, vfs.TailDrop, "one", "two")
			require.NoError(t, l.Close())
		})
	}
}

// TestRestoreTailCutShort: an Open that finds a tail copy and fails to
// put it back (its write fails, or the power goes before its fsync)
// leaves it for the next one, which does.
func TestRestoreTailCutShort(t *testing.T) {
	e, mem := failedSyncNever(t)
	e.openFailingLogWrite(mem, "the rewrite's write")
	copyName := filepath.Join(e.dir, segment.FileName(0, segment.LogSuffix+tailCopySuffix))
	_, err := mem.Stat(copyName)
	require.NoError(t, err, "the tail copy stays")

	e.openFailingLogWrite(mem, "putting the copy back")
	_, err = mem.Stat(copyName)
	require.NoError(t, err, "the tail copy stays")

	for _, fsys := range []vfs.FS{mem.CrashClone(vfs.CrashOptions{Tail: vfs.TailGarbage}), mem} {
		l, err := Open(e.dir, Config{}, Options{FS: fsys, Clock: e.clock})
		require.NoError(t, err)
		require.Equal(t, []string{"one", "two"}, values(readAll(t, l, 0)))
		_, err = fsys.Stat(copyName)
		require.ErrorIs(t, err, fs.ErrNotExist, "removed once the rewrite is synced")
		require.NoError(t, l.Close())
	}
}

// TestBadTailCopy: a tail copy that is malformed, or whose segment is
// missing or shorter than where it starts, fails the Open with
// ErrBadTailCopy, and leaves the files as they are.
func TestBadTailCopy(t *testing.T) {
	cases := map[string]func(t *testing.T, mem *vfs.MemFS, dir string){
		"checksum": func(t *testing.T, mem *vfs.MemFS, dir string) {
			putTailCopy(t, mem, dir, 0, corruptLast(appendTailCopy(0, []byte("tail"))))
		},
		"short": func(t *testing.T, mem *vfs.MemFS, dir string) {
			putTailCopy(t, mem, dir, 0, []byte{0, 0, 0})
		},
		"no segment": func(t *testing.T, mem *vfs.MemFS, dir string) {
			putTailCopy(t, mem, dir, 1000, appendTailCopy(0, []byte("tail")))
		},
		"past the segment's end": func(t *testing.T, mem *vfs.MemFS, dir string) {
			putTailCopy(t, mem, dir, 0, appendTailCopy(1<<20, []byte("tail")))
		},
	}
	for name, setup := range cases {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			l := e.open(Config{})
			_, err := l.Append(context.Background(), valueBatch(t, 1, "one"), AppendOptions{})
			require.NoError(t, err)
			require.NoError(t, l.Close())
			mem := e.fs.(*vfs.MemFS)
			setup(t, mem, e.dir)
			before := memSnapshot(t, mem, e.dir)
			_, err = Open(e.dir, Config{}, Options{FS: mem, Clock: e.clock})
			require.ErrorIs(t, err, ErrBadTailCopy)
			require.Equal(t, before, memSnapshot(t, mem, e.dir), "nothing changed")
		})
	}
}

// appendTailCopy is a tail copy of tail, from position pos, as saveTail
// writes it.
func appendTailCopy(pos int64, tail []byte) []byte {
	dst := binary.BigEndian.AppendUint64(nil, uint64(pos))
	dst = binary.BigEndian.AppendUint32(dst, crc32.Update(posChecksum(pos), castagnoli, tail))
	return append(dst, tail...)
}

// parseTailCopy decodes a tail copy (see tailCopySuffix) read from path,
// as restoreTail checks it. The tail it returns is data's.
func parseTailCopy(data []byte, path string) (pos int64, tail []byte, err error) {
	pos, _, err = checkTailCopy(bytes.NewReader(data), int64(len(data)), path)
	if err != nil {
		return 0, nil, err
	}
	return pos, data[tailCopyHeader:], nil
}

func corruptLast(b []byte) []byte {
	b[len(b)-1] ^= 1
	return b
}

func putTailCopy(t *testing.T, mem *vfs.MemFS, dir string, base int64, data []byte) {
	t.Helper()
	f, err := mem.Create(filepath.Join(dir, segment.FileName(base, segment.LogSuffix+tailCopySuffix)))
	require.NoError(t, err)
	_, err = f.Write(data)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// memSnapshot is the content of every file in dir.
func memSnapshot(t *testing.T, mem *vfs.MemFS, dir string) map[string]string {
	t.Helper()
	names, err := mem.List(dir)
	require.NoError(t, err)
	out := map[string]string{}
	for _, n := range names {
		data, err := readFile(mem, filepath.Join(dir, n), math.MaxInt64)
		require.NoError(t, err)
		out[n] = string(data)
	}
	return out
}

// FuzzParseTailCopy: a tail copy decodes to what was encoded, and any
// other input either decodes to a position and tail that encode back to
// it, or fails with ErrBadTailCopy.
func FuzzParseTailCopy(f *testing.F) {
	f.Add(appendTailCopy(0, []byte("tail")))
	f.Add(appendTailCopy(4096, nil))
	f.Add(corruptLast(appendTailCopy(61, []byte("tail"))))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		pos, tail, err := parseTailCopy(data, "copy")
		if err != nil {
			require.ErrorIs(t, err, ErrBadTailCopy)
			return
		}
		require.GreaterOrEqual(t, pos, int64(0))
		require.Equal(t, data, appendTailCopy(pos, tail))
	})
}

// TestSecondFailedWriteBackKeepsTheTail: an Open whose write back fails
// to sync a segment that an earlier Open had already written back and
// synced (its tail copy left behind by a failure after that) — when
// putting the copy back, or in the rewrite after it — leaves a file
// whose next truncation to the same position must end what that failed
// fsync lost, so that the next Open's write back is durable before it
// removes the copy: a power cut after it, the truncation durable and the
// bytes not, lost the tail (and failed the Open with a CorruptError, the
// recovery point past it).
func TestSecondFailedWriteBackKeepsTheTail(t *testing.T) {
	for name, skip := range map[string]int{"restore": 0, "rewrite": 1} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			e, mem, armed, l := syncFailLog(t, Config{Sync: SyncNever}, nil)
			require.NoError(t, l.Flush(ctx), "one is durable, two is not")
			_, err := l.Append(ctx, valueBatch(t, 1, "two"), AppendOptions{})
			require.NoError(t, err)
			armed.Store(true)
			require.ErrorIs(t, l.Close(), vfs.ErrInjected)
			copyName := filepath.Join(e.dir, segment.FileName(0, segment.LogSuffix+tailCopySuffix))
			// The first Open writes the tail back and syncs it, and fails
			// to remove the copy.
			_, err = Open(e.dir, Config{}, Options{FS: failOn(mem, vfs.OpRemove, copyName), Clock: e.clock})
			require.ErrorIs(t, err, vfs.ErrInjected)
			// The second one fails to sync the segment: putting the copy
			// back, or (once that is done) writing the tail back again.
			syncs := 0
			_, err = Open(e.dir, Config{}, Options{FS: vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
				if op == vfs.OpSync && strings.HasSuffix(name, "0.log") {
					if syncs++; syncs == skip+1 {
						return vfs.ErrInjected
					}
				}
				return nil
			})), Clock: e.clock})
			require.ErrorIs(t, err, vfs.ErrInjected)
			_, err = mem.Stat(copyName)
			require.NoError(t, err, "the tail copy stays")

			l = e.open(Config{})
			require.Equal(t, []string{"one", "two"}, values(readAll(t, l, 0)))
			require.NoError(t, l.Close())
			for seed := uint64(0); seed < 8; seed++ {
				crashed := mem.CrashClone(vfs.CrashOptions{Reorder: true, Rand: rand.New(rand.NewPCG(seed, 1))})
				l, err := Open(e.dir, Config{}, Options{FS: crashed, Clock: e.clock})
				require.NoError(t, err, "seed %d", seed)
				require.Equal(t, []string{"one", "two"}, values(readAll(t, l, 0)), "seed %d", seed)
				require.NoError(t, l.Close())
			}
		})
	}
}

// TestRestoreTailOpenFailsNotBad: a failure to open the segment of a
// tail copy being put back is a file system error, not ErrBadTailCopy
// (which says the directory was changed by the disk or a hand): the
// copy is good, and the next Open puts it back.
func TestRestoreTailOpenFailsNotBad(t *testing.T) {
	e, mem := failedSyncNever(t)
	e.openFailingLogWrite(mem, "the rewrite's write")

	logName := filepath.Join(e.dir, segment.FileName(0, segment.LogSuffix))
	_, err := Open(e.dir, Config{}, Options{FS: failOn(mem, vfs.OpOpen, logName), Clock: e.clock})
	require.ErrorIs(t, err, vfs.ErrInjected)
	require.NotErrorIs(t, err, ErrBadTailCopy)

	l := e.open(Config{})
	require.Equal(t, []string{"one", "two"}, values(readAll(t, l, 0)))
	require.NoError(t, l.Close())
}

// TestRestoreTailSyncsCopyNameFirst: an Open that finds a tail copy whose
// name is not durable yet — the Open that saved it failed to fsync the
// directory after the copy's rename (or its process died before that
// fsync) — makes the name durable before it cuts the segment to put the
// copy back. Before, it cut at once; its write back then failed to sync,
// and a power cut that kept the truncation and undid the rename (nothing
// orders the two without that fsync) lost the tail: here "two", synced
// by the roll and below the recovery point — silently where the segment
// then ended at the cut, and failing the next Open with a CorruptError
// ("were durable up to") where garbage followed. Crash simulation seed
// RUNNEL_CRASH_SIM_TRANSIENT_SEED=1050151085631.
func TestRestoreTailSyncsCopyNameFirst(t *testing.T) {
	ctx := context.Background()
	e, mem, armed, l := syncFailLog(t, Config{Sync: SyncPeriodic}, nil)
	require.NoError(t, l.Flush(ctx), "one is durable")
	_, err := l.Append(ctx, valueBatch(t, 1, "two"), AppendOptions{})
	require.NoError(t, err)
	require.NoError(t, l.Roll(), "the roll syncs the segment of one and two")
	require.Equal(t, int64(1), l.DurableOffset(), "a roll's fsync moves the recovery point, not the durable offset")
	rp, err := readOffset(mem, e.dir, recoveryPointFile, 0)
	require.NoError(t, err)
	require.Equal(t, int64(2), rp)
	_, err = l.Append(ctx, valueBatch(t, 1, "three"), AppendOptions{})
	require.NoError(t, err)
	armed.Store(true)
	require.ErrorIs(t, l.Flush(ctx), vfs.ErrInjected, "the fsync of the second segment fails")
	require.NoError(t, l.Close(), "a fenced log closes without the marker")

	// The first Open saves the tail of the first segment ("two", from the
	// durable offset 1 on) and fails to sync the directory after the
	// copy's rename: the copy is there, its name not durable.
	var copying atomic.Bool
	_, err = Open(e.dir, Config{}, Options{FS: vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if strings.Contains(name, tailCopySuffix) {
			copying.Store(true)
		}
		if op == vfs.OpSyncDir && copying.CompareAndSwap(true, false) {
			return vfs.ErrInjected
		}
		return nil
	})), Clock: e.clock})
	require.ErrorIs(t, err, vfs.ErrInjected)
	copyName := filepath.Join(e.dir, segment.FileName(0, segment.LogSuffix+tailCopySuffix))
	_, err = mem.Stat(copyName)
	require.NoError(t, err, "the tail copy is there")

	// The second Open puts the copy back and fails to sync the segment.
	logName := filepath.Join(e.dir, segment.FileName(0, segment.LogSuffix))
	_, err = Open(e.dir, Config{}, Options{FS: failOn(mem, vfs.OpSync, logName), Clock: e.clock})
	require.ErrorIs(t, err, vfs.ErrInjected)

	// Then the power goes: whatever a crash keeps of the truncation and
	// of the directory, one and two are there.
	for _, tail := range []vfs.TailMode{vfs.TailDrop, vfs.TailTorn, vfs.TailZeros, vfs.TailGarbage} {
		for seed := uint64(0); seed < 8; seed++ {
			o := vfs.CrashOptions{Tail: tail, Reorder: true, Rand: rand.New(rand.NewPCG(seed, 2))}
			l, err := Open(e.dir, Config{}, Options{FS: mem.CrashClone(o), Clock: e.clock})
			require.NoError(t, err, "%s, seed %d", tail, seed)
			require.Equal(t, []string{"one", "two"}, values(readAll(t, l, 0)), "%s, seed %d", tail, seed)
			require.NoError(t, l.Close())
		}
	}
	// And without one.
	l = e.open(Config{})
	require.Equal(t, []string{"one", "two", "three"}, values(readAll(t, l, 0)))
	require.NoError(t, l.Close())
}

// TestTailCopyOfNoSegmentBesideAGoodOne: a tail copy of a segment the
// directory does not hold makes Open fail with ErrBadTailCopy before it
// puts back any tail copy, a good one of another segment too: nothing
// changed.
func TestTailCopyOfNoSegmentBesideAGoodOne(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	appendOK(t, l, valueBatch(t, 1, "one"))
	size := l.Size()
	require.NoError(t, l.Close())
	mem := e.fs.(*vfs.MemFS)
	putTailCopy(t, mem, e.dir, 0, appendTailCopy(size, []byte("tail")))
	putTailCopy(t, mem, e.dir, 1000, appendTailCopy(0, []byte("tail")))
	before := memSnapshot(t, mem, e.dir)
	_, err := Open(e.dir, Config{}, Options{FS: mem, Clock: e.clock})
	require.ErrorIs(t, err, ErrBadTailCopy)
	require.Equal(t, before, memSnapshot(t, mem, e.dir), "nothing changed")
}

// TestParseTailCopyEdges: a tail copy of no bytes (its header alone)
// decodes; a position up to 1<<62 decodes, one past it (a negative
// int64 too) is refused, though its checksum holds.
func TestParseTailCopyEdges(t *testing.T) {
	pos, tail, err := parseTailCopy(appendTailCopy(7, nil), "x")
	require.NoError(t, err)
	require.EqualValues(t, 7, pos)
	require.Empty(t, tail)
	pos, tail, err = parseTailCopy(appendTailCopy(1<<62, []byte("t")), "x")
	require.NoError(t, err)
	require.EqualValues(t, int64(1)<<62, pos)
	require.Equal(t, "t", string(tail))
	for _, p := range []int64{1<<62 + 1, -1, math.MinInt64} {
		_, _, err = parseTailCopy(appendTailCopy(p, []byte("t")), "x")
		require.ErrorIs(t, err, ErrBadTailCopy, "position %d", p)
	}
}
