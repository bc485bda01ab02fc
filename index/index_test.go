package index

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// The tests run on the OS file system three ways: as it is (mapped on
// unix), with Mapper hidden (the heap fallback, as for the in-memory FS),
// and with a Map that answers ErrNotSupported (as on Windows).

// wrapFS wraps the files of an FS.
type wrapFS struct {
	vfs.FS
	wrap func(vfs.File) vfs.File
}

func (w wrapFS) Create(name string) (vfs.File, error) {
	f, err := w.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return w.wrap(f), nil
}

func (w wrapFS) Open(name string) (vfs.File, error) {
	f, err := w.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return w.wrap(f), nil
}

// plainFile hides every optional ability (Mapper) of the file it wraps.
type plainFile struct{ vfs.File }

// unsupportedFile is a Mapper that cannot map.
type unsupportedFile struct{ vfs.File }

func (f unsupportedFile) Map(int) (*vfs.Mapping, error) {
	return nil, &os.PathError{Op: "mmap", Path: f.Name(), Err: vfs.ErrNotSupported}
}

type fsKind struct {
	name string
	fsys vfs.FS
	maps bool // indexes on it are expected to be mapped
}

func fsKinds() []fsKind {
	return []fsKind{
		{"mapped", vfs.OS, runtime.GOOS == "linux" || runtime.GOOS == "darwin"},
		{"heap", wrapFS{vfs.OS, func(f vfs.File) vfs.File { return plainFile{f} }}, false},
		{"unsupported", wrapFS{vfs.OS, func(f vfs.File) vfs.File { return unsupportedFile{f} }}, false},
	}
}

// eachFS runs fn once per kind of file system, in a fresh directory.
func eachFS(t *testing.T, fn func(t *testing.T, k fsKind, dir string)) {
	for _, k := range fsKinds() {
		t.Run(k.name, func(t *testing.T) { fn(t, k, t.TempDir()) })
	}
}

