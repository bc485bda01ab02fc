package vfs

import (
	"fmt"
	"math/rand/v2"
	"path"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The crashes a real disk may leave that a crash without Reorder never
// shows: each test sets up a history, then collects what crash clones
// with many seeds find, and checks it against what a file system may
// leave after a power loss (POSIX, ext4 data=ordered and the file systems
// without its auto_da_alloc heuristics).

// crashOutcomes returns the distinct trees that crash clones of m with opts
// and seeds 0..299 hold, each as a string, sorted.
func crashOutcomes(t *testing.T, m *MemFS, opts CrashOptions) []string {
	t.Helper()
	seen := map[string]bool{}
	for seed := range uint64(300) {
		o := opts
		o.Rand = rand.New(rand.NewPCG(seed, 7))
		seen[treeString(t, m.CrashClone(o))] = true
	}
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// crashRead returns what name holds after a crash of m (CrashClone with
// no options).
func crashRead(t *testing.T, m *MemFS, name string) string {
	t.Helper()
	return memRead(t, m.CrashClone(CrashOptions{}), name)
}

// failingSyncFile returns a new MemFS holding name with content, synced,
// and name opened through WithFaults so that its first Sync fails (with
// ErrInjected), to be closed when the test ends.
func failingSyncFile(t *testing.T, name, content string) (*MemFS, File) {
	t.Helper()
	m := NewMem()
	memPut(t, m, name, content)
	return m, memOpen(t, WithFaults(m, FailNth(1, OpSync)), name)
}

// treeString is memTree as one line: "name=content;" per entry, sorted.
func treeString(t *testing.T, m *MemFS) string {
	t.Helper()
	tree := memTree(t, m)
	names := make([]string, 0, len(tree))
	for n := range tree {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s=%s;", n, abbrev(tree[n]))
	}
	return b.String()
}

// abbrev writes runs of a byte as "<n>x<b>": "3xa" for "aaa".
func abbrev(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] == s[i] {
			j++
		}
		if s[i] == 0 {
			fmt.Fprintf(&b, "%dx0", j-i)
		} else {
			fmt.Fprintf(&b, "%dx%c", j-i, s[i])
		}
		i = j
		if i < len(s) {
			b.WriteByte(' ')
		}
	}
	return b.String()
}

// An overwrite in place that was not synced reaches the disk sector by
// sector, in any order: a crash may find any mix of old and new sectors.
// Without Reorder the file always reverts whole.
func TestCrashReorderOverwriteTears(t *testing.T) {
	m := NewMem()
	memPut(t, m, "/f", strings.Repeat("a", 3*crashSector))
	f := memOpen(t, m, "/f")
	_, err := f.WriteAt([]byte(strings.Repeat("b", 3*crashSector)), 0)
	require.NoError(t, err)

	require.Equal(t, []string{"/f=1536xa;"}, crashOutcomes(t, m, CrashOptions{}))

	var want []string
	for mask := range 8 {
		var s strings.Builder
		for i := range 3 {
			c := "a"
			if mask&(1<<i) != 0 {
				c = "b"
			}
			s.WriteString(strings.Repeat(c, crashSector))
		}
		want = append(want, "/f="+abbrev(s.String())+";")
	}
	sort.Strings(want)
	for _, mode := range []TailMode{TailDrop, TailTorn, TailZeros, TailGarbage} {
		require.Equal(t, want, crashOutcomes(t, m, CrashOptions{Tail: mode, Reorder: true}), "%s", mode)
	}
}

// A sector only partly overwritten tears as a whole: old or new.
func TestCrashReorderPartialSector(t *testing.T) {
	m := NewMem()
	memPut(t, m, "/f", strings.Repeat("a", 2*crashSector))
	f := memOpen(t, m, "/f")
	_, err := f.WriteAt([]byte("bbbb"), crashSector+10)
	require.NoError(t, err)
	require.Equal(t, []string{
		"/f=1024xa;",
		"/f=522xa 4xb 498xa;",
	}, crashOutcomes(t, m, CrashOptions{Reorder: true}))
}

