package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/runnel/runnel/index"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// The tests in this file change the offsets in a batch header of a closed
// segment — the base offset, which no CRC covers, and the last offset
// delta, which the CRC does — and check that a reader gets every record
// before the changed batch, each at its offset, and then a
// *record.CorruptError naming the file; never a record at an offset it was
// not written at, and never a read that returns nothing below the bound it
// was given (a reader would wait there forever). Open may instead ask for
// recovery, when the batch lies in the tail it scans; Recover then reports
// the corruption.

// ofBase is the base offset of the tests' segments.
const ofBase = 1000

// ofCfg makes an offset index entry every few batches.
var ofCfg = Config{IndexIntervalBytes: 300}

// ofBatch is what the tests know of a batch they appended.
type ofBatch struct{ base, last, pos, size int64 }

// ofFixture is a closed segment of batches of one to four records, each
// record's value naming it.
type ofFixture struct {
	fsys     vfs.FS
	dir      string
	batches  []ofBatch
	offsetOf map[string]int64 // a record's offset, by value
	pristine [3][]byte        // the .log, .index and .timeindex
	tailFrom int64            // the position of the last offset index entry, from which Open scans
}

// newOFFixture appends n batches to a new segment and closes it. With gaps
// the offsets skip some (as compaction leaves them): batch i begins
// (i%3)*4 offsets after the batch before it ends.
func newOFFixture(t testing.TB, fsys vfs.FS, dir string, n int, gaps bool) *ofFixture {
	t.Helper()
	f := &ofFixture{fsys: fsys, dir: dir, offsetOf: map[string]int64{}}
	s, err := Create(fsys, dir, ofBase, ofCfg)
	if err != nil {
		t.Fatal(err)
	}
	next := int64(ofBase)
	for i := range n {
		if gaps {
			next += int64(i%3) * 4
		}
		var bld record.Builder
		bld.Reset()
		for j := range 1 + i%4 {
			bld.Append(tsBase+int64(i), []byte("k"), fmt.Appendf(nil, "batch %d record %d", i, j), nil)
		}
		b, err := bld.Finish(0)
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.Clone(b)
		b.SetBaseOffset(next)
		f.batches = append(f.batches, ofBatch{base: next, last: b.LastOffset(), pos: s.Size(), size: int64(len(b))})
		for r, err := range b.Records() {
			if err != nil {
				t.Fatal(err)
			}
			f.offsetOf[string(r.Value)] = r.Offset
		}
		if err := s.Append(b); err != nil {
			t.Fatal(err)
		}
		next = b.NextOffset()
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for k, suf := range ofSuffixes {
		f.pristine[k] = readFile(t, fsys, filepath.Join(dir, FileName(ofBase, suf)))
	}
	entries, err := index.DecodeOffsetEntries(f.pristine[1], ofBase)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) > 0 {
		f.tailFrom = entries[len(entries)-1].Position
	}
	return f
}

func (f *ofFixture) path() string { return logPath(f.dir, ofBase) }

func (f *ofFixture) next() int64 { return f.batches[len(f.batches)-1].last + 1 }

var ofSuffixes = [3]string{LogSuffix, IndexSuffix, TimeIndexSuffix}

// restore gives the files their pristine bytes back (a failed Recover
// leaves its indexes half rebuilt).
func (f *ofFixture) restore(t testing.TB) {
	t.Helper()
	for k, suf := range ofSuffixes {
		icRewrite(t, f.fsys, filepath.Join(f.dir, FileName(ofBase, suf)), f.pristine[k])
	}
}

// xorHeader xors the header of batch i, from byte at of it, with x.
func (f *ofFixture) xorHeader(t testing.TB, i, at int, x []byte) {
	t.Helper()
	pos := f.batches[i].pos + int64(at)
	editFile(t, f.fsys, f.path(), func(file vfs.File) {
		b := make([]byte, len(x))
		if _, err := file.ReadAt(b, pos); err != nil {
			t.Fatal(err)
		}
		for k := range b {
			b[k] ^= x[k]
		}
		if _, err := file.WriteAt(b, pos); err != nil {
			t.Fatal(err)
		}
	})
}

// setBase makes batch i's base offset base; setDelta its last offset
// delta (leaving the CRC as it was).
func (f *ofFixture) setBase(t testing.TB, i int, base int64) {
	t.Helper()
	var x [8]byte
	binary.BigEndian.PutUint64(x[:], uint64(base^f.batches[i].base))
	f.xorHeader(t, i, 0, x[:])
}

func (f *ofFixture) setDelta(t testing.TB, i int, delta int32) {
	t.Helper()
	var x [4]byte
	binary.BigEndian.PutUint32(x[:], uint32(delta)^uint32(f.batches[i].last-f.batches[i].base))
	f.xorHeader(t, i, 23, x[:])
}

// errStall is what consume reports for a read that returned nothing below
// its bound.
var errStall = errors.New("a read returned nothing below its bound")