func openOffset(t testing.TB, fsys vfs.FS, path string, base int64, maxBytes int, writable bool) *OffsetIndex {
	t.Helper()
	x, err := OpenOffset(fsys, path, base, maxBytes, writable)
	if err != nil {
		t.Fatalf("OpenOffset(%s, writable %v): %v", path, writable, err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

func openTime(t testing.TB, fsys vfs.FS, path string, base int64, maxBytes int, writable bool) *TimeIndex {
	t.Helper()
	x, err := OpenTime(fsys, path, base, maxBytes, writable)
	if err != nil {
		t.Fatalf("OpenTime(%s, writable %v): %v", path, writable, err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// abandon drops an index as a crash would: no trim, no sync, no close of
// the mapping's file beyond releasing it.
func (x *file) abandon() {
	x.unmap()
	if x.f != nil {
		x.f.Close()
	}
	x.closed = true
}

func offsetEntries(x *OffsetIndex) []OffsetEntry {
	out := make([]OffsetEntry, x.Entries())
	for i := range out {
		out[i].Offset, out[i].Position = x.Entry(i)
	}
	return out
}

func timeEntries(x *TimeIndex) []TimeEntry {
	out := make([]TimeEntry, x.Entries())
	for i := range out {
		out[i].Timestamp, out[i].Offset = x.Entry(i)
	}
	return out
}

// checkMapped: on a file system that maps, a sealed index is mapped and
// an active one is not (it writes its entries with WriteAt).
func checkMapped(t *testing.T, k fsKind, x *file) {
	t.Helper()
	if want := k.maps && !x.active; (x.m != nil) != want {
		t.Errorf("mapped = %v, want %v (active %v)", x.m != nil, want, x.active)
	}
}

func TestOpenCreatesMissingFile(t *testing.T) {
	eachFS(t, func(t *testing.T, k fsKind, dir string) {
		path := filepath.Join(dir, "00000000000000000000.index")
		x := openOffset(t, k.fsys, path, 0, 1024, true)
		checkMapped(t, k, &x.f)
		if n := x.Entries(); n != 0 {
			t.Errorf("Entries = %d, want 0", n)
		}
		if _, _, ok := x.Last(); ok {
			t.Error("Last: ok on an empty index")
		}
		if got := fileSize(t, path); got != 0 { // not preallocated
			t.Errorf("file size %d, want 0", got)
		}
		must(t, x.Close())
		if got := fileSize(t, path); got != 0 {
			t.Errorf("file size after Close %d, want 0", got)
		}

		y := openTime(t, k.fsys, filepath.Join(dir, "x.timeindex"), 5, 100, false)
		if y.Entries() != 0 || !y.Full() {
			t.Errorf("sealed new time index: %d entries, full %v", y.Entries(), y.Full())
		}
	})
}

func TestOpenBadArguments(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenOffset(vfs.OS, filepath.Join(dir, "a.index"), -1, 1024, true); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("negative base: %v, want ErrInvalidArgument", err)
	}
	if _, err := OpenOffset(vfs.OS, filepath.Join(dir, "a.index"), math.MaxInt64, 1024, true); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("base with no room for relative offsets: %v, want ErrInvalidArgument", err)
	}
	if _, err := OpenTime(vfs.OS, filepath.Join(dir, "a.timeindex"), 0, -1, true); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("negative maxBytes: %v, want ErrInvalidArgument", err)
	}
	if _, err := DecodeTimeEntries(nil, -1); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("DecodeTimeEntries of a negative base: %v, want ErrInvalidArgument", err)
	}
	x, err := OpenOffset(vfs.OS, filepath.Join(dir, "b.index"), 0, 1024, false)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if err := x.Unseal(-1); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Unseal(-1): %v, want ErrInvalidArgument", err)
	}
	if _, err := OpenOffset(vfs.OS, filepath.Join(dir, "missing", "a.index"), 0, 1024, true); err == nil {
		t.Error("missing directory: no error")
	}
}

func TestMaxBytesRoundedDown(t *testing.T) {
	eachFS(t, func(t *testing.T, k fsKind, dir string) {
		path := filepath.Join(dir, "a.timeindex")
		x := openTime(t, k.fsys, path, 0, 3*TimeEntrySize+7, true)
		for i := range 3 {
			must(t, x.Append(int64(10+i), int64(i)))
		}
		if !x.Full() {
			t.Error("not full at capacity")
		}
	})
}

func TestCorruptSize(t *testing.T) {
	eachFS(t, func(t *testing.T, k fsKind, dir string) {
		for _, writable := range []bool{true, false} {
			path := filepath.Join(dir, fmt.Sprintf("bad-%v.index", writable))
			must(t, os.WriteFile(path, make([]byte, 2*OffsetEntrySize+3), 0o644))
			_, err := OpenOffset(k.fsys, path, 0, 1024, writable)
			checkCorrupt(t, err, path, 2)
			if got := fileSize(t, path); got != 2*OffsetEntrySize+3 {
				t.Errorf("corrupt file was resized to %d", got)
			}

			path = filepath.Join(dir, fmt.Sprintf("bad-%v.timeindex", writable))
			must(t, os.WriteFile(path, make([]byte, TimeEntrySize-1), 0o644))
			_, err = OpenTime(k.fsys, path, 0, 1024, writable)
			checkCorrupt(t, err, path, 0)
		}
	})
}

func checkCorrupt(t *testing.T, err error, path string, entry int) {
	t.Helper()
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("error %v does not match ErrCorrupt", err)
	}
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *CorruptError", err)
	}
	if ce.Path != path || ce.Entry != entry {
		t.Errorf("CorruptError{Path %q, Entry %d}, want {%q, %d}", ce.Path, ce.Entry, path, entry)
	}
	msg := err.Error()
	if !bytes.Contains([]byte(msg), []byte(path)) || !bytes.Contains([]byte(msg), []byte(fmt.Sprintf("entry %d", entry))) {
		t.Errorf("message %q does not name the path and entry %d", msg, entry)
	}
}

