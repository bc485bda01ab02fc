package index

import (
	"errors"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/vfs"
)

// Error paths of the index files: an Open, a truncation or a sync that
// fails, and a read cut short.

// failOnceArmed is an FS failing the next operation of kind op, once armed.
func failOnceArmed(fsys vfs.FS, op vfs.Op, armed *atomic.Bool) vfs.FS {
	return vfs.WithFaults(fsys, vfs.InjectorFunc(func(o vfs.Op, _ string) error {
		if o == op && armed.CompareAndSwap(true, false) {
			return vfs.ErrInjected
		}
		return nil
	}))
}

// sealedWithFault writes a sealed offset index of four entries to a.index of a
// new MemFS, and opens it through fail (op failed once armed).
func sealedWithFault(t *testing.T, op vfs.Op) (*vfs.MemFS, *OffsetIndex, *atomic.Bool) {
	t.Helper()
	mem := vfs.NewMem()
	x := openOffset(t, mem, "a.index", 100, 1024, true)
	for i := range int64(4) {
		must(t, x.Append(101+10*i, 100*i))
	}
	must(t, x.Close())
	armed := new(atomic.Bool)
	return mem, openOffset(t, failOnceArmed(mem, op, armed), "a.index", 100, 0, false), armed
}

// TestSealedTruncateOpenFails: TruncateTo of a sealed index, whose
// file is closed (released), opens it again; when that Open fails, the
// error is TruncateTo's and the index keeps its entries, and the next
// TruncateTo does the work.
func TestSealedTruncateOpenFails(t *testing.T) {
	mem, x, armed := sealedWithFault(t, vfs.OpOpen)
	all := offsetEntries(x)
	armed.Store(true)
	if err := x.TruncateTo(121); !errors.Is(err, vfs.ErrInjected) {
		t.Fatalf("TruncateTo with a failing Open: %v", err)
	}
	if got := offsetEntries(x); !slices.Equal(got, all) {
		t.Fatalf("entries after the failed TruncateTo: %v, want %v", got, all)
	}
	must(t, x.TruncateTo(121))
	if got := offsetEntries(x); !slices.Equal(got, all[:2]) {
		t.Fatalf("entries after TruncateTo: %v, want %v", got, all[:2])
	}
	must(t, x.Close())
	if got := offsetEntries(openOffset(t, mem, "a.index", 100, 0, false)); !slices.Equal(got, all[:2]) {
		t.Fatalf("reopened: %v, want %v", got, all[:2])
	}
}

// TestSealedTruncateCutFails: when TruncateTo of a sealed index
// cannot cut its file, the index is left without entries, and every
// later change returns that error (see fail): it answers no lookup from
// entries it could not settle. Its file keeps the entries it had, which
// a reopen finds whole.
func TestSealedTruncateCutFails(t *testing.T) {
	mem, x, armed := sealedWithFault(t, vfs.OpTruncate)
	all := offsetEntries(x)
	armed.Store(true)
	if err := x.TruncateTo(121); !errors.Is(err, vfs.ErrInjected) {
		t.Fatalf("TruncateTo with a failing Truncate: %v", err)
	}
	if n := x.Entries(); n != 0 {
		t.Fatalf("%d entries after the failed TruncateTo, want none", n)
	}
	if o, p := x.Lookup(135); o != 100 || p != 0 {
		t.Fatalf("Lookup after the failed TruncateTo = %d, %d; want the base, 0", o, p)
	}
	for what, err := range map[string]error{"TruncateTo": x.TruncateTo(111), "Reset": x.Reset(), "Unseal": x.Unseal(1024)} {
		if !errors.Is(err, vfs.ErrInjected) {
			t.Fatalf("%s after the failed TruncateTo: %v, want its error", what, err)
		}
	}
	x.Close()
	if got := offsetEntries(openOffset(t, mem, "a.index", 100, 0, false)); !slices.Equal(got, all) {
		t.Fatalf("reopened: %v, want %v", got, all)
	}
}

