package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/index"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// The tests in this file corrupt one middle entry of a closed segment's
// .index or .timeindex so that the file still passes Open's checks (the
// last entry and the sizes are untouched, and the entries stay in order),
// and check that every lookup still answers as the log says: an entry is
// checked against the log when a lookup uses it, and a bad one is skipped,
// reported by IndexDistrusted, and rebuilt after the segment is reopened.
// They build their segments with helpers of their own.

// icBase is the base offset of the tests' segments.
const icBase = 100

// icCfg makes an offset index entry every few batches of icFixture, so
// that several batches lie between two entries.
var icCfg = Config{IndexIntervalBytes: 600}

// icBatch is what the tests know of a batch they appended.
type icBatch struct {
	base, last, pos, size, maxTs int64
	ts                           []int64 // each record's, by offset
}

// icFixture is a segment of icBatches whose files were closed cleanly.
type icFixture struct {
	fsys     vfs.FS
	dir      string
	batches  []icBatch
	oidx     []index.OffsetEntry // as the closed segment's .index holds them
	tidx     []index.TimeEntry
	idxBytes []byte // the closed segment's .index and .timeindex
	timBytes []byte
}

// icForEachFS runs fn on the in-memory FS and on the OS's.
func icForEachFS(t *testing.T, fn func(t *testing.T, fsys vfs.FS, dir string)) {
	t.Run("mem", func(t *testing.T) {
		fsys := vfs.NewMem()
		const dir = "/data/idx-0"
		if err := fsys.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		fn(t, fsys, dir)
	})
	t.Run("os", func(t *testing.T) { fn(t, vfs.OS, t.TempDir()) })
}

// icTs is the timestamp of record j of batch i: the max timestamps of
// the batches strictly increase, and each batch's max is its middle record,
// so that a search for a timestamp has one answer and lands inside a batch.
func icTs(i, j int) int64 { return 1_700_000_000_000 + 10*int64(i) + []int64{0, 5, 3}[j] }

// icMakeBatch encodes batch i (three records) at offset base.
func icMakeBatch(t testing.TB, i int, base int64) record.Batch {
	t.Helper()
	var b record.Builder
	b.Reset()
	for j := range 3 {
		b.Append(icTs(i, j), fmt.Appendf(nil, "key-%d-%d", i, j), bytes.Repeat([]byte{byte('a' + i%26)}, 20+i%7), nil)
	}
	out, err := b.Finish(0)
	if err != nil {
		t.Fatal(err)
	}
	out = bytes.Clone(out)
	out.SetBaseOffset(base)
	return out
}

// newICFixture appends n batches to a new segment in dir, one Append each,
// and closes it.
func newICFixture(t testing.TB, fsys vfs.FS, dir string, n int) *icFixture {
	t.Helper()
	f := &icFixture{fsys: fsys, dir: dir}
	s, err := Create(fsys, dir, icBase, icCfg)
	if err != nil {
		t.Fatal(err)
	}
	f.appendBatches(t, s, n)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	f.idxBytes = readFile(t, fsys, f.path(IndexSuffix))
	f.timBytes = readFile(t, fsys, f.path(TimeIndexSuffix))
	if f.oidx, err = index.DecodeOffsetEntries(f.idxBytes, icBase); err != nil {
		t.Fatal(err)
	}
	if f.tidx, err = index.DecodeTimeEntries(f.timBytes, icBase); err != nil {
		t.Fatal(err)
	}
	if len(f.oidx) < 6 || len(f.tidx) < 6 {
		t.Fatalf("%d offset and %d time index entries: too few for the tests", len(f.oidx), len(f.tidx))
	}
	return f
}

// appendBatches appends n more batches to s, which holds f's.
func (f *icFixture) appendBatches(t testing.TB, s *Segment, n int) {
	t.Helper()
	for range n {
		i := len(f.batches)
		b := icMakeBatch(t, i, s.NextOffset())
		ib := icBatch{base: b.BaseOffset(), last: b.LastOffset(), pos: s.Size(), size: int64(len(b)), maxTs: b.MaxTimestamp()}
		for j := range 3 {
			ib.ts = append(ib.ts, icTs(i, j))
		}
		if err := s.Append(b); err != nil {
			t.Fatal(err)
		}
		f.batches = append(f.batches, ib)
	}
}

func (f *icFixture) path(suffix string) string {
	return filepath.Join(f.dir, FileName(icBase, suffix))
}

func (f *icFixture) next() int64 { return f.batches[len(f.batches)-1].last + 1 }

// batchOf returns the index of the batch holding offset.
func (f *icFixture) batchOf(t testing.TB, offset int64) int {
	t.Helper()
	for i, b := range f.batches {
		if b.base <= offset && offset <= b.last {
			return i
		}
	}
	t.Fatalf("no batch holds offset %d", offset)
	return -1
}

// batchAt returns the index of the batch at position pos.
func (f *icFixture) batchAt(t testing.TB, pos int64) int {
	t.Helper()
	for i, b := range f.batches {
		if b.pos == pos {
			return i
		}
	}
	t.Fatalf("no batch at position %d", pos)
	return -1
}

// findTime is FindTime's answer by the model: the first record at or
// after from whose timestamp is at least ts.
func (f *icFixture) findTime(ts, from int64) (int64, bool) {
	for _, b := range f.batches {
		for j, x := range b.ts {
			if o := b.base + int64(j); o >= from && x >= ts {
				return o, true
			}
		}
	}
	return 0, false
}

// middle returns the index of a middle entry whose batch has at least
// two batches between it and the previous entry's and the next entry's
// batches (so that an entry moved to a neighbouring batch stays in order).
func (f *icFixture) middle(t testing.TB) int {
	t.Helper()
	k := len(f.oidx) / 2
	for ; k < len(f.oidx)-1; k++ {
		i := f.batchAt(t, f.oidx[k].Position)
		if f.batchAt(t, f.oidx[k-1].Position) < i-2 && i+2 < f.batchAt(t, f.oidx[k+1].Position) {
			return k
		}
	}
	t.Fatal("no middle entry with room around it")
	return -1
}