// Bytes appended after an unsynced overwrite are a tail like any other:
// without Reorder the overwrite is lost and the tail mode decides what
// follows; with it the overwritten sector is old or new besides.
func TestCrashReorderOverwriteThenAppend(t *testing.T) {
	m := NewMem()
	memPut(t, m, "/f", strings.Repeat("a", crashSector))
	f := memOpen(t, m, "/f")
	_, err := f.WriteAt([]byte("b"), 0)
	require.NoError(t, err)
	memWrite(t, f, "ccc")

	var strict []string
	for k := range 4 {
		strict = append(strict, "/f="+abbrev(strings.Repeat("a", crashSector)+strings.Repeat("c", k))+";")
	}
	sort.Strings(strict)
	require.Equal(t, strict, crashOutcomes(t, m, CrashOptions{Tail: TailTorn}))
	var want []string
	for _, head := range []string{"a", "b"} {
		for k := range 4 {
			for _, c := range []string{"c", "\x00"} { // a tail torn by sectors may be a hole
				if k > 0 || c == "c" {
					want = append(want, "/f="+abbrev(head+strings.Repeat("a", crashSector-1)+strings.Repeat(c, k))+";")
				}
			}
		}
	}
	sort.Strings(want)
	require.Equal(t, want, crashOutcomes(t, m, CrashOptions{Tail: TailTorn, Reorder: true}))
}

// A torn tail may be torn by sectors: the file's size reached the disk,
// and only some of its new sectors did (XFS, and other file systems
// without ext4's data=ordered), so zeros may stand before new bytes.
// Without Reorder a torn tail is always a prefix.
func TestCrashReorderTornTailHoles(t *testing.T) {
	m := NewMem()
	memPut(t, m, "/f", strings.Repeat("a", 100))
	f := memOpen(t, m, "/f")
	memWrite(t, f, strings.Repeat("b", 2*crashSector))
	for _, o := range crashOutcomes(t, m, CrashOptions{Tail: TailTorn}) {
		require.NotContains(t, o, "x0", "a hole without Reorder: %s", o)
	}
	var holes bool
	for _, o := range crashOutcomes(t, m, CrashOptions{Tail: TailTorn, Reorder: true}) {
		// Sectors are the file's: [100, 512) is the first one torn.
		if strings.HasPrefix(o, "/f=100xa 412x0 ") && strings.Contains(o, "412x0 512xb") {
			holes = true
		}
	}
	require.True(t, holes, "no crash left a hole before new bytes")
}

// A truncation not synced may reach the disk (the inode's size goes with
// the next journal commit) while what was appended after it does not: a
// crash finds the old content whole, or the truncated file with a tail of
// what followed — never old bytes after new ones.
func TestCrashReorderTruncate(t *testing.T) {
	m := NewMem()
	memPut(t, m, "/f", strings.Repeat("a", 1000))
	f := memOpen(t, m, "/f")
	require.NoError(t, f.Truncate(300))
	memWrite(t, f, strings.Repeat("n", 3))

	require.Equal(t, []string{"/f=1000xa;"}, crashOutcomes(t, m, CrashOptions{Tail: TailTorn}))
	require.Equal(t, []string{"/f=1000xa;", "/f=300xa;"}, crashOutcomes(t, m, CrashOptions{Reorder: true}))
	require.Equal(t, []string{
		"/f=1000xa;", "/f=300xa 1x0;", "/f=300xa 1xn;", "/f=300xa 2x0;", "/f=300xa 2xn;",
		"/f=300xa 3x0;", "/f=300xa 3xn;", "/f=300xa;",
	}, crashOutcomes(t, m, CrashOptions{Tail: TailTorn, Reorder: true}))
	for _, o := range crashOutcomes(t, m, CrashOptions{Tail: TailZeros, Reorder: true}) {
		require.Contains(t, []string{"/f=1000xa;", "/f=300xa 1x0;", "/f=300xa 2x0;", "/f=300xa 3x0;"}, o)
	}
}

// Create on an existing file truncates it: the old content, or an empty
// file with a tail of the new, as replace-via-truncate leaves it without
// auto_da_alloc.
func TestCrashReorderCreateTruncates(t *testing.T) {
	m := NewMem()
	memPut(t, m, "/f", "old")
	f := memCreate(t, m, "/f")
	memWrite(t, f, "new")
	require.Equal(t, []string{"/f=1xo 1xl 1xd;", "/f=;"}, crashOutcomes(t, m, CrashOptions{Reorder: true}))
}

