package vfs

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// memTree returns every entry of m: files as path → content, directories as
// path + "/" → "".
func memTree(t *testing.T, m *MemFS) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func(dir string)
	walk = func(dir string) {
		names, err := m.List(dir)
		require.NoError(t, err)
		for _, n := range names {
			p := path.Join(dir, n)
			fi, err := m.Stat(p)
			require.NoError(t, err)
			if fi.IsDir() {
				out[p+"/"] = ""
				walk(p)
				continue
			}
			out[p] = memRead(t, m, p)
		}
	}
	walk("/")
	return out
}

func memRead(t *testing.T, fsys FS, name string) string {
	t.Helper()
	f, err := fsys.Open(name)
	require.NoError(t, err)
	defer f.Close()
	size, err := f.Size()
	require.NoError(t, err)
	b, err := ReadView(f, 0, int(size))
	require.NoError(t, err)
	return string(b)
}

// memPut creates name with content s, syncs it, and syncs its directory.
func memPut(t *testing.T, fsys FS, name, s string) {
	t.Helper()
	f, err := fsys.Create(name)
	require.NoError(t, err)
	memWrite(t, f, s)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())
	require.NoError(t, fsys.SyncDir(path.Dir(name)))
}

// memWrite writes s to f, failing t on an error.
func memWrite(t *testing.T, f File, s string) {
	t.Helper()
	_, err := f.Write([]byte(s))
	require.NoError(t, err)
}

// memCreate creates name, to be closed when the test ends.
func memCreate(t *testing.T, fsys FS, name string) File {
	t.Helper()
	f, err := fsys.Create(name)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

func memOpen(t *testing.T, fsys FS, name string) File {
	t.Helper()
	f, err := fsys.Open(name)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

func must[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		require.NoError(t, err)
		return v
	}
}

func TestMemPaths(t *testing.T) {
	m := NewMem()
	for _, root := range []string{"/", ".", "", "/..", "../.."} {
		fi, err := m.Stat(root)
		require.NoError(t, err, root)
		require.True(t, fi.IsDir())
	}
	f, err := m.Create("x")
	require.NoError(t, err)
	require.Equal(t, "x", f.Name())
	memWrite(t, f, "hi")
	require.NoError(t, f.Close())
	for _, name := range []string{"/x", "./x", "x", "/../x", "//x"} {
		require.Equal(t, "hi", memRead(t, m, name), name)
	}
	// Resolved as on disk: what precedes a separator, "." or ".." must
	// be a directory.
	for _, name := range []string{"x/", "x/.", "x/..", "x/../x"} {
		_, err := m.Stat(name)
		require.ErrorIs(t, err, errNotDir, name)
	}
	_, err = m.Stat("a/../x")
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.Equal(t, []string{"x"}, must[[]string](t)(m.List("")))
	require.Equal(t, []string{"x"}, must[[]string](t)(m.List("/")))

	require.NoError(t, m.MkdirAll("d/e", 0o700))
	require.Equal(t, "hi", memRead(t, m, "d/e/../../x"))
	fi, err := m.Stat("/d/e/")
	require.NoError(t, err)
	require.Equal(t, "e", fi.Name())
	require.Equal(t, fs.ModeDir|0o700, fi.Mode())
	require.True(t, fi.ModTime().IsZero())
	require.Nil(t, fi.Sys())
	fi, err = m.Stat("/")
	require.NoError(t, err)
	require.Equal(t, "/", fi.Name())
	fi, err = m.Stat("x")
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o644), fi.Mode())
	require.EqualValues(t, 2, fi.Size())
}

func TestMemErrors(t *testing.T) {
	m := NewMem()
	memPut(t, m, "/f", "file")
	require.NoError(t, m.MkdirAll("/d/sub", 0o755))
	memPut(t, m, "/d/sub/g", "g")
	require.NoError(t, m.MkdirAll("/empty", 0o755))

	pathErr := func(err error, op string, target error) {
		t.Helper()
		var pe *os.PathError
		require.ErrorAs(t, err, &pe)
		require.Equal(t, op, pe.Op)
		require.ErrorIs(t, err, target)
	}
	linkErr := func(err error, target error) {
		t.Helper()
		var le *os.LinkError
		require.ErrorAs(t, err, &le)
		require.ErrorIs(t, err, target)
	}

	_, err := m.Create("/")
	pathErr(err, "open", errIsDir)
	_, err = m.Create("/d")
	pathErr(err, "open", errIsDir)
	_, err = m.Open("/d")
	pathErr(err, "open", errIsDir)
	_, err = m.Create("/f/x")
	pathErr(err, "open", errNotDir)
	_, err = m.Open("/f/x")
	pathErr(err, "open", errNotDir)
	_, err = m.Stat("/f/x")
	pathErr(err, "stat", errNotDir)
	_, err = m.Stat("/nope/x")
	pathErr(err, "stat", fs.ErrNotExist)
	_, err = m.List("/f")
	pathErr(err, "readdirent", errNotDir)
	pathErr(m.SyncDir("/f"), "sync", errNotDir)
	pathErr(m.MkdirAll("/f/y", 0o755), "mkdir", errNotDir)
	pathErr(m.Remove("/"), "remove", fs.ErrInvalid)
	pathErr(m.Remove("/d"), "remove", errNotEmpty)
	pathErr(m.RemoveAll("/"), "RemoveAll", fs.ErrInvalid)
	pathErr(m.RemoveAll("/f/x"), "RemoveAll", errNotDir)
	_, err = m.Lock("/d")
	pathErr(err, "open", errIsDir)
	_, err = m.Lock("/")
	pathErr(err, "open", errIsDir)

	linkErr(m.Rename("/d", "/d/sub/inside"), fs.ErrInvalid)
	linkErr(m.Rename("/f", "/d"), fs.ErrExist) // os.Rename never replaces a directory
	linkErr(m.Rename("/d", "/f"), errNotDir)
	linkErr(m.Rename("/empty", "/d"), fs.ErrExist)
	linkErr(m.Rename("/d/sub", "/empty"), fs.ErrExist) // not even an empty one
	linkErr(m.Rename("/d", "/d"), fs.ErrExist)
	linkErr(m.Rename("/", "/x"), fs.ErrInvalid)
	linkErr(m.Rename("/f", "/f/x"), errNotDir)
	require.NoError(t, m.Rename("/f", "/f"))
	require.NoError(t, m.Rename("/d/sub", "/moved"))
	require.Equal(t, "g", memRead(t, m, "/moved/g"))
	require.Equal(t, []string{"d", "empty", "f", "moved"}, must[[]string](t)(m.List("/")))

	f := memOpen(t, m, "/f")
	_, err = f.ReadAt(make([]byte, 1), -1)
	require.Error(t, err)
	_, err = f.WriteAt([]byte("x"), -1)
	require.Error(t, err)
	_, err = f.(Viewer).View(-1, 1)
	require.ErrorIs(t, err, fs.ErrInvalid)
	_, err = f.(Viewer).View(0, -1)
	require.ErrorIs(t, err, fs.ErrInvalid)
	_, err = f.(Viewer).View(0, 5)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	pathErr(f.Truncate(-1), "truncate", fs.ErrInvalid)

	// An empty WriteAt far out writes nothing, as pwrite(2).
	n, err := f.WriteAt(nil, 100)
	require.NoError(t, err)
	require.Zero(t, n)
	require.EqualValues(t, 4, must[int64](t)(f.Size()))

	require.NoError(t, f.Close())
	_, err = f.Size()
	require.ErrorIs(t, err, os.ErrClosed)
	_, err = f.(Viewer).View(0, 1)
	require.ErrorIs(t, err, os.ErrClosed)
}

