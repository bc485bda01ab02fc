package index

import (
	"encoding/binary"
	"errors"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/vfs"
)

// Seal, Unseal, Discard and Close: what each writes and syncs, and what a
// crash after it keeps. Each test names in its comment the small change to
// the code that it fails with and the other tests let pass.

// TestUnsealActiveDoesNothing: Unseal of an active index changes nothing,
// neither its room nor its entries not yet written (mutant: Unseal setting
// an active index up again).
func TestUnsealActiveDoesNothing(t *testing.T) {
	fsys := vfs.NewMem()
	x := openOffset(t, fsys, "a.index", 0, 2*OffsetEntrySize, true)
	must(t, x.Append(1, 10))
	must(t, x.Append(2, 20))
	must(t, x.Unseal(1024))
	if err := x.Append(3, 30); err != ErrIndexFull {
		t.Errorf("Append after Unseal of a full active index: %v, want ErrIndexFull", err)
	}
	must(t, x.Close())
	y := openOffset(t, fsys, "a.index", 0, 0, false)
	if got, want := offsetEntries(y), []OffsetEntry{{1, 10}, {2, 20}}; !slices.Equal(got, want) {
		t.Errorf("reopened: %v, want %v", got, want)
	}
}

// TestUnsealRoomInEntries: Unseal's maxBytes bounds the bytes of the
// entries, as OpenOffset's does (mutant: taken as a number of entries).
func TestUnsealRoomInEntries(t *testing.T) {
	x := openTime(t, vfs.NewMem(), "a.timeindex", 0, 1024, true)
	must(t, x.Seal())
	must(t, x.Unseal(2*TimeEntrySize+1))
	must(t, x.Append(10, 1))
	must(t, x.Append(20, 2))
	if err := x.Append(30, 3); err != ErrIndexFull {
		t.Errorf("third Append with room for two: %v, want ErrIndexFull", err)
	}
}

// TestDiscardWritesNothing: Discard neither writes the entries its file
// does not hold yet, nor trims nor syncs the file (mutants: Discard
// flushing, or trimming and syncing, as Close does).
func TestDiscardWritesNothing(t *testing.T) {
	var h handles
	mem := vfs.NewMem()
	fsys := h.fs(mem)
	x, err := OpenOffset(fsys, "a.index", 0, 1024, true)
	must(t, err)
	for i := range int64(3) {
		must(t, x.Append(i+1, 10*(i+1)))
	}
	must(t, x.Discard())
	if got := fileSizeFS(t, mem, "a.index"); got != 0 {
		t.Errorf("file size %d after Discard, want 0", got)
	}
	if n := h.synced.Load(); n != 0 {
		t.Errorf("%d syncs, want none", n)
	}
}

// TestCloseSyncs: a closed index's entries survive a crash (mutant: Close
// without its Sync).
func TestCloseSyncs(t *testing.T) {
	mem := newDurable(t, "a.index")
	x, err := OpenOffset(mem, "a.index", 0, 1024, true)
	must(t, err)
	must(t, x.Append(1, 10))
	must(t, x.Append(2, 20))
	must(t, x.Close())
	y := openOffset(t, mem.CrashClone(vfs.CrashOptions{}), "a.index", 0, 0, false)
	if got, want := offsetEntries(y), []OffsetEntry{{1, 10}, {2, 20}}; !slices.Equal(got, want) {
		t.Errorf("after a crash: %v, want %v", got, want)
	}
}

// TestSealSyncs: a sealed index's entries survive a crash (mutant: Seal
// without its Sync).
func TestSealSyncs(t *testing.T) {
	mem := newDurable(t, "a.timeindex")
	x := openTime(t, mem, "a.timeindex", 0, 1024, true)
	must(t, x.Append(10, 1))
	must(t, x.Append(20, 2))
	must(t, x.Seal())
	y := openTime(t, mem.CrashClone(vfs.CrashOptions{}), "a.timeindex", 0, 0, false)
	if got, want := timeEntries(y), []TimeEntry{{10, 1}, {20, 2}}; !slices.Equal(got, want) {
		t.Errorf("after a crash: %v, want %v", got, want)
	}
}

// newDurable returns a MemFS holding an empty file name whose creation is
// durable, so that a crash keeps whatever of it was synced.
func newDurable(t *testing.T, name string) *vfs.MemFS {
	t.Helper()
	mem := vfs.NewMem()
	f, err := mem.Create(name)
	must(t, err)
	must(t, f.Close())
	must(t, mem.SyncDir("."))
	return mem
}

// TestSealedSyncRetried: a Sync of a sealed index that failed is not taken
// as done: the next Sync syncs the file (mutant: the failed sync recorded
// as durable).
func TestSealedSyncRetried(t *testing.T) {
	mem := trimmedIndexFile(t)
	var fail atomic.Bool
	var syncs atomic.Int64
	fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, _ string) error {
		if op != vfs.OpSync {
			return nil
		}
		syncs.Add(1)
		if fail.Load() {
			return vfs.ErrInjected
		}
		return nil
	}))
	x := openOffset(t, fsys, "a.index", 0, 0, false)
	fail.Store(true)
	if err := x.Sync(); !errors.Is(err, vfs.ErrInjected) {
		t.Fatalf("Sync: %v, want the injected fault", err)
	}
	fail.Store(false)
	must(t, x.Sync())
	if n := syncs.Load(); n != 2 {
		t.Errorf("%d syncs, want 2: the failed one and its retry", n)
	}
}

// TestCloseTrimsAfterFailedTruncate: when TruncateTo of an active index
// cannot cut its file, Close does, so that the entries dropped do not come
// back (mutant: Close without its trim).
func TestCloseTrimsAfterFailedTruncate(t *testing.T) {
	mem := vfs.NewMem()
	var fail atomic.Bool
	fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, _ string) error {
		if op == vfs.OpTruncate && fail.Load() {
			fail.Store(false)
			return vfs.ErrInjected
		}
		return nil
	}))
	x, err := OpenOffset(fsys, "a.index", 0, 1<<20, true)
	must(t, err)
	for i := range int64(flushEntries + 10) { // the first flushEntries are written
		must(t, x.Append(i+1, 10*(i+1)))
	}
	fail.Store(true)
	if err := x.TruncateTo(11); !errors.Is(err, vfs.ErrInjected) {
		t.Fatalf("TruncateTo: %v, want the injected fault", err)
	}
	must(t, x.Close())
	y := openOffset(t, mem, "a.index", 0, 0, false)
	if n := y.Entries(); n != 10 {
		t.Errorf("reopened with %d entries, want 10", n)
	}
}

// trimmedIndexFile returns a MemFS holding a.index, an offset index file
// of one entry (offset delta 1 at position 10) followed by two entries of
// zeros, which Open trims.
func trimmedIndexFile(t *testing.T) *vfs.MemFS {
	t.Helper()
	mem := vfs.NewMem()
	f, err := mem.Create("a.index")
	must(t, err)
	b := make([]byte, 3*OffsetEntrySize) // one entry, then two of zeros: Open trims them
	binary.BigEndian.PutUint32(b, 1)
	binary.BigEndian.PutUint32(b[4:], 10)
	_, err = f.Write(b)
	must(t, err)
	must(t, f.Close())
	return mem
}