// A created file whose directory was not synced may or may not be there;
// a removal not synced may have reached the disk.
func TestCrashReorderCreateRemove(t *testing.T) {
	m := NewMem()
	memPut(t, m, "/gone", "g")
	f := memCreate(t, m, "/new")
	memWrite(t, f, "x")
	require.NoError(t, f.Sync())
	require.NoError(t, m.Remove("/gone"))

	require.Equal(t, []string{"/gone=1xg;"}, crashOutcomes(t, m, CrashOptions{}))
	require.Equal(t, []string{
		"/gone=1xg;", "/gone=1xg;/new=1xx;", "/new=1xx;",
	}, crashOutcomes(t, m, CrashOptions{Reorder: true}))
}

// Directory operations persist in the order they were made: a later one
// never without an earlier one.
func TestCrashReorderInOrder(t *testing.T) {
	m := NewMem()
	for _, n := range []string{"/a", "/b", "/c"} {
		memCreate(t, m, n)
	}
	require.Equal(t, []string{"", "/a=;", "/a=;/b=;", "/a=;/b=;/c=;"},
		crashOutcomes(t, m, CrashOptions{Reorder: true}))
}

// The classic replace-by-rename without fsync of the new file: the rename
// may reach the disk before the data, leaving the file empty (ext4 with
// noauto_da_alloc, XFS, btrfs). Without Reorder the rename is always
// undone, which hides the missing Sync.
func TestCrashReorderRenameBeforeData(t *testing.T) {
	m := NewMem()
	memPut(t, m, "/cur", "old")
	f := memCreate(t, m, "/tmp")
	memWrite(t, f, "new")
	require.NoError(t, m.Rename("/tmp", "/cur"))

	require.Equal(t, []string{"/cur=1xo 1xl 1xd;"}, crashOutcomes(t, m, CrashOptions{}))
	got := crashOutcomes(t, m, CrashOptions{Reorder: true})
	require.Equal(t, []string{"/cur=1xo 1xl 1xd;", "/cur=1xo 1xl 1xd;/tmp=;", "/cur=;"}, got)

	// With the data synced first, every outcome is whole.
	require.NoError(t, f.Sync())
	require.Equal(t, []string{"/cur=1xn 1xe 1xw;", "/cur=1xo 1xl 1xd;", "/cur=1xo 1xl 1xd;/tmp=1xn 1xe 1xw;"},
		crashOutcomes(t, m, CrashOptions{Reorder: true}))
}

// A rename lands in both of its directories or in neither: the file is
// never lost, nor found twice.
func TestCrashReorderRenameAcrossDirs(t *testing.T) {
	m := NewMem()
	require.NoError(t, MkdirAllDurable(m, "/a", 0o755))
	require.NoError(t, MkdirAllDurable(m, "/b", 0o755))
	memPut(t, m, "/a/x", "x")
	require.NoError(t, m.Rename("/a/x", "/b/x"))
	require.Equal(t, []string{"/a/=;/a/x=1xx;/b/=;", "/a/=;/b/=;/b/x=1xx;"},
		crashOutcomes(t, m, CrashOptions{Reorder: true}))

	// Once one directory is synced, its half is durable; the other half
	// may still be lost, leaving the file under both names.
	require.NoError(t, m.SyncDir("/b"))
	require.Equal(t, []string{"/a/=;/a/x=1xx;/b/=;/b/x=1xx;", "/a/=;/b/=;/b/x=1xx;"},
		crashOutcomes(t, m, CrashOptions{Reorder: true}))
}

// SyncDir makes the operations in its directory durable, even those a later
// one undid before it: a crash does not bring back what SyncDir saw gone.
func TestCrashReorderSyncDirSettles(t *testing.T) {
	m := NewMem()
	memCreate(t, m, "/x")
	require.NoError(t, m.Remove("/x"))
	require.NoError(t, m.SyncDir("/"))
	require.Equal(t, []string{""}, crashOutcomes(t, m, CrashOptions{Reorder: true}))
}

// New directories not synced into their parents may vanish, outermost
// first, whatever was synced inside them.
func TestCrashReorderMkdirAll(t *testing.T) {
	m := NewMem()
	require.NoError(t, m.MkdirAll("/p/q", 0o755))
	memPut(t, m, "/p/q/f", "f")
	require.Equal(t, []string{""}, crashOutcomes(t, m, CrashOptions{}))
	require.Equal(t, []string{"", "/p/=;", "/p/=;/p/q/=;/p/q/f=1xf;"},
		crashOutcomes(t, m, CrashOptions{Reorder: true}))
}