// TestMemNameTooLongBeforeADot: a component too long that "." follows
// ("long/.", "d/long/./") is looked up on the way, as Linux looks it up,
// so every operation on the name fails with ErrNameTooLong; MemFS took it
// for the last component, left to the caller, and failed with
// fs.ErrNotExist at the ".". A directory missing or a file before it
// still fails first, as on Linux. Found by FuzzMemNames.
func TestMemNameTooLongBeforeADot(t *testing.T) {
	m := NewMem()
	memPut(t, m, "/f", "file")
	require.NoError(t, m.MkdirAll("/d", 0o755))
	before := memTree(t, m)
	long := strings.Repeat("x", MaxNameLen+1)
	for name, want := range map[string]error{
		"/" + long + "/.":         ErrNameTooLong,
		"/d/" + long + "/./":      ErrNameTooLong,
		"/" + long + "/./.":       ErrNameTooLong,
		"/missing/" + long + "/.": fs.ErrNotExist,
		"/f/" + long + "/.":       errNotDir,
		"/d/../" + long + "/./":   ErrNameTooLong,
	} {
		_, err := m.Open(name)
		require.ErrorIs(t, err, want, "open %q", name)
		_, err = m.Stat(name)
		require.ErrorIs(t, err, want, "stat %q", name)
		_, err = m.Create(name)
		require.ErrorIs(t, err, want, "create %q", name)
		_, err = m.List(name)
		require.ErrorIs(t, err, want, "list %q", name)
		require.ErrorIs(t, m.Rename("/f", name), want, "rename to %q", name)
		require.ErrorIs(t, m.Rename(name, "/g"), want, "rename from %q", name)
	}
	require.Equal(t, before, memTree(t, m), "a failed operation changed the tree")
}

// The MemFS side of the name-length rule (the conformance suite checks
// what both FSes share): bytes are counted, not characters, every error
// reads as Linux's, and the order of the checks is Linux's.
func TestMemNameTooLong(t *testing.T) {
	m := NewMem()
	memPut(t, m, "/f", "file")
	require.NoError(t, m.SyncDir("/"))
	before := memTree(t, m)
	long := strings.Repeat("x", MaxNameLen+1)

	is := func(err error, op, path string, target error) {
		t.Helper()
		var pe *os.PathError
		require.ErrorAs(t, err, &pe)
		require.Equal(t, op, pe.Op)
		require.Equal(t, path, pe.Path)
		require.ErrorIs(t, err, target)
		if target == ErrNameTooLong {
			require.ErrorIs(t, err, syscall.ENAMETOOLONG)
			require.Equal(t, op+" "+path+": file name too long", err.Error())
		}
	}

	// Bytes, not characters: 128 two-byte characters are too many.
	_, err := m.Create("/" + strings.Repeat("é", 128))
	is(err, "open", "/"+strings.Repeat("é", 128), ErrNameTooLong)
	memPut(t, m, "/"+strings.Repeat("é", 127)+"x", "255 bytes")

	_, err = m.Create("/" + long)
	is(err, "open", "/"+long, ErrNameTooLong)
	_, err = m.Open(long + "/x")
	is(err, "open", long+"/x", ErrNameTooLong)
	require.NoError(t, m.MkdirAll("/d", 0o755))
	_, err = m.Stat("/d/../" + long)
	is(err, "stat", "/d/../"+long, ErrNameTooLong)
	_, err = m.Stat("/" + long + "/..")
	is(err, "stat", "/"+long+"/..", ErrNameTooLong) // resolved before ".." drops it
	require.NoError(t, m.Remove("/d"))
	_, err = m.List("/" + long)
	is(err, "open", "/"+long, ErrNameTooLong)
	is(m.Remove("/"+long), "remove", "/"+long, ErrNameTooLong)
	is(m.RemoveAll("/"+long), "RemoveAll", "/"+long, ErrNameTooLong)
	is(m.RemoveAll("/"+long+"/x"), "RemoveAll", "/"+long+"/x", ErrNameTooLong)
	is(m.SyncDir("/"+long), "open", "/"+long, ErrNameTooLong)
	_, err = m.Lock("/" + long)
	is(err, "open", "/"+long, ErrNameTooLong)
	require.Empty(t, m.locks)

	// Linux's order: a file on the way, then the length, then existence.
	_, err = m.Create("/f/" + long)
	is(err, "open", "/f/"+long, errNotDir)
	_, err = m.Create("/missing/" + long)
	is(err, "open", "/missing/"+long, fs.ErrNotExist)
	_, err = m.Open("/" + long + "/missing")
	is(err, "open", "/"+long+"/missing", ErrNameTooLong)
	require.NoError(t, m.RemoveAll("/missing/"+long))

	// Rename: both directories first, then the old name, then the new.
	rename := func(oldname, newname string, target error) {
		t.Helper()
		err := m.Rename(oldname, newname)
		var le *os.LinkError
		require.ErrorAs(t, err, &le)
		require.Equal(t, "rename", le.Op)
		require.Equal(t, oldname, le.Old)
		require.Equal(t, newname, le.New)
		require.ErrorIs(t, err, target)
	}
	rename("/f", "/"+long, ErrNameTooLong)
	rename("/"+long, "/g", ErrNameTooLong)
	rename("/missing", "/"+long, fs.ErrNotExist)
	rename("/"+long, "/missing/g", fs.ErrNotExist)
	rename("/missing", "/f/g", errNotDir)
	require.Equal(t, "file", memRead(t, m, "/f"))

	// MkdirAll makes the directories before the long name, as on disk.
	is(m.MkdirAll("/a/b/"+long+"/c", 0o755), "mkdir", "/a/b/"+long+"/c", ErrNameTooLong)
	fi, err := m.Stat("/a/b")
	require.NoError(t, err)
	require.True(t, fi.IsDir())
	require.NoError(t, m.RemoveAll("/a"))
	require.NoError(t, m.Remove("/"+strings.Repeat("é", 127)+"x"))
	require.NoError(t, m.SyncDir("/"))

	// The failures changed nothing, durable or not.
	require.Equal(t, before, memTree(t, m))
	require.Equal(t, before, memTree(t, m.CrashClone(CrashOptions{})))
	require.Nil(t, m.root.dirty)
}

