package vfs

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// testFS runs the conformance suite: every FS and File method, and the
// errors callers rely on, the same on every FS. newFS returns a fresh FS and
// an existing, empty directory in it.
func testFS(t *testing.T, newFS func(t *testing.T) (fs FS, dir string)) {
	// isOS reports whether fsys is the OS FS, wrapped or not, so that the
	// few checks of things Windows does differently can be skipped there.
	isOS := func(fsys FS) bool {
		if ff, ok := fsys.(*faultFS); ok {
			fsys = ff.fs
		}
		return fsys == OS
	}
	isWindowsOS := func(fsys FS) bool { return isOS(fsys) && runtime.GOOS == "windows" }

	readAll := func(t *testing.T, f File) string {
		t.Helper()
		size, err := f.Size()
		require.NoError(t, err)
		b := make([]byte, size)
		n, err := f.ReadAt(b, 0)
		require.NoError(t, err)
		require.Equal(t, int(size), n)
		return string(b)
	}

	content := func(t *testing.T, fsys FS, name string) string {
		t.Helper()
		f, err := fsys.Open(name)
		require.NoError(t, err)
		defer f.Close()
		return readAll(t, f)
	}

	writeFile := func(t *testing.T, fsys FS, name, s string) {
		t.Helper()
		f, err := fsys.Create(name)
		require.NoError(t, err)
		memWrite(t, f, s)
		require.NoError(t, f.Sync())
		require.NoError(t, f.Close())
	}

	t.Run("CreateWriteReadAt", func(t *testing.T) {
		fsys, dir := newFS(t)
		name := filepath.Join(dir, "f")
		f, err := fsys.Create(name)
		require.NoError(t, err)
		require.Equal(t, name, f.Name())
		n, err := f.Write([]byte("hello"))
		require.NoError(t, err)
		require.Equal(t, 5, n)
		memWrite(t, f, " world")
		size, err := f.Size()
		require.NoError(t, err)
		require.EqualValues(t, 11, size)
		require.Equal(t, "hello world", readAll(t, f))

		b := make([]byte, 3)
		n, err = f.ReadAt(b, 6)
		require.NoError(t, err)
		require.Equal(t, "wor", string(b[:n]))

		b = make([]byte, 8)
		n, err = f.ReadAt(b, 6)
		require.ErrorIs(t, err, io.EOF)
		require.Equal(t, "world", string(b[:n]))
		n, err = f.ReadAt(b, 11)
		require.ErrorIs(t, err, io.EOF)
		require.Zero(t, n)
		n, err = f.ReadAt(b, 100)
		require.ErrorIs(t, err, io.EOF)
		require.Zero(t, n)
		n, err = f.ReadAt(nil, 3)
		require.NoError(t, err)
		require.Zero(t, n)

		require.NoError(t, f.Sync())
		require.NoError(t, f.Close())
	})

	t.Run("OpenAppendsCreateTruncates", func(t *testing.T) {
		fsys, dir := newFS(t)
		name := filepath.Join(dir, "f")
		writeFile(t, fsys, name, "abc")

		f, err := fsys.Open(name)
		require.NoError(t, err)
		require.Equal(t, name, f.Name())
		size, err := f.Size()
		require.NoError(t, err)
		require.EqualValues(t, 3, size)
		memWrite(t, f, "def")
		require.NoError(t, f.Close())
		require.Equal(t, "abcdef", content(t, fsys, name))

		f, err = fsys.Create(name)
		require.NoError(t, err)
		size, err = f.Size()
		require.NoError(t, err)
		require.Zero(t, size)
		require.NoError(t, f.Close())
		require.Equal(t, "", content(t, fsys, name))
	})

	t.Run("NotExist", func(t *testing.T) {
		fsys, dir := newFS(t)
		var pe *os.PathError

		_, err := fsys.Open(filepath.Join(dir, "missing"))
		require.ErrorIs(t, err, fs.ErrNotExist)
		require.ErrorAs(t, err, &pe)

		_, err = fsys.Create(filepath.Join(dir, "nodir", "f"))
		require.ErrorIs(t, err, fs.ErrNotExist)
		require.ErrorAs(t, err, &pe)

		_, err = fsys.Stat(filepath.Join(dir, "missing"))
		require.ErrorIs(t, err, fs.ErrNotExist)
		require.ErrorAs(t, err, &pe)

		_, err = fsys.List(filepath.Join(dir, "missing"))
		require.ErrorIs(t, err, fs.ErrNotExist)

		err = fsys.Remove(filepath.Join(dir, "missing"))
		require.ErrorIs(t, err, fs.ErrNotExist)
		require.ErrorAs(t, err, &pe)

		err = fsys.Rename(filepath.Join(dir, "missing"), filepath.Join(dir, "other"))
		require.ErrorIs(t, err, fs.ErrNotExist)
		var le *os.LinkError
		require.ErrorAs(t, err, &le)

		_, err = fsys.Lock(filepath.Join(dir, "nodir", "LOCK"))
		require.ErrorIs(t, err, fs.ErrNotExist)

		if !isWindowsOS(fsys) {
			require.ErrorIs(t, fsys.SyncDir(filepath.Join(dir, "missing")), fs.ErrNotExist)
		}

		require.NoError(t, fsys.RemoveAll(filepath.Join(dir, "missing")))
		require.NoError(t, fsys.RemoveAll(filepath.Join(dir, "missing", "deeper")))
	})

	t.Run("OpenDirFails", func(t *testing.T) {
		fsys, dir := newFS(t)
		_, err := fsys.Open(dir)
		require.Error(t, err)
		_, err = fsys.Create(dir)
		require.Error(t, err)
	})

	t.Run("WriteAt", func(t *testing.T) {
		fsys, dir := newFS(t)
		f, err := fsys.Create(filepath.Join(dir, "f"))
		require.NoError(t, err)
		defer f.Close()
		n, err := f.WriteAt([]byte("xy"), 5)
		require.NoError(t, err)
		require.Equal(t, 2, n)
		require.Equal(t, "\x00\x00\x00\x00\x00xy", readAll(t, f))
		_, err = f.WriteAt([]byte("ab"), 1)
		require.NoError(t, err)
		require.Equal(t, "\x00ab\x00\x00xy", readAll(t, f))
		_, err = f.WriteAt([]byte("YZ"), 6) // over the end and beyond it
		require.NoError(t, err)
		require.Equal(t, "\x00ab\x00\x00xYZ", readAll(t, f))
		_, err = f.Write([]byte("!")) // Write appends at the end
		require.NoError(t, err)
		require.Equal(t, "\x00ab\x00\x00xYZ!", readAll(t, f))
		_, err = f.WriteAt([]byte("q"), -1)
		require.Error(t, err)
		// Nothing written beyond the end extends nothing, as pwrite(2)
		// does: the append position stays (the OS FS's moved to the
		// offset, and the next Write left a hole).
		n, err = f.WriteAt(nil, 20)
		require.NoError(t, err)
		require.Zero(t, n)
		size, err := f.Size()
		require.NoError(t, err)
		require.EqualValues(t, 9, size)
		memWrite(t, f, ".")
		require.Equal(t, "\x00ab\x00\x00xYZ!.", readAll(t, f))
	})

	t.Run("Truncate", func(t *testing.T) {
		fsys, dir := newFS(t)
		f, err := fsys.Create(filepath.Join(dir, "f"))
		require.NoError(t, err)
		defer f.Close()
		memWrite(t, f, "0123456789")
		require.NoError(t, f.Truncate(4))
		size, err := f.Size()
		require.NoError(t, err)
		require.EqualValues(t, 4, size)
		memWrite(t, f, "Z")
		require.Equal(t, "0123Z", readAll(t, f))
		require.NoError(t, f.Truncate(8))
		require.Equal(t, "0123Z\x00\x00\x00", readAll(t, f))
		memWrite(t, f, "e")
		require.Equal(t, "0123Z\x00\x00\x00e", readAll(t, f))
		require.NoError(t, f.Truncate(0))
		require.Equal(t, "", readAll(t, f))
		require.Error(t, f.Truncate(-1))
		require.NoError(t, f.Sync())
	})

	t.Run("Dirs", func(t *testing.T) {
		fsys, dir := newFS(t)
		sub := filepath.Join(dir, "a", "b", "c")
		require.NoError(t, fsys.MkdirAll(sub, 0o755))
		require.NoError(t, fsys.MkdirAll(sub, 0o755))
		require.NoError(t, fsys.SyncDir(sub))
		require.NoError(t, fsys.SyncDir(dir))

		fi, err := fsys.Stat(sub)
		require.NoError(t, err)
		require.True(t, fi.IsDir())
		require.True(t, fi.Mode().IsDir())
		require.Equal(t, "c", fi.Name())

		for _, n := range []string{"b", "c", "a1", "0"} {
			writeFile(t, fsys, filepath.Join(dir, n), n+n)
		}
		names, err := fsys.List(dir)
		require.NoError(t, err)
		require.Equal(t, []string{"0", "a", "a1", "b", "c"}, names)

		names, err = fsys.List(sub)
		require.NoError(t, err)
		require.Empty(t, names)

		fi, err = fsys.Stat(filepath.Join(dir, "a1"))
		require.NoError(t, err)
		require.False(t, fi.IsDir())
		require.True(t, fi.Mode().IsRegular())
		require.Equal(t, "a1", fi.Name())
		require.EqualValues(t, 4, fi.Size())

		// A file stands in the way.
		require.Error(t, fsys.MkdirAll(filepath.Join(dir, "b", "x"), 0o755))
		_, err = fsys.Create(filepath.Join(dir, "b", "x"))
		require.Error(t, err)
		_, err = fsys.List(filepath.Join(dir, "b"))
		require.Error(t, err)
	})

	t.Run("Remove", func(t *testing.T) {
		fsys, dir := newFS(t)
		name := filepath.Join(dir, "f")
		writeFile(t, fsys, name, "x")
		require.NoError(t, fsys.Remove(name))
		_, err := fsys.Open(name)
		require.ErrorIs(t, err, fs.ErrNotExist)
		require.ErrorIs(t, fsys.Remove(name), fs.ErrNotExist)

		sub := filepath.Join(dir, "d")
		require.NoError(t, fsys.MkdirAll(filepath.Join(sub, "e"), 0o755))
		writeFile(t, fsys, filepath.Join(sub, "e", "f"), "y")
		err = fsys.Remove(sub)
		require.Error(t, err)
		require.NotErrorIs(t, err, fs.ErrNotExist)
		// ENOTEMPTY (Windows: ERROR_DIR_NOT_EMPTY) matches fs.ErrExist;
		// MemFS's did not (found by FuzzMemNames).
		require.ErrorIs(t, err, fs.ErrExist)
		_, err = fsys.Stat(filepath.Join(sub, "e", "f"))
		require.NoError(t, err)

		require.NoError(t, fsys.Remove(filepath.Join(sub, "e", "f")))
		require.NoError(t, fsys.Remove(filepath.Join(sub, "e")))
		names, err := fsys.List(sub)
		require.NoError(t, err)
		require.Empty(t, names)

		require.NoError(t, fsys.MkdirAll(filepath.Join(sub, "g", "h"), 0o755))
		writeFile(t, fsys, filepath.Join(sub, "g", "h", "i"), "z")
		writeFile(t, fsys, filepath.Join(sub, "j"), "z")
		require.NoError(t, fsys.RemoveAll(sub))
		_, err = fsys.Stat(sub)
		require.ErrorIs(t, err, fs.ErrNotExist)
		names, err = fsys.List(dir)
		require.NoError(t, err)
		require.Empty(t, names)
		require.NoError(t, fsys.SyncDir(dir))
	})

	t.Run("Rename", func(t *testing.T) {
		fsys, dir := newFS(t)
		a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
		writeFile(t, fsys, a, "aaa")
		require.NoError(t, fsys.Rename(a, b))
		_, err := fsys.Open(a)
		require.ErrorIs(t, err, fs.ErrNotExist)
		require.Equal(t, "aaa", content(t, fsys, b))

		writeFile(t, fsys, c, "cc")
		require.NoError(t, fsys.Rename(c, b)) // replaces b
		require.Equal(t, "cc", content(t, fsys, b))
		names, err := fsys.List(dir)
		require.NoError(t, err)
		require.Equal(t, []string{"b"}, names)

		sub := filepath.Join(dir, "sub")
		require.NoError(t, fsys.MkdirAll(sub, 0o755))
		require.NoError(t, fsys.Rename(b, filepath.Join(sub, "moved")))
		require.Equal(t, "cc", content(t, fsys, filepath.Join(sub, "moved")))

		require.NoError(t, fsys.Rename(sub, filepath.Join(dir, "sub2"))) // a directory
		require.Equal(t, "cc", content(t, fsys, filepath.Join(dir, "sub2", "moved")))
		_, err = fsys.Stat(sub)
		require.ErrorIs(t, err, fs.ErrNotExist)

		err = fsys.Rename(filepath.Join(dir, "sub2", "moved"), filepath.Join(dir, "nodir", "x"))
		require.ErrorIs(t, err, fs.ErrNotExist)
		require.NoError(t, fsys.SyncDir(dir))
	})

	t.Run("RenameOntoDirectory", func(t *testing.T) {
		// os.Rename never replaces a directory, not even an empty one
		// with a directory (Linux's rename(2) would): what works in
		// memory must work on disk.
		fsys, dir := newFS(t)
		f, d, empty := filepath.Join(dir, "f"), filepath.Join(dir, "d"), filepath.Join(dir, "empty")
		writeFile(t, fsys, f, "ff")
		require.NoError(t, fsys.MkdirAll(filepath.Join(d, "sub"), 0o755))
		require.NoError(t, fsys.MkdirAll(empty, 0o755))
		// A directory named with a trailing separator, "." or ".." too
		// (MemFS said "not a directory" for a file renamed onto one:
		// found by FuzzMemNames).
		sep := string(filepath.Separator)
		for _, c := range [][2]string{{d, empty}, {f, empty}, {d, d}, {empty, empty}, {filepath.Join(d, "sub"), empty},
			{f, empty + sep}, {f, d + sep + "sub" + sep + ".."}, {f, empty + sep + "."}, {d, empty + sep}} {
			err := fsys.Rename(c[0], c[1])
			if isWindowsOS(fsys) && c[0] == c[1] && err == nil {
				// os.Rename refuses a directory onto itself on unix
				// systems by a check of its own; on Windows it is
				// MoveFileEx's call, and Wine renames the directory
				// onto itself. Nothing is replaced either way (the
				// names are checked below).
				continue
			}
			var le *os.LinkError
			require.ErrorAs(t, err, &le, "%s → %s", c[0], c[1])
			if !isWindowsOS(fsys) {
				require.ErrorIs(t, err, fs.ErrExist, "%s → %s", c[0], c[1])
			}
		}
		names, err := fsys.List(dir)
		require.NoError(t, err)
		require.Equal(t, []string{"d", "empty", "f"}, names)
		names, err = fsys.List(d)
		require.NoError(t, err)
		require.Equal(t, []string{"sub"}, names)
		require.Equal(t, "ff", content(t, fsys, f))
	})

	t.Run("NamesResolvedAsOnDisk", func(t *testing.T) {
		// A name is resolved one component at a time, as the kernel does:
		// a component followed by a separator, "." or ".." must be an
		// existing directory, even where cleaning the name would drop it.
		fsys, dir := newFS(t)
		if isWindowsOS(fsys) {
			t.Skip("Windows resolves names in its own way")
		}
		f, d := filepath.Join(dir, "f"), filepath.Join(dir, "d")
		writeFile(t, fsys, f, "ff")
		require.NoError(t, fsys.MkdirAll(d, 0o755))
		sep := string(filepath.Separator)
		notDir := func(err error, what string) {
			t.Helper()
			require.Error(t, err, what)
			require.NotErrorIs(t, err, fs.ErrNotExist, what)
			require.Contains(t, err.Error(), "not a directory", what)
		}
		for _, name := range []string{f + sep, f + sep + ".", f + sep + "..", f + sep + ".." + sep + "d"} {
			_, err := fsys.Stat(name)
			notDir(err, "Stat "+name)
			_, err = fsys.Open(name)
			notDir(err, "Open "+name)
			notDir(fsys.Remove(name), "Remove "+name)
			notDir(fsys.Rename(name, filepath.Join(dir, "g")), "Rename from "+name)
		}
		missing := filepath.Join(dir, "missing") + sep + ".." + sep + "f"
		_, err := fsys.Stat(missing)
		require.ErrorIs(t, err, fs.ErrNotExist, missing)
		_, err = fsys.Open(missing)
		require.ErrorIs(t, err, fs.ErrNotExist, missing)
		// "." is looked up in the missing directory too (MemFS took
		// "missing/." for "missing/": found by FuzzMemNames).
		missingDot := filepath.Join(dir, "missing") + sep + "."
		require.ErrorIs(t, fsys.Rename(f, missingDot), fs.ErrNotExist, "Rename to "+missingDot)
		_, err = fsys.Create(missingDot)
		require.ErrorIs(t, err, fs.ErrNotExist, "Create "+missingDot)
		_, err = fsys.Stat(missingDot)
		require.ErrorIs(t, err, fs.ErrNotExist, "Stat "+missingDot)

		notDir(fsys.Rename(f, filepath.Join(dir, "g")+sep), "Rename to g/")
		for _, name := range []string{f + sep, filepath.Join(dir, "new") + sep, d + sep} {
			_, err := fsys.Create(name)
			require.Error(t, err, "Create "+name)
			_, err = fsys.Lock(name)
			require.Error(t, err, "Lock "+name)
		}
		_, err = fsys.Stat(filepath.Join(dir, "new"))
		require.ErrorIs(t, err, fs.ErrNotExist)

		// rename(2) renames no "." or "..", nor onto one; another name of
		// the same directory is a rename to itself, which does nothing
		// (MemFS renamed "d/." as d, and refused d → "d/" as a directory
		// replaced: found by FuzzMemNames).
		for _, c := range [][2]string{{d + sep + ".", filepath.Join(dir, "x")}, {d + sep + "..", filepath.Join(dir, "x")}, {d + sep + ".", d}} {
			err := fsys.Rename(c[0], c[1])
			require.Error(t, err, "%s → %s", c[0], c[1])
			require.NotErrorIs(t, err, fs.ErrNotExist, "%s → %s", c[0], c[1])
		}
		require.NoError(t, fsys.Rename(d, d+sep))
		// Nor does rmdir(2) remove "." (EINVAL) or ".." (ENOTEMPTY): MemFS
		// removed an empty d as "d/." (found by FuzzMemNames).
		require.NoError(t, fsys.MkdirAll(filepath.Join(d, "empty"), 0o755))
		for _, name := range []string{filepath.Join(d, "empty") + sep + ".", filepath.Join(d, "empty") + sep + "." + sep, filepath.Join(d, "empty") + sep + ".."} {
			err := fsys.Remove(name)
			require.Error(t, err, "Remove "+name)
			require.NotErrorIs(t, err, fs.ErrNotExist, "Remove "+name)
		}
		if !isOS(fsys) || runtime.GOOS == "linux" {
			require.ErrorIs(t, fsys.Remove(filepath.Join(d, "empty")+sep+".."), fs.ErrExist) // ENOTEMPTY
		}
		require.NoError(t, fsys.Remove(filepath.Join(d, "empty")+sep))
		_, err = fsys.Stat(filepath.Join(dir, "x"))
		require.ErrorIs(t, err, fs.ErrNotExist)

		// A directory may be named with a trailing separator or ".".
		_, err = fsys.Stat(d + sep)
		require.NoError(t, err)
		_, err = fsys.Stat(d + sep + ".")
		require.NoError(t, err)
		fi, err := fsys.Stat(d + sep + ".." + sep + "f")
		require.NoError(t, err)
		require.EqualValues(t, 2, fi.Size())
		require.NoError(t, fsys.Rename(d+sep, filepath.Join(dir, "e")+sep))
		require.NoError(t, fsys.Remove(filepath.Join(dir, "e")+sep))
		require.Equal(t, "ff", content(t, fsys, f))
		names, err := fsys.List(dir)
		require.NoError(t, err)
		require.Equal(t, []string{"f"}, names)

		// RemoveAll, as os.RemoveAll: trailing separators dropped, a
		// final "." or ".." refused, a missing directory on the way
		// nothing to remove.
		require.NoError(t, fsys.MkdirAll(d, 0o755))
		err = fsys.RemoveAll(d + sep + ".")
		require.Error(t, err) // EINVAL on disk, fs.ErrInvalid in memory
		require.Contains(t, err.Error(), "invalid argument")
		// (Not "d/..": os.RemoveAll removes the tree of d's parent.)
		require.NoError(t, fsys.RemoveAll(missing))
		require.Equal(t, "ff", content(t, fsys, f))
		require.NoError(t, fsys.RemoveAll(d+sep))
		require.NoError(t, fsys.RemoveAll(f+sep))
		names, err = fsys.List(dir)
		require.NoError(t, err)
		require.Empty(t, names)
	})

	// A file open through the FS can be renamed and removed, and stays
	// readable and writable through its File: on Windows too, where the
	// OS FS opens files sharing delete access (os.OpenFile does not).
	t.Run("HandleOutlivesName", func(t *testing.T) {
		fsys, dir := newFS(t)
		a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
		f, err := fsys.Create(a)
		require.NoError(t, err)
		defer f.Close()
		memWrite(t, f, "one")
		require.NoError(t, fsys.Rename(a, b))
		memWrite(t, f, "two")
		require.Equal(t, "onetwo", content(t, fsys, b))
		require.NoError(t, fsys.Remove(b))
		memWrite(t, f, "three")
		require.NoError(t, f.Sync())
		require.Equal(t, "onetwothree", readAll(t, f))
	})

	t.Run("Closed", func(t *testing.T) {
		fsys, dir := newFS(t)
		f, err := fsys.Create(filepath.Join(dir, "f"))
		require.NoError(t, err)
		memWrite(t, f, "abc")
		require.NoError(t, f.Close())
		var pe *os.PathError

		_, err = f.Write([]byte("x"))
		require.ErrorIs(t, err, os.ErrClosed)
		require.ErrorAs(t, err, &pe)
		_, err = f.WriteAt([]byte("x"), 0)
		require.ErrorIs(t, err, os.ErrClosed)
		_, err = f.ReadAt(make([]byte, 1), 0)
		require.ErrorIs(t, err, os.ErrClosed)
		require.ErrorIs(t, f.Sync(), os.ErrClosed)
		require.ErrorIs(t, f.Truncate(0), os.ErrClosed)
		require.ErrorIs(t, f.Close(), os.ErrClosed)
		_, err = ReadView(f, 0, 1)
		require.ErrorIs(t, err, os.ErrClosed)
		require.Equal(t, filepath.Join(dir, "f"), f.Name())
	})

	t.Run("Lock", func(t *testing.T) {
		fsys, dir := newFS(t)
		name := filepath.Join(dir, "LOCK")
		l, err := fsys.Lock(name)
		require.NoError(t, err)
		_, err = fsys.Stat(name) // created
		require.NoError(t, err)

		_, err = fsys.Lock(name)
		require.ErrorIs(t, err, ErrLocked)
		var pe *os.PathError
		require.ErrorAs(t, err, &pe)

		other, err := fsys.Lock(filepath.Join(dir, "OTHER"))
		require.NoError(t, err)

		require.NoError(t, l.Close())
		require.NoError(t, l.Close()) // again: nothing to do, on every FS
		l, err = fsys.Lock(name)
		require.NoError(t, err)
		require.NoError(t, l.Close())
		require.NoError(t, other.Close())
		require.NoError(t, other.Close())
	})

	t.Run("ReadView", func(t *testing.T) {
		fsys, dir := newFS(t)
		f, err := fsys.Create(filepath.Join(dir, "f"))
		require.NoError(t, err)
		defer f.Close()
		memWrite(t, f, "0123456789")

		b, err := ReadView(f, 0, 5)
		require.NoError(t, err)
		require.Equal(t, "01234", string(b))
		b, err = ReadView(f, 3, 7)
		require.NoError(t, err)
		require.Equal(t, "3456789", string(b))
		b, err = ReadView(f, 10, 0)
		require.NoError(t, err)
		require.Empty(t, b)

		_, err = ReadView(f, 5, 6)
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
		_, err = ReadView(f, 20, 1)
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	})

	t.Run("SyncDir", func(t *testing.T) {
		fsys, dir := newFS(t)
		require.NoError(t, fsys.SyncDir(dir))
		writeFile(t, fsys, filepath.Join(dir, "f"), "x")
		require.NoError(t, fsys.SyncDir(dir))
	})

	// A component of MaxNameLen bytes works everywhere, a longer one fails
	// everywhere with an error matching ErrNameTooLong, of the type package
	// os uses, reading as the OS's.
	t.Run("NameTooLong", func(t *testing.T) {
		fsys, dir := newFS(t)
		long := strings.Repeat("x", MaxNameLen+1)
		tooLong := func(t *testing.T, err error, op string) {
			t.Helper()
			require.ErrorIs(t, err, ErrNameTooLong, op)
			require.NotErrorIs(t, err, fs.ErrNotExist, op)
			if isWindowsOS(fsys) {
				return
			}
			require.ErrorIs(t, err, syscall.ENAMETOOLONG, op)
			require.True(t, strings.HasSuffix(err.Error(), ": file name too long"), "%s: %v", op, err)
		}
		pathErr := func(t *testing.T, err error, op string) {
			t.Helper()
			tooLong(t, err, op)
			var pe *os.PathError
			require.ErrorAs(t, err, &pe, op)
		}

		// The longest name that works.
		max := filepath.Join(dir, strings.Repeat("m", MaxNameLen))
		writeFile(t, fsys, max, "max")
		maxDir := filepath.Join(dir, strings.Repeat("d", MaxNameLen))
		require.NoError(t, fsys.MkdirAll(maxDir, 0o755))
		require.NoError(t, fsys.Rename(max, filepath.Join(maxDir, strings.Repeat("r", MaxNameLen))))
		l, err := fsys.Lock(filepath.Join(dir, strings.Repeat("l", MaxNameLen)))
		require.NoError(t, err)
		require.NoError(t, l.Close())
		if isWindowsOS(fsys) && onWine() {
			// Wine keeps Windows' files on a Linux file system and
			// looks a name up there: a component too long for Linux
			// is not found (ERROR_FILE_NOT_FOUND, even for a
			// create), where NTFS refuses the name.
			t.Skip("Wine answers a name too long as not found")
		}

		f := filepath.Join(dir, "f")
		writeFile(t, fsys, f, "abc")
		_, err = fsys.Create(filepath.Join(dir, long))
		pathErr(t, err, "Create")
		_, err = fsys.Open(filepath.Join(dir, long))
		pathErr(t, err, "Open")
		_, err = fsys.Create(filepath.Join(dir, long, "f"))
		pathErr(t, err, "Create in a directory too long")
		pathErr(t, fsys.MkdirAll(filepath.Join(dir, long), 0o755), "MkdirAll")
		pathErr(t, fsys.MkdirAll(filepath.Join(dir, "a", long, "b"), 0o755), "MkdirAll a/long/b")
		_, err = fsys.Lock(filepath.Join(dir, long))
		pathErr(t, err, "Lock")
		_, err = fsys.Stat(filepath.Join(dir, long))
		pathErr(t, err, "Stat")
		_, err = fsys.List(filepath.Join(dir, long))
		tooLong(t, err, "List")
		pathErr(t, fsys.Remove(filepath.Join(dir, long)), "Remove")
		pathErr(t, fsys.RemoveAll(filepath.Join(dir, long)), "RemoveAll")
		if !isWindowsOS(fsys) { // SyncDir does nothing on Windows
			pathErr(t, fsys.SyncDir(filepath.Join(dir, long)), "SyncDir")
		}

		var le *os.LinkError
		err = fsys.Rename(f, filepath.Join(dir, long))
		tooLong(t, err, "Rename to")
		require.ErrorAs(t, err, &le)
		err = fsys.Rename(filepath.Join(dir, long), filepath.Join(dir, "g"))
		tooLong(t, err, "Rename from")
		require.ErrorAs(t, err, &le)

		// Nothing changed but the directory MkdirAll made before the long name.
		require.Equal(t, "abc", content(t, fsys, f))
		names, err := fsys.List(dir)
		require.NoError(t, err)
		require.Equal(t, []string{"a", filepath.Base(maxDir), "f", strings.Repeat("l", MaxNameLen)}, names)
		names, err = fsys.List(filepath.Join(dir, "a"))
		require.NoError(t, err)
		require.Empty(t, names)

		// Where the name is wrong in another way first, that error comes
		// first: Linux's order, which MemFS follows (other systems may
		// check the length earlier).
		if isOS(fsys) && runtime.GOOS != "linux" {
			return
		}
		_, err = fsys.Create(filepath.Join(dir, "missing", long))
		require.ErrorIs(t, err, fs.ErrNotExist)
		require.NotErrorIs(t, err, ErrNameTooLong)
		_, err = fsys.Create(filepath.Join(dir, "f", long))
		require.NotErrorIs(t, err, ErrNameTooLong)
		require.Error(t, err)
		err = fsys.Rename(filepath.Join(dir, "missing"), filepath.Join(dir, long))
		require.ErrorIs(t, err, fs.ErrNotExist)
		err = fsys.Rename(f, filepath.Join(dir, "missing", long))
		require.ErrorIs(t, err, fs.ErrNotExist)
		require.NoError(t, fsys.RemoveAll(filepath.Join(dir, "missing", long)))
	})
}