// RemoveAll of a tree not synced: on disk it unlinks one entry at a time,
// depth first, so a crash may find any part of the tree gone, from the
// bottom up. Without Reorder it is all there.
func TestCrashReorderRemoveAll(t *testing.T) {
	m := NewMem()
	require.NoError(t, MkdirAllDurable(m, "/p/q", 0o755))
	memPut(t, m, "/p/q/f", "f")
	memPut(t, m, "/p/g", "g")
	require.NoError(t, m.RemoveAll("/p"))
	require.NoError(t, m.RemoveAll("/missing"))
	all := "/p/=;/p/g=1xg;/p/q/=;/p/q/f=1xf;"
	require.Equal(t, []string{all}, crashOutcomes(t, m, CrashOptions{}))
	require.Equal(t, []string{
		"", "/p/=;", all, "/p/=;/p/q/=;", "/p/=;/p/q/=;/p/q/f=1xf;",
	}, crashOutcomes(t, m, CrashOptions{Reorder: true}))

	// Once the removal is durable, nothing below it comes back, and the
	// unlinks below it are forgotten.
	require.NoError(t, m.SyncDir("/"))
	require.Equal(t, []string{""}, crashOutcomes(t, m, CrashOptions{Reorder: true}))
	memCreate(t, m, "/x")
	require.Len(t, m.pending, 1)
}

// A MemFS whose directories are never synced remembers a bounded number of
// operations for Reorder.
func TestCrashReorderPendingBounded(t *testing.T) {
	m := NewMem()
	for i := range memPendingMax + 100 {
		memCreate(t, m, fmt.Sprintf("/f%d", i))
	}
	require.LessOrEqual(t, len(m.pending), memPendingMax)
	require.Greater(t, len(m.pending), memPendingMax/2)
	names, err := m.CrashClone(CrashOptions{Reorder: true, Rand: rand.New(rand.NewPCG(1, 1))}).List("/")
	require.NoError(t, err)
	all := must[[]string](t)(m.List("/"))
	for _, n := range names { // a prefix of what remains remembered
		require.True(t, slices.Contains(all, n))
	}
	require.NoError(t, m.SyncDir("/"))
	memCreate(t, m, "/last")
	require.Len(t, m.pending, 1, "operations made durable are forgotten")
}

// Operations made durable are forgotten even behind one in a directory
// never synced: they hold no inode for long.
func TestCrashReorderPendingCompacted(t *testing.T) {
	m := NewMem()
	require.NoError(t, m.MkdirAll("/never", 0o755)) // "/" is never synced
	for i := range 1000 {
		memPut(t, m, fmt.Sprintf("/never/f%d", i), "x") // syncs /never
		require.NoError(t, m.Remove(fmt.Sprintf("/never/f%d", i)))
		require.NoError(t, m.SyncDir("/never"))
	}
	require.Less(t, len(m.pending), 200)
	require.Equal(t, []string{"", "/never/=;"}, crashOutcomes(t, m, CrashOptions{Reorder: true}))
}

// A failed Sync may leave the pages it did not write marked clean (Linux),
// so that the next Sync succeeds without writing them: nothing unsynced at
// the failure ever becomes durable. Without that, a store that retried the
// sync and went on would pass every crash test.
func TestCrashFailedSyncLosesData(t *testing.T) {
	m := NewMem()
	memPut(t, m, "/f", "synced|")
	memPut(t, m, "/g", "g")
	fsys := WithFaults(m, FailNth(1, OpSync))
	f := memOpen(t, fsys, "/f")
	memWrite(t, f, "lost")
	require.ErrorIs(t, f.Sync(), ErrInjected)
	require.NoError(t, f.Sync(), "the retry succeeds")
	memWrite(t, f, "|later")
	require.NoError(t, f.Sync())
	require.Equal(t, "synced|lost|later", memRead(t, m, "/f"), "the file still reads what it was given")

	g := memOpen(t, fsys, "/g")
	memWrite(t, g, "g")
	require.NoError(t, g.Sync())

	c := m.CrashClone(CrashOptions{})
	require.Equal(t, "synced|", memRead(t, c, "/f"))
	require.Equal(t, "gg", memRead(t, c, "/g"), "other files are not affected")
	// Cut back to what was synced, or recreated, the file syncs again.
	require.NoError(t, f.Truncate(int64(len("synced|"))))
	memWrite(t, f, "again")
	require.NoError(t, f.Sync())
	require.Equal(t, "synced|again", crashRead(t, m, "/f"))
	// The clone is a fresh disk: its files sync again.
	cf := memOpen(t, c, "/f")
	memWrite(t, cf, "x")
	require.NoError(t, cf.Sync())
	require.Equal(t, "synced|x", crashRead(t, c, path.Clean("/f")))
}

