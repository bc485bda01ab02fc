package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/runnel/runnel/vfs"
)

func TestOffsetAppendLookup(t *testing.T) {
	eachFS(t, func(t *testing.T, k fsKind, dir string) {
		x := openOffset(t, k.fsys, filepath.Join(dir, "a.index"), 100, 1024, true)
		if o, p := x.Lookup(150); o != 100 || p != 0 {
			t.Errorf("empty Lookup = %d, %d; want 100, 0", o, p)
		}
		for _, e := range []OffsetEntry{{110, 1000}, {120, 2000}, {135, 3500}} {
			must(t, x.Append(e.Offset, e.Position))
		}
		for _, tc := range []struct{ target, offset, position int64 }{
			{math.MinInt64, 100, 0},
			{0, 100, 0},
			{99, 100, 0},
			{100, 100, 0},
			{109, 100, 0},
			{110, 110, 1000},
			{115, 110, 1000},
			{119, 110, 1000},
			{120, 120, 2000},
			{134, 120, 2000},
			{135, 135, 3500},
			{136, 135, 3500},
			{1 << 40, 135, 3500},
			{math.MaxInt64, 135, 3500},
		} {
			if o, p := x.Lookup(tc.target); o != tc.offset || p != tc.position {
				t.Errorf("Lookup(%d) = %d, %d; want %d, %d", tc.target, o, p, tc.offset, tc.position)
			}
		}
		if n := x.Entries(); n != 3 {
			t.Errorf("Entries = %d", n)
		}
		if o, p := x.Entry(1); o != 120 || p != 2000 {
			t.Errorf("Entry(1) = %d, %d", o, p)
		}
		if o, p, ok := x.Last(); !ok || o != 135 || p != 3500 {
			t.Errorf("Last = %d, %d, %v", o, p, ok)
		}
		if x.Base() != 100 || x.Path() != filepath.Join(dir, "a.index") {
			t.Errorf("Base %d, Path %q", x.Base(), x.Path())
		}
		if x.Full() {
			t.Error("Full")
		}
		must(t, x.Check(3501))
		func() {
			defer func() {
				if recover() == nil {
					t.Error("Entry(3) did not panic")
				}
			}()
			x.Entry(3)
		}()
	})
}

func TestOffsetFull(t *testing.T) {
	eachFS(t, func(t *testing.T, k fsKind, dir string) {
		x := openOffset(t, k.fsys, filepath.Join(dir, "a.index"), 0, 3*OffsetEntrySize+5, true)
		for i := range 3 {
			if x.Full() {
				t.Fatalf("full after %d entries", i)
			}
			must(t, x.Append(int64(i+1), int64(i+1)*10))
		}
		if !x.Full() {
			t.Error("not full after 3 entries")
		}
		if err := x.Append(10, 100); err != ErrIndexFull {
			t.Errorf("Append when full: %v, want ErrIndexFull", err)
		}
		if x.Entries() != 3 {
			t.Errorf("Entries = %d", x.Entries())
		}

		z := openOffset(t, k.fsys, filepath.Join(dir, "b.index"), 0, 0, true)
		if !z.Full() || z.Append(1, 1) != ErrIndexFull {
			t.Error("an index of maxBytes 0 takes entries")
		}
	})
}

func TestOffsetInvalid(t *testing.T) {
	eachFS(t, func(t *testing.T, k fsKind, dir string) {
		x := openOffset(t, k.fsys, filepath.Join(dir, "a.index"), 100, 1024, true)
		for _, e := range [][2]int64{
			{99, 10},                      // before base
			{100 + math.MaxInt32 + 1, 10}, // relative offset overflows
			{101, -1},                     // negative position
			{101, math.MaxInt32 + 1},      // position overflows
		} {
			if err := x.Append(e[0], e[1]); !errors.Is(err, ErrInvalidEntry) {
				t.Errorf("Append(%d, %d) = %v, want ErrInvalidEntry", e[0], e[1], err)
			}
		}
		must(t, x.Append(100+math.MaxInt32-1, math.MaxInt32-1))
		must(t, x.Append(100+math.MaxInt32, math.MaxInt32))
		must(t, x.Reset())
		must(t, x.Append(110, 1000))
		for _, e := range [][2]int64{
			{110, 2000}, // same offset
			{105, 2000}, // earlier offset
			{120, 1000}, // same position
			{120, 900},  // earlier position
		} {
			if err := x.Append(e[0], e[1]); !errors.Is(err, ErrInvalidEntry) {
				t.Errorf("Append(%d, %d) = %v, want ErrInvalidEntry", e[0], e[1], err)
			}
		}
		if x.Entries() != 1 {
			t.Errorf("rejected appends changed the index: %d entries", x.Entries())
		}
	})
}