// TestSealedSyncOpenFails: Sync of a sealed index whose file Open
// trimmed opens the file again to sync it; when that Open fails, Sync
// returns the error, and the next Sync syncs.
func TestSealedSyncOpenFails(t *testing.T) {
	mem := trimmedIndexFile(t)
	var armed atomic.Bool
	var syncs atomic.Int64
	fsys := vfs.WithFaults(failOnceArmed(mem, vfs.OpOpen, &armed), vfs.InjectorFunc(func(op vfs.Op, _ string) error {
		if op == vfs.OpSync {
			syncs.Add(1)
		}
		return nil
	}))
	x := openOffset(t, fsys, "a.index", 0, 0, false)
	armed.Store(true)
	if err := x.Sync(); !errors.Is(err, vfs.ErrInjected) {
		t.Fatalf("Sync with a failing Open: %v", err)
	}
	must(t, x.Sync())
	must(t, x.Sync()) // synced: nothing to do
	if n := syncs.Load(); n != 1 {
		t.Fatalf("%d syncs of the file, want 1", n)
	}
}

// shortReader is a file whose ReadAt returns one byte fewer than asked,
// and no error (a file cut meanwhile, as another process may do).
type shortReader struct{ vfs.File }

func (f shortReader) ReadAt(p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := f.File.ReadAt(p[:len(p)-1], off)
	return n, err
}

// TestOpenShortRead: Open refuses an index whose entries it cannot
// read whole, with io.ErrUnexpectedEOF rather than counting entries from
// bytes it did not read.
func TestOpenShortRead(t *testing.T) {
	mem := vfs.NewMem()
	x := openOffset(t, mem, "a.index", 0, 1024, true)
	must(t, x.Append(1, 10))
	must(t, x.Close())
	fsys := wrapFS{mem, func(f vfs.File) vfs.File { return shortReader{f} }}
	if _, err := OpenOffset(fsys, "a.index", 0, 0, false); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("OpenOffset with a short read: %v, want io.ErrUnexpectedEOF", err)
	}
}

// TestCorruptErrorWithoutPath: a *CorruptError of bytes decoded
// from no file names the entry and reason, and matches ErrCorrupt.
func TestCorruptErrorWithoutPath(t *testing.T) {
	_, err := DecodeOffsetEntries(make([]byte, OffsetEntrySize+3), 0)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("DecodeOffsetEntries of a partial entry: %v", err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "runnel/index: corrupt index: entry 1: ") {
		t.Fatalf("message %q", msg)
	}
}

// TestSealSyncFailsThenTruncate: a Seal whose fsync fails leaves
// the index sealed with its file still open; a TruncateTo after it uses
// that file (acquire has nothing to open), and the entries it keeps are
// those a reopen finds.
func TestSealSyncFailsThenTruncate(t *testing.T) {
	mem := vfs.NewMem()
	var armed atomic.Bool
	x := openOffset(t, failOnceArmed(mem, vfs.OpSync, &armed), "a.index", 100, 1024, true)
	for i := range int64(4) {
		must(t, x.Append(101+10*i, 100*i))
	}
	all := offsetEntries(x)
	armed.Store(true)
	if err := x.Seal(); !errors.Is(err, vfs.ErrInjected) {
		t.Fatalf("Seal with a failing fsync: %v", err)
	}
	if err := x.Append(200, 900); !errors.Is(err, ErrSealed) {
		t.Fatalf("Append after the failed Seal: %v, want ErrSealed", err)
	}
	must(t, x.TruncateTo(121))
	must(t, x.Sync())
	must(t, x.Close())
	if got := offsetEntries(openOffset(t, mem, "a.index", 100, 0, false)); !slices.Equal(got, all[:2]) {
		t.Fatalf("reopened: %v, want %v", got, all[:2])
	}
}