func TestClosed(t *testing.T) {
	eachFS(t, func(t *testing.T, k fsKind, dir string) {
		x := openOffset(t, k.fsys, filepath.Join(dir, "a.index"), 10, 1024, true)
		must(t, x.Append(11, 100))
		must(t, x.Close())
		must(t, x.Close())
		for name, err := range map[string]error{
			"Append":     x.Append(12, 200),
			"TruncateTo": x.TruncateTo(10),
			"Reset":      x.Reset(),
			"Sync":       x.Sync(),
			"Seal":       x.Seal(),
			"Unseal":     x.Unseal(1024),
		} {
			if !errors.Is(err, os.ErrClosed) {
				t.Errorf("%s after Close: %v, want ErrClosed", name, err)
			}
		}
		if o, p := x.Lookup(11); o != 10 || p != 0 {
			t.Errorf("Lookup after Close = %d, %d", o, p)
		}
		if x.Entries() != 0 || x.Check(0) != nil {
			t.Error("closed index has entries")
		}
	})
}

// viewFile implements vfs.Viewer by reading into a new buffer, and keeps
// every view with a copy so that the test can check none was written to.
type viewFile struct {
	vfs.File
	views *[][2][]byte
}

func (f viewFile) View(off int64, n int) ([]byte, error) {
	b, err := vfs.ReadView(plainFile{f.File}, off, n)
	if err != nil {
		return nil, err
	}
	// Leave room to append in place, which the index must not use.
	v := append(make([]byte, 0, n+64), b...)
	*f.views = append(*f.views, [2][]byte{v, bytes.Clone(v)})
	return v, nil
}

func TestViewsAreNotWritten(t *testing.T) {
	var views [][2][]byte
	fsys := wrapFS{vfs.OS, func(f vfs.File) vfs.File { return viewFile{f, &views} }}
	path := filepath.Join(t.TempDir(), "a.index")
	x := openOffset(t, fsys, path, 0, 1024, true)
	for i := range 5 {
		must(t, x.Append(int64(i+1), int64(100*(i+1))))
	}
	must(t, x.Close())
	x = openOffset(t, fsys, path, 0, 1024, false)
	if len(views) != 1 {
		t.Fatalf("%d views taken, want 1", len(views))
	}
	must(t, x.Unseal(1024))
	must(t, x.TruncateTo(3))
	must(t, x.Append(3, 250))
	must(t, x.Append(9, 900))
	for _, v := range views {
		if all := v[0][:cap(v[0])]; !bytes.Equal(all[:len(v[1])], v[1]) || !allZero(all[len(v[1]):]) {
			t.Fatal("the index wrote into a view")
		}
	}
	want := []OffsetEntry{{1, 100}, {2, 200}, {3, 250}, {9, 900}}
	if got := offsetEntries(x); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("entries %v, want %v", got, want)
	}
}

// TestConcurrentReaders runs lookups while the owner appends, truncates,
// seals and unseals; run it with -race.
func TestConcurrentReaders(t *testing.T) {
	eachFS(t, func(t *testing.T, k fsKind, dir string) {
		ox := openOffset(t, k.fsys, filepath.Join(dir, "a.index"), 1000, 64<<10, true)
		tx := openTime(t, k.fsys, filepath.Join(dir, "a.timeindex"), 1000, 64<<10, true)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for r := range 2 {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					target := int64(1000 + (i*7+r)%5000)
					if o, p := ox.Lookup(target); o > target || (o > 1000 && p != (o-1000)*10) {
						t.Errorf("Lookup(%d) = %d, %d", target, o, p)
						return
					}
					if ts, o := tx.Lookup(target); ts > target || (ts >= 0 && o != ts) {
						t.Errorf("time Lookup(%d) = %d, %d", target, ts, o)
						return
					}
					if o, _, ok := ox.Last(); ok && o < 1000 {
						t.Errorf("Last = %d", o)
					}
					ox.Entries()
					ox.Full()
					ox.Check(1 << 40)
				}
			})
		}
		n := 3000
		if testing.Short() {
			n = 500
		}
		for i := 1; i < n; i++ {
			o := int64(1000 + i)
			if err := ox.Append(o, int64(i)*10); err != nil {
				t.Fatal(err)
			}
			must(t, tx.Append(o, o))
			switch i % 500 {
			case 100:
				must(t, ox.TruncateTo(o-50))
				must(t, tx.TruncateTo(o-50))
			case 200:
				must(t, ox.Seal())
				must(t, tx.Seal())
				must(t, ox.Unseal(64<<10))
				must(t, tx.Unseal(64<<10))
			case 300:
				must(t, ox.Sync())
			}
		}
		close(stop)
		wg.Wait()
	})
}

