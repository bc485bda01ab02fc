package vfs

import (
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Tests that close gaps mutation testing found in the in-memory FS and
// its wrappers: each fails against a mutant that every other test let
// through.

// A MemFS drops the oldest half of the directory operations not yet
// durable only when one comes with more than memPendingMax pending: up to
// then a crash with Reorder has them all, and whatever prefix of them
// persists starts at the oldest one, so a file created later is never
// found without the first.
func TestCrashReorderPendingKeptUpToMax(t *testing.T) {
	m := NewMem()
	const n = memPendingMax + 1
	for i := range n {
		memCreate(t, m, fmt.Sprintf("/f%d", i))
	}
	some := false
	for seed := range uint64(3) {
		c := m.CrashClone(CrashOptions{Reorder: true, Rand: rand.New(rand.NewPCG(seed, 3))})
		names := must[[]string](t)(c.List("/"))
		if len(names) == 0 {
			continue
		}
		some = true
		for i := range len(names) { // the first len(names) files, and only those
			_, err := c.Stat(fmt.Sprintf("/f%d", i))
			require.NoError(t, err, "seed %d: %d files persisted", seed, len(names))
		}
	}
	require.True(t, some, "no crash persisted any of the operations")
}

// A crash clone may hold an inode under two names (a rename across
// directories with only the target's directory synced): Usage and
// Allocated count it once.
func TestMemUsageCountsHardLinksOnce(t *testing.T) {
	m := NewMem()
	require.NoError(t, MkdirAllDurable(m, "/a", 0o755))
	require.NoError(t, MkdirAllDurable(m, "/b", 0o755))
	memPut(t, m, "/a/x", "0123456789")
	require.NoError(t, m.Rename("/a/x", "/b/x"))
	require.NoError(t, m.SyncDir("/b"))

	c := m.CrashClone(CrashOptions{})
	require.Equal(t, "0123456789", memRead(t, c, "/a/x"))
	require.Equal(t, "0123456789", memRead(t, c, "/b/x"))
	require.EqualValues(t, 10, c.Usage())
	require.Equal(t, m.Allocated(), c.Allocated())
}

// A crash clone of a file overwritten since its last Sync, whose synced
// content is kept whole (snap), shares that content: the clone's own
// overwrites must not reach it, or the original's next crash would find
// the clone's bytes.
func TestMemCrashCloneOfSnapIndependent(t *testing.T) {
	m := NewMem()
	memPut(t, m, "/f", "synced")
	f := memOpen(t, m, "/f")
	_, err := f.WriteAt([]byte("NEW"), 0) // undo outgrows the file: the synced content is kept whole
	require.NoError(t, err)

	c := m.CrashClone(CrashOptions{})
	cf := memOpen(t, c, "/f")
	_, err = cf.WriteAt([]byte("clone!"), 0) // before any view of the clone's file
	require.NoError(t, err)
	require.Equal(t, "clone!", memRead(t, c, "/f"))

	require.Equal(t, "synced", memRead(t, m.CrashClone(CrashOptions{}), "/f"))
	require.Equal(t, "NEWced", memRead(t, m, "/f"))
}

// Trim of a closed file does nothing, though its last chunk has much
// room to spare.
func TestMemTrimClosedDoesNothing(t *testing.T) {
	m := NewMem()
	f, err := m.Create("/f")
	require.NoError(t, err)
	_, err = f.Write(fill(70_000, 'x'))
	require.NoError(t, err)
	_, err = f.Write([]byte("y")) // opens a chunk as large as the file
	require.NoError(t, err)
	before := m.Allocated()
	require.Greater(t, before-m.Usage(), int64(memTrimMin), "room to give back")
	require.NoError(t, f.Close())
	f.(Trimmer).Trim()
	require.Equal(t, before, m.Allocated())
}

// A WriteAt whose end lies past the largest int fails (fs.ErrInvalid),
// writing nothing, rather than wrapping around.
func TestMemWriteAtEndOverflows(t *testing.T) {
	m := NewMem()
	f := memCreate(t, m, "/f")
	_, err := f.Write([]byte("abc"))
	require.NoError(t, err)
	n, err := f.WriteAt([]byte("xy"), math.MaxInt64-1)
	require.ErrorIs(t, err, fs.ErrInvalid)
	require.Zero(t, n)
	require.Equal(t, "abc", memRead(t, m, "/f"))
}

// A small file grows by moving to a larger array up to exactly
// memChunkGrow bytes: a file of that size is still one chunk, the whole
// of it one view.
func TestMemSmallFileUpToGrowIsOneChunk(t *testing.T) {
	m := NewMem()
	f := memCreate(t, m, "/f")
	_, err := f.Write(fill(1024, 'a'))
	require.NoError(t, err)
	_, err = f.Write(fill(memChunkGrow-1024, 'b'))
	require.NoError(t, err)
	require.Equal(t, [][2]int{{0, memChunkGrow}}, memChunks(f))
	v, err := f.(PrefixViewer).ViewPrefix(0, memChunkGrow)
	require.NoError(t, err)
	require.Len(t, v, memChunkGrow)
}

// Trim gives back a last chunk's room when it is exactly memTrimMin bytes
// and exactly a quarter of the chunk: both bounds are inclusive.
func TestMemTrimAtBothBounds(t *testing.T) {
	m := NewMem()
	f := memCreate(t, m, "/f")
	_, err := f.Write(fill(8192, 'a'))
	require.NoError(t, err)
	_, err = f.Write(fill(4096, 'b')) // moves to an array of 16384 bytes
	require.NoError(t, err)
	require.Equal(t, memTrimMin, chunkRoom(f))
	require.EqualValues(t, 4*memTrimMin, m.Allocated())
	f.(Trimmer).Trim()
	require.Zero(t, chunkRoom(f))
	require.EqualValues(t, 12288, m.Allocated())
	require.Equal(t, strings.Repeat("a", 8192)+strings.Repeat("b", 4096), memRead(t, m, "/f"))
}

// Many small overwrites of a synced file keep what it takes to restore its
// synced content bounded by the file's size: once the undo records would
// outgrow it, the synced content is kept whole instead.
func TestMemUndoBounded(t *testing.T) {
	m := NewMem()
	memPut(t, m, "/f", strings.Repeat("s", 1000))
	f := memOpen(t, m, "/f")
	for i := range 1000 {
		_, err := f.WriteAt([]byte{'0' + byte(i%10)}, int64(i))
		require.NoError(t, err)
	}
	n := f.(*memFile).n
	n.mu.RLock()
	undo, undoBytes := len(n.undo), n.undoBytes
	n.mu.RUnlock()
	require.LessOrEqual(t, undoBytes, 1000)
	require.LessOrEqual(t, undo, 1000/memUndoOverhead)
	require.Equal(t, strings.Repeat("s", 1000), memRead(t, m.CrashClone(CrashOptions{}), "/f"))
}

// The first number past the last Op has no name either.
func TestOpStringPastTheLast(t *testing.T) {
	require.Equal(t, "Op(14)", (OpLock + 1).String())
}

// FailFrom and FailNth of a number below 1 never fail, however many
// operations they count.
func TestCounterBelowOneNeverFails(t *testing.T) {
	for _, c := range []*Counter{FailFrom(0), FailFrom(-2), FailNth(0), FailNth(-1, OpWrite)} {
		for op := OpCreate; op <= OpLock; op++ {
			require.NoError(t, c.MaybeError(op, "/f"))
		}
	}
}

// The injector is asked about a rename by its old name.
func TestFaultsRenameAsksByOldName(t *testing.T) {
	m := NewMem()
	memPut(t, m, "/a", "a")
	var names []string
	w := WithFaults(m, InjectorFunc(func(op Op, name string) error {
		if op == OpRename {
			names = append(names, name)
		}
		return nil
	}))
	require.NoError(t, w.Rename("/a", "/b"))
	require.Equal(t, []string{"/a"}, names)
}

// A Stat that fails other than with a missing directory fails
// MkdirAllDurable with its error, creating nothing: the directory may
// well exist.
func TestMkdirAllDurableStatError(t *testing.T) {
	m := NewMem()
	err := MkdirAllDurable(WithFaults(m, FailNth(1, OpStat)), "/a/b", 0o755)
	require.ErrorIs(t, err, ErrInjected)
	require.Empty(t, must[[]string](t)(m.List("/")))
}

// Every TailMode has its name, as CrashClone's panic and test names give
// it.
func TestTailModeString(t *testing.T) {
	for mode, want := range map[TailMode]string{
		TailDrop: "drop", TailTorn: "torn", TailZeros: "zeros", TailGarbage: "garbage", TailGarbage + 1: "TailMode(4)",
	} {
		require.Equal(t, want, mode.String())
	}
}

// A crash clone keeps each directory's permission bits.
func TestMemCrashCloneKeepsDirPerm(t *testing.T) {
	m := NewMem()
	require.NoError(t, MkdirAllDurable(m, "/private", 0o700))
	c := m.CrashClone(CrashOptions{})
	for _, fsys := range []*MemFS{m, c} {
		fi, err := fsys.Stat("/private")
		require.NoError(t, err)
		require.Equal(t, fs.ModeDir|0o700, fi.Mode())
	}
}

// File.Size and File.Name of a WithFaults file are passed through
// unasked: the injector neither counts nor fails them.
func TestFaultsSizeAndNameUnasked(t *testing.T) {
	m := NewMem()
	memPut(t, m, "/f", "abc")
	c := Count()
	f, err := WithFaults(m, c).Open("/f")
	require.NoError(t, err)
	defer f.Close()
	opened := c.N()
	size, err := f.Size()
	require.NoError(t, err)
	require.EqualValues(t, 3, size)
	require.Equal(t, "/f", f.Name())
	require.Equal(t, opened, c.N())

	f2, err := WithFaults(m, FailFrom(2)).Open("/f") // everything after the open fails
	require.NoError(t, err)
	defer f2.Close()
	size, err = f2.Size()
	require.NoError(t, err)
	require.EqualValues(t, 3, size)
}