// consume reads s from its base up to upTo with ReadOffset, maxBytes at a
// time, as a fetching consumer does, and returns the offset it got to (the
// offset after the last record read) and the error that stopped it. A
// record at an offset it was not written at fails t, unless moved(value,
// offset) allows it.
func (f *ofFixture) consume(t testing.TB, s *Segment, maxBytes int, upTo int64, moved func(value string, offset int64) bool) (int64, error) {
	t.Helper()
	offset := int64(ofBase)
	for offset < upTo {
		data, err := s.ReadOffset(nil, offset, maxBytes, upTo)
		if err != nil {
			return offset, err
		}
		if len(data) == 0 {
			if offset >= s.NextOffset() {
				return offset, nil // past the last batch
			}
			return offset, fmt.Errorf("%w: at %d, bound %d", errStall, offset, upTo)
		}
		for b, err := range record.Batches(data) {
			if err != nil {
				t.Fatalf("ReadOffset(%d) returned bytes that are not batches: %v", offset, err)
			}
			for r, err := range b.Records() {
				if err != nil {
					t.Fatalf("ReadOffset(%d) returned a batch whose records do not decode: %v", offset, err)
				}
				if r.Offset < offset {
					continue
				}
				if want, ok := f.offsetOf[string(r.Value)]; !ok || (want != r.Offset && (moved == nil || !moved(string(r.Value), r.Offset))) {
					t.Fatalf("read %q at offset %d; it was written at %d", r.Value, r.Offset, want)
				}
				offset = r.Offset + 1
			}
			offset = max(offset, b.NextOffset())
		}
	}
	return offset, nil
}

// ofOpen reopens the fixture's segment as the sealed segment before one
// at its next offset, or as the active segment of a log closed cleanly at
// its next offset, and recovers it if Open asks for it. It returns the
// segment, or the error Recover gave (the segment is then closed).
func (f *ofFixture) open(t testing.TB, active bool) (s *Segment, needs bool, rerr error) {
	t.Helper()
	opts := OpenOptions{Limit: f.next()}
	if active {
		opts = OpenOptions{Active: true, End: f.next()}
	}
	s, needs, err := Open(f.fsys, f.dir, ofBase, ofCfg, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if needs {
		durable := int64(math.MaxInt64)
		if active {
			durable = f.next()
		}
		if _, err := s.Recover(durable); err != nil {
			s.Close()
			return nil, true, err
		}
	}
	return s, needs, nil
}

// requireCorruptAt checks that err is a *record.CorruptError naming the
// fixture's .log.
func (f *ofFixture) requireCorrupt(t testing.TB, err error, what string) {
	t.Helper()
	var ce *record.CorruptError
	if !errors.As(err, &ce) || ce.Path != f.path() {
		t.Fatalf("%s: %v; want a *record.CorruptError naming %s", what, err, f.path())
	}
}

// TestCorruptOffsetsReported changes the offsets of one batch in a closed
// segment of contiguous offsets, in each of the ways a byte gone bad can,
// and reads it as a consumer does.
func TestCorruptOffsetsReported(t *testing.T) {
	type change struct {
		name string
		do   func(t testing.TB, f *ofFixture, i int)
	}
	base := func(d int64) change {
		return change{fmt.Sprintf("base%+d", d), func(t testing.TB, f *ofFixture, i int) { f.setBase(t, i, f.batches[i].base+d) }}
	}
	changes := []change{
		base(1), base(2), base(3), base(7), base(1 << 32), base(-1), base(-3), base(-ofBase - 1),
		{"base below the segment's", func(t testing.TB, f *ofFixture, i int) { f.setBase(t, i, ofBase-1) }},
		{"delta+1", func(t testing.TB, f *ofFixture, i int) {
			f.setDelta(t, i, int32(f.batches[i].last-f.batches[i].base)+1)
		}},
		{"delta 0x5a000000", func(t testing.TB, f *ofFixture, i int) { f.xorHeader(t, i, 23, []byte{0x5a}) }},
		{"delta-1", func(t testing.TB, f *ofFixture, i int) {
			f.setDelta(t, i, int32(f.batches[i].last-f.batches[i].base)-1)
		}},
		{"delta negative", func(t testing.TB, f *ofFixture, i int) { f.setDelta(t, i, -2) }},
	}
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newOFFixture(t, fsys, dir, 40, false)
		for _, active := range []bool{false, true} {
			for _, i := range []int{0, 1, 2, 9, 10, 11, 20, 21, 30, 38, 39} {
				for _, c := range changes {
					name := fmt.Sprintf("active=%v/batch%d/%s", active, i, c.name)
					c.do(t, f, i)
					victim := f.batches[i]
					s, needs, rerr := f.open(t, active)
					if rerr != nil {
						f.requireCorrupt(t, rerr, name+": Recover")
						f.restore(t)
						continue
					}
					if needs && victim.pos < f.tailFrom {
						t.Fatalf("%s: Open asked for recovery, for a batch before the tail it scans", name)
					}
					for _, maxBytes := range []int{1, 250, 1 << 20} {
						for _, upTo := range []int64{f.next(), victim.base + 1} {
							got, err := f.consume(t, s, maxBytes, upTo, nil)
							if upTo <= victim.base {
								continue
							}
							f.requireCorrupt(t, err, fmt.Sprintf("%s: maxBytes %d, upTo %d: consumed to %d", name, maxBytes, upTo, got))
							if got != victim.base {
								t.Fatalf("%s: maxBytes %d, upTo %d: consumed to %d, then %v; want every record before %d", name, maxBytes, upTo, got, err, victim.base)
							}
						}
					}
					if d := s.IndexDistrusted(); d != (IndexDistrust{}) {
						t.Fatalf("%s: IndexDistrusted %+v: the log went bad, not the index", name, d)
					}
					if err := s.Close(); err != nil {
						t.Fatalf("%s: Close: %v", name, err)
					}
					f.restore(t)
				}
			}
		}
	})
}

