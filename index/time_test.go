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

func TestTimeAppendLookup(t *testing.T) {
	eachFS(t, func(t *testing.T, k fsKind, dir string) {
		x := openTime(t, k.fsys, filepath.Join(dir, "a.timeindex"), 100, 1024, true)
		if ts, o := x.Lookup(5000); ts != -1 || o != 100 {
			t.Errorf("empty Lookup = %d, %d; want -1, 100", ts, o)
		}
		must(t, x.Append(-1, 100)) // no timestamp: never indexed
		if x.Entries() != 0 {
			t.Fatal("indexed timestamp -1")
		}
		for _, a := range [][2]int64{
			{1000, 100},
			{1000, 101}, // not a new maximum
			{999, 102},  // nor this
			{1500, 105},
			{1500, 106},
			{2000, 110},
			{2500, 110}, // same offset, larger timestamp
		} {
			must(t, x.Append(a[0], a[1]))
		}
		want := []TimeEntry{{1000, 100}, {1500, 105}, {2000, 110}, {2500, 110}}
		if got := timeEntries(x); !slices.Equal(got, want) {
			t.Fatalf("entries %v, want %v", got, want)
		}
		for _, tc := range []struct{ target, ts, offset int64 }{
			{math.MinInt64, -1, 100},
			{-1, -1, 100},
			{0, -1, 100},
			{999, -1, 100},
			{1000, 1000, 100},
			{1499, 1000, 100},
			{1500, 1500, 105},
			{2000, 2000, 110},
			{2499, 2000, 110},
			{2500, 2500, 110},
			{math.MaxInt64, 2500, 110},
		} {
			if ts, o := x.Lookup(tc.target); ts != tc.ts || o != tc.offset {
				t.Errorf("Lookup(%d) = %d, %d; want %d, %d", tc.target, ts, o, tc.ts, tc.offset)
			}
		}
		for _, tc := range []struct {
			offset, ts, entry int64
			ok                bool
		}{
			{math.MinInt64, 0, 0, false},
			{99, 0, 0, false},
			{100, 1000, 100, true},
			{104, 1000, 100, true},
			{105, 1500, 105, true},
			{109, 1500, 105, true},
			{110, 2500, 110, true}, // the last of the entries at 110
			{math.MaxInt64, 2500, 110, true},
		} {
			if ts, o, ok := x.LookupOffset(tc.offset); ts != tc.ts || o != tc.entry || ok != tc.ok {
				t.Errorf("LookupOffset(%d) = %d, %d, %v; want %d, %d, %v", tc.offset, ts, o, ok, tc.ts, tc.entry, tc.ok)
			}
		}
		if ts, o, ok := x.Last(); !ok || ts != 2500 || o != 110 {
			t.Errorf("Last = %d, %d, %v", ts, o, ok)
		}
		if x.Base() != 100 || x.Path() != filepath.Join(dir, "a.timeindex") {
			t.Errorf("Base %d, Path %q", x.Base(), x.Path())
		}
		must(t, x.Check(111))

		// Timestamp 0 at the base offset is an all-zero entry: indexed,
		// but dropped on reopen when it is the last one, which answers
		// lookups the same.
		z := openTime(t, k.fsys, filepath.Join(dir, "zero.timeindex"), 7, 1024, true)
		must(t, z.Append(0, 7))
		if z.Entries() != 1 {
			t.Fatalf("timestamp 0 not indexed")
		}
		must(t, z.Close())
		z = openTime(t, k.fsys, filepath.Join(dir, "zero.timeindex"), 7, 1024, false)
		if _, o := z.Lookup(0); o != 7 || z.Entries() != 0 {
			t.Errorf("reopened: %d entries, Lookup offset %d", z.Entries(), o)
		}
	})
}