// A file recreated (Create of its name truncates it) after a failed Sync
// syncs again: what the failure lost went with the truncation.
func TestCrashFailedSyncThenRecreate(t *testing.T) {
	m := NewMem()
	memPut(t, m, "/c", "old")
	fsys := WithFaults(m, FailNth(1, OpSync))
	f := memCreate(t, fsys, "/c")
	memWrite(t, f, "new")
	require.ErrorIs(t, f.Sync(), ErrInjected)
	require.Equal(t, "old", crashRead(t, m, "/c"))
	g := memCreate(t, fsys, "/c")
	memWrite(t, g, "newer")
	require.NoError(t, g.Sync())
	require.Equal(t, "newer", crashRead(t, m, "/c"))
}

// A file whose Sync failed with nothing unsynced (unchanged since its
// last Sync) lost nothing: the next Sync that succeeds makes what was
// written since durable, as on Linux, whose next fsync writes the pages
// dirtied since. Before, it stayed undurable until truncated to its own
// size: a sealed segment whose fsync failed, all of it durable, then
// unsealed by a truncation at its end and appended to, lost those appends
// to the next power cut although every later Sync succeeded
// (TestCrashSimTransientFaults seed 1065736532990). One whose Sync failed
// with unsynced bytes still lost them: a truncation that keeps them ends
// nothing; one to its synced size does, also repeated at its own size.
func TestCrashFailedSyncNothingToLose(t *testing.T) {
	m, f := failingSyncFile(t, "/f", "synced|")
	require.ErrorIs(t, f.Sync(), ErrInjected)
	memWrite(t, f, "later")
	require.NoError(t, f.Sync())
	require.Equal(t, "synced|later", crashRead(t, m, "/f"))

	m2, e := failingSyncFile(t, "/e", "synced|")
	memWrite(t, e, "lost")
	require.ErrorIs(t, e.Sync(), ErrInjected)
	require.NoError(t, e.Sync())
	require.Equal(t, "synced|", crashRead(t, m2, "/e"), "still failed")
	require.NoError(t, e.Truncate(int64(len("synced|lost"))))
	require.NoError(t, e.Sync())
	require.Equal(t, "synced|", crashRead(t, m2, "/e"), "a truncation that keeps unsynced bytes ends nothing")
	require.NoError(t, e.Truncate(int64(len("synced|"))))
	require.NoError(t, e.Truncate(int64(len("synced|"))), "again, to its own size")
	memWrite(t, e, "again")
	require.NoError(t, e.Sync())
	require.Equal(t, "synced|again", crashRead(t, m2, "/e"))

	// Cut shorter since its last Sync, and nothing written after: its
	// bytes are synced ones, and the next Sync makes the cut durable.
	m3, g := failingSyncFile(t, "/g", "synced|tail")
	require.NoError(t, g.Truncate(int64(len("synced|"))))
	require.ErrorIs(t, g.Sync(), ErrInjected)
	memWrite(t, g, "new")
	require.NoError(t, g.Sync())
	require.Equal(t, "synced|new", crashRead(t, m3, "/g"))

	// Overwritten in place since its last Sync, its size unchanged: the
	// failure may have lost the overwrite, and the file stays undurable
	// (a short file keeps its synced content whole, a long one undo
	// records of the bytes changed: both ways).
	for _, synced := range []string{"synced|", strings.Repeat("s", 500) + "|"} {
		m4, h := failingSyncFile(t, "/h", synced)
		_, err := h.WriteAt([]byte("S"), 0)
		require.NoError(t, err)
		require.ErrorIs(t, h.Sync(), ErrInjected)
		memWrite(t, h, "later")
		require.NoError(t, h.Sync())
		require.Equal(t, synced, crashRead(t, m4, "/h"), "an overwrite: still failed")
	}

	// Overwritten with the same bytes, or overwritten and written back,
	// before the Sync failed: the file reads as it was synced, so the
	// failure lost nothing (a fsync that did not write the pages left the
	// disk holding what they read), and the next Sync makes later writes
	// durable. Short and long files alike: before, a long one (undo
	// records) stayed undurable, a short one (its synced content compared)
	// did not.
	for _, synced := range []string{"synced|", strings.Repeat("s", 500) + "|"} {
		for _, overwrites := range [][]string{{synced[:3]}, {"S", synced[:1]}} {
			m5, k := failingSyncFile(t, "/k", synced)
			for _, w := range overwrites {
				_, err := k.WriteAt([]byte(w), 0)
				require.NoError(t, err)
			}
			require.ErrorIs(t, k.Sync(), ErrInjected)
			memWrite(t, k, "later")
			require.NoError(t, k.Sync())
			require.Equal(t, synced+"later", crashRead(t, m5, "/k"), "overwrites %q of %d bytes", overwrites, len(synced))
		}
	}
}