// TestCorruptOffsetsWithGaps is TestCorruptOffsetsReported on a segment
// whose offsets have gaps, as compaction leaves them. A base offset moved
// within the gaps around its batch cannot be told from a compacted batch
// (no CRC covers it, and the offsets still increase): its records may be
// read at the moved offsets. Any other change is reported.
func TestCorruptOffsetsWithGaps(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newOFFixture(t, fsys, dir, 40, true)
		for _, i := range []int{1, 2, 3, 4, 5, 10, 11, 19, 20, 22} {
			v, prev, next := f.batches[i], f.batches[i-1], f.batches[i+1]
			for _, d := range []int64{1, 3, 4, 5, 8, 9, 1 << 20, -1, -4, -5, -9} {
				name := fmt.Sprintf("batch%d/base%+d", i, d)
				f.setBase(t, i, v.base+d)
				within := v.base+d > prev.last && v.last+d < next.base
				moved := func(value string, off int64) bool {
					return within && f.offsetOf[value] >= v.base && f.offsetOf[value] <= v.last && off == f.offsetOf[value]+d
				}
				s, _, rerr := f.open(t, false)
				if rerr != nil {
					f.requireCorrupt(t, rerr, name+": Recover")
				}
				for _, maxBytes := range []int{1, 250, 1 << 20} {
					if rerr != nil {
						break
					}
					got, err := f.consume(t, s, maxBytes, f.next(), moved)
					if within {
						if err != nil || got != f.next() {
							t.Fatalf("%s: maxBytes %d: consumed to %d, then %v", name, maxBytes, got, err)
						}
						continue
					}
					f.requireCorrupt(t, err, fmt.Sprintf("%s: maxBytes %d: consumed to %d", name, maxBytes, got))
					// A base offset moved down onto the batch before, which
					// follows a gap itself, may be that batch's moved up:
					// neither is read.
					want := prev.last + 1
					if d < 0 {
						want = ofBase
						if i >= 2 {
							want = f.batches[i-2].last + 1
						}
					}
					if got < want {
						t.Fatalf("%s: maxBytes %d: consumed to %d, then %v; want every record before %d", name, maxBytes, got, err, v.base)
					}
				}
				if s != nil {
					if err := s.Close(); err != nil {
						t.Fatalf("%s: Close: %v", name, err)
					}
				}
				f.restore(t)
			}
		}
	})
}