// middleTime is middle for the time index: entry k's batch has at least
// two batches between it and those of entries k-1 and k+1.
func (f *icFixture) middleTime(t testing.TB) int {
	t.Helper()
	k := len(f.tidx) / 2
	for ; k < len(f.tidx)-1; k++ {
		i := f.batchOf(t, f.tidx[k].Offset)
		if f.batchOf(t, f.tidx[k-1].Offset) < i-2 && i+2 < f.batchOf(t, f.tidx[k+1].Offset) {
			return k
		}
	}
	t.Fatal("no middle time entry with room around it")
	return -1
}

// icRewrite makes a file hold b.
func icRewrite(t testing.TB, fsys vfs.FS, name string, b []byte) {
	t.Helper()
	fh, err := fsys.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
}

// icWriteAt overwrites bytes of a file in place.
func icWriteAt(t testing.TB, fsys vfs.FS, name string, b []byte, at int64) {
	t.Helper()
	fh, err := fsys.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
	if err := fh.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
}

// setOffsetEntry overwrites offset index entry k.
func (f *icFixture) setOffsetEntry(t testing.TB, k int, e index.OffsetEntry) {
	t.Helper()
	b := make([]byte, index.OffsetEntrySize)
	binary.BigEndian.PutUint32(b, uint32(e.Offset-icBase))
	binary.BigEndian.PutUint32(b[4:], uint32(e.Position))
	icWriteAt(t, f.fsys, f.path(IndexSuffix), b, int64(k*index.OffsetEntrySize))
}

// setTimeEntry overwrites time index entry k.
func (f *icFixture) setTimeEntry(t testing.TB, k int, e index.TimeEntry) {
	t.Helper()
	b := make([]byte, index.TimeEntrySize)
	binary.BigEndian.PutUint64(b, uint64(e.Timestamp))
	binary.BigEndian.PutUint32(b[8:], uint32(e.Offset-icBase))
	icWriteAt(t, f.fsys, f.path(TimeIndexSuffix), b, int64(k*index.TimeEntrySize))
}

// checkOffsets checks Find, PositionOf and ReadOffset of every offset of
// the segment (and around it) against the model; it returns the first
// wrong answer.
func (f *icFixture) checkOffsets(s *Segment) error {
	// One buffer for every offset's read into a buffer (a result is valid
	// until its dst is reused, and is checked before): a new 64 KiB for
	// each was most of the cost of FuzzIndexFiles's exec.
	buf := make([]byte, 0, 64<<10)
	for off := int64(icBase - 1); off <= f.next(); off++ {
		want := f.batches[0]
		for _, b := range f.batches {
			if b.last >= off {
				want = b
				break
			}
		}
		pos, err := s.Find(off)
		switch {
		case off == f.next():
			if !errors.Is(err, ErrOffsetNotHere) {
				return fmt.Errorf("Find(%d) at the next offset: %d, %v", off, pos, err)
			}
			continue
		case err != nil || pos != want.pos:
			return fmt.Errorf("Find(%d) = %d, %v; want %d (batch [%d, %d])", off, pos, err, want.pos, want.base, want.last)
		}
		if pos, err := s.PositionOf(off); err != nil || pos != want.pos {
			return fmt.Errorf("PositionOf(%d) = %d, %v; want %d", off, pos, err, want.pos)
		}
		dsts := [][]byte{nil, buf}
		if testing.Short() {
			dsts = dsts[off&1:][:1] // one or the other
		}
		for _, dst := range dsts {
			data, err := s.ReadOffset(dst, off, 1, math.MaxInt64)
			if err != nil {
				return fmt.Errorf("ReadOffset(%d): %w", off, err)
			}
			if len(data) < record.HeaderSize || record.Batch(data).BaseOffset() != want.base {
				return fmt.Errorf("ReadOffset(%d) does not start with the batch [%d, %d] holding it (%d bytes)", off, want.base, want.last, len(data))
			}
		}
	}
	return nil
}

// checkTimes checks FindTime of every record's timestamp, and of the
// timestamps between them, from a few offsets (one with -short), against
// the model.
func (f *icFixture) checkTimes(s *Segment) error {
	froms := []int64{icBase, f.batches[len(f.batches)/3].base + 1, f.batches[len(f.batches)/2].last}
	deltas := []int64{-1, 0, 1}
	if testing.Short() {
		froms, deltas = froms[:1], deltas[:2]
	}
	for _, b := range f.batches {
		for _, x := range b.ts {
			for _, d := range deltas {
				ts := x + d
				for _, from := range froms {
					want, wantOK := f.findTime(ts, from)
					got, ok, err := s.FindTime(ts, from)
					if err != nil || ok != wantOK || got != want {
						return fmt.Errorf("FindTime(%d, from %d) = %d, %v, %v; want %d, %v", ts, from, got, ok, err, want, wantOK)
					}
				}
			}
		}
	}
	return nil
}

// requireLookups fails t at the first lookup of s that does not answer as
// the model says: checkOffsets, then checkTimes.
func (f *icFixture) requireLookups(t testing.TB, s *Segment) {
	t.Helper()
	if err := f.checkOffsets(s); err != nil {
		t.Fatal(err)
	}
	if err := f.checkTimes(s); err != nil {
		t.Fatal(err)
	}
}

// icCorruption changes one middle entry of a closed segment's index so
// that Open still finds nothing wrong; wrong says which index it made wrong
// for the lookups ("offset" or "time").
type icCorruption struct {
	name  string
	wrong string
	apply func(t testing.TB, f *icFixture)
}