func TestOffsetSeal(t *testing.T) {
	eachFS(t, func(t *testing.T, k fsKind, dir string) {
		path := filepath.Join(dir, "a.index")
		x := openOffset(t, k.fsys, path, 0, 1024, true)
		must(t, x.Append(5, 50))
		must(t, x.Append(9, 90))
		must(t, x.Seal())
		must(t, x.Seal())
		checkMapped(t, k, &x.f)
		if err := x.Append(10, 100); err != ErrSealed {
			t.Errorf("Append after Seal: %v, want ErrSealed", err)
		}
		if !x.Full() {
			t.Error("sealed index not full")
		}
		if got := fileSize(t, path); got != 2*OffsetEntrySize {
			t.Errorf("sealed file size %d", got)
		}
		if o, p := x.Lookup(7); o != 5 || p != 50 {
			t.Errorf("Lookup after Seal = %d, %d", o, p)
		}
		must(t, x.Sync())
		must(t, x.Close())
		if got := fileSize(t, path); got != 2*OffsetEntrySize {
			t.Errorf("file size after Close %d", got)
		}
	})
}

func TestOffsetPersistence(t *testing.T) {
	eachFS(t, func(t *testing.T, k fsKind, dir string) {
		path := filepath.Join(dir, "a.index")
		x := openOffset(t, k.fsys, path, 1000, 1024, true)
		var want []OffsetEntry
		for i := range 20 {
			e := OffsetEntry{int64(1000 + 3*i + 1), int64(4096 * (i + 1))}
			must(t, x.Append(e.Offset, e.Position))
			want = append(want, e)
		}
		must(t, x.Close())
		if got := fileSize(t, path); got != 20*OffsetEntrySize {
			t.Errorf("closed file size %d, want %d", got, 20*OffsetEntrySize)
		}
		b, err := os.ReadFile(path)
		must(t, err)
		if rel, pos := binary.BigEndian.Uint32(b[8:]), binary.BigEndian.Uint32(b[12:]); rel != 4 || pos != 8192 {
			t.Errorf("entry 1 encoded as %d, %d", rel, pos)
		}

		x = openOffset(t, k.fsys, path, 1000, 1024, false)
		checkMapped(t, k, &x.f)
		if got := offsetEntries(x); !slices.Equal(got, want) {
			t.Errorf("reopened sealed: %v, want %v", got, want)
		}
		must(t, x.Check(4096*21))
		must(t, x.Close())

		// Reopened active, it takes more entries.
		x = openOffset(t, k.fsys, path, 1000, 1024, true)
		checkMapped(t, k, &x.f)
		must(t, x.Append(2000, 1<<20))
		want = append(want, OffsetEntry{2000, 1 << 20})
		must(t, x.Close())
		x = openOffset(t, k.fsys, path, 1000, 1024, false)
		if got := offsetEntries(x); !slices.Equal(got, want) {
			t.Errorf("reopened after more appends: %v, want %v", got, want)
		}
	})
}

func TestOffsetCrash(t *testing.T) {
	eachFS(t, func(t *testing.T, k fsKind, dir string) {
		path := filepath.Join(dir, "a.index")
		x := openOffset(t, k.fsys, path, 0, 4096, true)
		var want []OffsetEntry
		for i := range 10 {
			e := OffsetEntry{int64(i + 1), int64(i+1) * 100}
			must(t, x.Append(e.Offset, e.Position))
			want = append(want, e)
		}
		must(t, x.Sync())
		x.f.abandon() // no trim: the file holds what WriteAt wrote
		if got := fileSize(t, path); got != 10*OffsetEntrySize {
			t.Fatalf("file size after a crash %d, want %d", got, 10*OffsetEntrySize)
		}

		y := openOffset(t, k.fsys, path, 0, 4096, true)
		if got := offsetEntries(y); !slices.Equal(got, want) {
			t.Errorf("after crash: %v, want %v", got, want)
		}
		must(t, y.Append(20, 2000))
		want = append(want, OffsetEntry{20, 2000})
		must(t, y.Sync())
		y.f.abandon()

		// A sealed open finds them too (TestOffsetUntrimmed opens files
		// with the zero tail a preallocated index leaves).
		z := openOffset(t, k.fsys, path, 0, 4096, false)
		if got := offsetEntries(z); !slices.Equal(got, want) {
			t.Errorf("sealed after crash: %v, want %v", got, want)
		}
		if got := fileSize(t, path); got != int64(len(want)*OffsetEntrySize) {
			t.Errorf("sealed open left the file at %d bytes", got)
		}
	})
}