// TestSeekIntoShrunkBatch: a reader that seeks into a batch whose last
// offset delta shrank on disk (so that its header no longer holds the
// offset) gets the batch's CRC error, not the next batch: its records are
// not skipped. Offsets may be missing after a batch (compaction removes
// them); a scan that finds its offset missing checks the batch before.
func TestSeekIntoShrunkBatch(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		for _, gaps := range []bool{false, true} {
			f := newOFFixture(t, fsys, dir, 40, gaps)
			for _, i := range []int{3, 7, 11, 19, 27, 38} {
				v := f.batches[i]
				f.setDelta(t, i, int32(v.last-v.base)-1)
				s, _, rerr := f.open(t, false)
				if rerr != nil {
					t.Fatalf("batch %d: Recover: %v", i, rerr)
				}
				for _, maxBytes := range []int{1, 1 << 20} {
					_, err := s.ReadOffset(nil, v.last, maxBytes, math.MaxInt64)
					var ce *record.CorruptError
					if !errors.As(err, &ce) || ce.Position != v.pos {
						t.Fatalf("gaps %v: ReadOffset(%d) of batch %d [%d, %d] shrunk: %v; want its CRC error at %d", gaps, v.last, i, v.base, v.last, err, v.pos)
					}
				}
				if _, err := s.Find(v.last); !errors.Is(err, record.ErrCorrupt) {
					t.Fatalf("gaps %v: Find(%d): %v", gaps, v.last, err)
				}
				mustClose(t, s)
				f.restore(t)
			}
			for _, suf := range ofSuffixes {
				if err := fsys.Remove(filepath.Join(dir, FileName(ofBase, suf))); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

// TestReadFromPositionChecksOffsets: Read from a position (what compaction
// walks a segment with) checks the offsets of the batches it returns among
// themselves, and confirms a batch after a gap (or the first one, whose
// predecessor it has not seen) with the batch after it; a caller that
// walks the segment checks the first batch of each Read against the last
// of the Read before, as compaction does.
func TestReadFromPositionChecksOffsets(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newOFFixture(t, fsys, dir, 40, false)
		for _, i := range []int{0, 1, 5, 20} {
			for _, d := range []int64{1, -1} {
				if i == 0 && d < 0 {
					continue
				}
				v := f.batches[i]
				f.setBase(t, i, v.base+d)
				s, _, rerr := f.open(t, false)
				if rerr != nil {
					f.requireCorrupt(t, rerr, "Recover")
					f.restore(t)
					continue
				}
				for _, maxBytes := range []int{1, 250, 1 << 20} {
					pos, prev := int64(0), int64(ofBase-1)
				walk:
					for {
						data, err := s.Read(pos, maxBytes)
						if err != nil {
							f.requireCorrupt(t, err, fmt.Sprintf("batch %d base%+d: Read(%d, %d)", i, d, pos, maxBytes))
							break
						}
						if len(data) == 0 {
							t.Fatalf("batch %d base%+d: Read(%d, %d) read to the end", i, d, pos, maxBytes)
						}
						for b := range record.Batches(data) {
							if b.BaseOffset() <= prev {
								break walk // the caller's check
							}
							if b.BaseOffset() != f.batches[f.batchAt(t, pos)].base {
								t.Fatalf("batch %d base%+d: Read(%d, %d) returned a batch at %d", i, d, pos, maxBytes, b.BaseOffset())
							}
							prev = b.LastOffset()
							pos += int64(len(b))
						}
					}
					// Everything before the batch came; but for a base
					// moved down, a Read from the batch before it, which
					// has not seen that batch's predecessor, cannot tell
					// which of the two went bad.
					if pos != v.pos && !(d < 0 && pos == f.batches[i-1].pos) {
						t.Fatalf("batch %d base%+d: maxBytes %d: Read stopped at %d, want %d", i, d, maxBytes, pos, v.pos)
					}
				}
				mustClose(t, s)
				f.restore(t)
			}
		}
	})
}

func (f *ofFixture) batchAt(t testing.TB, pos int64) int {
	t.Helper()
	for i, b := range f.batches {
		if b.pos == pos {
			return i
		}
	}
	t.Fatalf("no batch at %d", pos)
	return 0
}

// TestOpenChecksEnd: Open checks where a segment's batches end against
// what the log knows: below the next segment's base (Limit), checking the
// last batch's CRC when they end short of it; exactly at the log end
// recorded at a clean shutdown (End), until the first Append.
func TestOpenChecksEnd(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newOFFixture(t, fsys, dir, 40, false)
		last := f.batches[len(f.batches)-1]
		open := func(opts OpenOptions) (*Segment, bool) {
			t.Helper()
			s, needs, err := Open(fsys, dir, ofBase, ofCfg, opts)
			if err != nil {
				t.Fatalf("Open(%+v): %v", opts, err)
			}
			return s, needs
		}
		recoverFails := func(s *Segment, durable int64, what string) {
			t.Helper()
			_, err := s.Recover(durable)
			f.requireCorrupt(t, err, what)
			mustClose(t, s)
			f.restore(t)
		}
		for _, opts := range []OpenOptions{{Limit: f.next()}, {Limit: f.next() + 10}, {Active: true, End: f.next()}} {
			s, needs := open(opts)
			if needs || s.NextOffset() != f.next() {
				t.Fatalf("Open(%+v): needs recovery %v, next %d", opts, needs, s.NextOffset())
			}
			if _, err := f.consume(t, s, 1<<20, f.next(), nil); err != nil {
				t.Fatalf("Open(%+v): %v", opts, err)
			}
			mustClose(t, s)
		}

		// The batches reach the next segment's base, or end elsewhere than
		// the log ended.
		for _, opts := range []OpenOptions{{Limit: last.last}, {Active: true, End: f.next() + 1}, {Active: true, End: f.next() - 1}} {
			s, needs := open(opts)
			if !needs {
				t.Fatalf("Open(%+v) of a segment ending at %d: no recovery", opts, f.next())
			}
			durable := int64(math.MaxInt64)
			if opts.End > 0 {
				durable = opts.End
			}
			recoverFails(s, durable, fmt.Sprintf("Recover after Open(%+v)", opts))
		}

		// The last batch's delta shrank: its records would be taken for a
		// gap before the next segment.
		f.setDelta(t, len(f.batches)-1, int32(last.last-last.base)-1)
		s, needs := open(OpenOptions{Limit: f.next()})
		if !needs {
			t.Fatalf("Open of a segment whose last delta shrank: no recovery")
		}
		recoverFails(s, math.MaxInt64, "Recover after the last delta shrank")

		// An append lifts the limits: the active segment grows past them.
		s, needs = open(OpenOptions{Active: true, End: f.next()})
		if needs {
			t.Fatal("Open: needs recovery")
		}
		var bld record.Builder
		bld.Reset()
		bld.Append(tsBase+100, []byte("k"), []byte("appended"), nil)
		b, err := bld.Finish(0)
		if err != nil {
			t.Fatal(err)
		}
		b.SetBaseOffset(f.next())
		if err := s.Append(b); err != nil {
			t.Fatal(err)
		}
		if data, err := s.ReadOffset(nil, f.next(), 1<<20, math.MaxInt64); err != nil || len(data) != len(b) {
			t.Fatalf("ReadOffset of the appended batch: %d bytes, %v", len(data), err)
		}
		mustClose(t, s)
		s, needs = open(OpenOptions{Active: true, End: f.next() + 1})
		if needs || s.NextOffset() != f.next()+1 {
			t.Fatalf("reopen: needs recovery %v, next %d", needs, s.NextOffset())
		}
		mustClose(t, s)
	})
}