// A file cut back below its synced size and written again, whose Sync
// then failed, lost only what lies past the cut (the bytes below it are
// the synced ones, and it was never shorter): cut back there once more
// and written again, it syncs again, as on Linux, where the truncation
// drops the pages (and frees the blocks) that the failed fsync did not
// write. Before, only a truncation to empty ended that failure, and a
// rewrite after a failed fsync whose own fsync failed could never be made
// durable by another (package log's TestSecondFailedWriteBackKeepsTheTail).
func TestCrashFailedSyncAfterCutBack(t *testing.T) {
	m, f := failingSyncFile(t, "/f", "synced|tail")
	require.NoError(t, f.Truncate(int64(len("synced|"))))
	memWrite(t, f, "TAIL")
	require.ErrorIs(t, f.Sync(), ErrInjected)
	require.NoError(t, f.Sync())
	for _, reorder := range []bool{false, true} {
		require.Contains(t, []string{"synced|tail", "synced|"}, memRead(t, m.CrashClone(CrashOptions{Reorder: reorder}), "/f"), "still failed")
	}
	require.NoError(t, f.Truncate(int64(len("synced"))), "below the bytes that changed is not below where it was cut: fine too")
	memWrite(t, f, "|tail2")
	require.NoError(t, f.Sync())
	for _, reorder := range []bool{false, true} {
		require.Equal(t, "synced|tail2", memRead(t, m.CrashClone(CrashOptions{Reorder: reorder}), "/f"))
	}

	// Not when a byte below the cut was overwritten since the last Sync.
	m2, g := failingSyncFile(t, "/g", "synced|tail")
	_, err := g.WriteAt([]byte("S"), 0)
	require.NoError(t, err)
	require.NoError(t, g.Truncate(int64(len("synced|"))))
	memWrite(t, g, "TAIL")
	require.ErrorIs(t, g.Sync(), ErrInjected)
	require.NoError(t, g.Truncate(int64(len("synced|"))))
	require.NoError(t, g.Sync())
	require.Equal(t, "synced|tail", crashRead(t, m2, "/g"), "still failed")

	// Nor when it was shorter than the cut since the last Sync.
	m3, h := failingSyncFile(t, "/h", "synced|tail")
	require.NoError(t, h.Truncate(int64(len("sync"))))
	memWrite(t, h, "ed|TAIL")
	require.ErrorIs(t, h.Sync(), ErrInjected)
	require.NoError(t, h.Truncate(int64(len("synced|"))))
	require.NoError(t, h.Sync())
	require.Equal(t, "synced|tail", crashRead(t, m3, "/h"), "still failed")
}

// A file whose Sync failed after a truncation below its synced size lost
// at most that truncation (and what was written after it): truncated
// again to that size, or below, with its bytes below it the synced ones,
// it syncs again, as on Linux, where the truncation frees the blocks past
// it and the next fsync commits the new size. Before, only a truncation to
// empty ended the failure: a log that cut its segment (TruncateTo, or the
// rewrite after a failed fsync) and whose fsync then failed could never
// make that segment durable again. A truncation that keeps a synced byte
// overwritten since (the pages the failure may have lost) ends nothing.
func TestCrashFailedSyncAfterTruncation(t *testing.T) {
	// A short file keeps its synced content whole once changed, a long
	// one undo records of the bytes changed: both ways.
	for _, synced := range []string{"synced|", strings.Repeat("s", 500) + "|"} {
		t.Run(fmt.Sprint(len(synced)), func(t *testing.T) { testCrashFailedSyncAfterTruncation(t, synced) })
	}
}