// TestOffsetUntrimmed opens a file with trailing zeros written by hand (as
// any FS could leave it), larger than maxBytes.
func TestOffsetUntrimmed(t *testing.T) {
	eachFS(t, func(t *testing.T, k fsKind, dir string) {
		path := filepath.Join(dir, "a.index")
		b := make([]byte, 200<<10) // more than the 64 KiB countEntries reads at once
		want := []OffsetEntry{{7, 0}, {8, 10}, {9, 20}}
		for i, e := range want {
			binary.BigEndian.PutUint32(b[i*8:], uint32(e.Offset-7))
			binary.BigEndian.PutUint32(b[i*8+4:], uint32(e.Position))
		}
		must(t, os.WriteFile(path, b, 0o644))
		x := openOffset(t, k.fsys, path, 7, 1024, true)
		if got := offsetEntries(x); !slices.Equal(got, want) {
			t.Errorf("entries %v, want %v", got, want)
		}
		if fileSize(t, path) != 3*OffsetEntrySize {
			t.Errorf("an active open left the file at %d bytes", fileSize(t, path))
		}
		must(t, x.Close())
		if got := fileSize(t, path); got != 3*OffsetEntrySize {
			t.Errorf("closed file size %d", got)
		}

		// All zeros: empty.
		must(t, os.WriteFile(path, make([]byte, 100<<10), 0o644))
		y := openOffset(t, k.fsys, path, 7, 1024, false)
		if y.Entries() != 0 || fileSize(t, path) != 0 {
			t.Errorf("all-zero file: %d entries, %d bytes", y.Entries(), fileSize(t, path))
		}
	})
}

func TestOffsetUnseal(t *testing.T) {
	eachFS(t, func(t *testing.T, k fsKind, dir string) {
		path := filepath.Join(dir, "a.index")
		x := openOffset(t, k.fsys, path, 0, 2*OffsetEntrySize, true)
		must(t, x.Append(1, 10))
		must(t, x.Append(2, 20))
		must(t, x.Seal())
		must(t, x.Unseal(1024))
		must(t, x.Unseal(1024))
		checkMapped(t, k, &x.f)
		if x.Full() {
			t.Error("full after Unseal with room")
		}
		must(t, x.TruncateTo(2))
		must(t, x.Append(3, 15))
		must(t, x.Append(4, 40))
		want := []OffsetEntry{{1, 10}, {3, 15}, {4, 40}}
		if got := offsetEntries(x); !slices.Equal(got, want) {
			t.Errorf("entries %v, want %v", got, want)
		}
		if o, p := x.Lookup(3); o != 3 || p != 15 {
			t.Errorf("Lookup(3) = %d, %d", o, p)
		}
		must(t, x.Close())
		x = openOffset(t, k.fsys, path, 0, 1024, false)
		if got := offsetEntries(x); !slices.Equal(got, want) {
			t.Errorf("reopened: %v, want %v", got, want)
		}
		// Unsealing an index opened sealed.
		must(t, x.Unseal(1024))
		must(t, x.Append(5, 50))
		must(t, x.Close())
		if got := fileSize(t, path); got != 4*OffsetEntrySize {
			t.Errorf("file size %d", got)
		}
	})
}