func TestMemLock(t *testing.T) {
	m := NewMem()
	l, err := m.Lock("LOCK")
	require.NoError(t, err)
	_, err = m.Lock("/LOCK")
	require.ErrorIs(t, err, ErrLocked)
	_, err = m.Lock("./x/../LOCK")
	require.ErrorIs(t, err, fs.ErrNotExist, "x is not there: the name is checked first, as open(2) does")
	require.NoError(t, m.MkdirAll("x", 0o755))
	_, err = m.Lock("./x/../LOCK")
	require.ErrorIs(t, err, ErrLocked)
	require.NoError(t, l.Close())
	require.NoError(t, l.Close()) // idempotent

	l2, err := m.Lock("/LOCK")
	require.NoError(t, err)
	require.NoError(t, l.Close()) // a stale Closer must not release l2's lock
	_, err = m.Lock("LOCK")
	require.ErrorIs(t, err, ErrLocked)
	require.NoError(t, l2.Close())

	// Lock leaves an existing file's content alone.
	memPut(t, m, "/held", "data")
	l, err = m.Lock("/held")
	require.NoError(t, err)
	require.Equal(t, "data", memRead(t, m, "/held"))
	require.NoError(t, l.Close())
}

func TestMemUsage(t *testing.T) {
	m := NewMem()
	require.Zero(t, m.Usage())
	require.NoError(t, m.MkdirAll("/a/b", 0o755))
	memPut(t, m, "/a/b/f", strings.Repeat("x", 10))
	memPut(t, m, "/g", strings.Repeat("y", 20))
	require.EqualValues(t, 30, m.Usage())

	f := memOpen(t, m, "/g")
	require.NoError(t, f.Truncate(5))
	require.EqualValues(t, 15, m.Usage())
	require.NoError(t, m.Remove("/g"))
	require.EqualValues(t, 10, m.Usage()) // the open handle is not counted
	require.NoError(t, m.RemoveAll("/a"))
	require.Zero(t, m.Usage())
}

// A view never changes, whatever happens to its file afterwards.
func TestMemViewImmutable(t *testing.T) {
	m := NewMem()
	f := memCreate(t, m, "/f")
	v := f.(Viewer)
	memWrite(t, f, "abcdefgh")

	type held struct {
		b    []byte
		want string
	}
	var views []held
	take := func(off int64, n int) {
		t.Helper()
		b, err := v.View(off, n)
		require.NoError(t, err)
		require.Equal(t, len(b), cap(b), "a view is capped, so appending to it cannot reach the file")
		views = append(views, held{b, string(b)})
	}
	check := func() {
		t.Helper()
		for _, h := range views {
			require.Equal(t, h.want, string(h.b))
		}
	}

	take(0, 8)
	take(2, 3)
	require.NoError(t, f.Truncate(2))
	memWrite(t, f, "XXXXXXXXXX")
	check()
	take(0, 12)

	_, err := f.WriteAt([]byte("YY"), 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("ZZZ"), 10)
	require.NoError(t, err)
	check()
	take(0, 13)

	require.NoError(t, f.Sync())
	_, err = f.WriteAt([]byte("s"), 3)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(20))
	check()
	take(5, 15)

	// Create over the name truncates the very same inode.
	g, err := m.Create("/f")
	require.NoError(t, err)
	memWrite(t, g, "0123456789012345678901234")
	_, err = f.WriteAt([]byte("!!!!"), 0)
	require.NoError(t, err)
	check()
	take(0, 25)

	require.NoError(t, m.Remove("/f"))
	_, err = f.WriteAt([]byte("gone"), 4)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(0)) // through f, whose Write follows (see File)
	_, err = f.Write(bytes.Repeat([]byte{'#'}, 100))
	require.NoError(t, err)
	check()
	b, err := ReadView(f, 0, 100)
	require.NoError(t, err)
	require.Equal(t, strings.Repeat("#", 100), string(b))
}

// Writes beyond the bytes that views hold happen in place, without copying
// the chunk; an overwrite of viewed bytes copies it once.
func TestMemCopyOnWriteOnlyWhenNeeded(t *testing.T) {
	m := NewMem()
	f, err := m.Create("/f")
	require.NoError(t, err)
	n := f.(*memFile).n
	arr := func() uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(n.chunks[0].buf))) }
	_, err = f.Write(make([]byte, 1000))
	require.NoError(t, err)
	a := arr()

	require.NoError(t, f.Sync()) // O(1): no copy
	require.Equal(t, a, arr())
	_, err = f.WriteAt([]byte("synced bytes overwritten"), 10) // undo, not a copy of the file
	require.NoError(t, err)
	require.Equal(t, a, arr())

	_, err = f.(Viewer).View(0, 100)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("beyond the view"), 500)
	require.NoError(t, err)
	require.Equal(t, a, arr())
	_, err = f.Write([]byte("append")) // moves the small file to a larger array
	require.NoError(t, err)
	require.NotEqual(t, a, arr())

	_, err = f.WriteAt([]byte("not in a view of this array"), 50)
	require.NoError(t, err)
	a = arr()
	_, err = f.(Viewer).View(0, 100)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("inside the view"), 50)
	require.NoError(t, err)
	require.NotEqual(t, a, arr())
	b := arr()
	_, err = f.WriteAt([]byte("again"), 50) // no view holds the new array
	require.NoError(t, err)
	require.Equal(t, b, arr())
}