var icCorruptions = []icCorruption{
	// The position moves into the batch: reading from the offsets this
	// entry covers fails with a corrupt header, though the log is intact.
	{"index position inside its batch", "offset", func(t testing.TB, f *icFixture) {
		k := f.middle(t)
		e := f.oidx[k]
		e.Position += 7
		f.setOffsetEntry(t, k, e)
	}},
	// The position moves to the next batch boundary: the scan starts past
	// the batch that holds the entry's offset, and a read skips it.
	{"index position at the next batch", "offset", func(t testing.TB, f *icFixture) {
		k := f.middle(t)
		e := f.oidx[k]
		e.Position = f.batches[f.batchAt(t, e.Position)+1].pos
		f.setOffsetEntry(t, k, e)
	}},
	// The offset drops below its batch (to the last offset of the batch
	// before): a read of that offset starts at the batch after it.
	{"index offset below its batch", "offset", func(t testing.TB, f *icFixture) {
		k := f.middle(t)
		e := f.oidx[k]
		e.Offset = f.batches[f.batchAt(t, e.Position)-1].last
		f.setOffsetEntry(t, k, e)
	}},
	// The offset of a time entry moves to the next batch's last: a search
	// for its timestamp skips the batch where it was first reached.
	{"timeindex offset at the next batch", "time", func(t testing.TB, f *icFixture) {
		k := f.middleTime(t)
		e := f.tidx[k]
		e.Offset = f.batches[f.batchOf(t, e.Offset)+1].last
		f.setTimeEntry(t, k, e)
	}},
	// The timestamp of a time entry drops to the previous batch's max: a
	// search for that timestamp starts past the batch that has it.
	{"timeindex timestamp too small", "time", func(t testing.TB, f *icFixture) {
		k := f.middleTime(t)
		e := f.tidx[k]
		e.Timestamp = f.batches[f.batchOf(t, e.Offset)-1].maxTs
		f.setTimeEntry(t, k, e)
	}},
}

// TestIndexEntryCheckedOnUse: each corruption of a middle index entry
// passes Open's checks; every lookup still answers as the log says, the
// segment reports the index it distrusted, and once closed and reopened
// it asks for recovery, which rebuilds the index as it was.
func TestIndexEntryCheckedOnUse(t *testing.T) {
	for _, c := range icCorruptions {
		t.Run(c.name, func(t *testing.T) {
			icForEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
				for _, active := range []bool{false, true} {
					dir := filepath.Join(dir, fmt.Sprint("active-", active))
					if err := fsys.MkdirAll(dir, 0o755); err != nil {
						t.Fatal(err)
					}
					f := newICFixture(t, fsys, dir, 80)
					c.apply(t, f)
					s, needs, err := Open(fsys, dir, icBase, icCfg, OpenOptions{Active: active})
					if err != nil {
						t.Fatal(err)
					}
					if needs {
						t.Fatal("Open asks for recovery: the corruption is not one Open misses")
					}
					if got := s.IndexDistrusted(); got != (IndexDistrust{}) {
						t.Fatalf("IndexDistrusted before any lookup: %+v", got)
					}
					if err := f.checkOffsets(s); err != nil {
						t.Fatalf("active %v: %v", active, err)
					}
					if err := f.checkTimes(s); err != nil {
						t.Fatalf("active %v: %v", active, err)
					}
					want := IndexDistrust{Offset: c.wrong == "offset", Time: c.wrong == "time"}
					if got := s.IndexDistrusted(); got != want {
						t.Fatalf("IndexDistrusted = %+v, want %+v", got, want)
					}
					// Answers stay right once the entry is known to be bad.
					f.requireLookups(t, s)
					if err := s.Close(); err != nil {
						t.Fatal(err)
					}
					s, needs, err = Open(fsys, dir, icBase, icCfg, OpenOptions{Active: active})
					if err != nil {
						t.Fatal(err)
					}
					if !needs {
						t.Fatal("Open after a distrusted index does not ask for recovery")
					}
					if _, err := s.Recover(0); err != nil {
						t.Fatal(err)
					}
					if got := s.IndexDistrusted(); got != (IndexDistrust{}) {
						t.Fatalf("IndexDistrusted after Recover: %+v", got)
					}
					f.requireLookups(t, s)
					if err := s.Close(); err != nil {
						t.Fatal(err)
					}
					if got := readFile(t, fsys, f.path(IndexSuffix)); !bytes.Equal(got, f.idxBytes) {
						t.Fatalf("rebuilt .index differs from the original")
					}
					if got := readFile(t, fsys, f.path(TimeIndexSuffix)); !bytes.Equal(got, f.timBytes) {
						t.Fatalf("rebuilt .timeindex differs from the original")
					}
					s, needs, err = Open(fsys, dir, icBase, icCfg, OpenOptions{Active: active})
					if err != nil || needs {
						t.Fatalf("Open after the rebuild: needs recovery %v, %v", needs, err)
					}
					if err := s.Close(); err != nil {
						t.Fatal(err)
					}
				}
			})
		})
	}
}

// icEntryMut makes a mutation of entry k of an index whose entries are
// entries (the fixture's, which do not change): edit changes a copy of the
// entry and reports whether the mutation applies to it; set writes the
// changed entry to the file. It reports false, changing nothing, for a k
// past the entries.
func icEntryMut[E any](entries []E, edit func(e *E) bool, set func(k int, e E)) func(k int) bool {
	return func(k int) bool {
		if k >= len(entries) {
			return false
		}
		e := entries[k]
		if !edit(&e) {
			return false
		}
		set(k, e)
		return true
	}
}