func TestTimeFullInvalidSealed(t *testing.T) {
	eachFS(t, func(t *testing.T, k fsKind, dir string) {
		path := filepath.Join(dir, "a.timeindex")
		x := openTime(t, k.fsys, path, 100, 2*TimeEntrySize+11, true)
		for _, a := range [][2]int64{
			{10, 99},                      // before base
			{10, 100 + math.MaxInt32 + 1}, // relative offset overflows
			{-1, 99},                      // before base, a timestamp never indexed: checked all the same
		} {
			if err := x.Append(a[0], a[1]); !errors.Is(err, ErrInvalidEntry) {
				t.Errorf("Append(%d, %d) = %v, want ErrInvalidEntry", a[0], a[1], err)
			}
		}
		must(t, x.Append(10, 105))
		if err := x.Append(20, 104); !errors.Is(err, ErrInvalidEntry) {
			t.Errorf("Append before last offset: %v, want ErrInvalidEntry", err)
		}
		if err := x.Append(5, 104); !errors.Is(err, ErrInvalidEntry) {
			t.Errorf("Append before last offset, old timestamp: %v, want ErrInvalidEntry", err)
		}
		must(t, x.Append(20, 100+math.MaxInt32))
		if !x.Full() {
			t.Error("not full at capacity")
		}
		must(t, x.Append(20, 100+math.MaxInt32)) // no new maximum: fine when full
		if err := x.Append(30, 100+math.MaxInt32); err != ErrIndexFull {
			t.Errorf("Append when full: %v, want ErrIndexFull", err)
		}
		must(t, x.Seal())
		checkMapped(t, k, &x.f)
		if err := x.Append(40, 100+math.MaxInt32); err != ErrSealed {
			t.Errorf("Append after Seal: %v, want ErrSealed", err)
		}
		if err := x.Append(5, 100+math.MaxInt32); err != ErrSealed {
			t.Errorf("Append after Seal, no new maximum: %v, want ErrSealed", err)
		}
		if got := fileSize(t, path); got != 2*TimeEntrySize {
			t.Errorf("sealed file size %d", got)
		}
	})
}

func TestTimePersistence(t *testing.T) {
	eachFS(t, func(t *testing.T, k fsKind, dir string) {
		path := filepath.Join(dir, "a.timeindex")
		x := openTime(t, k.fsys, path, 1000, 4096, true)
		var want []TimeEntry
		for i := range 30 {
			e := TimeEntry{1_700_000_000_000 + 7*int64(i), int64(1000 + 2*i)}
			must(t, x.Append(e.Timestamp, e.Offset))
			want = append(want, e)
		}
		must(t, x.Close())
		if got := fileSize(t, path); got != 30*TimeEntrySize {
			t.Errorf("closed file size %d", got)
		}
		b, err := os.ReadFile(path)
		must(t, err)
		if ts, rel := binary.BigEndian.Uint64(b[12:]), binary.BigEndian.Uint32(b[20:]); ts != 1_700_000_000_007 || rel != 2 {
			t.Errorf("entry 1 encoded as %d, %d", ts, rel)
		}
		x = openTime(t, k.fsys, path, 1000, 4096, false)
		if got := timeEntries(x); !slices.Equal(got, want) {
			t.Errorf("reopened: %v, want %v", got, want)
		}
		must(t, x.Close())

		// Crash: no trim.
		x = openTime(t, k.fsys, path, 1000, 4096, true)
		must(t, x.Append(1_800_000_000_000, 1100))
		want = append(want, TimeEntry{1_800_000_000_000, 1100})
		must(t, x.Sync())
		x.f.abandon()
		if got := fileSize(t, path); got != int64(len(want)*TimeEntrySize) {
			t.Errorf("file size after a crash %d, want %d", got, len(want)*TimeEntrySize)
		}
		x = openTime(t, k.fsys, path, 1000, 4096, true)
		if got := timeEntries(x); !slices.Equal(got, want) {
			t.Errorf("after crash: %v, want %v", got, want)
		}
		must(t, x.Seal())
		must(t, x.Unseal(8192))
		must(t, x.Append(1_900_000_000_000, 1200))
		want = append(want, TimeEntry{1_900_000_000_000, 1200})
		must(t, x.Close())
		x = openTime(t, k.fsys, path, 1000, 4096, false)
		if got := timeEntries(x); !slices.Equal(got, want) {
			t.Errorf("after Unseal: %v, want %v", got, want)
		}
	})
}

