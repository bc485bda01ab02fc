package vfs

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A Sync failed by a WithFaults wrapped around another WithFaults of a
// MemFS (a supported stack: Unwrap sees through both) loses what was
// unsynced, as one failed by a single wrapper does: Linux's page cache
// does not care how many wrappers the failing fsync went through. Before,
// the failure was only recorded when the wrapper's file was the MemFS's
// own, so the retried Sync made the lost bytes durable — a kinder disk
// than Linux's.
func TestReview29FailedSyncThroughStackedFaults(t *testing.T) {
	nop := InjectorFunc(func(Op, string) error { return nil })
	for name, wrap := range map[string]func(m *MemFS) FS{
		"outer fails": func(m *MemFS) FS { return WithFaults(WithFaults(m, nop), FailNth(1, OpSync)) },
		"inner fails": func(m *MemFS) FS { return WithFaults(WithFaults(m, FailNth(1, OpSync)), nop) },
		"three deep":  func(m *MemFS) FS { return WithFaults(WithFaults(WithFaults(m, nop), nop), FailNth(1, OpSync)) },
	} {
		t.Run(name, func(t *testing.T) {
			m := NewMem()
			memPut(t, m, "/f", "synced|")
			f := memOpen(t, wrap(m), "/f")
			_, err := f.Write([]byte("lost"))
			require.NoError(t, err)
			require.ErrorIs(t, f.Sync(), ErrInjected)
			require.NoError(t, f.Sync(), "the retry succeeds")
			require.Equal(t, "synced|lost", memRead(t, m, "/f"))
			require.Equal(t, "synced|", memRead(t, m.CrashClone(CrashOptions{}), "/f"))
		})
	}
}

// Two Files of one file each keep the size they know — learnt at Open,
// moved by their own Write, WriteAt and Truncate — in memory as on disk,
// and Write appends there: a store that changes a file through two Files
// at once (which File's contract forbids) fails in memory as it would on
// disk. Before, MemFS kept one size per file, so such a store passed every
// test in memory and wrote over its own bytes, or left holes, on disk.
func TestReview29TwoFilesAsOnDisk(t *testing.T) {
	for name, newFS := range map[string]func(t *testing.T) (FS, string){
		"OS":     func(t *testing.T) (FS, string) { return OS, t.TempDir() },
		"Mem":    func(t *testing.T) (FS, string) { return NewMem(), "/" },
		"Faults": func(t *testing.T) (FS, string) { return WithFaults(NewMem(), Count()), "/" },
	} {
		t.Run(name, func(t *testing.T) {
			fsys, dir := newFS(t)
			f := filepath.Join(dir, "f")
			size := func(file File) int64 {
				t.Helper()
				s, err := file.Size()
				require.NoError(t, err)
				return s
			}
			write := func(file File, s string) {
				t.Helper()
				n, err := file.Write([]byte(s))
				require.NoError(t, err)
				require.Equal(t, len(s), n)
			}
			a := memCreate(t, fsys, f)
			write(a, "hello")
			b := memOpen(t, fsys, f)
			require.EqualValues(t, 5, size(b))

			write(a, "12")
			require.EqualValues(t, 7, size(a))
			require.EqualValues(t, 5, size(b), "b has not seen a's Write")
			write(b, "XY") // at the end b knows: over a's bytes
			require.Equal(t, "helloXY", memRead(t, fsys, f))
			require.EqualValues(t, 7, size(b))

			require.NoError(t, a.Truncate(2))
			require.EqualValues(t, 7, size(b), "b has not seen a's Truncate")
			write(b, "!") // past the end: a hole of zeros
			require.Equal(t, "he\x00\x00\x00\x00\x00!", memRead(t, fsys, f))
			require.EqualValues(t, 2, size(a))
			require.EqualValues(t, 8, size(b))

			_, err := a.WriteAt([]byte("ab"), 1) // moves a's size to 3
			require.NoError(t, err)
			require.EqualValues(t, 3, size(a))
			write(a, "c")
			require.Equal(t, "habc\x00\x00\x00!", memRead(t, fsys, f))

			c := memCreate(t, fsys, f) // truncates the file under a and b
			require.EqualValues(t, 0, size(c))
			require.EqualValues(t, 4, size(a))
			write(c, "new")
			require.Equal(t, "new", memRead(t, fsys, f))
		})
	}
}