// TestIndexEntrySweep corrupts each entry of each index in turn, in
// several ways that keep the entries in order (Open's check of the last
// entry may catch some: those are rebuilt by Recover), and checks every
// lookup against the model. A corruption that leaves every lookup right
// (an offset moved within its batch) need not be noticed.
func TestIndexEntrySweep(t *testing.T) {
	skipUnderRace(t)
	fsys := vfs.NewMem()
	const dir = "/data/sweep"
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f := newICFixture(t, fsys, dir, 60)
	type mut struct {
		name string
		fn   func(k int) bool // false: not applicable to entry k
	}
	prevBatch := func(pos int64) (icBatch, bool) {
		i := f.batchAt(t, pos)
		return f.batches[max(i-1, 0)], i > 0
	}
	// offsetMut and timeMut make a mutation of entry k of an index from
	// edit, which changes the entry and reports whether it applies.
	offsetMut := func(edit func(e *index.OffsetEntry) bool) func(k int) bool {
		return icEntryMut(f.oidx, edit, func(k int, e index.OffsetEntry) { f.setOffsetEntry(t, k, e) })
	}
	timeMut := func(edit func(e *index.TimeEntry) bool) func(k int) bool {
		return icEntryMut(f.tidx, edit, func(k int, e index.TimeEntry) { f.setTimeEntry(t, k, e) })
	}
	muts := []mut{
		{"offset position +1", offsetMut(func(e *index.OffsetEntry) bool {
			e.Position++
			return true
		})},
		{"offset position to the previous batch", offsetMut(func(e *index.OffsetEntry) bool {
			b, ok := prevBatch(e.Position)
			e.Position = b.pos
			return ok
		})},
		{"offset position to the next batch", offsetMut(func(e *index.OffsetEntry) bool {
			i := f.batchAt(t, e.Position)
			if i+1 >= len(f.batches) {
				return false
			}
			e.Position = f.batches[i+1].pos
			return true
		})},
		{"offset to the previous batch's", offsetMut(func(e *index.OffsetEntry) bool {
			b, ok := prevBatch(e.Position)
			e.Offset = b.last
			return ok
		})},
		{"offset to its batch's base", offsetMut(func(e *index.OffsetEntry) bool {
			e.Offset = f.batches[f.batchAt(t, e.Position)].base
			return true
		})},
		{"time offset to the next batch's", timeMut(func(e *index.TimeEntry) bool {
			i := f.batchOf(t, e.Offset)
			if i+1 >= len(f.batches) {
				return false
			}
			e.Offset = f.batches[i+1].last
			return true
		})},
		{"time offset to the previous batch's", timeMut(func(e *index.TimeEntry) bool {
			i := f.batchOf(t, e.Offset)
			if i == 0 {
				return false
			}
			e.Offset = f.batches[i-1].last
			return true
		})},
		{"timestamp to the previous batch's", timeMut(func(e *index.TimeEntry) bool {
			i := f.batchOf(t, e.Offset)
			if i == 0 {
				return false
			}
			e.Timestamp = f.batches[i-1].maxTs
			return true
		})},
		{"timestamp +1", timeMut(func(e *index.TimeEntry) bool {
			e.Timestamp++
			return true
		})},
	}
	for _, m := range muts {
		for k := range max(len(f.oidx), len(f.tidx)) {
			icRewrite(t, fsys, f.path(IndexSuffix), f.idxBytes)
			icRewrite(t, fsys, f.path(TimeIndexSuffix), f.timBytes)
			if !m.fn(k) {
				continue
			}
			s, needs, err := Open(fsys, dir, icBase, icCfg, OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if needs {
				if _, err := s.Recover(0); err != nil {
					t.Fatal(err)
				}
			}
			err = f.checkOffsets(s)
			if err == nil {
				err = f.checkTimes(s)
			}
			if cerr := s.Close(); cerr != nil {
				t.Fatal(cerr)
			}
			if err != nil {
				t.Fatalf("%s, entry %d (needs recovery %v): %v", m.name, k, needs, err)
			}
		}
	}
}

// TestIndexCheckConcurrentAppends: readers look up offsets and timestamps
// through a corrupt offset index entry and a corrupt time index entry of an
// active segment, while batches are appended (go test -race). Every answer
// is right, and the segment ends up distrusting both indexes.
func TestIndexCheckConcurrentAppends(t *testing.T) {
	icForEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		defer goleak.VerifyNone(t)
		f := newICFixture(t, fsys, dir, 80)
		icCorruptions[1].apply(t, f) // index position at the next batch
		icCorruptions[3].apply(t, f) // timeindex offset at the next batch
		s, needs, err := Open(fsys, dir, icBase, icCfg, OpenOptions{Active: true})
		if err != nil || needs {
			t.Fatalf("Open: needs recovery %v, %v", needs, err)
		}
		defer s.Close()
		initial := &icFixture{batches: append([]icBatch(nil), f.batches...)}
		done := make(chan struct{})
		errs := make(chan error, 3)
		for r := range 3 {
			go func() {
				rng := rand.New(rand.NewPCG(uint64(r), 9))
				dst := make([]byte, 0, 16<<10)
				for i := 0; ; i++ {
					select {
					case <-done:
						errs <- nil
						return
					default:
					}
					next := s.NextOffset()
					off := icBase + rng.Int64N(next-icBase)
					data, err := s.ReadOffset(dst, off, 1, math.MaxInt64)
					if err != nil || len(data) < record.HeaderSize {
						errs <- fmt.Errorf("ReadOffset(%d): %d bytes, %v", off, len(data), err)
						return
					}
					if b := record.Batch(data); b.BaseOffset() > off || b.LastOffset() < off {
						errs <- fmt.Errorf("ReadOffset(%d) starts with the batch [%d, %d]", off, b.BaseOffset(), b.LastOffset())
						return
					}
					ib := initial.batches[rng.IntN(len(initial.batches))]
					ts := ib.ts[rng.IntN(3)]
					want, _ := initial.findTime(ts, icBase)
					if got, ok, err := s.FindTime(ts, icBase); err != nil || !ok || got != want {
						errs <- fmt.Errorf("FindTime(%d) = %d, %v, %v; want %d", ts, got, ok, err, want)
						return
					}
				}
			}()
		}
		n := 300
		if testing.Short() {
			n = 100
		}
		for range n {
			f.appendBatches(t, s, 1)
		}
		close(done)
		for range 3 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		f.requireLookups(t, s)
		if got := s.IndexDistrusted(); got != (IndexDistrust{Offset: true, Time: true}) {
			t.Fatalf("IndexDistrusted = %+v", got)
		}
	})
}