func TestTimeTruncateTo(t *testing.T) {
	eachFS(t, func(t *testing.T, k fsKind, dir string) {
		path := filepath.Join(dir, "a.timeindex")
		x := openTime(t, k.fsys, path, 0, 1024, true)
		for _, a := range [][2]int64{{10, 1}, {20, 3}, {30, 3}, {40, 6}, {50, 9}} {
			must(t, x.Append(a[0], a[1]))
		}
		must(t, x.TruncateTo(4)) // drops offsets 6 and 9
		want := []TimeEntry{{10, 1}, {20, 3}, {30, 3}}
		if got := timeEntries(x); !slices.Equal(got, want) {
			t.Errorf("TruncateTo(4): %v, want %v", got, want)
		}
		must(t, x.TruncateTo(3)) // drops both entries at offset 3
		want = want[:1]
		if got := timeEntries(x); !slices.Equal(got, want) {
			t.Errorf("TruncateTo(3): %v, want %v", got, want)
		}
		// A timestamp below the dropped ones is a new maximum again.
		must(t, x.Append(15, 3))
		want = append(want, TimeEntry{15, 3})
		must(t, x.Sync())
		x.f.abandon()
		x = openTime(t, k.fsys, path, 0, 1024, true)
		if got := timeEntries(x); !slices.Equal(got, want) {
			t.Errorf("reopened: %v, want %v", got, want)
		}
		must(t, x.Reset())
		must(t, x.Close())
		if fileSize(t, path) != 0 {
			t.Errorf("reset file size %d", fileSize(t, path))
		}
	})
}

func TestTimeCheck(t *testing.T) {
	eachFS(t, func(t *testing.T, k fsKind, dir string) {
		for _, tc := range []struct {
			name       string
			entries    [][2]int64 // timestamp, relative offset
			nextOffset int64
			bad        int
		}{
			{"good", [][2]int64{{10, 0}, {20, 0}, {30, 4}}, 55, -1},
			{"empty", nil, 50, -1},
			{"equal timestamps", [][2]int64{{10, 0}, {10, 1}}, 100, 1},
			{"unsorted timestamps", [][2]int64{{10, 0}, {20, 1}, {15, 2}}, 100, 2},
			{"unsorted offsets", [][2]int64{{10, 0}, {20, 3}, {30, 2}}, 100, 2},
			{"negative timestamp", [][2]int64{{-5, 0}}, 100, 0},
			{"negative relative offset", [][2]int64{{10, 0}, {20, -1}}, 100, 1},
			{"offset at next offset", [][2]int64{{10, 0}, {20, 5}}, 55, 1},
			{"next offset before base", [][2]int64{{10, 0}}, 3, 0},
		} {
			path := filepath.Join(dir, tc.name+".timeindex")
			var b []byte
			for _, e := range tc.entries {
				b = binary.BigEndian.AppendUint64(b, uint64(e[0]))
				b = binary.BigEndian.AppendUint32(b, uint32(e[1]))
			}
			must(t, os.WriteFile(path, b, 0o644))
			x := openTime(t, k.fsys, path, 50, 1024, false)
			err := x.Check(tc.nextOffset)
			if tc.bad < 0 {
				if err != nil {
					t.Errorf("%s: Check: %v", tc.name, err)
				}
			} else {
				checkCorrupt(t, err, path, tc.bad)
			}
		}
	})
}