func TestOSConformance(t *testing.T) {
	testFS(t, func(t *testing.T) (FS, string) { return OS, t.TempDir() })
}

func TestMemConformance(t *testing.T) {
	t.Run("Absolute", func(t *testing.T) {
		testFS(t, func(t *testing.T) (FS, string) {
			m := NewMem()
			dir := filepath.Join(string(filepath.Separator), "data", "test")
			require.NoError(t, m.MkdirAll(dir, 0o755))
			return m, dir
		})
	})
	t.Run("Relative", func(t *testing.T) {
		testFS(t, func(t *testing.T) (FS, string) {
			m := NewMem()
			require.NoError(t, m.MkdirAll("data", 0o755))
			return m, "data"
		})
	})
	t.Run("Root", func(t *testing.T) {
		testFS(t, func(t *testing.T) (FS, string) { return NewMem(), string(filepath.Separator) })
	})
}

func TestFaultsConformance(t *testing.T) {
	t.Run("Mem", func(t *testing.T) {
		testFS(t, func(t *testing.T) (FS, string) { return WithFaults(NewMem(), Count()), "." })
	})
	t.Run("OS", func(t *testing.T) {
		testFS(t, func(t *testing.T) (FS, string) { return WithFaults(OS, Count()), t.TempDir() })
	})
}