// TestCorruptLogNotBlamedOnIndex: when the batch header at a true offset
// index entry's position is corrupt, reads of the offsets that need it
// fail with a *record.CorruptError naming that position — the log is bad,
// not the index — and the index is not distrusted, so that the next Open
// does not rebuild it (which would fail on the corrupt log).
func TestCorruptLogNotBlamedOnIndex(t *testing.T) {
	icForEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newICFixture(t, fsys, dir, 80)
		k := f.middle(t)
		e := f.oidx[k]
		i := f.batchAt(t, e.Position)
		icWriteAt(t, fsys, f.path(LogSuffix), []byte{record.Magic + 1}, e.Position+record.MagicOffset)
		s, needs, err := Open(fsys, dir, icBase, icCfg, OpenOptions{})
		if err != nil || needs {
			t.Fatalf("Open: needs recovery %v, %v", needs, err)
		}
		defer s.Close()
		// Offsets before the corrupt batch are read as before; those in it
		// and after it, up to the next entry, need its header.
		prev := f.batches[i-1]
		if pos, err := s.Find(prev.last); err != nil || pos != prev.pos {
			t.Fatalf("Find(%d) = %d, %v; want %d", prev.last, pos, err, prev.pos)
		}
		for _, off := range []int64{f.batches[i].base, e.Offset, f.batches[i+1].base} {
			_, err := s.Find(off)
			var ce *record.CorruptError
			if !errors.As(err, &ce) || ce.Position != e.Position {
				t.Fatalf("Find(%d) = %v, want a corrupt batch at %d", off, err, e.Position)
			}
		}
		if _, _, err := s.FindTime(f.batches[i].maxTs, icBase); !errors.Is(err, record.ErrCorrupt) {
			t.Fatalf("FindTime through the corrupt batch: %v", err)
		}
		if got := s.IndexDistrusted(); got != (IndexDistrust{}) {
			t.Fatalf("IndexDistrusted = %+v: the log was bad, not the index", got)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s, needs, err = Open(fsys, dir, icBase, icCfg, OpenOptions{})
		if err != nil || needs {
			t.Fatalf("reopen: needs recovery %v, %v", needs, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestOpenChecksLastEntries: Open checks each index's last entry against
// the log with the header it reads anyway (the offset index's) or one short
// scan (the time index's), and asks for recovery when one is wrong in a
// way that keeps the file in order.
func TestOpenChecksLastEntries(t *testing.T) {
	cases := []struct {
		name string
		fn   func(t testing.TB, f *icFixture)
	}{
		{"last offset entry below its batch", func(t testing.TB, f *icFixture) {
			k := len(f.oidx) - 1
			e := f.oidx[k]
			e.Offset = f.batches[f.batchAt(t, e.Position)-1].last
			f.setOffsetEntry(t, k, e)
		}},
		{"last time entry's timestamp lowered", func(t testing.TB, f *icFixture) {
			// Were the batch with the segment's max timestamp before the
			// tail that Open scans, the max would be taken too low: a
			// search above it would find nothing, retention delete early.
			k := len(f.tidx) - 1
			e := f.tidx[k]
			e.Timestamp = f.tidx[k-1].Timestamp + 1
			f.setTimeEntry(t, k, e)
		}},
		{"last time entry's offset moved before the tail", func(t testing.TB, f *icFixture) {
			k := len(f.tidx) - 1
			e := f.tidx[k]
			e.Offset = f.tidx[k-1].Offset
			f.setTimeEntry(t, k, e)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			icForEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
				f := newICFixture(t, fsys, dir, 80)
				c.fn(t, f)
				s, needs, err := Open(fsys, dir, icBase, icCfg, OpenOptions{})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				if !needs {
					t.Fatal("Open does not ask for recovery")
				}
				if _, err := s.Recover(0); err != nil {
					t.Fatal(err)
				}
				if got := s.MaxTimestamp(); got != f.batches[len(f.batches)-1].maxTs {
					t.Fatalf("MaxTimestamp = %d", got)
				}
				f.requireLookups(t, s)
			})
		})
	}
}

// truncateTo truncates s at offset, which leaves the model its first keep
// batches, and fails t unless TruncateTo returns, and s then has, the
// model's next offset.
func (f *icFixture) truncateTo(t testing.TB, s *Segment, offset int64, keep int) {
	t.Helper()
	next, err := s.TruncateTo(offset)
	if err != nil {
		t.Fatal(err)
	}
	f.batches = f.batches[:keep]
	if want := f.next(); next != want || s.NextOffset() != want {
		t.Fatalf("TruncateTo = %d, NextOffset %d; want %d", next, s.NextOffset(), want)
	}
}

// requireAppendsGoOn appends 20 batches to s, as after a truncation, and
// fails t unless every lookup answers as the model says and both indexes
// pass their Check: appends went on after true entries.
func (f *icFixture) requireAppendsGoOn(t testing.TB, s *Segment) {
	t.Helper()
	f.appendBatches(t, s, 20)
	f.requireLookups(t, s)
	if err := s.tidx.Check(s.NextOffset()); err != nil {
		t.Fatal(err)
	}
	if err := s.oidx.Check(s.Size()); err != nil {
		t.Fatal(err)
	}
}

// TestTruncateToThroughBadEntry: TruncateTo rescans from the last offset
// index entry it keeps to learn the next offset, and takes the max
// timestamp from the last time index entry it keeps; both are checked as a
// read checks them, and dropped when bad, so that appends go on after true
// entries. In the first case the kept offset entry points at the batch
// after its own — where the truncation cuts — so that a rescan trusting it
// would scan nothing and take the segment for empty.
func TestTruncateToThroughBadEntry(t *testing.T) {
	cases := []struct {
		name  string
		c     icCorruption
		batch func(f *icFixture, k int) int // the batch of entry k
		want  IndexDistrust
	}{
		{"offset", icCorruptions[1], func(f *icFixture, k int) int { return f.batchAt(t, f.oidx[k].Position) }, IndexDistrust{Offset: true}},
		{"time", icCorruptions[3], func(f *icFixture, k int) int { return f.batchOf(t, f.tidx[k].Offset) }, IndexDistrust{Time: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			icForEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
				f := newICFixture(t, fsys, dir, 80)
				k := f.middle(t)
				if c.name == "time" {
					k = f.middleTime(t)
				}
				i := c.batch(f, k)
				c.c.apply(t, f) // entry k moves to batch i+1
				s, needs, err := Open(fsys, dir, icBase, icCfg, OpenOptions{Active: true})
				if err != nil || needs {
					t.Fatalf("Open: needs recovery %v, %v", needs, err)
				}
				defer s.Close()
				// Cut after batch i+1 for the time entry (kept, it would
				// be the last), after batch i for the offset entry.
				cut := i + 1
				if c.name == "time" {
					cut = i + 2
				}
				f.truncateTo(t, s, f.batches[cut].base, cut)
				if got, want := s.MaxTimestamp(), f.batches[cut-1].maxTs; got != want {
					t.Fatalf("MaxTimestamp = %d, want %d", got, want)
				}
				if got := s.IndexDistrusted(); got != c.want {
					t.Fatalf("IndexDistrusted = %+v, want %+v", got, c.want)
				}
				f.requireAppendsGoOn(t, s)
			})
		})
	}
}

