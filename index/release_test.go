package index

import (
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/vfs"
)

// handles counts the files an FS opens and closes, and its syncs.
type handles struct{ opened, closed, synced atomic.Int64 }

func (h *handles) fs(fsys vfs.FS) vfs.FS {
	return vfs.WithFaults(fsys, vfs.InjectorFunc(func(op vfs.Op, _ string) error {
		switch op {
		case vfs.OpCreate, vfs.OpOpen:
			h.opened.Add(1)
		case vfs.OpClose:
			h.closed.Add(1)
		case vfs.OpSync:
			h.synced.Add(1)
		}
		return nil
	}))
}

func (h *handles) held() int64 { return h.opened.Load() - h.closed.Load() }

// TestSealedIndexClosesItsFile: a sealed index answers from its mapping
// (or heap copy) with its file closed, and opens the file again for the
// changes that need it — TruncateTo, Reset, Unseal, and a Sync after
// Open trimmed the file — closing it again once sealed.
func TestSealedIndexClosesItsFile(t *testing.T) {
	run := func(t *testing.T, k fsKind, dir string) {
		var h handles
		fsys := h.fs(k.fsys)
		path := filepath.Join(dir, "00000000000000000100.index")
		requireHeld := func(want int64, what string) {
			t.Helper()
			if got := h.held(); got != want {
				t.Fatalf("%s: %d files held, want %d", what, got, want)
			}
		}
		// The files exist (the counter cannot tell an Open that fails).
		for _, name := range []string{path, filepath.Join(dir, "00000000000000000100.timeindex")} {
			f, err := k.fsys.Create(name)
			must(t, err)
			must(t, f.Close())
		}
		x, err := OpenOffset(fsys, path, 100, 1024, true)
		must(t, err)
		requireHeld(1, "active")
		for i := range int64(4) {
			must(t, x.Append(100+10*i, 100*i))
		}
		must(t, x.Seal())
		requireHeld(0, "sealed")
		checkMapped(t, k, &x.f)
		if o, p := x.Lookup(125); o != 120 || p != 200 {
			t.Fatalf("Lookup(125) = %d, %d", o, p)
		}
		syncs := h.synced.Load()
		must(t, x.Sync()) // Seal synced it: nothing to do
		if h.synced.Load() != syncs {
			t.Fatal("Sync of a sealed index synced again")
		}
		must(t, x.TruncateTo(125))
		requireHeld(0, "truncated while sealed")
		if x.Entries() != 3 || fileSizeFS(t, k.fsys, path) != 3*OffsetEntrySize {
			t.Fatalf("truncated: %d entries, file of %d bytes", x.Entries(), fileSizeFS(t, k.fsys, path))
		}
		must(t, x.Sync()) // the trim is not durable yet
		if h.synced.Load() != syncs+1 {
			t.Fatal("Sync after a trim did not sync")
		}
		requireHeld(0, "synced")
		must(t, x.Unseal(1024))
		requireHeld(1, "unsealed")
		must(t, x.Append(130, 300))
		must(t, x.Seal())
		requireHeld(0, "sealed again")
		must(t, x.Reset())
		requireHeld(0, "reset while sealed")
		if x.Entries() != 0 || fileSizeFS(t, k.fsys, path) != 0 {
			t.Fatalf("reset: %d entries, file of %d bytes", x.Entries(), fileSizeFS(t, k.fsys, path))
		}
		must(t, x.Close())
		must(t, x.Close())
		requireHeld(0, "closed")

		// Opened sealed: the file closes once mapped; a preallocated tail
		// of zeros is trimmed, and a Sync makes that durable.
		y, err := OpenOffset(fsys, path, 100, 1024, true)
		must(t, err)
		must(t, y.Append(110, 10))
		must(t, y.Append(120, 20))
		must(t, y.Close())
		writeZeros(t, k.fsys, path, 2*OffsetEntrySize, 64)
		y, err = OpenOffset(fsys, path, 100, 0, false)
		must(t, err)
		requireHeld(0, "opened sealed")
		if y.Entries() != 2 {
			t.Fatalf("opened sealed: %d entries", y.Entries())
		}
		syncs = h.synced.Load()
		must(t, y.Sync())
		if h.synced.Load() != syncs+1 {
			t.Fatal("Sync after Open trimmed did not sync")
		}
		must(t, y.Close())
		requireHeld(0, "closed")

		z, err := OpenTime(fsys, filepath.Join(dir, "00000000000000000100.timeindex"), 100, 1024, true)
		must(t, err)
		must(t, z.Append(5, 101))
		must(t, z.Seal())
		requireHeld(0, "time index sealed")
		if ts, o := z.Lookup(7); ts != 5 || o != 101 {
			t.Fatalf("time Lookup = %d, %d", ts, o)
		}
		must(t, z.Close())
		requireHeld(0, "time index closed")
	}
	eachFS(t, run)
	t.Run("mem", func(t *testing.T) {
		mem := vfs.NewMem()
		must(t, mem.MkdirAll("/x", 0o755))
		run(t, fsKind{name: "mem", fsys: mem}, "/x")
	})
}

func fileSizeFS(t testing.TB, fsys vfs.FS, path string) int64 {
	t.Helper()
	fi, err := fsys.Stat(path)
	must(t, err)
	return fi.Size()
}

// writeZeros appends n bytes of zeros at off of a file.
func writeZeros(t testing.TB, fsys vfs.FS, path string, off int64, n int) {
	t.Helper()
	f, err := fsys.Open(path)
	must(t, err)
	_, err = f.WriteAt(make([]byte, n), off)
	must(t, err)
	must(t, f.Close())
}