// Without Reorder, the bytes appended since the last Sync go as Tail says
// whatever else changed: a file also overwritten in place below its synced
// size (the overwrite lost, as every unsynced change is) still has a torn,
// zeroed or garbage tail, as a disk that wrote the file's new size but not
// the overwritten sector leaves it. Before, such a file simply reverted to
// its synced content, whatever the Tail mode: kinder than the append-only
// file next to it, and than a real disk.
func TestReview29OverwriteKeepsTailMode(t *testing.T) {
	for _, mode := range []TailMode{TailTorn, TailZeros, TailGarbage} {
		t.Run(mode.String(), func(t *testing.T) {
			m := NewMem()
			memPut(t, m, "/f", "synced|")
			f := memOpen(t, m, "/f")
			_, err := f.WriteAt([]byte("S"), 0)
			require.NoError(t, err)
			_, err = f.Write([]byte("appended"))
			require.NoError(t, err)
			longer := false
			for seed := range uint64(20) {
				c := m.CrashClone(CrashOptions{Tail: mode, Rand: rand.New(rand.NewPCG(seed, 1))})
				got := memRead(t, c, "/f")
				require.Equal(t, "synced|", got[:len("synced|")], "the overwrite is lost, as without Reorder every change is")
				tail := got[len("synced|"):]
				require.LessOrEqual(t, len(tail), len("appended"))
				switch mode {
				case TailTorn:
					require.Equal(t, "appended"[:len(tail)], tail)
				case TailZeros:
					require.Equal(t, strings.Repeat("\x00", len(tail)), tail)
					require.NotEmpty(t, tail)
				case TailGarbage:
					require.NotEmpty(t, tail)
				}
				longer = longer || len(tail) > 0
			}
			require.True(t, longer, "some crash keeps some of the tail")
		})
	}
	t.Run("truncated below", func(t *testing.T) {
		// A truncation below the synced size lost takes what was
		// appended after it along (as with Reorder): the synced content.
		m := NewMem()
		memPut(t, m, "/f", "synced|")
		f := memOpen(t, m, "/f")
		require.NoError(t, f.Truncate(3))
		_, err := f.Write([]byte("appended"))
		require.NoError(t, err)
		for seed := range uint64(10) {
			c := m.CrashClone(CrashOptions{Tail: TailGarbage, Rand: rand.New(rand.NewPCG(seed, 1))})
			require.Equal(t, "synced|", memRead(t, c, "/f"))
		}
	})
}

// A truncation is an unsynced change like any other: until the file's
// next Sync, a crash with Reorder may find it lost while the bytes
// appended before it, unsynced, reached the disk (writeback wrote them,
// and the journal had not committed the truncation) — bytes the file cut
// off come back. Before, a truncation at or past the synced size was
// always durable in a crash: a follower's log that cut diverged records
// and did not sync the cut would never see them back in memory, as it
// may on disk.
func TestReview29TruncatedTailMayComeBack(t *testing.T) {
	for _, below := range []bool{false, true} {
		t.Run(fmt.Sprintf("below synced=%v", below), func(t *testing.T) {
			m := NewMem()
			memPut(t, m, "/f", "synced|")
			f := memOpen(t, m, "/f")
			_, err := f.Write([]byte("old-tail"))
			require.NoError(t, err)
			cut := int64(len("synced|old"))
			if below {
				cut = 3
			}
			require.NoError(t, f.Truncate(cut))
			_, err = f.Write([]byte("NEW"))
			require.NoError(t, err)
			contents := func() map[string]bool {
				seen := map[string]bool{}
				for seed := range uint64(300) {
					c := m.CrashClone(CrashOptions{Tail: TailTorn, Reorder: true, Rand: rand.New(rand.NewPCG(seed, 7))})
					seen[memRead(t, c, "/f")] = true
				}
				return seen
			}
			got := contents()
			require.True(t, got["synced|old-tail"], "the truncation lost, the tail before it written back: %q", got)
			for o := range got {
				require.NotContains(t, o, "-tailNEW", "what was appended after a lost truncation is lost with it")
			}
			// A Sync makes the truncation durable.
			require.NoError(t, f.Sync())
			for o := range contents() {
				require.NotContains(t, o, "tail")
			}
		})
	}
}