// A file's unsynced appended bytes, and what each TailMode makes of them.
func TestMemCrashTail(t *testing.T) {
	const base, tail = "synced|", "0123456789"
	setup := func(t *testing.T) *MemFS {
		m := NewMem()
		memPut(t, m, "/f", base)
		f := memOpen(t, m, "/f")
		memWrite(t, f, tail)
		return m
	}

	t.Run("Drop", func(t *testing.T) {
		m := setup(t)
		require.Equal(t, base, memRead(t, m.CrashClone(CrashOptions{}), "/f"))
		require.Equal(t, base+tail, memRead(t, m, "/f"))
	})

	t.Run("Torn", func(t *testing.T) {
		m := setup(t)
		lens := map[int]bool{}
		for seed := range uint64(300) {
			c := m.CrashClone(CrashOptions{Tail: TailTorn, Rand: rand.New(rand.NewPCG(seed, 1))})
			got := memRead(t, c, "/f")
			require.True(t, strings.HasPrefix(base+tail, got), "%q is not a prefix", got)
			require.GreaterOrEqual(t, len(got), len(base))
			lens[len(got)-len(base)] = true
		}
		require.Len(t, lens, len(tail)+1, "every length from 0 to all of the tail")
		require.Equal(t, base+tail, memRead(t, m, "/f"))
	})

	for _, mode := range []TailMode{TailZeros, TailGarbage} {
		t.Run(mode.String(), func(t *testing.T) {
			m := setup(t)
			lens := map[int]bool{}
			for seed := range uint64(300) {
				c := m.CrashClone(CrashOptions{Tail: mode, Rand: rand.New(rand.NewPCG(seed, 2))})
				got := memRead(t, c, "/f")
				require.True(t, strings.HasPrefix(got, base))
				k := len(got) - len(base)
				require.True(t, k >= 1 && k <= len(tail), "tail of %d", k)
				lens[k] = true
				if mode == TailZeros {
					require.Equal(t, strings.Repeat("\x00", k), got[len(base):])
				}
			}
			require.Len(t, lens, len(tail))
			require.Equal(t, base+tail, memRead(t, m, "/f"))
		})
	}

	t.Run("GarbageIsRandom", func(t *testing.T) {
		m := NewMem()
		memPut(t, m, "/f", "")
		f := memOpen(t, m, "/f")
		_, err := f.Write(make([]byte, 4096))
		require.NoError(t, err)
		got := memRead(t, m.CrashClone(CrashOptions{Tail: TailGarbage}), "/f")
		require.NotEmpty(t, got)
		if len(got) >= 16 {
			require.NotEqual(t, strings.Repeat("\x00", len(got)), got)
		}
	})

	t.Run("Deterministic", func(t *testing.T) {
		m := setup(t)
		for _, mode := range []TailMode{TailTorn, TailZeros, TailGarbage} {
			a := memTree(t, m.CrashClone(CrashOptions{Tail: mode}))
			b := memTree(t, m.CrashClone(CrashOptions{Tail: mode}))
			require.Equal(t, a, b)
		}
	})

	t.Run("NothingUnsynced", func(t *testing.T) {
		m := NewMem()
		memPut(t, m, "/f", base)
		for _, mode := range []TailMode{TailDrop, TailTorn, TailZeros, TailGarbage} {
			require.Equal(t, base, memRead(t, m.CrashClone(CrashOptions{Tail: mode}), "/f"))
		}
	})

	// An overwrite in place is lost, but the appended bytes are still a
	// tail; a truncation below the synced size lost takes them along.
	t.Run("OverwrittenFileKeepsTail", func(t *testing.T) {
		m := setup(t)
		f := memOpen(t, m, "/f")
		_, err := f.WriteAt([]byte("S"), 0)
		require.NoError(t, err)
		require.Equal(t, base, memRead(t, m.CrashClone(CrashOptions{Tail: TailDrop}), "/f"))
		for _, mode := range []TailMode{TailTorn, TailZeros, TailGarbage} {
			got := memRead(t, m.CrashClone(CrashOptions{Tail: mode}), "/f")
			require.True(t, strings.HasPrefix(got, base), "%v: %q", mode, got)
			require.LessOrEqual(t, len(got), len(base+tail))
			if mode == TailTorn {
				require.Equal(t, (base + tail)[:len(got)], got)
			} else {
				require.Greater(t, len(got), len(base), "%v", mode)
			}
		}
	})
	t.Run("TruncatedFileGetsNoTail", func(t *testing.T) {
		m := setup(t)
		f := memOpen(t, m, "/f")
		require.NoError(t, f.Truncate(1))
		memWrite(t, f, "S")
		for _, mode := range []TailMode{TailDrop, TailTorn, TailZeros, TailGarbage} {
			require.Equal(t, base, memRead(t, m.CrashClone(CrashOptions{Tail: mode}), "/f"))
		}
	})

	t.Run("UnknownModePanics", func(t *testing.T) {
		require.Panics(t, func() { NewMem().CrashClone(CrashOptions{Tail: TailMode(42)}) })
	})
}

