package index

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/vfs"
)

// Tests that close gaps mutation testing found: each fails with a small
// change to the code (named in its comment) that the other tests let pass.

// TestBaseOffsetLimit: the largest base offset an index takes leaves room
// for every relative offset, math.MaxInt64-math.MaxInt32, and one more is
// refused (mutant: the bound off by one).
func TestBaseOffsetLimit(t *testing.T) {
	const top = math.MaxInt64 - math.MaxInt32
	fsys := vfs.NewMem()
	x, err := OpenOffset(fsys, "top.index", top, 1024, true)
	must(t, err)
	must(t, x.Append(math.MaxInt64, 10))
	if o, p := x.Lookup(math.MaxInt64); o != math.MaxInt64 || p != 10 {
		t.Errorf("Lookup(MaxInt64) = %d, %d", o, p)
	}
	must(t, x.Close())
	if _, err := DecodeTimeEntries(nil, top); err != nil {
		t.Errorf("DecodeTimeEntries at base %d: %v", int64(top), err)
	}
	if _, err := OpenTime(fsys, "over.timeindex", top+1, 1024, true); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("OpenTime at base %d: %v, want ErrInvalidArgument", int64(top+1), err)
	}
	if _, err := DecodeOffsetEntries(nil, top+1); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("DecodeOffsetEntries at base %d: %v, want ErrInvalidArgument", int64(top+1), err)
	}
}

// TestLookupEntryAtBase: an entry at the base offset itself is the answer
// to a lookup of the base, with its position (mutant: Lookup answering
// (base, 0) for offset <= base).
func TestLookupEntryAtBase(t *testing.T) {
	x := openOffset(t, vfs.NewMem(), "a.index", 100, 1024, true)
	must(t, x.Append(100, 7))
	must(t, x.Append(110, 70))
	for _, tc := range []struct{ target, offset, position int64 }{
		{99, 100, 0}, {100, 100, 7}, {109, 100, 7}, {110, 110, 70},
	} {
		if o, p := x.Lookup(tc.target); o != tc.offset || p != tc.position {
			t.Errorf("Lookup(%d) = %d, %d; want %d, %d", tc.target, o, p, tc.offset, tc.position)
		}
	}
}

// TestTruncateToKeepsAllBelow: TruncateTo an offset above the last entry
// keeps every entry, the last one too (mutant: the binary search leaving
// the last entry out).
func TestTruncateToKeepsAllBelow(t *testing.T) {
	fsys := vfs.NewMem()
	o := openOffset(t, fsys, "a.index", 100, 1024, true)
	ti := openTime(t, fsys, "a.timeindex", 100, 1024, true)
	for i := range int64(3) {
		must(t, o.Append(110+10*i, 100*(i+1)))
		must(t, ti.Append(1000+i, 110+10*i))
	}
	must(t, o.TruncateTo(200))
	must(t, ti.TruncateTo(200))
	if n := o.Entries(); n != 3 {
		t.Errorf("offset index: %d entries after TruncateTo past them, want 3", n)
	}
	if n := ti.Entries(); n != 3 {
		t.Errorf("time index: %d entries after TruncateTo past them, want 3", n)
	}
}

// TestCheckNegativeFirstEntry: a negative position or relative offset in
// the first entry, which has no previous entry to be compared with, is
// corrupt, to Check and to the decoders (mutants: those cases removed).
func TestCheckNegativeFirstEntry(t *testing.T) {
	fsys := vfs.NewMem()
	ob := make([]byte, OffsetEntrySize)
	binary.BigEndian.PutUint32(ob[4:], math.MaxUint32) // (0, -1)
	tb := make([]byte, TimeEntrySize)
	binary.BigEndian.PutUint64(tb, 5)
	binary.BigEndian.PutUint32(tb[8:], math.MaxUint32) // (5, -1)
	for name, b := range map[string][]byte{"a.index": ob, "a.timeindex": tb} {
		f, err := fsys.Create(name)
		must(t, err)
		_, err = f.Write(b)
		must(t, err)
		must(t, f.Close())
	}
	if _, err := DecodeOffsetEntries(ob, 0); !errors.Is(err, ErrCorrupt) {
		t.Errorf("DecodeOffsetEntries of position -1: %v, want ErrCorrupt", err)
	}
	if _, err := DecodeTimeEntries(tb, 0); !errors.Is(err, ErrCorrupt) {
		t.Errorf("DecodeTimeEntries of offset -1: %v, want ErrCorrupt", err)
	}
	o := openOffset(t, fsys, "a.index", 0, 0, false)
	checkCorrupt(t, o.Check(100), "a.index", 0)
	ti := openTime(t, fsys, "a.timeindex", 0, 0, false)
	checkCorrupt(t, ti.Check(100), "a.timeindex", 0)
}

// TestTimeEntryOutOfRange: TimeIndex.Entry panics for the number of
// entries, also when its buffer still holds a dropped entry there
// (mutant: the bound check i > n).
func TestTimeEntryOutOfRange(t *testing.T) {
	x := openTime(t, vfs.NewMem(), "a.timeindex", 0, 1024, true)
	for i := range int64(4) {
		must(t, x.Append(10+i, i))
	}
	must(t, x.TruncateTo(2))
	defer func() {
		if recover() == nil {
			t.Error("Entry(2) of 2 entries did not panic")
		}
	}()
	x.Entry(2)
}

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