func TestTimeLookupProperty(t *testing.T) {
	eachFS(t, func(t *testing.T, k fsKind, dir string) {
		rng := rand.New(rand.NewPCG(3, 4))
		rounds := 30
		if testing.Short() {
			rounds = 8
		}
		for round := range rounds {
			base := rng.Int64N(1 << 40)
			x := openTime(t, k.fsys, filepath.Join(dir, fmt.Sprintf("%d.timeindex", round)), base, 1<<16, true)
			var es []TimeEntry
			off, maxTs := base, int64(-1)
			for range rng.IntN(500) {
				off += rng.Int64N(3)
				ts := rng.Int64N(1 << 16) // often not a new maximum
				must(t, x.Append(ts, off))
				if ts > maxTs {
					es = append(es, TimeEntry{ts, off})
					maxTs = ts
				}
			}
			if got := timeEntries(x); !slices.Equal(got, es) {
				t.Fatalf("round %d: entries %v, want %v", round, got, es)
			}
			if round%2 == 1 {
				must(t, x.Seal())
			}
			for range 300 {
				target := rng.Int64N(1<<16+10) - 5
				wts, wo := int64(-1), base
				for _, e := range es {
					if e.Timestamp <= target {
						wts, wo = e.Timestamp, e.Offset
					}
				}
				if ts, o := x.Lookup(target); ts != wts || o != wo {
					t.Fatalf("round %d: Lookup(%d) = %d, %d; want %d, %d", round, target, ts, o, wts, wo)
				}
				at := base - 2 + rng.Int64N(off-base+5)
				wts, wo, wok := int64(0), int64(0), false
				for _, e := range es {
					if e.Offset <= at {
						wts, wo, wok = e.Timestamp, e.Offset, true
					}
				}
				if ts, o, ok := x.LookupOffset(at); ts != wts || o != wo || ok != wok {
					t.Fatalf("round %d: LookupOffset(%d) = %d, %d, %v; want %d, %d, %v", round, at, ts, o, ok, wts, wo, wok)
				}
			}
			cut := base - 2 + rng.Int64N(off-base+5)
			must(t, x.TruncateTo(cut))
			es = slices.DeleteFunc(es, func(e TimeEntry) bool { return e.Offset >= cut })
			if got := timeEntries(x); !slices.Equal(got, es) {
				t.Fatalf("round %d: TruncateTo(%d): %v, want %v", round, cut, got, es)
			}
			must(t, x.Check(off+1))
			must(t, x.Close())
		}
	})
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

// TestTimeFullKeepsTheLastSlotForTheRoll checks that a time index is Full
// one entry short of its room, as Kafka's TimeIndex.isFull (entries >=
// maxEntries - 1): the last slot is for the entry a segment writes of its
// max timestamp when it rolls or closes, which Append still takes. An
// index with room for one entry is full from the start.
func TestTimeFullKeepsTheLastSlotForTheRoll(t *testing.T) {
	eachFS(t, func(t *testing.T, k fsKind, dir string) {
		x := openTime(t, k.fsys, filepath.Join(dir, "a.timeindex"), 100, 3*TimeEntrySize, true)
		for i, ts := range []int64{10, 20} {
			if x.Full() {
				t.Fatalf("Full with %d of 3 entries", i)
			}
			must(t, x.Append(ts, 100+int64(i)))
		}
		if !x.Full() {
			t.Error("not Full with 2 of 3 entries: the last is the roll's")
		}
		must(t, x.Append(30, 102)) // the roll's entry
		if got := x.Entries(); got != 3 {
			t.Errorf("%d entries after the roll's, want 3", got)
		}
		if err := x.Append(40, 103); err != ErrIndexFull {
			t.Errorf("Append past the room: %v, want ErrIndexFull", err)
		}

		one := openTime(t, k.fsys, filepath.Join(dir, "b.timeindex"), 100, TimeEntrySize, true)
		if !one.Full() {
			t.Error("an index with room for one entry is not Full")
		}
		must(t, one.Append(10, 100))
		if got := one.Entries(); got != 1 {
			t.Errorf("%d entries in an index of one, want 1", got)
		}
	})
}