// TestAppendRefusesOffsetsOutOfOrder: Append writes nothing of batches
// whose offsets do not increase from the segment's next offset.
func TestAppendRefusesOffsetsOutOfOrder(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := mustCreate(t, fsys, dir, 10, Config{})
		m := &model{base: 10}
		appendBatches(t, s, m, simpleBatch(t, 0, 3, 10))
		batch := func(base int64, delta int32) []byte {
			b := simpleBatch(t, base, 2, 10)
			var x [4]byte
			binary.BigEndian.PutUint32(x[:], uint32(delta))
			copy(b[23:], x[:])
			return b
		}
		for _, c := range []struct {
			name string
			data []byte
		}{
			{"overlapping", batch(12, 1)},
			{"repeated", batch(10, 1)},
			{"below the base", batch(3, 1)},
			{"negative delta", batch(13, -1)},
			{"second out of order", append(batch(13, 1), batch(14, 1)...)},
			{"overflowing", batch(math.MaxInt64-1, 5)},
		} {
			err := s.Append(c.data)
			var ce *record.CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("%s: Append: %v, want a *record.CorruptError", c.name, err)
			}
			checkState(t, s, m)
		}
		// Gaps, as compaction leaves them, are fine.
		gap := simpleBatch(t, 20, 2, 10)
		if err := s.Append(gap); err != nil {
			t.Fatalf("Append after a gap: %v", err)
		}
		m.add(t, gap, m.size())
		checkState(t, s, m)
	})
}

// TestOpenChecksTimesBeforeLastEntry: a max timestamp that grew on disk
// in a batch before the time index's last entry, in the tail Open scans,
// makes Open ask for recovery (which finds the batch's CRC bad), rather
// than become the segment's max timestamp: Close would then index it
// below the last entry's offset and fail.
func TestOpenChecksTimesBeforeLastEntry(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		// A segment whose tail (from the last offset index entry) holds
		// two batches or more.
		var f *ofFixture
		for n := 40; ; n++ {
			f = newOFFixture(t, fsys, dir, n, false)
			if f.batches[n-2].pos >= f.tailFrom {
				break
			}
			if n == 50 {
				t.Fatal("no segment with a tail of two batches")
			}
		}
		i := len(f.batches) - 2
		f.xorHeader(t, i, 35, []byte{0x01}) // the max timestamp's top byte
		s, needs, err := Open(fsys, dir, ofBase, ofCfg, OpenOptions{Active: true, End: f.next()})
		if err != nil {
			t.Fatal(err)
		}
		if !needs {
			if cerr := s.Close(); cerr != nil {
				t.Fatalf("Open took the grown timestamp (max %d), and Close failed: %v", s.MaxTimestamp(), cerr)
			}
			t.Fatalf("Open took the grown timestamp: max %d", s.MaxTimestamp())
		}
		_, err = s.Recover(f.next())
		f.requireCorrupt(t, err, "Recover")
		mustClose(t, s)
	})
}