// TestTruncateToEntryAtBatchBase: an offset index entry may name any
// offset of its batch (a Segment writes the last; a copy or another writer
// may not). When TruncateTo cuts that batch, the entry's offset is below
// the cut but its batch is gone: the rescan must not start from it.
func TestTruncateToEntryAtBatchBase(t *testing.T) {
	icForEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f, s, i := openWithEntryAtBatchBase(t, fsys, dir)
		defer s.Close()
		f.truncateTo(t, s, f.batches[i].base+1, i)
		f.requireAppendsGoOn(t, s)
	})
}

// TestTruncateToEntryAtBatchBaseKeepsTrust: the entry of
// TestTruncateToEntryAtBatchBase is true (its batch holds its offset);
// TruncateTo drops it with its batch, and blames nothing on the index,
// which stays trusted: the next Open does not ask for a rebuild.
func TestTruncateToEntryAtBatchBaseKeepsTrust(t *testing.T) {
	icForEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f, s, i := openWithEntryAtBatchBase(t, fsys, dir)
		if _, err := s.TruncateTo(f.batches[i].base + 1); err != nil {
			s.Close()
			t.Fatal(err)
		}
		f.batches = f.batches[:i]
		if d := s.IndexDistrusted(); d.Offset || d.Time {
			s.Close()
			t.Fatalf("IndexDistrusted after TruncateTo = %+v; the index held no bad entry", d)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s, needs, err := Open(fsys, dir, icBase, icCfg, OpenOptions{Active: true})
		if err != nil || needs {
			t.Fatalf("reopen: needs recovery %v, %v", needs, err)
		}
		defer s.Close()
		if err := f.checkOffsets(s); err != nil {
			t.Fatal(err)
		}
	})
}

// openWithEntryAtBatchBase writes the fixture of the two tests above, with
// an offset index entry in the middle moved to its batch's base offset
// (a true entry, though not the one a Segment writes), and opens the
// segment active: it returns the fixture, the segment and the index of
// the entry's batch.
func openWithEntryAtBatchBase(t *testing.T, fsys vfs.FS, dir string) (*icFixture, *Segment, int) {
	t.Helper()
	f := newICFixture(t, fsys, dir, 80)
	k := f.middle(t)
	i := f.batchAt(t, f.oidx[k].Position)
	e := f.oidx[k]
	e.Offset = f.batches[i].base
	f.setOffsetEntry(t, k, e)
	s, needs, err := Open(fsys, dir, icBase, icCfg, OpenOptions{Active: true})
	if err != nil || needs {
		t.Fatalf("Open: needs recovery %v, %v", needs, err)
	}
	return f, s, i
}

// TestIndexEntryAfterItsBatchDistrusted: an offset index entry whose
// position moved to the batch before its own (its offset lies past that
// batch) is not followed: lookups answer as the log says, and the index is
// reported distrusted, to be rebuilt.
func TestIndexEntryAfterItsBatchDistrusted(t *testing.T) {
	icForEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newICFixture(t, fsys, dir, 80)
		k := f.middle(t)
		e := f.oidx[k]
		e.Position = f.batches[f.batchAt(t, e.Position)-1].pos
		f.setOffsetEntry(t, k, e)
		s, needs, err := Open(fsys, dir, icBase, icCfg, OpenOptions{})
		require.NoError(t, err)
		defer s.Close()
		require.False(t, needs, "the corruption is not one Open misses")
		require.NoError(t, f.checkOffsets(s))
		require.Equal(t, IndexDistrust{Offset: true}, s.IndexDistrusted())
	})
}