// faultyFile maps through the file it wraps unless told to fail.
type faultyFile struct {
	vfs.File
	faults *faults
}

type faults struct {
	mapErr, truncateErr error
}

var errInjected = errors.New("injected fault")

func (f faultyFile) Map(length int) (*vfs.Mapping, error) {
	if f.faults.mapErr != nil {
		return nil, f.faults.mapErr
	}
	return f.File.(vfs.Mapper).Map(length)
}

func (f faultyFile) Truncate(size int64) error {
	if f.faults.truncateErr != nil {
		return f.faults.truncateErr
	}
	return f.File.Truncate(size)
}

// TestMapFailure: a mapping that fails for a reason other than
// ErrNotSupported falls back to the heap this once, and mapping is tried
// again on the next transition.
func TestMapFailure(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skip("no mapping on " + runtime.GOOS)
	}
	fl := new(faults)
	fsys := wrapFS{vfs.OS, func(f vfs.File) vfs.File { return faultyFile{f, fl} }}
	path := filepath.Join(t.TempDir(), "a.index")
	fl.mapErr = errInjected
	x := openOffset(t, fsys, path, 0, 1024, true)
	if x.f.m != nil || !x.f.heap {
		t.Fatal("not on the heap after a failed map")
	}
	must(t, x.Append(1, 10))
	must(t, x.Append(2, 20))
	fl.mapErr = nil
	must(t, x.Seal())
	if x.f.m == nil {
		t.Fatal("not mapped after Seal")
	}
	if o, p := x.Lookup(5); o != 2 || p != 20 {
		t.Errorf("Lookup = %d, %d", o, p)
	}
	must(t, x.Unseal(1024))
	must(t, x.Append(3, 30))
	must(t, x.Close())
	if fileSize(t, path) != 3*OffsetEntrySize {
		t.Errorf("file size %d", fileSize(t, path))
	}
}

// TestFailedSeal: when Seal cannot set the file up again the index is left
// without entries and every change reports the failure; Close still closes.
func TestFailedSeal(t *testing.T) {
	for _, mapped := range []bool{true, false} {
		t.Run(fmt.Sprintf("mapped=%v", mapped), func(t *testing.T) {
			fl := new(faults)
			wrap := func(f vfs.File) vfs.File { return faultyFile{f, fl} }
			if !mapped {
				wrap = func(f vfs.File) vfs.File { return plainFaultyFile{faultyFile{f, fl}} }
			}
			path := filepath.Join(t.TempDir(), "a.timeindex")
			x := openTime(t, wrapFS{vfs.OS, wrap}, path, 0, 1024, true)
			must(t, x.Append(5, 1))
			must(t, x.Append(6, 2))
			// Make sure Seal has to trim (a heap index does not preallocate).
			must(t, x.f.f.Truncate(1024/TimeEntrySize*TimeEntrySize))
			fl.truncateErr = errInjected
			if err := x.Seal(); !errors.Is(err, errInjected) {
				t.Fatalf("Seal: %v, want the injected fault", err)
			}
			if x.Entries() != 0 {
				t.Errorf("failed index has %d entries", x.Entries())
			}
			if ts, o := x.Lookup(100); ts != -1 || o != 0 {
				t.Errorf("Lookup on failed index = %d, %d", ts, o)
			}
			for name, err := range map[string]error{
				"Append":     x.Append(7, 3),
				"TruncateTo": x.TruncateTo(0),
				"Sync":       x.Sync(),
				"Seal":       x.Seal(),
				"Unseal":     x.Unseal(1024),
			} {
				if !errors.Is(err, errInjected) {
					t.Errorf("%s on failed index: %v", name, err)
				}
			}
			fl.truncateErr = nil
			must(t, x.Close())
			// The entries are still in the file.
			y := openTime(t, vfs.OS, path, 0, 1024, false)
			if y.Entries() != 2 {
				t.Errorf("reopened: %d entries, want 2", y.Entries())
			}
		})
	}
}