// corruptHeader xors the header of batch victim of f (opened as the
// sealed segment before another, or as the active one of a log closed
// cleanly), from byte at, with x, reads the segment as a consumer would,
// maxBytes at a time, and checks what it got: every record at its
// offset, or every record before the victim's batch at its offset and
// then a *record.CorruptError naming the file (or one from Recover, when
// Open asked for it). A change of nothing but the leader epoch, which
// nothing checks, reads everything; so may one of nothing but the base
// offset (and the leader epoch) that keeps the batch within the gaps
// around it, at the moved offsets. In a segment with gaps, a base offset
// moved down onto the batch before, which follows a gap, may withhold
// that batch too (either may have moved).
func corruptHeader(t *testing.T, f *ofFixture, victim, at int, x []byte, active bool, maxBytes int) {
	t.Helper()
	defer f.restore(t)
	at = min(at, record.HeaderSize-len(x))
	f.xorHeader(t, victim, at, x)
	v := f.batches[victim]
	changed := func(lo, hi int) bool { // any byte of [lo, hi) of the header
		for k, b := range x {
			if b != 0 && at+k >= lo && at+k < hi {
				return true
			}
		}
		return false
	}
	harmless := !changed(0, 12) && !changed(16, record.HeaderSize)
	onlyBase := !changed(8, 12) && !changed(16, record.HeaderSize) // and the leader epoch
	d := int64(binary.BigEndian.Uint64(readFile(t, f.fsys, f.path())[v.pos:])) - v.base
	lo, hi := int64(ofBase-1), int64(math.MaxInt64) // the offsets around the batch
	if victim > 0 {
		lo = f.batches[victim-1].last
	}
	if victim+1 < len(f.batches) {
		hi = f.batches[victim+1].base
	}
	within := onlyBase && d != 0 && v.base+d > lo && v.last+d < hi && v.last+d < f.next()
	moved := func(value string, off int64) bool {
		o := f.offsetOf[value]
		return within && o >= v.base && o <= v.last && off == o+d
	}
	s, _, rerr := f.open(t, active)
	if rerr != nil {
		f.requireCorrupt(t, rerr, "Recover")
		return
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}()
	got, err := f.consume(t, s, maxBytes, f.next(), moved)
	if err == nil && got == f.next() && (harmless || within) {
		return
	}
	if err == nil && within && victim == len(f.batches)-1 && got == v.last+d+1 {
		return // the last batch, moved down
	}
	f.requireCorrupt(t, err, fmt.Sprintf("batch %d [%d, %d], header bytes from %d xor %x (moved by %d, within %v): consumed to %d of %d", victim, v.base, v.last, at, x, d, within, got, f.next()))
	want := lo + 1 // the offset after the batch before
	prevGap := victim > 0 && f.batches[victim-1].base > ofBase
	if victim >= 2 {
		prevGap = f.batches[victim-1].base > f.batches[victim-2].last+1
	}
	if d < 0 && prevGap {
		want = ofBase
		if victim >= 2 {
			want = f.batches[victim-2].last + 1
		}
	}
	if got < want {
		t.Fatalf("batch %d, header bytes from %d xor %x: consumed to %d, then %v; want every record before %d", victim, at, x, got, err, want)
	}
}

// TestCorruptHeaderSweep changes each byte of the header of some batches
// of a segment on the in-memory FS in turn (see corruptHeader).
func TestCorruptHeaderSweep(t *testing.T) {
	skipUnderRace(t)
	fsys := vfs.NewMem()
	for _, gaps := range []bool{false, true} {
		dir := fmt.Sprintf("/sweep-%v", gaps)
		if err := fsys.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		f := newOFFixture(t, fsys, dir, 24, gaps)
		for _, victim := range []int{0, 1, 2, 5, 8, 13, 22, 23} {
			for at := range record.HeaderSize {
				for _, x := range []byte{0x01, 0x5a, 0xff} {
					for _, active := range []bool{false, true} {
						corruptHeader(t, f, victim, at, []byte{x}, active, []int{1, 1 << 20}[at%2])
					}
				}
			}
		}
	}
}

// FuzzCorruptHeader is TestCorruptHeaderSweep with the change, the batch
// and how the segment is opened and read chosen by the fuzzer.
func FuzzCorruptHeader(f *testing.F) {
	f.Add(uint8(5), uint8(0), uint64(0x0000_0000_0000_0001), false, false, uint16(1))
	f.Add(uint8(5), uint8(0), uint64(0x0000_0000_0000_0003), true, false, uint16(300))
	f.Add(uint8(9), uint8(23), uint64(0x0000_0001_0000_0000), false, true, uint16(0))
	f.Add(uint8(23), uint8(0), uint64(0x0000_0000_5a00_0000), false, true, uint16(1000))
	f.Add(uint8(0), uint8(35), uint64(0x0100_0000_0000_0000), false, true, uint16(1))
	f.Fuzz(func(t *testing.T, victim, at uint8, x uint64, gaps, active bool, maxBytes uint16) {
		fsys := vfs.NewMem()
		if err := fsys.MkdirAll("/f", 0o755); err != nil {
			t.Fatal(err)
		}
		fx := newOFFixture(t, fsys, "/f", 24, gaps)
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], x)
		corruptHeader(t, fx, int(victim)%len(fx.batches), int(at)%record.HeaderSize, b[:], active, int(maxBytes))
	})
}