// Each durability rule: what a crash leaves of files and directories.
func TestMemCrashDurability(t *testing.T) {
	write := func(t *testing.T, f File, s string) {
		t.Helper()
		memWrite(t, f, s)
	}
	create := func(t *testing.T, m *MemFS, name string) File {
		t.Helper()
		f, err := m.Create(name)
		require.NoError(t, err)
		t.Cleanup(func() { f.Close() })
		return f
	}
	ok := func(t *testing.T, err error) {
		t.Helper()
		require.NoError(t, err)
	}

	tests := []struct {
		name string
		run  func(t *testing.T, m *MemFS)
		want map[string]string // the clone's whole tree
	}{{
		name: "synced file without SyncDir vanishes",
		run: func(t *testing.T, m *MemFS) {
			f := create(t, m, "/f")
			write(t, f, "abc")
			ok(t, f.Sync())
		},
		want: map[string]string{},
	}, {
		name: "SyncDir then Sync survives",
		run: func(t *testing.T, m *MemFS) {
			f := create(t, m, "/f")
			ok(t, m.SyncDir("/"))
			write(t, f, "abc")
			ok(t, f.Sync())
		},
		want: map[string]string{"/f": "abc"},
	}, {
		name: "SyncDir without Sync leaves an empty file",
		run: func(t *testing.T, m *MemFS) {
			f := create(t, m, "/f")
			write(t, f, "abc")
			ok(t, m.SyncDir("/"))
		},
		want: map[string]string{"/f": ""},
	}, {
		name: "appends after Sync dropped",
		run: func(t *testing.T, m *MemFS) {
			memPut(t, m, "/f", "abc")
			f := memOpen(t, m, "/f")
			write(t, f, "def")
			ok(t, f.Truncate(8))
		},
		want: map[string]string{"/f": "abc"},
	}, {
		name: "rename without SyncDir undone",
		run: func(t *testing.T, m *MemFS) {
			memPut(t, m, "/f", "abc")
			ok(t, m.Rename("/f", "/g"))
		},
		want: map[string]string{"/f": "abc"},
	}, {
		name: "rename with SyncDir durable",
		run: func(t *testing.T, m *MemFS) {
			memPut(t, m, "/f", "abc")
			ok(t, m.Rename("/f", "/g"))
			ok(t, m.SyncDir("/"))
		},
		want: map[string]string{"/g": "abc"},
	}, {
		name: "rename over a file undone, both inodes back",
		run: func(t *testing.T, m *MemFS) {
			memPut(t, m, "/f", "new")
			memPut(t, m, "/g", "old")
			ok(t, m.Rename("/f", "/g"))
			ok(t, m.Remove("/g")) // the replaced inode is gone from the live tree
		},
		want: map[string]string{"/f": "new", "/g": "old"},
	}, {
		name: "rename of a synced-content file keeps content under the old name",
		run: func(t *testing.T, m *MemFS) {
			ok(t, m.SyncDir("/"))
			f := create(t, m, "/tmp")
			ok(t, m.SyncDir("/"))
			write(t, f, "checkpoint")
			ok(t, f.Sync())
			ok(t, m.Rename("/tmp", "/final"))
		},
		want: map[string]string{"/tmp": "checkpoint"},
	}, {
		name: "rename across directories, only the target synced",
		run: func(t *testing.T, m *MemFS) {
			ok(t, m.MkdirAll("/a", 0o755))
			ok(t, m.MkdirAll("/b", 0o755))
			ok(t, m.SyncDir("/"))
			memPut(t, m, "/a/f", "x")
			ok(t, m.Rename("/a/f", "/b/f"))
			ok(t, m.SyncDir("/b"))
		},
		want: map[string]string{"/a/": "", "/b/": "", "/a/f": "x", "/b/f": "x"},
	}, {
		name: "remove without SyncDir undone",
		run: func(t *testing.T, m *MemFS) {
			memPut(t, m, "/f", "abc")
			ok(t, m.Remove("/f"))
		},
		want: map[string]string{"/f": "abc"},
	}, {
		name: "remove with SyncDir durable",
		run: func(t *testing.T, m *MemFS) {
			memPut(t, m, "/f", "abc")
			memPut(t, m, "/g", "def")
			ok(t, m.Remove("/f"))
			ok(t, m.SyncDir("/"))
		},
		want: map[string]string{"/g": "def"},
	}, {
		name: "RemoveAll without SyncDir undone",
		run: func(t *testing.T, m *MemFS) {
			ok(t, m.MkdirAll("/d/e", 0o755))
			ok(t, m.SyncDir("/"))
			ok(t, m.SyncDir("/d"))
			memPut(t, m, "/d/e/f", "abc")
			ok(t, m.RemoveAll("/d"))
		},
		want: map[string]string{"/d/": "", "/d/e/": "", "/d/e/f": "abc"},
	}, {
		name: "MkdirAll durable only as far as parents were synced",
		run: func(t *testing.T, m *MemFS) {
			ok(t, m.MkdirAll("/a/b/c", 0o755))
			ok(t, m.SyncDir("/"))
			ok(t, m.SyncDir("/a/b"))
		},
		want: map[string]string{"/a/": ""},
	}, {
		name: "MkdirAll with every parent synced",
		run: func(t *testing.T, m *MemFS) {
			ok(t, m.MkdirAll("/a/b/c", 0o755))
			ok(t, m.SyncDir("/a/b"))
			ok(t, m.SyncDir("/a"))
			ok(t, m.SyncDir("/"))
		},
		want: map[string]string{"/a/": "", "/a/b/": "", "/a/b/c/": ""},
	}, {
		name: "file in a directory never synced into its parent",
		run: func(t *testing.T, m *MemFS) {
			ok(t, m.MkdirAll("/d", 0o755))
			memPut(t, m, "/d/f", "abc")
		},
		want: map[string]string{},
	}, {
		name: "truncation since Sync reverts",
		run: func(t *testing.T, m *MemFS) {
			memPut(t, m, "/f", "abcdef")
			f := memOpen(t, m, "/f")
			ok(t, f.Truncate(2))
			write(t, f, "XYZW")
		},
		want: map[string]string{"/f": "abcdef"},
	}, {
		name: "truncation then Sync durable",
		run: func(t *testing.T, m *MemFS) {
			memPut(t, m, "/f", "abcdef")
			f := memOpen(t, m, "/f")
			ok(t, f.Truncate(2))
			ok(t, f.Sync())
			write(t, f, "XYZW")
		},
		want: map[string]string{"/f": "ab"},
	}, {
		name: "WriteAt below the synced size reverts",
		run: func(t *testing.T, m *MemFS) {
			memPut(t, m, "/f", "abcdef")
			f := memOpen(t, m, "/f")
			_, err := f.WriteAt([]byte("XY"), 4)
			ok(t, err)
			write(t, f, "gh")
		},
		want: map[string]string{"/f": "abcdef"},
	}, {
		name: "WriteAt then Sync durable",
		run: func(t *testing.T, m *MemFS) {
			memPut(t, m, "/f", "abcdef")
			f := memOpen(t, m, "/f")
			_, err := f.WriteAt([]byte("XY"), 4)
			ok(t, err)
			ok(t, f.Sync())
		},
		want: map[string]string{"/f": "abcdXY"},
	}, {
		name: "Create over a synced file reverts",
		run: func(t *testing.T, m *MemFS) {
			memPut(t, m, "/f", "abc")
			f := create(t, m, "/f")
			write(t, f, "z")
		},
		want: map[string]string{"/f": "abc"},
	}, {
		name: "Create over, then Sync",
		run: func(t *testing.T, m *MemFS) {
			memPut(t, m, "/f", "abc")
			f := create(t, m, "/f")
			write(t, f, "z")
			ok(t, f.Sync())
		},
		want: map[string]string{"/f": "z"},
	}, {
		name: "many overwrites of synced bytes still revert",
		run: func(t *testing.T, m *MemFS) {
			memPut(t, m, "/f", strings.Repeat("0123456789", 10))
			f := memOpen(t, m, "/f")
			r := rand.New(rand.NewPCG(1, 1))
			for range 200 { // far more than the file: the synced content gets materialized
				_, err := f.WriteAt([]byte("##########"), int64(r.IntN(95)))
				ok(t, err)
				if r.IntN(10) == 0 {
					ok(t, f.Truncate(int64(r.IntN(120))))
				}
			}
		},
		want: map[string]string{"/f": strings.Repeat("0123456789", 10)},
	}, {
		name: "removed but open file synced after SyncDir is gone",
		run: func(t *testing.T, m *MemFS) {
			memPut(t, m, "/f", "abc")
			f := memOpen(t, m, "/f")
			ok(t, m.Remove("/f"))
			ok(t, m.SyncDir("/"))
			write(t, f, "def")
			ok(t, f.Sync())
		},
		want: map[string]string{},
	}, {
		name: "directory cycle through stale entries is cut",
		run: func(t *testing.T, m *MemFS) {
			ok(t, m.MkdirAll("/x/y", 0o755))
			ok(t, m.SyncDir("/"))
			ok(t, m.SyncDir("/x"))
			ok(t, m.Rename("/x/y", "/y"))
			ok(t, m.SyncDir("/"))
			ok(t, m.Rename("/x", "/y/x"))
			ok(t, m.SyncDir("/y"))
		},
		// Durable: / → {x, y}, x → {y}, y → {x}. In sorted order x is
		// reached first, then y inside it; y's x is x again, dropped, and
		// the root's y is y again, dropped.
		want: map[string]string{"/x/": "", "/x/y/": ""},
	}}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMem()
			tc.run(t, m)
			before := memTree(t, m)
			c := m.CrashClone(CrashOptions{})
			require.Equal(t, tc.want, memTree(t, c))
			require.Equal(t, before, memTree(t, m), "the original is unchanged")

			// The clone is fully durable: crashing it again changes nothing.
			require.Equal(t, tc.want, memTree(t, c.CrashClone(CrashOptions{Tail: TailGarbage})))
		})
	}
}