// plainFaultyFile is a faultyFile without Map.
type plainFaultyFile struct{ f faultyFile }

func (p plainFaultyFile) Write(b []byte) (int, error)              { return p.f.Write(b) }
func (p plainFaultyFile) ReadAt(b []byte, off int64) (int, error)  { return p.f.ReadAt(b, off) }
func (p plainFaultyFile) WriteAt(b []byte, off int64) (int, error) { return p.f.WriteAt(b, off) }
func (p plainFaultyFile) Close() error                             { return p.f.Close() }
func (p plainFaultyFile) Sync() error                              { return p.f.Sync() }
func (p plainFaultyFile) Truncate(size int64) error                { return p.f.Truncate(size) }
func (p plainFaultyFile) Size() (int64, error)                     { return p.f.Size() }
func (p plainFaultyFile) Name() string                             { return p.f.Name() }

// TestIndexFilePastMaxInt32IsCorrupt: an index file larger than
// math.MaxInt32 bytes, which no index is (Kafka's segment.index.bytes is
// an int32), is a *CorruptError, which a segment answers by rebuilding
// its indexes. It was opened: on 64 bits mapped whole (or, for an active
// index, copied to the heap whole), and on 32 bits its bytes wrapped an
// int — a file of 2 GiB and 8 bytes failed Open with the file system's
// untyped "invalid argument" (a truncation to a negative size), one of
// 8 GiB opened with 2^30 entries and no bytes under them, the first
// look-up then panicking. The files are sparse: a last entry alone,
// after zeros.
func TestIndexFilePastMaxInt32IsCorrupt(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("sparse files: NTFS allocates a file's length unless it is marked sparse")
	}
	for _, size := range []int64{1<<31 + 8, 1<<31 + 16, 3 << 30, 1 << 33} {
		for _, kind := range []string{"offset", "time"} {
			sz := int64(OffsetEntrySize)
			if kind == "time" {
				sz = TimeEntrySize
			}
			n := size / sz * sz
			path := filepath.Join(t.TempDir(), "00000000000000000000."+kind)
			f, err := os.Create(path)
			require.NoError(t, err)
			if err := f.Truncate(n); err != nil {
				f.Close()
				t.Skipf("no sparse file of %d bytes here: %v", n, err)
			}
			_, err = f.WriteAt([]byte{0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1}[:sz], n-sz)
			require.NoError(t, err)
			require.NoError(t, f.Close())
			if kind == "offset" {
				_, err = OpenOffset(vfs.OS, path, 0, DefaultMaxBytes, false)
			} else {
				_, err = OpenTime(vfs.OS, path, 0, DefaultMaxBytes, false)
			}
			var ce *CorruptError
			require.True(t, errors.As(err, &ce), "%s index of %d bytes: %v", kind, n, err)
			require.ErrorIs(t, err, ErrCorrupt)
			fi, err := os.Stat(path)
			require.NoError(t, err)
			require.Equal(t, n, fi.Size(), "%s index of %d bytes: a refused Open changed the file", kind, n)
		}
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