// TestTimeEntryOfACorruptBatchNotBlamed: a time index entry whose batch
// has its max timestamp changed on disk (its CRC fails) is not blamed for
// it: FindTime returns the batch's *record.CorruptError, and the time
// index is not distrusted.
func TestTimeEntryOfACorruptBatchNotBlamed(t *testing.T) {
	icForEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newICFixture(t, fsys, dir, 80)
		k := f.middleTime(t)
		e := f.tidx[k]
		b := f.batches[f.batchOf(t, e.Offset)]
		var x [8]byte
		binary.BigEndian.PutUint64(x[:], uint64(b.maxTs-1))
		icWriteAt(t, fsys, f.path(LogSuffix), x[:], b.pos+35) // the max timestamp
		s, needs, err := Open(fsys, dir, icBase, icCfg, OpenOptions{})
		require.NoError(t, err)
		defer s.Close()
		require.False(t, needs)
		off, ok, err := s.FindTime(e.Timestamp, icBase)
		require.ErrorIsf(t, err, record.ErrCorrupt, "FindTime = %d, %v", off, ok)
		require.Equal(t, IndexDistrust{}, s.IndexDistrusted(), "the log was bad, not the index")
	})
}

// TestOpenChecksLastOffsetEntryAfterItsBatch: Open asks for recovery when
// the offset index's last entry has its position moved to the batch
// before its own: the batch there does not hold the entry's offset.
func TestOpenChecksLastOffsetEntryAfterItsBatch(t *testing.T) {
	icForEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newICFixture(t, fsys, dir, 80)
		k := len(f.oidx) - 1
		e := f.oidx[k]
		e.Position = f.batches[f.batchAt(t, e.Position)-1].pos
		f.setOffsetEntry(t, k, e)
		s, needs, err := Open(fsys, dir, icBase, icCfg, OpenOptions{})
		require.NoError(t, err)
		defer s.Close()
		require.True(t, needs, "Open does not ask for recovery")
	})
}

// TestOpenChecksLastTimeEntryBeforeTheTail: a time index whose last entry
// lies before the offset index's last one (the max timestamp did not grow
// after it) has that entry checked by Open too, with a short scan: one
// whose timestamp went up (the file stays in order) makes Open ask for
// recovery, not report a max timestamp no batch has.
func TestOpenChecksLastTimeEntryBeforeTheTail(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		const base = 3
		cfg := Config{IndexIntervalBytes: 1}
		s := mustCreate(t, fsys, dir, base, cfg)
		m := &model{base: base}
		for _, ts := range []int64{100, 500, 200, 300, 200, 300} {
			appendBatches(t, s, m, mkBatch(t, 0, []int64{ts}, 5, -1))
		}
		require.Equal(t, []index.TimeEntry{{Timestamp: 500, Offset: base + 1}}, timeEntries(s))
		mustClose(t, s)
		editFile(t, fsys, filepath.Join(dir, FileName(base, TimeIndexSuffix)), func(f vfs.File) {
			_, err := f.WriteAt(entry12(550, 1), 0) // 500 → 550
			require.NoError(t, err)
		})
		s, needs := mustOpen(t, fsys, dir, base, cfg, false)
		require.Truef(t, needs, "Open does not ask for recovery; MaxTimestamp %d", s.MaxTimestamp())
		_, err := s.Recover(0)
		require.NoError(t, err)
		require.Equal(t, int64(500), s.MaxTimestamp())
	})
}

// TestLastBatchMovedUpByOneWhileOpen: the last batch of a segment written
// in this process, whose base offset grows by one on disk, is reported:
// Append keeps the segment's limit at the offset right after its last
// batch, which the batch now reaches.
func TestLastBatchMovedUpByOneWhileOpen(t *testing.T) {
	for _, seal := range []bool{false, true} {
		t.Run(map[bool]string{false: "active", true: "sealed"}[seal], func(t *testing.T) {
			forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
				s := mustCreate(t, fsys, dir, 10, Config{})
				m := &model{base: 10}
				appendBatches(t, s, m, simpleBatch(t, 10, 2, 10), simpleBatch(t, 12, 3, 10))
				if seal {
					require.NoError(t, s.Seal(false))
				}
				requireSecondBatchMovedUpCorrupt(t, fsys, dir, s, m)
			})
		})
	}
}

// requireSecondBatchMovedUpCorrupt moves the base offset of s's second
// batch (offsets 12-14, at m.batches[1]) up by one on disk, so that the
// batch reaches the offset after the segment's end: a ReadOffset at 12
// must answer a *record.CorruptError.
func requireSecondBatchMovedUpCorrupt(t *testing.T, fsys vfs.FS, dir string, s *Segment, m *model) {
	t.Helper()
	editFile(t, fsys, logPath(dir, 10), func(f vfs.File) {
		var x [8]byte
		binary.BigEndian.PutUint64(x[:], 13)
		_, err := f.WriteAt(x[:], m.batches[1].pos)
		require.NoError(t, err)
	})
	data, err := s.ReadOffset(nil, 12, 1<<20, math.MaxInt64)
	var ce *record.CorruptError
	require.Truef(t, errors.As(err, &ce), "ReadOffset = %d bytes, %v; want a *record.CorruptError", len(data), err)
}

// TestLookupsReportBadRecords: MaxTimestampBelow decodes the batch
// holding end for its records below end, FindTime the first batch that may
// hold its answer; records that do not decode (a compressed batch whose
// data is not, or a record whose length is bad, with the batch's CRC
// updated) are an error, not an answer from the batches before or after.
func TestLookupsReportBadRecords(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := mustCreate(t, fsys, dir, 0, Config{})
		m := &model{}
		appendBatches(t, s, m, simpleBatch(t, 0, 2, 10))
		for _, breakIt := range []func(b record.Batch){
			func(b record.Batch) { b[22] |= byte(compression.Gzip) }, // the codec bits of the attributes
			func(b record.Batch) { b[record.HeaderSize] = 0x7f },     // the first record's length
		} {
			bad := simpleBatch(t, s.NextOffset(), 3, 10)
			breakIt(bad)
			bad.UpdateCRC()
			require.NoError(t, bad.Validate(0), "a batch the segment takes")
			require.NoError(t, s.Append(bad))
			got, err := s.MaxTimestampBelow(bad.BaseOffset() + 1)
			require.ErrorIsf(t, err, record.ErrCorrupt, "MaxTimestampBelow = %d", got)
			off, ok, err := s.FindTime(bad.MaxTimestamp(), bad.BaseOffset())
			require.ErrorIsf(t, err, record.ErrCorrupt, "FindTime = %d, %v", off, ok)
		}
	})
}