// A clone and its original share no bytes that either could change.
func TestMemCrashCloneIndependent(t *testing.T) {
	for _, mode := range []TailMode{TailDrop, TailTorn, TailZeros, TailGarbage} {
		t.Run(mode.String(), func(t *testing.T) {
			m := NewMem()
			memPut(t, m, "/f", "abc")
			f := memOpen(t, m, "/f")
			_, err := f.Write([]byte("defgh")) // into spare capacity, shared with the clone
			require.NoError(t, err)
			orig := memRead(t, m, "/f")

			c := m.CrashClone(CrashOptions{Tail: mode})
			cf := memOpen(t, c, "/f")
			cview, err := cf.(Viewer).View(0, 3)
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(memRead(t, c, "/f"), "abc"))

			// The clone's writes leave the original alone...
			memWrite(t, cf, "XYZXYZXYZ")
			_, err = cf.WriteAt([]byte("W"), 0)
			require.NoError(t, err)
			require.NoError(t, cf.Truncate(1))
			memWrite(t, cf, "VVVVVV")
			require.Equal(t, orig, memRead(t, m, "/f"))

			// ...and the original's the clone.
			cwant := memRead(t, c, "/f")
			_, err = f.WriteAt([]byte("Q"), 0)
			require.NoError(t, err)
			_, err = f.WriteAt([]byte("R"), 4)
			require.NoError(t, err)
			require.NoError(t, f.Truncate(2))
			memWrite(t, f, "0123456789")
			require.Equal(t, cwant, memRead(t, c, "/f"))
			require.Equal(t, "abc", string(cview))

			// Renames and removals in one tree do not show in the other.
			require.NoError(t, c.Rename("/f", "/g"))
			require.NoError(t, m.MkdirAll("/only-in-m", 0o755))
			require.NoError(t, m.Remove("/f"))
			require.Equal(t, []string{"g"}, must[[]string](t)(c.List("/")))
			require.Equal(t, []string{"only-in-m"}, must[[]string](t)(m.List("/")))
		})
	}
}

// checkChunks checks the invariants of a MemFS file's chunks: in file
// order, contiguous, none empty, covering the file's size, none pinned
// beyond its length, none larger than needed unless a single write needed it.
func checkChunks(t *testing.T, f File, where string) {
	t.Helper()
	n := f.(*memFile).n
	n.mu.RLock()
	defer n.mu.RUnlock()
	at := 0
	for i, c := range n.chunks {
		require.Equal(t, at, c.start, "%s: chunk %d", where, i)
		require.NotEmpty(t, c.buf, "%s: chunk %d", where, i)
		require.LessOrEqual(t, int(c.pin.Load()), len(c.buf), "%s: chunk %d", where, i)
		require.LessOrEqual(t, cap(c.buf), c.alloc, "%s: chunk %d", where, i)
		at = c.end()
	}
	require.Equal(t, n.size, at, where)
}

// memSubject is an open file of some MemFS, and the model of what it holds:
// its live bytes, its synced bytes, and whether every change since the sync
// was an append.
type memSubject struct {
	m          *MemFS
	f          File
	live       []byte
	synced     []byte
	appendOnly bool
	minSize    int    // the smallest size since the last Sync
	cut        []byte // the live bytes just before the first truncation since the last Sync
}

// truncated records a truncation of the subject's file (to a smaller size).
func (s *memSubject) truncated() {
	if s.cut == nil {
		s.cut = slices.Clone(s.live)
	}
}

// TestMemModel drives random operations on a file, its crash clones and
// theirs, checking each against a plain model of the semantics (copies
// everywhere) and checking that no view ever changes, with the default
// chunk sizes and with tiny ones, so that writes, views, truncations and
// crashes fall across chunk boundaries all the time.
func TestMemModel(t *testing.T) {
	for _, sizes := range [][3]int{{memChunkMin, memChunkGrow, memChunkMax}, {8, 0, 32}, {1, 0, 1}, {4, 40, 16}} {
		t.Run(fmt.Sprintf("chunks=%d-%d-%d", sizes[0], sizes[1], sizes[2]), func(t *testing.T) {
			testMemModel(t, sizes[0], sizes[1], sizes[2])
		})
	}
}

