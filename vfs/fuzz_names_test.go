package vfs

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
)

// FuzzMemNames: MemFS resolves a name from a caller as Linux does (see
// MemFS.resolve). Each operation (Create, Open, Stat, MkdirAll, List,
// Remove, Rename to and from the name) on a fuzzed name below a root that
// holds a directory, a file in it and a file at its top, gives on MemFS
// the result it gives on the OS's file system: success, or an error that
// matches the same of the portable sentinels (fs.ErrNotExist, fs.ErrExist,
// ErrNameTooLong; see FS) or none of them, and leaves the same tree.
// Names that would leave the root are skipped, and MkdirAll's of names
// that are not clean (MemFS.MkdirAll cleans them: documented). Linux
// only: other systems resolve names their own way.
func FuzzMemNames(f *testing.F) {
	if runtime.GOOS != "linux" {
		f.Skip("MemFS follows Linux's name resolution")
	}
	for _, s := range []string{"x", "d", "d/g", "f", "f/", "f/.", "f/..", "d/..", "d/../x", "missing/../x", "d/./g", "d//g", "d/g/",
		"./x", "", ".", "/", "x/", "d/x/", strings.Repeat("n", MaxNameLen), strings.Repeat("n", MaxNameLen+1),
		strings.Repeat("n", MaxNameLen+1) + "/x", "missing/" + strings.Repeat("n", MaxNameLen+1), "f/" + strings.Repeat("n", MaxNameLen+1)} {
		for op := range uint8(8) {
			f.Add(op, s)
		}
	}
	f.Fuzz(func(t *testing.T, op uint8, name string) {
		if strings.ContainsRune(name, 0) || len(name) > 1000 {
			return
		}
		if c := path.Clean(name); c == ".." || strings.HasPrefix(c, "../") || strings.HasPrefix(name, "/") {
			return // outside the root
		}
		parts := strings.Split(name, "/")
		for i, c := range parts {
			if c == ".." && strings.HasPrefix(path.Clean(strings.Join(parts[:i+1], "/")), "..") {
				return // leaves the root on the way
			}
		}
		if op%8 == 3 && name != path.Clean(name) {
			return // MemFS.MkdirAll cleans its name first (documented)
		}
		osRoot := filepath.Join(t.TempDir(), "r")
		mem := NewMem()
		const memRoot = "/r"
		roots := []struct {
			fs   FS
			root string
		}{{OS, osRoot}, {mem, memRoot}}
		var results [2]string
		var trees [2][]string
		for i, r := range roots {
			setupNames(t, r.fs, r.root)
			results[i] = errClass(nameOp(r.fs, r.root, op, name))
			trees[i] = listTree(t, r.fs, r.root)
		}
		if results[0] != results[1] {
			t.Fatalf("op %d on %q: OS %s, MemFS %s", op%8, name, results[0], results[1])
		}
		if strings.Join(trees[0], "\n") != strings.Join(trees[1], "\n") {
			t.Fatalf("op %d on %q: OS leaves %q, MemFS %q", op%8, name, trees[0], trees[1])
		}
	})
}

func setupNames(t *testing.T, fsys FS, root string) {
	if err := fsys.MkdirAll(filepath.Join(root, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"d/g", "f"} {
		fh, err := fsys.Create(filepath.Join(root, n))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fh.Write([]byte(n)); err != nil {
			t.Fatal(err)
		}
		if err := fh.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// nameOp runs operation op on root + "/" + name (joined without
// cleaning, as a caller's name reaches the FS).
func nameOp(fsys FS, root string, op uint8, name string) error {
	p := root + "/" + name
	switch op % 8 {
	case 0:
		fh, err := fsys.Create(p)
		if err == nil {
			_, err = fh.Write([]byte("new"))
			err = errors.Join(err, fh.Close())
		}
		return err
	case 1:
		fh, err := fsys.Open(p)
		if err == nil {
			err = fh.Close()
		}
		return err
	case 2:
		fi, err := fsys.Stat(p)
		if err == nil && fi.IsDir() {
			return errors.New("stat: a directory")
		}
		return err
	case 3:
		return fsys.MkdirAll(p, 0o755)
	case 4:
		names, err := fsys.List(p)
		if err == nil {
			return errors.New("list: " + strings.Join(names, ","))
		}
		return err
	case 5:
		if path.Clean(name) == "." {
			return nil // the root itself
		}
		return fsys.Remove(p)
	case 6:
		if path.Clean(name) == "." {
			return nil
		}
		return fsys.Rename(p, root+"/renamed")
	default:
		return fsys.Rename(root+"/f", p)
	}
}

// errClass is what FuzzMemNames compares of an error.
func errClass(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrNameTooLong):
		return "name too long"
	case errors.Is(err, fs.ErrNotExist):
		return "not exist"
	case errors.Is(err, fs.ErrExist):
		return "exist"
	}
	var pe *fs.PathError
	var le *os.LinkError
	if !errors.As(err, &pe) && !errors.As(err, &le) {
		return err.Error() // Stat and List's successes, told apart
	}
	return "error" // the errno's are the platform's (see FS)
}

// listTree returns every path below root, with each file's content.
func listTree(t *testing.T, fsys FS, root string) []string {
	var out []string
	var walk func(dir, rel string)
	walk = func(dir, rel string) {
		names, err := fsys.List(dir)
		if err != nil {
			t.Fatalf("list %s: %v", dir, err)
		}
		for _, n := range names {
			p := filepath.Join(dir, n)
			fi, err := fsys.Stat(p)
			if err != nil {
				t.Fatalf("stat %s: %v", p, err)
			}
			if fi.IsDir() {
				out = append(out, rel+n+"/")
				walk(p, rel+n+"/")
				continue
			}
			fh, err := fsys.Open(p)
			if err != nil {
				t.Fatalf("open %s: %v", p, err)
			}
			b := make([]byte, fi.Size())
			fh.ReadAt(b, 0)
			fh.Close()
			out = append(out, rel+n+"="+string(b))
		}
	}
	walk(root, "")
	sort.Strings(out)
	return out
}