func TestOffsetTruncateTo(t *testing.T) {
	eachFS(t, func(t *testing.T, k fsKind, dir string) {
		for _, crash := range []bool{false, true} {
			path := filepath.Join(dir, fmt.Sprintf("crash-%v.index", crash))
			x := openOffset(t, k.fsys, path, 100, 1024, true)
			for i := range 10 {
				must(t, x.Append(int64(101+2*i), int64(10*(i+1)))) // offsets 101, 103, ..., 119
			}
			must(t, x.TruncateTo(200)) // nothing to drop
			must(t, x.TruncateTo(108)) // keeps 101..107
			want := []OffsetEntry{{101, 10}, {103, 20}, {105, 30}, {107, 40}}
			if got := offsetEntries(x); !slices.Equal(got, want) {
				t.Errorf("after TruncateTo(108): %v, want %v", got, want)
			}
			if o, p := x.Lookup(119); o != 107 || p != 40 {
				t.Errorf("Lookup(119) = %d, %d", o, p)
			}
			must(t, x.TruncateTo(107)) // exact: drops 107
			want = want[:3]
			if crash {
				must(t, x.Sync())
				x.f.abandon()
			} else {
				must(t, x.Close())
			}
			x = openOffset(t, k.fsys, path, 100, 1024, true)
			if got := offsetEntries(x); !slices.Equal(got, want) {
				t.Errorf("reopened (crash %v): %v, want %v", crash, got, want)
			}
			must(t, x.Append(106, 35))
			must(t, x.TruncateTo(100))
			if x.Entries() != 0 {
				t.Errorf("TruncateTo(base) left %d entries", x.Entries())
			}
			must(t, x.Append(102, 5))
			must(t, x.Reset())
			if x.Entries() != 0 {
				t.Errorf("Reset left %d entries", x.Entries())
			}
			must(t, x.Sync())
			x.f.abandon()
			x = openOffset(t, k.fsys, path, 100, 1024, true)
			if x.Entries() != 0 {
				t.Errorf("reset index reopened with %d entries", x.Entries())
			}
		}

		// On a sealed index TruncateTo trims the file.
		path := filepath.Join(dir, "sealed.index")
		x := openOffset(t, k.fsys, path, 0, 1024, true)
		for i := range 5 {
			must(t, x.Append(int64(i+1), int64(i+1)))
		}
		must(t, x.Seal())
		must(t, x.TruncateTo(3))
		checkMapped(t, k, &x.f)
		if got := fileSize(t, path); got != 2*OffsetEntrySize {
			t.Errorf("sealed truncated file size %d", got)
		}
		if o, p := x.Lookup(4); o != 2 || p != 2 {
			t.Errorf("Lookup(4) = %d, %d", o, p)
		}
		if x.Append(3, 3) != ErrSealed {
			t.Error("TruncateTo unsealed the index")
		}
	})
}

func TestOffsetCheck(t *testing.T) {
	eachFS(t, func(t *testing.T, k fsKind, dir string) {
		write := func(name string, entries ...[2]int64) string {
			path := filepath.Join(dir, name)
			b := make([]byte, 0, len(entries)*OffsetEntrySize)
			for _, e := range entries {
				b = binary.BigEndian.AppendUint32(b, uint32(e[0]))
				b = binary.BigEndian.AppendUint32(b, uint32(e[1]))
			}
			must(t, os.WriteFile(path, b, 0o644))
			return path
		}
		for _, tc := range []struct {
			name    string
			entries [][2]int64
			logSize int64
			bad     int // -1: fine
		}{
			{"good", [][2]int64{{1, 10}, {2, 20}, {5, 30}}, 31, -1},
			{"empty", nil, 0, -1},
			{"unsorted offsets", [][2]int64{{1, 10}, {3, 20}, {2, 30}, {4, 40}}, 100, 2},
			{"repeated offset", [][2]int64{{1, 10}, {1, 20}}, 100, 1},
			{"unsorted positions", [][2]int64{{1, 10}, {2, 20}, {3, 20}}, 100, 2},
			{"negative relative offset", [][2]int64{{-1, 10}}, 100, 0},
			{"negative position", [][2]int64{{1, 10}, {2, -5}}, 100, 1},
			{"position at log size", [][2]int64{{1, 10}, {2, 20}, {3, 30}}, 30, 2},
			{"position past log size", [][2]int64{{1, 10}, {2, 20}}, 15, 1},
		} {
			path := write(tc.name+".index", tc.entries...)
			for _, writable := range []bool{false, true} {
				x := openOffset(t, k.fsys, path, 50, 1024, writable)
				err := x.Check(tc.logSize)
				if tc.bad < 0 {
					if err != nil {
						t.Errorf("%s: Check: %v", tc.name, err)
					}
				} else {
					checkCorrupt(t, err, path, tc.bad)
				}
				must(t, x.Close())
			}
		}
	})
}