// eofFile answers a ReadAt at or past its end with io.EOF, even for an
// empty buffer, as bytes.Reader does (io.ReaderAt allows it).
type eofFile struct{ vfs.File }

func (f eofFile) ReadAt(p []byte, off int64) (int, error) {
	if size, err := f.Size(); err == nil && off >= size {
		return 0, io.EOF
	}
	return f.File.ReadAt(p, off)
}

// TestOpenEmptyEOFReader: an empty writable index opens on a file system
// whose ReadAt of nothing at the end says io.EOF (mutant: that EOF taken
// as a failure).
func TestOpenEmptyEOFReader(t *testing.T) {
	fsys := wrapFS{vfs.NewMem(), func(f vfs.File) vfs.File { return eofFile{f} }}
	x, err := OpenOffset(fsys, "a.index", 0, 1024, true)
	must(t, err)
	must(t, x.Append(1, 10))
	must(t, x.Close())
}

// TestTruncateToFarBelowBase: TruncateTo an offset so far below the base
// that offset - base overflows drops every entry, as it drops them for any
// offset at or below the base (a bug found by mutation testing: the
// guard tested offset - base <= 0, which the overflow made positive, and
// every entry stayed).
func TestTruncateToFarBelowBase(t *testing.T) {
	fsys := vfs.NewMem()
	o := openOffset(t, fsys, "a.index", 100, 1024, true)
	ti := openTime(t, fsys, "a.timeindex", 100, 1024, true)
	must(t, o.Append(110, 10))
	must(t, ti.Append(5, 110))
	must(t, o.TruncateTo(math.MinInt64))
	must(t, ti.TruncateTo(math.MinInt64))
	if o.Entries() != 0 || ti.Entries() != 0 {
		t.Errorf("TruncateTo(MinInt64) kept %d offset and %d time entries", o.Entries(), ti.Entries())
	}
}

// TestOpenReadFailure: a read that fails while Open counts the entries
// fails Open, and leaves the file as it was (mutant: the failed read's
// buffer taken for zeros, the entries dropped and the file trimmed).
func TestOpenReadFailure(t *testing.T) {
	mem := vfs.NewMem()
	x := openOffset(t, mem, "a.index", 0, 1024, true)
	must(t, x.Append(1, 10))
	must(t, x.Append(2, 20))
	must(t, x.Close())
	_, err := OpenOffset(vfs.WithFaults(mem, vfs.FailNth(1, vfs.OpRead)), "a.index", 0, 0, false)
	if !errors.Is(err, vfs.ErrInjected) {
		t.Fatalf("OpenOffset with a failing read: %v, want the injected fault", err)
	}
	if got := fileSizeFS(t, mem, "a.index"); got != 2*OffsetEntrySize {
		t.Errorf("file size %d after the failed open, want %d", got, 2*OffsetEntrySize)
	}
}

// TestOpenSealedIgnoresMaxBytes: a sealed index ignores maxBytes, a
// negative one too (mutant: a negative maxBytes refused whether or not
// the index is writable).
func TestOpenSealedIgnoresMaxBytes(t *testing.T) {
	x, err := OpenTime(vfs.NewMem(), "a.timeindex", 0, -1, false)
	must(t, err)
	must(t, x.Close())
}

// TestMapFailureOnceOnly: a sealed index whose mapping failed for a reason
// other than ErrNotSupported is on the heap that once, and mapped when it
// is sealed again (mutant: the failure taken as for good). TestMapFailure
// injects its failure while the index is active, which maps nothing.
func TestMapFailureOnceOnly(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skip("no mapping on " + runtime.GOOS)
	}
	fl := new(faults)
	fsys := wrapFS{vfs.OS, func(f vfs.File) vfs.File { return faultyFile{f, fl} }}
	x := openOffset(t, fsys, filepath.Join(t.TempDir(), "a.index"), 0, 1024, true)
	must(t, x.Append(1, 10))
	fl.mapErr = errInjected
	must(t, x.Seal())
	if x.f.m != nil || !x.f.heap {
		t.Fatal("not on the heap after a failed map")
	}
	fl.mapErr = nil
	must(t, x.Unseal(1024))
	must(t, x.Append(2, 20))
	must(t, x.Seal())
	if x.f.m == nil {
		t.Error("not mapped when sealed again")
	}
}

// countingUnsupported is a Mapper that cannot map, and counts the tries.
type countingUnsupported struct {
	vfs.File
	tries *atomic.Int64
}

func (f countingUnsupported) Map(int) (*vfs.Mapping, error) {
	f.tries.Add(1)
	return nil, &os.PathError{Op: "mmap", Path: f.Name(), Err: vfs.ErrNotSupported}
}

// TestMapNotSupportedForGood: a file whose Map says ErrNotSupported is not
// asked again (mutant: mapping tried again at each seal).
func TestMapNotSupportedForGood(t *testing.T) {
	var tries atomic.Int64
	fsys := wrapFS{vfs.NewMem(), func(f vfs.File) vfs.File { return countingUnsupported{f, &tries} }}
	x := openOffset(t, fsys, "a.index", 0, 1024, true)
	must(t, x.Append(1, 10))
	must(t, x.Seal())
	must(t, x.Unseal(1024))
	must(t, x.Append(2, 20))
	must(t, x.Seal())
	if n := tries.Load(); n != 1 {
		t.Errorf("Map tried %d times, want once", n)
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