// TestCorruptLastBatchWhileOpen: the last batch of a segment written in
// this process — active, or sealed since — has its offsets checked
// against the segment's end as Open's are: a base offset that grows on
// disk under an open segment is reported, not served, skipped or waited
// on. The checks hold whether the segment was sealed or not.
func TestCorruptLastBatchWhileOpen(t *testing.T) {
	for _, seal := range []bool{false, true} {
		forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
			s := mustCreate(t, fsys, dir, 10, Config{})
			defer s.Close()
			m := &model{base: 10}
			appendBatches(t, s, m, simpleBatch(t, 10, 2, 10), simpleBatch(t, 12, 3, 10))
			if seal {
				if err := s.Seal(false); err != nil {
					t.Fatal(err)
				}
			}
			editFile(t, fsys, logPath(dir, 10), func(f vfs.File) {
				var x [8]byte
				binary.BigEndian.PutUint64(x[:], 12+1<<20)
				if _, err := f.WriteAt(x[:], m.batches[1].pos); err != nil {
					t.Fatal(err)
				}
			})
			data, err := s.ReadOffset(nil, 12, 1<<20, 15)
			var ce *record.CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("seal=%v: ReadOffset of the changed batch: %d bytes, %v; want a *record.CorruptError", seal, len(data), err)
			}
			if _, _, err := s.FindTime(0, 12); !errors.As(err, &ce) {
				t.Fatalf("seal=%v: FindTime over the changed batch: %v; want a *record.CorruptError", seal, err)
			}
		})
	}
}

// TestOffsetsBelowTheBaseRefused: a base offset below the segment's base
// is refused even when its delta would bring its last offset back into
// the segment's range (the check's sum must not wrap).
func TestOffsetsBelowTheBaseRefused(t *testing.T) {
	s := &Segment{base: 1000}
	hdr := make([]byte, record.HeaderSize)
	for _, c := range []struct {
		base  int64
		delta int32
		ok    bool
	}{
		{1000, 10, true},
		{995, 10, false},
		{999, math.MinInt32, false},
		{1000, -1, false},
		{1000 + math.MaxInt32, 0, true},
		{1000 + math.MaxInt32, 1, false},
		{math.MinInt64, 5, false},
	} {
		binary.BigEndian.PutUint64(hdr, uint64(c.base))
		binary.BigEndian.PutUint32(hdr[lastDeltaOffset:], uint32(c.delta))
		if got := s.offsetsOK(hdr, noPrev); got != c.ok {
			t.Errorf("base %d delta %d: offsetsOK %v, want %v", c.base, c.delta, got, c.ok)
		}
	}
}

// TestFindTimeConfirmsABatchAfterAGap: a base offset grown on disk past
// the next batch's, in a segment of contiguous offsets, is not given as
// FindTime's answer, whether the batch is where FindTime's scan starts or
// one its walk reaches after it: a batch after a gap is confirmed first,
// as a scan confirms it.
func TestFindTimeConfirmsABatchAfterAGap(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newOFFixture(t, fsys, dir, 12, false)
		for victim := 1; victim < len(f.batches)-1; victim++ {
			f.restore(t)
			f.setBase(t, victim, f.batches[victim+1].base+2)
			s, _, err := f.open(t, false)
			if err != nil {
				f.requireCorrupt(t, err, "Recover")
				continue
			}
			off, ok, err := s.FindTime(tsBase+int64(victim), ofBase)
			s.Close()
			if err == nil {
				t.Fatalf("batch %d: FindTime: offset %d (ok %v); the batch was written at %d, so want a *record.CorruptError", victim, off, ok, f.batches[victim].base)
			}
			f.requireCorrupt(t, err, fmt.Sprintf("batch %d: FindTime", victim))
		}
	})
}

// TestReadConfirmsBatchAfterGap: a read that maxBytes cuts within the
// header of the batch after one that follows a gap returns that batch
// (the batch after it, read from the file, confirms it), as it does when
// the header is within maxBytes, and as Kafka's broker returns every
// whole batch that fits. It returned one batch fewer (found by
// TestParityCompaction in benchmarks/peers, seed 145).
func TestReadConfirmsBatchAfterGap(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newOFFixture(t, fsys, dir, 12, true)
		s, _, err := f.open(t, false)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		tried := 0
		for i := 1; i+1 < len(f.batches); i++ {
			v := f.batches[i]
			if v.base == f.batches[i-1].last+1 {
				continue // no gap before it
			}
			for _, cut := range []int64{1, record.HeaderSize - 1} {
				maxBytes := int(v.pos + v.size + cut)
				data, err := s.ReadOffset(nil, ofBase, maxBytes, f.next())
				if err != nil {
					t.Fatalf("batch %d, maxBytes %d: %v", i, maxBytes, err)
				}
				if int64(len(data)) != v.pos+v.size {
					t.Fatalf("batch %d [%d, %d] after a gap, maxBytes %d (the next header cut %d bytes in): read %d bytes; want %d, up to its end",
						i, v.base, v.last, maxBytes, cut, len(data), v.pos+v.size)
				}
				tried++
			}
		}
		if tried == 0 {
			t.Fatal("no batch after a gap")
		}
	})
}