// TestOffsetLookupProperty checks Lookup and TruncateTo against a linear
// scan over random indexes.
func TestOffsetLookupProperty(t *testing.T) {
	eachFS(t, func(t *testing.T, k fsKind, dir string) {
		rng := rand.New(rand.NewPCG(1, 2))
		rounds := 30
		if testing.Short() {
			rounds = 8
		}
		for round := range rounds {
			base := rng.Int64N(1 << 40)
			x := openOffset(t, k.fsys, filepath.Join(dir, fmt.Sprintf("%d.index", round)), base, 1<<16, true)
			var es []OffsetEntry
			off, pos := base, int64(0)
			for range rng.IntN(500) {
				off += 1 + rng.Int64N(20)
				pos += 1 + rng.Int64N(5000)
				must(t, x.Append(off, pos))
				es = append(es, OffsetEntry{off, pos})
			}
			if round%2 == 1 {
				must(t, x.Seal())
			}
			naive := func(target int64) (int64, int64) {
				o, p := base, int64(0)
				for _, e := range es {
					if e.Offset <= target {
						o, p = e.Offset, e.Position
					}
				}
				return o, p
			}
			for range 300 {
				target := base - 5 + rng.Int64N(off-base+10)
				wo, wp := naive(target)
				if o, p := x.Lookup(target); o != wo || p != wp {
					t.Fatalf("round %d: Lookup(%d) = %d, %d; want %d, %d", round, target, o, p, wo, wp)
				}
			}
			cut := base - 5 + rng.Int64N(off-base+10)
			must(t, x.TruncateTo(cut))
			es = slices.DeleteFunc(es, func(e OffsetEntry) bool { return e.Offset >= cut })
			if got := offsetEntries(x); !slices.Equal(got, es) {
				t.Fatalf("round %d: TruncateTo(%d): %v, want %v", round, cut, got, es)
			}
			must(t, x.Close())
		}
	})
}

// TestOffsetWritesInBlocks: an active index writes its entries to the file
// flushEntries at a time, and all of them on Sync; a crash loses at most
// the entries since the last write, and a truncation below what the file
// holds cuts the dropped entries from it.
func TestOffsetWritesInBlocks(t *testing.T) {
	eachFS(t, func(t *testing.T, k fsKind, dir string) {
		path := filepath.Join(dir, "a.index")
		x := openOffset(t, k.fsys, path, 0, 1<<20, true)
		var want []OffsetEntry
		for i := range 2*flushEntries + 44 {
			e := OffsetEntry{int64(i + 1), int64(i+1) * 100}
			must(t, x.Append(e.Offset, e.Position))
			want = append(want, e)
		}
		if got := fileSize(t, path); got != 2*flushEntries*OffsetEntrySize {
			t.Fatalf("file size %d with %d entries appended, want %d", got, len(want), 2*flushEntries*OffsetEntrySize)
		}
		x.f.abandon() // a crash: the entries not yet written are lost
		y := openOffset(t, k.fsys, path, 0, 1<<20, true)
		if got := offsetEntries(y); !slices.Equal(got, want[:2*flushEntries]) {
			t.Fatalf("after a crash: %d entries, want the %d written", len(got), 2*flushEntries)
		}

		// Truncation below what the file holds, with entries pending.
		want = want[:2*flushEntries]
		for i := range 10 {
			e := OffsetEntry{int64(1000 + i), int64(100_000 + i)}
			must(t, y.Append(e.Offset, e.Position))
		}
		must(t, y.TruncateTo(flushEntries+1)) // keeps offsets 1..flushEntries
		want = want[:flushEntries]
		must(t, y.Append(5000, 500_000))
		want = append(want, OffsetEntry{5000, 500_000})
		must(t, y.Sync())
		y.f.abandon() // the file: the entries kept and the new one (cut after the kept ones)
		z := openOffset(t, k.fsys, path, 0, 1<<20, false)
		if got := offsetEntries(z); !slices.Equal(got, want) {
			t.Errorf("after truncation and Sync: %v, want %v", got, want)
		}
	})
}

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