func testCrashFailedSyncAfterTruncation(t *testing.T, synced string) {
	m, f := failingSyncFile(t, "/f", synced+"cut")
	require.NoError(t, f.Truncate(int64(len(synced))))
	memWrite(t, f, "new")
	require.ErrorIs(t, f.Sync(), ErrInjected)
	require.NoError(t, f.Sync())
	require.Equal(t, synced+"cut", crashRead(t, m, "/f"), "still failed")
	require.NoError(t, f.Truncate(int64(len(synced))))
	memWrite(t, f, "again")
	require.NoError(t, f.Sync())
	require.Equal(t, synced+"again", crashRead(t, m, "/f"))

	// Cut to its own size, it syncs too, once its bytes are the synced
	// ones: here a synced byte below the cut was overwritten when the Sync
	// failed (which may have lost that overwrite), and written back since.
	m2, g := failingSyncFile(t, "/g", synced+"cut")
	require.NoError(t, g.Truncate(int64(len(synced))))
	_, err := g.WriteAt([]byte("S"), 0)
	require.NoError(t, err)
	require.ErrorIs(t, g.Sync(), ErrInjected)
	_, err = g.WriteAt([]byte(synced[:1]), 0)
	require.NoError(t, err)
	require.NoError(t, g.Sync())
	require.Equal(t, synced+"cut", crashRead(t, m2, "/g"), "written back: still failed, until a cut")
	require.NoError(t, g.Truncate(int64(len(synced))), "to its own size")
	memWrite(t, g, "more")
	require.NoError(t, g.Sync())
	require.Equal(t, synced+"more", crashRead(t, m2, "/g"))

	// A synced byte below the cut overwritten since: the failure may have
	// lost it, and the cut keeps it.
	m3, h := failingSyncFile(t, "/h", synced+"cut")
	_, err = h.WriteAt([]byte("S"), 0)
	require.NoError(t, err)
	require.NoError(t, h.Truncate(int64(len(synced))))
	require.ErrorIs(t, h.Sync(), ErrInjected)
	require.NoError(t, h.Truncate(int64(len(synced))))
	require.NoError(t, h.Sync())
	require.Equal(t, synced+"cut", crashRead(t, m3, "/h"), "an overwrite below the cut: still failed")
	require.NoError(t, h.Truncate(0))
	memWrite(t, h, "x")
	require.NoError(t, h.Sync())
	require.Equal(t, "x", crashRead(t, m3, "/h"))
}

// A file empty when its Sync fails holds nothing that Sync could have
// lost (no page of it reads back unwritten): later Syncs make it durable,
// as a truncation to empty after the failure would (and as on Linux, whose
// next fsync commits the size and writes the pages dirtied since). Before,
// it stayed undurable until truncated again: an index file emptied by a
// log's truncation whose fsync then failed, and appended to after, lost
// its entries to the next power cut although the log's recovery point had
// passed them (TestCrashSimTransientFaults seed 91005047).
func TestCrashFailedSyncOfEmptyFile(t *testing.T) {
	m, f := failingSyncFile(t, "/f", "old entries")
	require.NoError(t, f.Truncate(0))
	require.ErrorIs(t, f.Sync(), ErrInjected)
	require.Equal(t, "old entries", crashRead(t, m, "/f"), "the truncation was not synced")
	memWrite(t, f, "new")
	require.NoError(t, f.Sync())
	require.Equal(t, "new", crashRead(t, m, "/f"))
}

// A truncation is an unsynced change like any other: until the file's
// next Sync, a crash with Reorder may find it lost while the bytes
// appended before it, unsynced, reached the disk (writeback wrote them,
// and the journal had not committed the truncation) — bytes the file cut
// off come back. Before, a truncation at or past the synced size was
// always durable in a crash: a follower's log that cut diverged records
// and did not sync the cut would never see them back in memory, as it
// may on disk.
func TestCrashReorderTruncatedTailMayComeBack(t *testing.T) {
	for _, below := range []bool{false, true} {
		t.Run(fmt.Sprintf("below synced=%v", below), func(t *testing.T) {
			m := NewMem()
			memPut(t, m, "/f", "synced|")
			f := memOpen(t, m, "/f")
			memWrite(t, f, "old-tail")
			cut := int64(len("synced|old"))
			if below {
				cut = 3
			}
			require.NoError(t, f.Truncate(cut))
			memWrite(t, f, "NEW")
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