// TestFindTimeWalkChecksOffsets: a base offset gone bad on disk down into
// the batch before it, in a segment of contiguous offsets, is reported by
// a FindTime whose walk reaches the batch, not given as its answer (the
// record at the moved offset is another batch's).
func TestFindTimeWalkChecksOffsets(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newOFFixture(t, fsys, dir, 12, false)
		tried := 0
		for victim := 1; victim < len(f.batches)-1; victim++ {
			f.restore(t)
			f.setBase(t, victim, f.batches[victim].base-1)
			s, _, err := f.open(t, false)
			if err != nil {
				f.requireCorrupt(t, err, "Recover")
				continue
			}
			off, ok, err := s.FindTime(tsBase+int64(victim), ofBase)
			mustClose(t, s)
			require.Errorf(t, err, "batch %d moved down: FindTime = %d, %v", victim, off, ok)
			f.requireCorrupt(t, err, "FindTime")
			tried++
		}
		require.NotZero(t, tried)
	})
}

// TestFindTimeChecksTheBatchBeforeAGap: a FindTime whose walk passes a
// batch (its timestamps are below the one sought) and then finds the
// batch after it following a gap, in a segment of contiguous offsets,
// checks the CRC of the batch it passed, as a scan does: its last offset
// delta shrank on disk.
func TestFindTimeChecksTheBatchBeforeAGap(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newOFFixture(t, fsys, dir, 12, false)
		times, err := index.DecodeTimeEntries(f.pristine[2], ofBase)
		require.NoError(t, err)
		tried := 0
		for victim := 1; victim < len(f.batches)-1; victim++ {
			v, after := f.batches[victim], f.batches[victim+1]
			if v.last == v.base {
				continue // one record: no delta to shrink
			}
			starts := false // a time entry moves FindTime's start to the batch after it
			for _, e := range times {
				starts = starts || (e.Offset >= after.base && e.Offset <= after.last)
			}
			if starts {
				continue
			}
			f.restore(t)
			f.setDelta(t, victim, int32(v.last-v.base)-1)
			s, _, err := f.open(t, false)
			if err != nil {
				f.requireCorrupt(t, err, "Recover")
				continue
			}
			off, ok, err := s.FindTime(tsBase+int64(victim)+1, v.base)
			mustClose(t, s)
			require.Errorf(t, err, "batch %d shrunk: FindTime = %d, %v", victim, off, ok)
			var ce *record.CorruptError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, v.pos, ce.Position, "the shrunk batch's CRC error")
			tried++
		}
		require.NotZero(t, tried)
	})
}

// TestReadFromTheStartTrustsTheBase: a Read from position 0 knows that
// the segment's first batch follows nothing, so a first batch that starts
// at the segment's base needs no confirmation from the batch after it: it
// is returned when that batch's base offset went bad down onto its own.
func TestReadFromTheStartTrustsTheBase(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newOFFixture(t, fsys, dir, 12, false)
		f.setBase(t, 1, f.batches[0].last)
		s, _, err := f.open(t, false)
		require.NoError(t, err)
		defer s.Close()
		data, err := s.Read(0, 1)
		require.NoError(t, err)
		require.Len(t, data, int(f.batches[0].size))
		require.Equal(t, int64(ofBase), record.Batch(data).BaseOffset())
	})
}

// TestReadConfirmationIgnoresACorruptHeader: a batch after a gap that a
// read returns last is confirmed by the header of the batch after it; a
// corrupt header there confirms nothing and condemns nothing (the read
// that reaches it reports it), so the batch is returned, whether it is the
// first of a Read from its position or follows another of a ReadOffset.
func TestReadConfirmationIgnoresACorruptHeader(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newOFFixture(t, fsys, dir, 12, true)
		v, prev := f.batches[1], f.batches[0]
		require.Greater(t, v.base, prev.last+1, "no gap before batch 1")
		f.xorHeader(t, 2, record.MagicOffset, []byte{0xff})
		s, _, err := f.open(t, false)
		require.NoError(t, err)
		defer s.Close()

		data, err := s.Read(v.pos, int(v.size))
		require.NoError(t, err)
		require.Len(t, data, int(v.size))

		data, err = s.ReadOffset(nil, prev.base, int(prev.size+v.size), math.MaxInt64)
		require.NoError(t, err)
		require.Len(t, data, int(prev.size+v.size))
	})
}

// TestReadFromPositionRefusesAnOverlapInACutHeader: a Read from a
// position whose first batch's base offset went bad up by one, so that it
// ends at the next batch's base offset, is refused when maxBytes cuts the
// next batch after its header: the header there, equal and not above,
// does not confirm it.
func TestReadFromPositionRefusesAnOverlapInACutHeader(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newOFFixture(t, fsys, dir, 12, false)
		v := f.batches[3]
		f.setBase(t, 3, v.base+1)
		s, _, err := f.open(t, false)
		require.NoError(t, err)
		defer s.Close()
		data, err := s.Read(v.pos, int(v.size)+record.HeaderSize)
		require.Errorf(t, err, "Read returned %d bytes", len(data))
		f.requireCorrupt(t, err, "Read")
	})
}