// TestOpenChecksTheLastBatchEndingShort: a sealed segment whose batches
// end below the limit it is opened with (the base offset of the segment
// after it) has its last batch's CRC checked by Open: a last offset delta
// that shrank on disk would hide that batch's last record, which a read of
// its offset would then skip for the next segment's. (The last batch has
// not the segment's max timestamp, so that the time index does not tell.)
func TestOpenChecksTheLastBatchEndingShort(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := mustCreate(t, fsys, dir, 0, Config{})
		m := &model{}
		appendBatches(t, s, m, mkBatch(t, 0, []int64{500, 500, 500}, 10, -1), mkBatch(t, 0, []int64{100, 101, 102}, 10, -1))
		mustClose(t, s)
		last := m.batches[1]
		editFile(t, fsys, logPath(dir, 0), func(f vfs.File) {
			_, err := f.WriteAt([]byte{0, 0, 0, 1}, last.pos+lastDeltaOffset) // 2 → 1
			require.NoError(t, err)
		})
		s, needs, err := Open(fsys, dir, 0, Config{}, OpenOptions{Limit: m.next()})
		require.NoError(t, err)
		defer s.Close()
		require.Truef(t, needs, "Open does not ask for recovery; NextOffset %d, want %d", s.NextOffset(), m.next())
		_, err = s.Recover(math.MaxInt64)
		require.ErrorIs(t, err, record.ErrCorrupt)
	})
}

// TestManyBadOffsetEntries: offset index entries that each name
// the batch before the one holding their offset (a sane header, the
// wrong batch) are found bad by the lookups that meet them, up to four in
// one lookup (then it scans from the start), one set growing from lookup
// to lookup; past maxBadEntries the index is not used at all. Every
// answer stays right throughout.
func TestManyBadOffsetEntries(t *testing.T) {
	skipUnderRace(t)
	mem := vfs.NewMem()
	require.NoError(t, mem.MkdirAll("/d", 0o755))
	f := newICFixture(t, mem, "/d", 700)
	require.Greater(t, len(f.oidx), maxBadEntries+maxSuspects+2)
	for k, e := range f.oidx[:len(f.oidx)-1] { // the last one is Open's to check
		i := f.batchAt(t, e.Position)
		require.Positive(t, i)
		e.Position = f.batches[i-1].pos
		f.setOffsetEntry(t, k, e)
	}
	s, needs, err := Open(mem, "/d", icBase, icCfg, OpenOptions{})
	require.NoError(t, err)
	require.False(t, needs)
	defer s.Close()
	// Two lookups far apart: two sets of bad entries, the second added
	// to the first.
	for _, k := range []int{5, 30} {
		pos, err := s.PositionOf(f.oidx[k].Offset)
		require.NoError(t, err)
		require.Equal(t, f.batches[f.batchAt(t, f.oidx[k].Position)].pos, pos)
	}
	bad := s.badOffsets.Load()
	require.NotNil(t, bad)
	require.False(t, bad.all)
	require.Greater(t, len(bad.m), maxSuspects, "the second lookup's entries added to the first's")
	require.NoError(t, f.checkOffsets(s))
	require.True(t, s.badOffsets.Load().all, "more than maxBadEntries bad entries")
	f.requireLookups(t, s)
}

// TestDistrustedIndexesAnswer: after a recovery cut short (its
// each failed), both indexes are distrusted whole — lookups start from
// the segment's first batch — and the answers are right: Find,
// PositionOf and ReadOffset of every offset; FindTime and
// MaxTimestampBelow within the batches the recovery read. (Past them the
// max timestamp is that of the batches read, reset and rebuilt only so
// far, and FindTime answers "none" for a later timestamp: the state of no
// finished recovery, which the caller closes, as RecoverContext says.)
func TestDistrustedIndexesAnswer(t *testing.T) {
	mem := vfs.NewMem()
	require.NoError(t, mem.MkdirAll("/d", 0o755))
	f := newICFixture(t, mem, "/d", 80)
	s, _, err := Open(mem, "/d", icBase, icCfg, OpenOptions{Active: true})
	require.NoError(t, err)
	defer s.Close()
	errStop := errors.New("stop")
	n := 0
	_, err = s.RecoverFunc(t.Context(), 0, func(record.Batch) error {
		if n++; n == len(f.batches)-3 {
			return errStop
		}
		return nil
	})
	require.ErrorIs(t, err, errStop)
	require.Equal(t, IndexDistrust{Offset: true, Time: true}, s.IndexDistrusted())
	require.True(t, s.badOffsets.Load().all)
	require.True(t, s.badTimes.Load().all)
	require.NoError(t, f.checkOffsets(s))
	read := f.batches[:n]
	for _, b := range read {
		for _, x := range b.ts {
			for _, from := range []int64{icBase, b.base} {
				wantOff, wantOK := f.findTime(x, from)
				off, ok, err := s.FindTime(x, from)
				require.NoError(t, err)
				require.Equal(t, wantOK, ok, "FindTime(%d, %d)", x, from)
				require.Equal(t, wantOff, off, "FindTime(%d, %d)", x, from)
			}
		}
	}
	for _, b := range read[1:] {
		want := int64(-1)
		for _, c := range f.batches {
			if c.last < b.base {
				want = max(want, c.maxTs)
			}
		}
		got, err := s.MaxTimestampBelow(b.base)
		require.NoError(t, err)
		require.Equal(t, want, got, "MaxTimestampBelow(%d)", b.base)
	}
}