func testMemModel(t *testing.T, chunkMin, chunkGrow, chunkMax int) {
	seeds := 100
	if testing.Short() {
		seeds = 30
	}
	for seed := range uint64(seeds) {
		r := rand.New(rand.NewPCG(seed, 99))
		newSubject := func(m *MemFS, content []byte) *memSubject {
			f, err := m.Open("/f")
			require.NoError(t, err)
			return &memSubject{m: m, f: f, live: slices.Clone(content), synced: slices.Clone(content), appendOnly: true, minSize: len(content)}
		}
		m := newMemChunked(chunkMin, chunkGrow, chunkMax)
		memPut(t, m, "/f", "")
		subjects := []*memSubject{newSubject(m, nil)}
		type view struct {
			b    []byte
			want string
		}
		var views []view
		randBytes := func(n int) []byte {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte('a' + r.IntN(26))
			}
			return b
		}

		for step := range 400 {
			s := subjects[r.IntN(len(subjects))]
			where := fmt.Sprintf("seed %d step %d", seed, step)
			switch op := r.IntN(100); {
			case op < 30:
				p := randBytes(r.IntN(40))
				_, err := s.f.Write(p)
				require.NoError(t, err)
				s.live = append(s.live, p...)
			case op < 50:
				p := randBytes(r.IntN(30))
				off := r.IntN(len(s.live) + 20)
				_, err := s.f.WriteAt(p, int64(off))
				require.NoError(t, err)
				if len(p) > 0 {
					if end := off + len(p); end > len(s.live) {
						s.live = append(s.live, make([]byte, end-len(s.live))...)
					}
					copy(s.live[off:], p)
					if off < len(s.synced) {
						s.appendOnly = false
					}
				}
			case op < 60:
				size := r.IntN(len(s.live) + 20)
				require.NoError(t, s.f.Truncate(int64(size)))
				if size < len(s.live) {
					s.truncated()
					s.live = s.live[:size:size]
				} else {
					s.live = append(s.live, make([]byte, size-len(s.live))...)
				}
				if size < len(s.synced) {
					s.appendOnly = false
				}
				s.minSize = min(s.minSize, size)
			case op < 70:
				require.NoError(t, s.f.Sync())
				s.synced = slices.Clone(s.live)
				s.appendOnly = true
				s.minSize = len(s.live)
				s.cut = nil
			case op < 72:
				// Create over the name: the same inode, truncated. The
				// file goes on through the new File: the old one still
				// has the old size, as on disk (see File).
				g, err := s.m.Create("/f")
				require.NoError(t, err)
				require.NoError(t, s.f.Close())
				s.f = g
				if len(s.live) > 0 {
					s.truncated()
				}
				if len(s.synced) > 0 {
					s.appendOnly = false
				}
				s.live = nil
				s.minSize = 0
			case op < 80:
				off := r.IntN(len(s.live) + 1)
				n := r.IntN(len(s.live) - off + 1)
				b, err := s.f.(Viewer).View(int64(off), n)
				require.NoError(t, err, where)
				require.Equal(t, string(s.live[off:off+n]), string(b), where)
				views = append(views, view{b, string(b)})
			case op < 87:
				off := r.IntN(len(s.live) + 1)
				n := r.IntN(len(s.live) - off + 1)
				b, err := s.f.(PrefixViewer).ViewPrefix(int64(off), n)
				require.NoError(t, err, where)
				if n > 0 {
					require.NotEmpty(t, b, where)
				}
				require.LessOrEqual(t, len(b), n, where)
				require.Equal(t, string(s.live[off:off+len(b)]), string(b), where)
				views = append(views, view{b, string(b)})
			case op < 95:
				b := make([]byte, r.IntN(len(s.live)+10))
				off := r.IntN(len(s.live) + 5)
				n, err := s.f.ReadAt(b, int64(off))
				want := ""
				if off < len(s.live) {
					want = string(s.live[off:min(len(s.live), off+len(b))])
				}
				require.Equal(t, want, string(b[:n]), where)
				if n < len(b) {
					require.ErrorIs(t, err, io.EOF)
				} else {
					require.NoError(t, err)
				}
			case op < 97:
				// A crash with Reorder: below the smallest size since the
				// last Sync, each sector is synced or new; above it, the
				// synced bytes (a truncation lost), new ones or zeros, or
				// garbage; past the synced size, also the bytes the first
				// truncation since cut off (that truncation lost).
				mode := TailMode(r.IntN(4))
				c := s.m.CrashClone(CrashOptions{Tail: mode, Rand: r, Reorder: true})
				got := []byte(memRead(t, c, "/f"))
				keepLo := min(len(s.synced), s.minSize)
				require.GreaterOrEqual(t, len(got), keepLo, where)
				require.LessOrEqual(t, len(got), max(len(s.synced), len(s.live), len(s.cut)), where)
				cuts := []int{keepLo, len(s.synced), len(s.live), len(s.cut), len(got)}
				for lo := 0; lo < len(got); {
					hi := (lo/crashSector + 1) * crashSector
					for _, c := range cuts {
						if c > lo && c < hi {
							hi = c
						}
					}
					piece := string(got[lo:hi])
					if !(mode == TailGarbage && lo >= keepLo) {
						ok := hi <= len(s.synced) && piece == string(s.synced[lo:hi]) ||
							hi <= len(s.live) && piece == string(s.live[lo:hi]) ||
							lo >= keepLo && piece == string(make([]byte, hi-lo)) ||
							lo >= len(s.synced) && hi <= len(s.cut) && piece == string(s.cut[lo:hi])
						require.True(t, ok, "%s: reorder=%v mode %v: bytes [%d, %d) are neither synced nor new (synced %d, live %d, min %d, got %d)",
							where, true, mode, lo, hi, len(s.synced), len(s.live), s.minSize, len(got))
					}
					lo = hi
				}
				if len(subjects) < 6 {
					subjects = append(subjects, newSubject(c, got))
				}
			default:
				mode := TailMode(r.IntN(4))
				c := s.m.CrashClone(CrashOptions{Tail: mode, Rand: r})
				got := []byte(memRead(t, c, "/f"))
				// Overwrites in place are lost, and so is a truncation
				// below the synced size, with what was appended after it;
				// else the bytes appended since are a tail, as Tail says.
				switch {
				case s.minSize < len(s.synced) || mode == TailDrop:
					require.Equal(t, string(s.synced), string(got), where)
				default:
					require.True(t, bytes.HasPrefix(got, s.synced), where)
					tail := got[len(s.synced):]
					unsynced := len(s.live) - len(s.synced)
					switch mode {
					case TailTorn:
						require.Equal(t, string(s.live[len(s.synced):len(got)]), string(tail), where)
					case TailZeros:
						require.Equal(t, string(make([]byte, len(tail))), string(tail), where)
						fallthrough
					case TailGarbage:
						if unsynced > 0 {
							require.True(t, len(tail) >= 1 && len(tail) <= unsynced, where)
						} else {
							require.Empty(t, tail, where)
						}
					}
				}
				if len(subjects) < 6 {
					subjects = append(subjects, newSubject(c, got))
				}
			}
			size, err := s.f.Size()
			require.NoError(t, err)
			require.Equal(t, len(s.live), int(size), where)
			checkChunks(t, s.f, where)
			require.GreaterOrEqual(t, s.m.Allocated(), s.m.Usage(), where)
		}
		for _, s := range subjects {
			require.Equal(t, string(s.live), memRead(t, s.m, "/f"))
			require.NoError(t, s.f.Close())
		}
		for _, v := range views {
			require.Equal(t, v.want, string(v.b), "seed %d: a view changed", seed)
		}
	}
}

// Concurrent writers on different files, readers on a file being appended,
// and tree operations and clones all at once; run under -race.
func TestMemConcurrent(t *testing.T) {
	m := NewMem()
	require.NoError(t, m.MkdirAll("/d", 0o755))
	iters := 2000
	if testing.Short() {
		iters = 300
	}
	shared, err := m.Create("/d/shared")
	require.NoError(t, err)
	defer shared.Close()

	var wg sync.WaitGroup
	errs := make(chan error, 100)
	check := func(err error) {
		if err != nil {
			select {
			case errs <- err:
			default:
			}
		}
	}
	// The appender writes byte i at offset i (mod 251) in growing chunks.
	wg.Go(func() {
		off := 0
		for i := range iters {
			p := make([]byte, 1+i%97)
			for j := range p {
				p[j] = byte((off + j) % 251)
			}
			_, err := shared.Write(p)
			check(err)
			off += len(p)
			if i%10 == 0 {
				check(shared.Sync())
			}
		}
	})
	for range 2 {
		wg.Go(func() {
			f, err := m.Open("/d/shared")
			check(err)
			if err != nil {
				return
			}
			defer f.Close()
			for i := range iters {
				size, err := f.Size()
				check(err)
				var b []byte
				if i%2 == 0 {
					b, err = f.(Viewer).View(0, int(size))
				} else {
					b = make([]byte, size)
					_, err = f.ReadAt(b, 0)
				}
				check(err)
				for j, c := range b {
					if c != byte(j%251) {
						check(fmt.Errorf("byte %d is %d", j, c))
						break
					}
				}
			}
		})
	}
	for w := range 3 {
		wg.Go(func() {
			name := fmt.Sprintf("/d/w%d", w)
			f, err := m.Create(name)
			check(err)
			if err != nil {
				return
			}
			defer f.Close()
			for i := range iters {
				_, err := f.Write([]byte("record"))
				check(err)
				switch i % 7 {
				case 0:
					check(f.Sync())
				case 3:
					_, err = f.WriteAt([]byte("X"), int64(i%5))
					check(err)
				case 5:
					if i%35 == 5 {
						check(f.Truncate(3))
					}
				}
			}
		})
	}
	wg.Go(func() {
		for i := range iters / 10 {
			check(m.SyncDir("/d"))
			c := m.CrashClone(CrashOptions{Tail: TailTorn})
			_ = c.Usage()
			_ = m.Usage()
			_, err := m.List("/d")
			check(err)
			name := fmt.Sprintf("/d/tmp%d", i%3)
			g, err := m.Create(name)
			check(err)
			if err == nil {
				check(g.Close())
			}
			check(m.Rename(name, "/d/renamed"))
			_, err = m.Stat("/d/renamed")
			check(err)
			l, err := m.Lock("/d/LOCK")
			check(err)
			if err == nil {
				check(l.Close())
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// benchMemFile returns a new file, /f, of a new MemFS, for a benchmark.
func benchMemFile(b *testing.B) File {
	b.Helper()
	f, err := NewMem().Create("/f")
	if err != nil {
		b.Fatal(err)
	}
	return f
}

func BenchmarkMemWrite(b *testing.B) {
	f := benchMemFile(b)
	p := make([]byte, 1024)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%(64<<10) == 0 { // start over every 64 MiB, to bound memory
			if err := f.Truncate(0); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := f.Write(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMemSyncAppend(b *testing.B) {
	f := benchMemFile(b)
	p := make([]byte, 1024)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%(64<<10) == 0 {
			if err := f.Truncate(0); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := f.Write(p); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}

// An index-like pattern: small WriteAts into a preallocated, synced file.
func BenchmarkMemWriteAtSynced(b *testing.B) {
	f := benchMemFile(b)
	const size = 10 << 20
	if err := f.Truncate(size); err != nil {
		b.Fatal(err)
	}
	p := make([]byte, 12)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		off := int64(i*len(p)) % (size - 12)
		if _, err := f.WriteAt(p, off); err != nil {
			b.Fatal(err)
		}
		if i%8 == 0 {
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkMemView(b *testing.B) {
	f := benchMemFile(b)
	if _, err := f.Write(make([]byte, 1<<20)); err != nil {
		b.Fatal(err)
	}
	v := f.(Viewer)
	b.SetBytes(1 << 20)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.View(0, 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMemSyncDirManyEntries measures a change to a directory that
// holds many entries, made durable: one entry created and its directory
// synced, then removed and its directory synced, as a broker adds and
// drops partition directories in its root. The cost should not grow with
// the number of entries.
func BenchmarkMemSyncDirManyEntries(b *testing.B) {
	for _, n := range []int{100, 10_000, 100_000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			m := NewMem()
			for i := range n {
				if err := m.MkdirAll(fmt.Sprintf("/p%d", i), 0o755); err != nil {
					b.Fatal(err)
				}
			}
			if err := m.SyncDir("/"); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := m.MkdirAll("/new", 0o755); err != nil {
					b.Fatal(err)
				}
				if err := m.SyncDir("/"); err != nil {
					b.Fatal(err)
				}
				if err := m.Remove("/new"); err != nil {
					b.Fatal(err)
				}
				if err := m.SyncDir("/"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMemCreateDirsSynced creates n directories in an empty one,
// syncing it after each, as a broker does when a topic with n partitions
// is created: the whole should cost O(n).
func BenchmarkMemCreateDirsSynced(b *testing.B) {
	for _, n := range []int{1000, 3000} {
		b.Run(fmt.Sprintf("dirs=%d", n), func(b *testing.B) {
			names := make([]string, n)
			for i := range names {
				names[i] = fmt.Sprintf("/orders-%d", i)
			}
			b.ReportAllocs()
			for b.Loop() {
				m := NewMem()
				for _, name := range names {
					if err := m.MkdirAll(name, 0o755); err != nil {
						b.Fatal(err)
					}
					if err := m.SyncDir("/"); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// Two Files of one file each keep the size they know — learnt at Open,
// moved by their own Write, WriteAt and Truncate — in memory as on disk,
// and Write appends there: a store that changes a file through two Files
// at once (which File's contract forbids) fails in memory as it would on
// disk. Before, MemFS kept one size per file, so such a store passed every
// test in memory and wrote over its own bytes, or left holes, on disk.
func TestMemTwoFilesKeepTheirOwnSize(t *testing.T) {
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
func TestMemCrashOverwriteKeepsTailMode(t *testing.T) {
	for _, mode := range []TailMode{TailTorn, TailZeros, TailGarbage} {
		t.Run(mode.String(), func(t *testing.T) {
			m := NewMem()
			memPut(t, m, "/f", "synced|")
			f := memOpen(t, m, "/f")
			_, err := f.WriteAt([]byte("S"), 0)
			require.NoError(t, err)
			memWrite(t, f, "appended")
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
		memWrite(t, f, "appended")
		for seed := range uint64(10) {
			c := m.CrashClone(CrashOptions{Tail: TailGarbage, Rand: rand.New(rand.NewPCG(seed, 1))})
			require.Equal(t, "synced|", memRead(t, c, "/f"))
		}
	})
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

// A WriteAt whose end lies past the largest int fails (fs.ErrInvalid),
// writing nothing, rather than wrapping around.
func TestMemWriteAtEndOverflows(t *testing.T) {
	m := NewMem()
	f := memCreate(t, m, "/f")
	memWrite(t, f, "abc")
	n, err := f.WriteAt([]byte("xy"), math.MaxInt64-1)
	require.ErrorIs(t, err, fs.ErrInvalid)
	require.Zero(t, n)
	require.Equal(t, "abc", memRead(t, m, "/f"))
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
