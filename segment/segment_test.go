package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/index"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestCreateEmpty(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := mustCreate(t, fsys, dir, 42, Config{})
		m := &model{base: 42}
		checkState(t, s, m)
		if s.Base() != 42 || s.Dir() != dir || s.Closed() {
			t.Fatalf("Base %d, Dir %q, Closed %v", s.Base(), s.Dir(), s.Closed())
		}
		for _, suf := range []string{LogSuffix, IndexSuffix, TimeIndexSuffix} {
			if _, err := fsys.Stat(filepath.Join(dir, FileName(42, suf))); err != nil {
				t.Fatalf("%s: %v", suf, err)
			}
		}
		if _, ok, err := s.FindTime(0, 0); ok || err != nil {
			t.Fatalf("FindTime on an empty segment: %v, %v", ok, err)
		}
		if b, err := s.Read(0, 1<<20); b != nil || err != nil {
			t.Fatalf("Read of an empty segment = %d bytes, %v", len(b), err)
		}
		if err := s.Append(nil); err != nil {
			t.Fatalf("Append(nil): %v", err)
		}
		checkState(t, s, m)
	})
}

// Create over the files of an older segment starts empty.
func TestCreateReplaces(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := mustCreate(t, fsys, dir, 0, Config{IndexIntervalBytes: 1})
		fill(t, s, &model{}, rand.New(rand.NewPCG(1, 1)), 10)
		mustClose(t, s)
		s = mustCreate(t, fsys, dir, 0, Config{IndexIntervalBytes: 1})
		checkState(t, s, &model{})
		if s.oidx.Entries() != 0 || s.tidx.Entries() != 0 {
			t.Fatalf("new segment has %d and %d index entries", s.oidx.Entries(), s.tidx.Entries())
		}
	})
}

func TestAppend(t *testing.T) {
	skipUnderRace(t)
	// 1 MiB: no index entry after the first, so that finding an offset
	// scans from the start of the file, across the blocks in which a
	// scan reads an OS file's headers (headerScanBlock).
	for _, interval := range []int{1, 300, 4096, 1 << 20} {
		t.Run(fmtInt("interval", interval), func(t *testing.T) {
			forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
				rng := rand.New(rand.NewPCG(2, uint64(interval)))
				const base = 1000
				s := mustCreate(t, fsys, dir, base, Config{IndexIntervalBytes: interval})
				m := &model{base: base}
				for i := range 20 {
					// Single batches and buffers of several.
					batches := make([]record.Batch, 1+i%4)
					for j := range batches {
						batches[j] = randBatch(t, rng, 0)
					}
					appendBatches(t, s, m, batches...)
				}
				// Enough for what the intervals are for, no more: the
				// checks below cost a scan for each of the (timestamp,
				// offset) pairs they try, about the cube of the batches.
				if m.size() < 4*headerScanBlock || (interval < 1<<20 && m.size() < 8*int64(interval)) {
					t.Fatalf("test bug: %d bytes cross too few scan blocks or index intervals", m.size())
				}
				checkState(t, s, m)
				checkFindTime(t, s, m)
				if got, want := offsetEntries(s), expectedOffsetEntries(m, interval); !equalEntries(got, want) {
					t.Fatalf("offset index %v, want %v", got, want)
				}
				if interval == 1 && s.oidx.Entries() != len(m.batches)-1 {
					t.Fatalf("%d entries for %d batches with interval 1", s.oidx.Entries(), len(m.batches))
				}
			})
		})
	}
}

func equalEntries(a, b []index.OffsetEntry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func fmtInt(name string, n int) string { return fmt.Sprintf("%s=%d", name, n) }

func TestTimestamps(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := mustCreate(t, fsys, dir, 0, Config{})
		m := &model{}
		appendBatches(t, s, m, mkBatch(t, 0, []int64{500, 300}, 1, -1))
		if s.MaxTimestamp() != 500 || s.FirstBatchTimestamp() != 500 {
			t.Fatalf("max %d, first %d", s.MaxTimestamp(), s.FirstBatchTimestamp())
		}
		appendBatches(t, s, m, mkBatch(t, 0, []int64{100}, 1, -1))
		if s.MaxTimestamp() != 500 || s.FirstBatchTimestamp() != 500 {
			t.Fatalf("max %d, first %d", s.MaxTimestamp(), s.FirstBatchTimestamp())
		}
		appendBatches(t, s, m, mkBatch(t, 0, []int64{100}, 1, 900))
		if s.MaxTimestamp() != 900 || s.FirstBatchTimestamp() != 500 {
			t.Fatalf("max %d, first %d", s.MaxTimestamp(), s.FirstBatchTimestamp())
		}
		checkState(t, s, m)
		checkFindTime(t, s, m)
	})
}

func TestFind(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		const base = 100
		s := mustCreate(t, fsys, dir, base, Config{IndexIntervalBytes: 200})
		m := &model{base: base}
		for i := range 30 {
			appendBatches(t, s, m, simpleBatch(t, 0, 1+i%5, 40))
		}
		checkState(t, s, m) // every offset from base-2 to next+2
		for _, b := range m.batches {
			for _, off := range []int64{b.base, b.last, (b.base + b.last) / 2} {
				if pos, err := s.Find(off); err != nil || pos != b.pos {
					t.Fatalf("Find(%d) = %d, %v; want %d", off, pos, err, b.pos)
				}
			}
		}
		if pos, err := s.Find(0); err != nil || pos != 0 {
			t.Fatalf("Find below base = %d, %v", pos, err)
		}
		last := m.batches[len(m.batches)-1]
		if pos, err := s.Find(m.next() - 1); err != nil || pos != last.pos {
			t.Fatalf("Find(last offset) = %d, %v; want %d", pos, err, last.pos)
		}
		for _, off := range []int64{m.next(), m.next() + 1, math.MaxInt64} {
			if _, err := s.Find(off); err != ErrOffsetNotHere {
				t.Fatalf("Find(%d): %v, want ErrOffsetNotHere", off, err)
			}
			if pos, err := s.PositionOf(off); err != nil || pos != s.Size() {
				t.Fatalf("PositionOf(%d) = %d, %v; want Size %d", off, pos, err, s.Size())
			}
		}
	})
}

// Offsets missing between batches (as compaction leaves them) are found in
// the next batch.
func TestFindGaps(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := mustCreate(t, fsys, dir, 0, Config{IndexIntervalBytes: 1})
		m := &model{}
		var data []byte
		for i := range 10 {
			b := simpleBatch(t, 0, 2, 10)
			b.SetBaseOffset(int64(10 * i))
			m.add(t, b, int64(len(data)))
			data = append(data, b...)
		}
		if err := s.Append(data); err != nil {
			t.Fatal(err)
		}
		checkState(t, s, m)
		if pos, err := s.Find(15); err != nil || pos != m.batches[2].pos {
			t.Fatalf("Find(15) = %d, %v; want %d", pos, err, m.batches[2].pos)
		}
	})
}

func TestFindTime(t *testing.T) {
	skipUnderRace(t)
	for _, interval := range []int{1, 500, 4096} {
		t.Run(fmtInt("interval", interval), func(t *testing.T) {
			forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
				rng := rand.New(rand.NewPCG(3, uint64(interval)))
				s := mustCreate(t, fsys, dir, 7, Config{IndexIntervalBytes: interval})
				m := &model{base: 7}
				// 40 batches: as many time index entries as 80 would
				// give (the random timestamps' maximum soon stops
				// rising), for an eighth of the checks' cost.
				fill(t, s, m, rng, 40)
				if s.tidx.Entries() < 2 {
					t.Fatalf("test bug: %d time index entries", s.tidx.Entries())
				}
				checkFindTime(t, s, m)
				if _, ok, err := s.FindTime(m.maxTs()+1, 0); ok || err != nil {
					t.Fatalf("FindTime past the max: %v, %v", ok, err)
				}
				// The same after Seal, which adds the final time entry.
				if err := s.Seal(false); err != nil {
					t.Fatal(err)
				}
				checkTimeIndex(t, s, m)
				checkFindTime(t, s, m)
			})
		})
	}
}

// A LogAppendTime batch's records all have its append time, whatever they
// were built with.
func TestFindTimeLogAppendTime(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := mustCreate(t, fsys, dir, 0, Config{IndexIntervalBytes: 1})
		m := &model{}
		appendBatches(t, s, m, mkBatch(t, 0, []int64{10, 5000, 20}, 1, -1))
		appendBatches(t, s, m, mkBatch(t, 0, []int64{9000, 9001}, 1, 3000))
		appendBatches(t, s, m, mkBatch(t, 0, []int64{4000, 6000}, 1, -1))
		for ts, want := range map[int64]int64{10: 0, 11: 1, 3000: 1, 4000: 1, 5001: 6, 6000: 6} {
			if got, ok, err := s.FindTime(ts, 0); err != nil || !ok || got != want {
				t.Fatalf("FindTime(%d) = %d, %v, %v; want %d", ts, got, ok, err, want)
			}
		}
		if _, ok, _ := s.FindTime(6001, 0); ok {
			t.Fatal("FindTime(6001) found a record: the LogAppendTime batch's records are at 3000")
		}
		checkFindTime(t, s, m)
	})
}

func TestRead(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := mustCreate(t, fsys, dir, 0, Config{})
		m := &model{}
		for i := range 6 {
			appendBatches(t, s, m, simpleBatch(t, 0, 3, 100+50*i))
		}
		b := m.batches
		span := func(i, j int) []byte { // batches i..j-1
			return m.bytes()[b[i].pos : b[j-1].pos+b[j-1].size]
		}
		cases := []struct {
			name     string
			pos      int64
			maxBytes int
			want     []byte
		}{
			{"all", 0, 1 << 20, span(0, 6)},
			{"exact", 0, int(s.Size()), span(0, 6)},
			{"one byte", 0, 1, span(0, 1)},
			{"zero", 0, 0, span(0, 1)},
			{"negative", 0, -5, span(0, 1)},
			{"first batch exactly", 0, int(b[0].size), span(0, 1)},
			{"cut in third", 0, int(b[0].size + b[1].size + b[2].size/2), span(0, 2)},
			{"cut one short", 0, int(b[0].size+b[1].size) - 1, span(0, 1)},
			{"from second", b[1].pos, 1 << 20, span(1, 6)},
			{"at end", s.Size(), 1 << 20, nil},
			{"past end", s.Size() + 10, 1 << 20, nil},
		}
		for _, c := range cases {
			got, err := s.Read(c.pos, c.maxBytes)
			if err != nil || !bytes.Equal(got, c.want) || (c.want == nil) != (got == nil) {
				t.Fatalf("%s: Read(%d, %d) = %d bytes, %v; want %d bytes", c.name, c.pos, c.maxBytes, len(got), err, len(c.want))
			}
		}
		// ReadOffset stops at the batch holding upTo: the bound of a fetch
		// (the high watermark).
		bounded := []struct {
			name     string
			offset   int64
			maxBytes int
			upTo     int64
			want     []byte
		}{
			{"bound", b[0].base, 1 << 20, b[3].base, span(0, 3)},
			{"bound and maxBytes", b[1].base, int(b[1].size + 1), b[3].base, span(1, 2)},
			{"bound past the end", b[4].base, 1 << 20, math.MaxInt64, span(4, 6)},
			{"small first batch below the bound", b[2].base, 1, b[3].base, span(2, 3)},
			{"at the bound", b[2].base, 1 << 20, b[2].base, nil},
			{"past the bound", b[3].base, 1 << 20, b[2].base, nil},
			{"bound inside the first batch", b[0].base, 1 << 20, b[0].base + 1, nil},
		}
		for _, c := range bounded {
			got, err := s.ReadOffset(nil, c.offset, c.maxBytes, c.upTo)
			if err != nil || !bytes.Equal(got, c.want) || (c.want == nil) != (got == nil) {
				t.Fatalf("%s: ReadOffset(%d, %d, %d) = %d bytes, %v; want %d bytes", c.name, c.offset, c.maxBytes, c.upTo, len(got), err, len(c.want))
			}
		}
	})
}

// What Read returns never changes, whatever the segment does later.
func TestReadImmutable(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := mustCreate(t, fsys, dir, 0, Config{IndexIntervalBytes: 1})
		m := &model{}
		for range 4 {
			appendBatches(t, s, m, simpleBatch(t, 0, 3, 100))
		}
		whole, err := s.Read(0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		tail, err := s.Read(m.batches[2].pos, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		want, wantTail := bytes.Clone(whole), bytes.Clone(tail)
		if cap(whole) != len(whole) {
			t.Fatalf("Read returned %d bytes with capacity %d: appending to them could reach the file's", len(whole), cap(whole))
		}
		appendBatches(t, s, m, simpleBatch(t, 0, 3, 100))
		if _, err := s.TruncateTo(m.batches[1].base); err != nil {
			t.Fatal(err)
		}
		m.truncate(m.batches[1].base)
		for range 3 {
			appendBatches(t, s, m, simpleBatch(t, 0, 5, 77))
		}
		if !bytes.Equal(whole, want) || !bytes.Equal(tail, wantTail) {
			t.Fatal("bytes returned by Read changed after Append and TruncateTo")
		}
		if err := s.Delete(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(whole, want) || !bytes.Equal(tail, wantTail) {
			t.Fatal("bytes returned by Read changed after Delete")
		}
	})
}

// Read never serves a corrupt batch: a corrupt first batch is an error
// naming the file and position; a corrupt later batch ends the read before
// it.
func TestReadCorrupt(t *testing.T) {
	for _, off := range []int64{17, 21, record.HeaderSize + 3, -1} { // CRC, attributes, records, last byte
		t.Run(fmtInt("byte", int(off+1)), func(t *testing.T) {
			forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
				s := mustCreate(t, fsys, dir, 5, Config{})
				m := &model{base: 5}
				for i := range 4 {
					appendBatches(t, s, m, simpleBatch(t, int64(10*i), 3, 50)) // timestamps increasing
				}
				b := m.batches
				at := func(i int) int64 {
					if off < 0 {
						return b[i].pos + b[i].size - 1
					}
					return b[i].pos + off
				}
				path := logPath(dir, 5)
				// The bytes go bad at rest: the segment is closed and
				// opened again (on the memory FS a segment trusts the
				// bytes it appended itself: TestReadChecksWhatItFoundOnOpen).
				mustClose(t, s)
				flipByte(t, fsys, path, at(0))
				s, _ = mustOpen(t, fsys, dir, 5, Config{}, false)
				_, err := s.Read(0, 1<<20)
				checkCorrupt(t, err, path, 0)

				flipByte(t, fsys, path, at(0)) // repaired
				flipByte(t, fsys, path, at(2))
				got, err := s.Read(0, 1<<20)
				if err != nil || !bytes.Equal(got, m.bytes()[:b[2].pos]) {
					t.Fatalf("Read over a corrupt third batch = %d bytes, %v; want the first two (%d bytes)", len(got), err, b[2].pos)
				}
				_, err = s.Read(b[2].pos, 1<<20)
				checkCorrupt(t, err, path, b[2].pos)
				// FindTime reads records: it must report the corruption too.
				if _, _, err := s.FindTime(b[2].maxTs, 0); !errors.Is(err, record.ErrCorrupt) {
					t.Fatalf("FindTime in a corrupt batch: %v", err)
				}
			})
		})
	}
}

// TestReadChecksWhatItFoundOnOpen: bytes a segment found when it opened
// the file are CRC-checked when read, also after a truncation, on every
// file system (on the memory FS a segment serves what it appended itself
// without a second check; what it found, it checks).
func TestReadChecksWhatItFoundOnOpen(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := mustCreate(t, fsys, dir, 0, Config{})
		m := &model{}
		for i := range 3 {
			appendBatches(t, s, m, simpleBatch(t, int64(10*i), 3, 50))
		}
		mustClose(t, s)
		path := logPath(dir, 0)
		flipByte(t, fsys, path, m.batches[0].pos+m.batches[0].size-1)
		s, _ = mustOpen(t, fsys, dir, 0, Config{}, true)
		if _, err := s.TruncateTo(3); err != nil { // keeps the bad first batch
			t.Fatal(err)
		}
		_, err := s.Read(0, 1<<20)
		checkCorrupt(t, err, path, 0)
	})
}

func checkCorrupt(t testing.TB, err error, path string, pos int64) {
	t.Helper()
	var ce *record.CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, record.ErrCorrupt) {
		t.Fatalf("error %v, want a *record.CorruptError", err)
	}
	if ce.Path != path || ce.Position != pos {
		t.Fatalf("CorruptError at %s position %d, want %s position %d (%v)", ce.Path, ce.Position, path, pos, err)
	}
}

// A position that is not a batch boundary gives no bytes (an error).
func TestReadBadPosition(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := mustCreate(t, fsys, dir, 0, Config{})
		m := &model{}
		for range 3 {
			appendBatches(t, s, m, simpleBatch(t, 0, 3, 50))
		}
		if b, err := s.Read(3, 1<<20); err == nil {
			t.Fatalf("Read at position 3 returned %d bytes and no error", len(b))
		}
	})
}

// writerOnly hides bytes.Buffer's ReadFrom, so that WriteTo is seen through
// plain Writes too.
type writerOnly struct{ io.Writer }

func TestWriteTo(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := mustCreate(t, fsys, dir, 0, Config{})
		m := &model{}
		for range 5 {
			appendBatches(t, s, m, simpleBatch(t, 0, 4, 300))
		}
		all := readFile(t, fsys, logPath(dir, 0))
		size := s.Size()
		for _, r := range [][2]int64{{0, size}, {0, 0}, {size, 0}, {10, 100}, {m.batches[2].pos, size - m.batches[2].pos}, {size - 1, 1}} {
			for _, plain := range []bool{false, true} {
				var buf bytes.Buffer
				var w io.Writer = &buf
				if plain {
					w = writerOnly{&buf}
				}
				n, err := s.WriteTo(w, r[0], r[1])
				if err != nil || n != r[1] || !bytes.Equal(buf.Bytes(), all[r[0]:r[0]+r[1]]) {
					t.Fatalf("WriteTo(%d, %d) = %d, %v; bytes equal: %v", r[0], r[1], n, err, bytes.Equal(buf.Bytes(), all[r[0]:r[0]+r[1]]))
				}
			}
		}
		for _, r := range [][2]int64{{-1, 10}, {0, -1}, {0, size + 1}, {size, 1}, {size + 1, 0}, {1, math.MaxInt64}, {math.MaxInt64, 1}, {math.MaxInt64, math.MaxInt64}} {
			var buf bytes.Buffer
			if n, err := s.WriteTo(&buf, r[0], r[1]); err != io.ErrUnexpectedEOF || n != 0 || buf.Len() != 0 {
				t.Fatalf("WriteTo(%d, %d) = %d, %v with %d bytes written; want io.ErrUnexpectedEOF", r[0], r[1], n, err, buf.Len())
			}
		}
	})
}

// errWriter fails after n bytes.
type errWriter struct{ n int }

var errWrite = errors.New("test: write failed")

func (w *errWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		m := w.n
		w.n = 0
		return m, errWrite
	}
	w.n -= len(p)
	return len(p), nil
}

func TestWriteToError(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := mustCreate(t, fsys, dir, 0, Config{})
		appendBatches(t, s, &model{}, simpleBatch(t, 0, 4, 300))
		n, err := s.WriteTo(&errWriter{n: 10}, 0, s.Size())
		if !errors.Is(err, errWrite) || n != 10 {
			t.Fatalf("WriteTo into a failing writer = %d, %v", n, err)
		}
	})
}

func TestSealUnseal(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		rng := rand.New(rand.NewPCG(4, 4))
		s := mustCreate(t, fsys, dir, 0, Config{IndexIntervalBytes: 100})
		m := &model{}
		fill(t, s, m, rng, 16)
		for _, sync := range []bool{true, false} {
			if err := s.Seal(sync); err != nil {
				t.Fatal(err)
			}
			if err := s.Seal(sync); err != nil {
				t.Fatalf("second Seal: %v", err)
			}
			checkSealed(t, fsys, dir, s, m)
			if err := s.Append(randBatch(t, rng, s.NextOffset())); !errors.Is(err, index.ErrSealed) {
				t.Fatalf("Append to a sealed segment: %v", err)
			}
			if err := s.Unseal(); err != nil {
				t.Fatal(err)
			}
			if err := s.Unseal(); err != nil {
				t.Fatalf("second Unseal: %v", err)
			}
			fill(t, s, m, rng, 8)
			checkState(t, s, m)
			checkFindTime(t, s, m)
		}
	})
}

// checkSealed checks a sealed segment: indexes trimmed to their entries, the
// time index ending at the max timestamp unless it is full, and the state.
func checkSealed(t testing.TB, fsys vfs.FS, dir string, s *Segment, m *model) {
	t.Helper()
	if got, want := fileSize(t, fsys, filepath.Join(dir, FileName(s.Base(), IndexSuffix))), int64(s.oidx.Entries()*index.OffsetEntrySize); got != want {
		t.Fatalf(".index is %d bytes, want %d", got, want)
	}
	if got, want := fileSize(t, fsys, filepath.Join(dir, FileName(s.Base(), TimeIndexSuffix))), int64(s.tidx.Entries()*index.TimeEntrySize); got != want {
		t.Fatalf(".timeindex is %d bytes, want %d", got, want)
	}
	if !s.IndexFull() {
		t.Fatal("a sealed segment's indexes are not full")
	}
	if m.maxTs() >= 0 && s.tidx.Entries() < s.cfg.MaxIndexBytes/index.TimeEntrySize {
		if ts, _, ok := s.tidx.Last(); !ok || ts != m.maxTs() {
			t.Fatalf("last time index entry %d, %v; want the max timestamp %d", ts, ok, m.maxTs())
		}
	}
	checkState(t, s, m)
}

func TestCloseDelete(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := mustCreate(t, fsys, dir, 3, Config{})
		m := &model{base: 3}
		appendBatches(t, s, m, simpleBatch(t, 0, 4, 30))
		mustClose(t, s)
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if !s.Closed() {
			t.Fatal("Closed is false after Close")
		}
		b := simpleBatch(t, s.NextOffset(), 1, 1)
		checks := map[string]error{"Append": s.Append(b), "Sync": s.Sync()}
		_, checks["Find"] = s.Find(3)
		_, checks["PositionOf"] = s.PositionOf(3)
		_, _, checks["FindTime"] = s.FindTime(0, 0)
		_, checks["Read"] = s.Read(0, 100)
		_, checks["WriteTo"] = s.WriteTo(io.Discard, 0, 1)
		_, checks["TruncateTo"] = s.TruncateTo(3)
		_, checks["Recover"] = s.Recover(0)
		for op, err := range checks {
			if !errors.Is(err, ErrClosed) {
				t.Errorf("%s after Close: %v, want ErrClosed", op, err)
			}
		}
		// The getters still answer.
		if s.NextOffset() != m.next() || s.Size() != m.size() {
			t.Fatalf("after Close: next %d, size %d", s.NextOffset(), s.Size())
		}
		if err := s.Delete(); err != nil {
			t.Fatalf("Delete after Close: %v", err)
		}
		checkGone(t, fsys, dir, 3)

		s = mustCreate(t, fsys, dir, 9, Config{})
		appendBatches(t, s, &model{base: 9}, simpleBatch(t, 0, 4, 30))
		if err := s.Delete(); err != nil {
			t.Fatal(err)
		}
		checkGone(t, fsys, dir, 9)
		if err := s.Delete(); err != nil {
			t.Fatalf("second Delete: %v", err)
		}
		if names, err := fsys.List(dir); err != nil || len(names) != 0 {
			t.Fatalf("directory holds %v, %v", names, err)
		}
	})
}

func checkGone(t testing.TB, fsys vfs.FS, dir string, base int64) {
	t.Helper()
	for _, suf := range []string{LogSuffix, IndexSuffix, TimeIndexSuffix} {
		if _, err := fsys.Stat(filepath.Join(dir, FileName(base, suf))); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s after Delete: %v", FileName(base, suf), err)
		}
	}
}

// A segment closed cleanly reopens without a scan of its batches.
func TestOpenClean(t *testing.T) {
	for _, sealed := range []bool{false, true} {
		for _, active := range []bool{false, true} {
			name := map[bool]string{false: "closed", true: "sealed"}[sealed] + "/" + map[bool]string{false: "reopen-sealed", true: "reopen-active"}[active]
			t.Run(name, func(t *testing.T) {
				forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
					rng := rand.New(rand.NewPCG(5, 5))
					cfg := Config{IndexIntervalBytes: 250}
					s := mustCreate(t, fsys, dir, 50, cfg)
					m := &model{base: 50}
					fill(t, s, m, rng, 20)
					if sealed {
						if err := s.Seal(true); err != nil {
							t.Fatal(err)
						}
					}
					entries, tentries := offsetEntries(s), len(timeEntries(s))
					mustClose(t, s)

					s, needs := mustOpen(t, fsys, dir, 50, cfg, active)
					if needs {
						t.Fatal("a cleanly closed segment needs recovery")
					}
					checkState(t, s, m)
					checkFindTime(t, s, m)
					if !equalEntries(offsetEntries(s), entries) || s.tidx.Entries() < tentries {
						t.Fatalf("indexes changed across close and open")
					}
					if active {
						fill(t, s, m, rng, 8)
						checkState(t, s, m)
						checkFindTime(t, s, m)
					} else if err := s.Append(randBatch(t, rng, s.NextOffset())); !errors.Is(err, index.ErrSealed) {
						t.Fatalf("Append to a segment opened sealed: %v", err)
					}
					mustClose(t, s)
					s, needs = mustOpen(t, fsys, dir, 50, cfg, active)
					if needs {
						t.Fatal("needs recovery on the second open")
					}
					checkState(t, s, m)
				})
			})
		}
	}
}

func TestOpenEmpty(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		mustClose(t, mustCreate(t, fsys, dir, 8, Config{}))
		s, needs := mustOpen(t, fsys, dir, 8, Config{}, true)
		if needs {
			t.Fatal("an empty segment needs recovery")
		}
		m := &model{base: 8}
		checkState(t, s, m)
		appendBatches(t, s, m, simpleBatch(t, 0, 2, 2))
		checkState(t, s, m)
	})
}

func TestOpenMissingLog(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		if _, _, err := Open(fsys, dir, 0, Config{}, OpenOptions{}); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Open without a .log: %v", err)
		}
	})
}

// A missing or corrupt index makes Open ask for recovery, which rebuilds it.
func TestOpenBadIndex(t *testing.T) {
	skipUnderRace(t)
	cases := []struct {
		name string
		fn   func(t *testing.T, fsys vfs.FS, dir string, s *Segment)
	}{
		{"missing index", func(t *testing.T, fsys vfs.FS, dir string, s *Segment) {
			if err := fsys.Remove(filepath.Join(dir, FileName(s.Base(), IndexSuffix))); err != nil {
				t.Fatal(err)
			}
		}},
		{"missing timeindex", func(t *testing.T, fsys vfs.FS, dir string, s *Segment) {
			if err := fsys.Remove(filepath.Join(dir, FileName(s.Base(), TimeIndexSuffix))); err != nil {
				t.Fatal(err)
			}
		}},
		{"index size", func(t *testing.T, fsys vfs.FS, dir string, s *Segment) {
			appendToFile(t, fsys, filepath.Join(dir, FileName(s.Base(), IndexSuffix)), []byte{1, 2, 3})
		}},
		{"timeindex size", func(t *testing.T, fsys vfs.FS, dir string, s *Segment) {
			appendToFile(t, fsys, filepath.Join(dir, FileName(s.Base(), TimeIndexSuffix)), []byte{1, 2, 3, 4, 5, 6, 7, 8})
		}},
		{"index entry past the log", func(t *testing.T, fsys vfs.FS, dir string, s *Segment) {
			appendToFile(t, fsys, filepath.Join(dir, FileName(s.Base(), IndexSuffix)), entry8(int32(s.NextOffset()-s.Base()+5), int32(s.Size()+100)))
		}},
		{"index entry past the last offset", func(t *testing.T, fsys vfs.FS, dir string, s *Segment) {
			appendToFile(t, fsys, filepath.Join(dir, FileName(s.Base(), IndexSuffix)), entry8(int32(s.NextOffset()-s.Base()+5), int32(s.Size()-1)))
		}},
		{"timeindex entry past the last offset", func(t *testing.T, fsys vfs.FS, dir string, s *Segment) {
			appendToFile(t, fsys, filepath.Join(dir, FileName(s.Base(), TimeIndexSuffix)), entry12(tsBase+1_000_000, int32(s.NextOffset()-s.Base())))
		}},
		{"index entry inside a batch", func(t *testing.T, fsys vfs.FS, dir string, s *Segment) {
			// The last entry, moved off its batch's start.
			name := filepath.Join(dir, FileName(s.Base(), IndexSuffix))
			editFile(t, fsys, name, func(f vfs.File) {
				n, _ := f.Size()
				b := make([]byte, 8)
				f.ReadAt(b, n-8)
				b[7] += 5
				f.WriteAt(b, n-8)
			})
		}},
		{"log torn", func(t *testing.T, fsys vfs.FS, dir string, s *Segment) {
			appendToFile(t, fsys, logPath(dir, s.Base()), make([]byte, 30))
		}},
		{"log grown", func(t *testing.T, fsys vfs.FS, dir string, s *Segment) {
			appendToFile(t, fsys, logPath(dir, s.Base()), make([]byte, 300))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
				for _, active := range []bool{true, false} {
					dir := filepath.Join(dir, map[bool]string{true: "active", false: "sealed"}[active])
					if err := fsys.MkdirAll(dir, 0o755); err != nil {
						t.Fatal(err)
					}
					rng := rand.New(rand.NewPCG(6, 6))
					cfg := Config{IndexIntervalBytes: 200}
					s := mustCreate(t, fsys, dir, 10, cfg)
					m := &model{base: 10}
					fill(t, s, m, rng, 16)
					if s.oidx.Entries() < 2 {
						t.Fatalf("only %d index entries", s.oidx.Entries())
					}
					mustClose(t, s)
					c.fn(t, fsys, dir, s)
					s, needs := mustOpen(t, fsys, dir, 10, cfg, active)
					if !needs {
						t.Fatalf("Open (active %v) does not ask for recovery", active)
					}
					res, err := s.Recover(0)
					if err != nil {
						t.Fatal(err)
					}
					if res.Batches != len(m.batches) {
						t.Fatalf("Recover: %v, want %d batches", res, len(m.batches))
					}
					if got, want := offsetEntries(s), expectedOffsetEntries(m, cfg.IndexIntervalBytes); !equalEntries(got, want) {
						t.Fatalf("rebuilt offset index %v, want %v", got, want)
					}
					if active {
						checkState(t, s, m)
					} else {
						checkSealed(t, fsys, dir, s, m) // and the state
					}
					checkFindTime(t, s, m)
					mustClose(t, s)
					s, needs = mustOpen(t, fsys, dir, 10, cfg, true)
					if needs {
						t.Fatal("needs recovery after Recover and Close")
					}
					checkState(t, s, m)
				}
			})
		})
	}
}

// Open checks the indexes cheaply, as Kafka does: entries out of order
// before the last one go unnoticed. Each entry is still true, so lookups
// stay right, if slower.
func TestOpenUnsortedIndexNotChecked(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		cfg := Config{IndexIntervalBytes: 1}
		s := mustCreate(t, fsys, dir, 0, cfg)
		m := &model{}
		for range 10 {
			appendBatches(t, s, m, simpleBatch(t, 0, 2, 30))
		}
		mustClose(t, s)
		name := filepath.Join(dir, FileName(0, IndexSuffix))
		editFile(t, fsys, name, func(f vfs.File) { // swap entries 2 and 5
			b := readAll(t, f)
			e2 := bytes.Clone(b[16:24])
			copy(b[16:24], b[40:48])
			copy(b[40:48], e2)
			f.WriteAt(b, 0)
		})
		s, needs := mustOpen(t, fsys, dir, 0, cfg, true)
		if err := s.oidx.Check(s.Size()); !errors.Is(err, index.ErrCorrupt) {
			t.Fatalf("index Check: %v", err)
		}
		if needs { // should Open come to check every entry
			if _, err := s.Recover(0); err != nil {
				t.Fatal(err)
			}
		}
		checkFindOnly(t, s, m)
	})
}

func checkFindOnly(t testing.TB, s *Segment, m *model) {
	t.Helper()
	for off := m.base; off < m.next(); off++ {
		want, _ := m.find(off)
		if got, err := s.Find(off); err != nil || got != want {
			t.Fatalf("Find(%d) = %d, %v; want %d", off, got, err, want)
		}
	}
}

// readAll returns the contents of f.
func readAll(t testing.TB, f vfs.File) []byte {
	t.Helper()
	n, err := f.Size()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return b
}

func entry8(rel, pos int32) []byte {
	return []byte{byte(rel >> 24), byte(rel >> 16), byte(rel >> 8), byte(rel), byte(pos >> 24), byte(pos >> 16), byte(pos >> 8), byte(pos)}
}

func entry12(ts int64, rel int32) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint64(b, uint64(ts))
	binary.BigEndian.PutUint32(b[8:], uint32(rel))
	return b
}

func appendToFile(t testing.TB, fsys vfs.FS, name string, data []byte) {
	t.Helper()
	editFile(t, fsys, name, func(f vfs.File) {
		if _, err := f.Write(data); err != nil {
			t.Fatal(err)
		}
	})
}

func truncateFile(t testing.TB, fsys vfs.FS, name string, size int64) {
	t.Helper()
	editFile(t, fsys, name, func(f vfs.File) {
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
	})
}

func TestTruncateTo(t *testing.T) {
	skipUnderRace(t)
	type step struct {
		name   string
		target func(m *model) int64
	}
	targets := []step{
		{"batch boundary", func(m *model) int64 { return m.batches[len(m.batches)/2].base }},
		{"mid batch", func(m *model) int64 { b := m.batches[len(m.batches)/3]; return b.base + 1 }},
		{"last batch's last offset", func(m *model) int64 { return m.next() - 1 }},
		{"first offset", func(m *model) int64 { return m.base }},
		{"below base", func(m *model) int64 { return m.base - 5 }},
		{"at next", func(m *model) int64 { return m.next() }},
		{"past next", func(m *model) int64 { return m.next() + 100 }},
	}
	for _, sealed := range []bool{false, true} {
		for _, tg := range targets {
			name := tg.name
			if sealed {
				name += "/sealed"
			}
			t.Run(name, func(t *testing.T) {
				forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
					rng := rand.New(rand.NewPCG(7, 7))
					cfg := Config{IndexIntervalBytes: 300}
					s := mustCreate(t, fsys, dir, 20, cfg)
					m := &model{base: 20}
					for range 16 {
						// Batches of at least 2 records, for mid-batch targets.
						b := randBatch(t, rng, 0)
						if b.LastOffsetDelta() == 0 {
							b = simpleBatch(t, 0, 3, 20)
						}
						appendBatches(t, s, m, b)
					}
					// Index entries on both sides of every target inside.
					if s.oidx.Entries() < 8 {
						t.Fatalf("test bug: %d index entries", s.oidx.Entries())
					}
					if sealed {
						if err := s.Seal(false); err != nil {
							t.Fatal(err)
						}
					}
					target := tg.target(m)
					wantNext := m.next()
					if target < m.next() {
						m.truncate(target)
						wantNext = m.next()
					}
					next, err := s.TruncateTo(target)
					if err != nil || next != wantNext {
						t.Fatalf("TruncateTo(%d) = %d, %v; want %d", target, next, err, wantNext)
					}
					if target > m.base && target < wantNext {
						t.Fatalf("test bug: target %d below next %d", target, wantNext)
					}
					checkState(t, s, m)
					checkFindTime(t, s, m)
					if got := fileSize(t, fsys, logPath(dir, 20)); got != m.size() {
						t.Fatalf(".log is %d bytes, want %d", got, m.size())
					}
					// The index entries of the batches kept, and appends
					// index on as if the cut batches had never been.
					if got, want := offsetEntries(s), expectedOffsetEntries(m, cfg.IndexIntervalBytes); !equalEntries(got, want) {
						t.Fatalf("offset index after TruncateTo %v, want %v", got, want)
					}
					if sealed {
						if err := s.Unseal(); err != nil {
							t.Fatal(err)
						}
					}
					fill(t, s, m, rng, 6)
					checkState(t, s, m)
					checkFindTime(t, s, m)
					if got, want := offsetEntries(s), expectedOffsetEntries(m, cfg.IndexIntervalBytes); !equalEntries(got, want) {
						t.Fatalf("offset index after TruncateTo and appends %v, want %v", got, want)
					}
					mustClose(t, s)
					s, needs := mustOpen(t, fsys, dir, 20, cfg, true)
					if needs {
						t.Fatal("needs recovery after TruncateTo and Close")
					}
					checkState(t, s, m)
					checkFindTime(t, s, m)
				})
			})
		}
	}
}

// Truncation then reopening without more appends.
func TestTruncateToReopen(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		rng := rand.New(rand.NewPCG(8, 8))
		cfg := Config{IndexIntervalBytes: 1}
		s := mustCreate(t, fsys, dir, 0, cfg)
		m := &model{}
		fill(t, s, m, rng, 30)
		for len(m.batches) > 0 {
			target := m.batches[len(m.batches)*2/3].base + int64(rng.IntN(2))
			m.truncate(target)
			if next, err := s.TruncateTo(target); err != nil || next != m.next() {
				t.Fatalf("TruncateTo(%d) = %d, %v; want %d", target, next, err, m.next())
			}
			mustClose(t, s)
			var needs bool
			s, needs = mustOpen(t, fsys, dir, 0, cfg, true)
			if needs {
				t.Fatal("needs recovery after TruncateTo and Close")
			}
			checkState(t, s, m)
			checkFindTime(t, s, m)
			if len(m.batches) == 1 {
				m.truncate(0)
				if _, err := s.TruncateTo(0); err != nil {
					t.Fatal(err)
				}
			}
		}
		checkState(t, s, m)
	})
}

func TestFileName(t *testing.T) {
	for _, base := range []int64{0, 1, 42, 1 << 40, math.MaxInt64} {
		for _, suf := range []string{LogSuffix, IndexSuffix, TimeIndexSuffix, ".log.cleaned", ".log.swap", ".x"} {
			name := FileName(base, suf)
			if len(name) != 20+len(suf) {
				t.Fatalf("FileName(%d, %q) = %q", base, suf, name)
			}
			b, s, ok := ParseFileName(name)
			if !ok || b != base || s != suf {
				t.Fatalf("ParseFileName(%q) = %d, %q, %v", name, b, s, ok)
			}
			if !HasSuffix(name, suf) {
				t.Fatalf("HasSuffix(%q, %q) is false", name, suf)
			}
		}
	}
	// In the suffix's case only, as the log classifies the names in its
	// directory (HasSuffix once took any case).
	if HasSuffix("00000000000000000000.LOG", LogSuffix) || HasSuffix("00000000000000000000.Log", LogSuffix) {
		t.Fatal("HasSuffix takes .LOG for .log")
	}
	if FileName(4242, LogSuffix) != "00000000000000004242.log" {
		t.Fatalf("FileName(4242) = %q", FileName(4242, LogSuffix))
	}
	for _, name := range []string{
		"",
		".log",
		"0000000000000004242.log",   // 19 digits
		"000000000000000004242.log", // 21 digits
		"00000000000000004242log",
		"00000000000000004242",
		"0000000000000000424a.log",
		"99999999999999999999.log", // overflows
		"-0000000000000004242.log",
		"+0000000000000004242.log",
		"-0000000000000000000.log",
		" 0000000000000004242.log",
		"0x000000000000004242.log",
		"leader-epoch-checkpoint",
	} {
		if b, s, ok := ParseFileName(name); ok {
			t.Errorf("ParseFileName(%q) = %d, %q, true", name, b, s)
		}
	}
	if HasSuffix("00000000000000004242.index", LogSuffix) || HasSuffix("x.log", LogSuffix) {
		t.Fatal("HasSuffix matches another suffix or a bad name")
	}
}

func TestCreateTempRename(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		rng := rand.New(rand.NewPCG(9, 9))
		cfg := Config{IndexIntervalBytes: 100}
		s, err := CreateTemp(fsys, dir, 77, cfg, ".cleaned")
		if err != nil {
			t.Fatal(err)
		}
		m := &model{base: 77}
		fill(t, s, m, rng, 30)
		checkState(t, s, m)
		if err := s.Seal(true); err != nil {
			t.Fatal(err)
		}
		mustClose(t, s)
		names, err := fsys.List(dir)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{FileName(77, ".index.cleaned"), FileName(77, ".log.cleaned"), FileName(77, ".timeindex.cleaned")}
		if len(names) != 3 || names[0] != want[0] || names[1] != want[1] || names[2] != want[2] {
			t.Fatalf("files %v, want %v", names, want)
		}
		if _, _, err := Open(fsys, dir, 77, cfg, OpenOptions{}); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Open before the rename: %v", err)
		}
		if err := RenameFiles(fsys, dir, 77, ".cleaned", ""); err != nil {
			t.Fatal(err)
		}
		s, needs := mustOpen(t, fsys, dir, 77, cfg, false)
		if needs {
			t.Fatal("renamed segment needs recovery")
		}
		checkState(t, s, m)
		checkFindTime(t, s, m)
		mustClose(t, s)

		// Missing indexes are skipped; a missing .log is an error.
		if err := RenameFiles(fsys, dir, 77, "", ".swap"); err != nil {
			t.Fatal(err)
		}
		if err := fsys.Remove(filepath.Join(dir, FileName(77, IndexSuffix+".swap"))); err != nil {
			t.Fatal(err)
		}
		if err := RenameFiles(fsys, dir, 77, ".swap", ""); err != nil {
			t.Fatalf("RenameFiles without an .index: %v", err)
		}
		if err := RenameFiles(fsys, dir, 77, ".swap", ""); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("RenameFiles without a .log: %v", err)
		}
		s, needs = mustOpen(t, fsys, dir, 77, cfg, false)
		if !needs {
			t.Fatal("no recovery asked for without an .index")
		}
		if _, err := s.Recover(0); err != nil {
			t.Fatal(err)
		}
		checkState(t, s, m)

		// Delete of a temporary segment removes its own files.
		tmp, err := CreateTemp(fsys, dir, 500, cfg, ".cleaned")
		if err != nil {
			t.Fatal(err)
		}
		if err := tmp.Delete(); err != nil {
			t.Fatal(err)
		}
		if err := RemoveFiles(fsys, dir, 77, LogSuffix, IndexSuffix, TimeIndexSuffix, ".nothing"); err != nil {
			t.Fatal(err)
		}
		mustClose(t, s)
		if names, err := fsys.List(dir); err != nil || len(names) != 0 {
			t.Fatalf("directory holds %v, %v", names, err)
		}
	})
}

// opsOf counts the operations of kind op that fn makes on fsys.
func opsOf(fsys vfs.FS, op vfs.Op, fn func(fsys vfs.FS)) int {
	c := vfs.Count(op)
	fn(vfs.WithFaults(fsys, c))
	return c.N()
}

func TestFaults(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		for _, sub := range []string{"count", "write", "sync", "read"} {
			if err := fsys.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		// Creating a segment writes on the OS (a writable index mapping),
		// not in memory; count, and fail the first write after.
		n := opsOf(fsys, vfs.OpWrite, func(fsys vfs.FS) {
			s, err := Create(fsys, filepath.Join(dir, "count"), 0, Config{})
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
		})
		if _, ok := fsys.(*vfs.MemFS); ok && n != 0 {
			t.Fatalf("Create on MemFS made %d writes", n)
		}

		ffs := vfs.WithFaults(fsys, vfs.FailNth(n+1, vfs.OpWrite))
		s, err := Create(ffs, filepath.Join(dir, "write"), 0, Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Append(simpleBatch(t, 0, 2, 10)); !errors.Is(err, vfs.ErrInjected) {
			t.Fatalf("Append with a failing write: %v", err)
		}

		ffs = vfs.WithFaults(fsys, vfs.FailNth(1, vfs.OpSync))
		s2, err := Create(ffs, filepath.Join(dir, "sync"), 0, Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		if err := s2.Sync(); !errors.Is(err, vfs.ErrInjected) {
			t.Fatalf("Sync with a failing sync: %v", err)
		}

		c := vfs.FailNth(0, vfs.OpRead)
		ffs = vfs.WithFaults(fsys, vfs.InjectorFunc(func(op vfs.Op, name string) error {
			return c.MaybeError(op, name)
		}))
		s3, err := Create(ffs, filepath.Join(dir, "read"), 0, Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer s3.Close()
		m := &model{}
		appendBatches(t, s3, m, simpleBatch(t, 0, 2, 10))
		c = vfs.FailNth(1, vfs.OpRead)
		if _, err := s3.Read(0, 100); !errors.Is(err, vfs.ErrInjected) {
			t.Fatalf("Read with a failing read: %v", err)
		}
		if errors.Is(err, record.ErrCorrupt) {
			t.Fatal("an I/O error reported as corruption")
		}
		c = vfs.FailNth(1, vfs.OpRead)
		if _, err := s3.Recover(0); !errors.Is(err, vfs.ErrInjected) || errors.Is(err, record.ErrCorrupt) {
			t.Fatalf("Recover with a failing read: %v", err)
		}
	})
}

// Helpers.

// forEachFS runs fn on a fresh in-memory FS and on the OS's, each with an
// empty directory.
func forEachFS(t *testing.T, fn func(t *testing.T, fsys vfs.FS, dir string)) {
	t.Helper()
	t.Run("mem", func(t *testing.T) {
		fsys := vfs.NewMem()
		const dir = "/data/topic-0"
		if err := fsys.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		fn(t, fsys, dir)
	})
	t.Run("os", func(t *testing.T) { fn(t, vfs.OS, t.TempDir()) })
}

// tsBase is the timestamp around which the tests' records are made.
const tsBase = int64(1_700_000_000_000)

// mkBatch builds a batch at base whose records have the timestamps ts and
// values of valSize bytes. With lat >= 0 it is a LogAppendTime batch
// stamped lat. The batch is a fresh copy.
func mkBatch(t testing.TB, base int64, ts []int64, valSize int, lat int64) record.Batch {
	t.Helper()
	var b record.Builder
	b.Reset()
	for i, x := range ts {
		b.Append(x, fmt.Appendf(nil, "k%d", i), bytes.Repeat([]byte{byte('a' + i%26)}, valSize), nil)
	}
	batch, err := b.Finish(compression.None)
	if err != nil {
		t.Fatal(err)
	}
	out := append(record.Batch(nil), batch...)
	out.SetBaseOffset(base)
	if lat >= 0 {
		out.SetLogAppendTime(lat)
	}
	return out
}

// simpleBatch is a batch of n records with timestamps tsBase+base+i.
func simpleBatch(t testing.TB, base int64, n, valSize int) record.Batch {
	t.Helper()
	ts := make([]int64, n)
	for i := range ts {
		ts[i] = tsBase + base + int64(i)
	}
	return mkBatch(t, base, ts, valSize, -1)
}

// randBatch is a batch of 1 to 8 records with random, non-monotonic
// timestamps and values of random size; one in five is LogAppendTime.
func randBatch(t testing.TB, rng *rand.Rand, base int64) record.Batch {
	t.Helper()
	ts := make([]int64, 1+rng.IntN(8))
	for i := range ts {
		ts[i] = tsBase + rng.Int64N(10_000)
	}
	lat := int64(-1)
	if rng.IntN(5) == 0 {
		lat = tsBase + rng.Int64N(10_000)
	}
	return mkBatch(t, base, ts, rng.IntN(300), lat)
}

type recInfo struct{ off, ts int64 }

// batchInfo is what the tests know of a batch they appended.
type batchInfo struct {
	base, last int64
	pos, size  int64
	maxTs      int64
	recs       []recInfo // offsets and the timestamps readers see
	data       []byte
}

// model is what a segment should hold: the batches appended, in order.
type model struct {
	base    int64
	batches []batchInfo
}

func (m *model) next() int64 {
	if len(m.batches) == 0 {
		return m.base
	}
	return m.batches[len(m.batches)-1].last + 1
}

func (m *model) size() int64 {
	if len(m.batches) == 0 {
		return 0
	}
	b := m.batches[len(m.batches)-1]
	return b.pos + b.size
}

func (m *model) maxTs() int64 {
	ts := int64(-1)
	for _, b := range m.batches {
		ts = max(ts, b.maxTs)
	}
	return ts
}

func (m *model) firstTs() int64 {
	if len(m.batches) == 0 {
		return -1
	}
	return m.batches[0].maxTs
}

// add records batch b, which starts at position pos.
func (m *model) add(t testing.TB, b record.Batch, pos int64) {
	t.Helper()
	bi := batchInfo{base: b.BaseOffset(), last: b.LastOffset(), pos: pos, size: int64(len(b)),
		maxTs: b.MaxTimestamp(), data: append([]byte(nil), b...)}
	for r, err := range b.Records() {
		if err != nil {
			t.Fatal(err)
		}
		bi.recs = append(bi.recs, recInfo{r.Offset, r.Timestamp.UnixMilli()})
	}
	m.batches = append(m.batches, bi)
}

// find is the position of the first batch holding offset or a later one.
func (m *model) find(offset int64) (int64, bool) {
	for _, b := range m.batches {
		if b.last >= offset {
			return b.pos, true
		}
	}
	return 0, false
}

// maxTsBelow is MaxTimestampBelow(end) read from the batches: the largest
// max timestamp of those below end, and of the records below end of the
// one holding it; at least -1, or math.MinInt64 when none lies below end.
func (m *model) maxTsBelow(end int64) int64 {
	ts, found := int64(-1), false
	for _, b := range m.batches {
		switch {
		case b.base >= end:
		case b.last < end:
			ts, found = max(ts, b.maxTs), true
		default:
			found = true
			for _, r := range b.recs {
				if r.off < end {
					ts = max(ts, r.ts)
				}
			}
		}
	}
	if !found {
		return math.MinInt64
	}
	return ts
}

// findTime is the offset of the first record with a timestamp at least ts.
func (m *model) findTime(ts, from int64) (int64, bool) {
	for _, b := range m.batches {
		for _, r := range b.recs {
			if r.off >= from && r.ts >= ts {
				return r.off, true
			}
		}
	}
	return 0, false
}

// truncate drops the batches from the one holding offset (or the first
// after it).
func (m *model) truncate(offset int64) {
	for i, b := range m.batches {
		if b.last >= offset {
			m.batches = m.batches[:i]
			return
		}
	}
}

func (m *model) bytes() []byte {
	var out []byte
	for _, b := range m.batches {
		out = append(out, b.data...)
	}
	return out
}

// appendBatches assigns the batches offsets from the segment's next offset,
// appends them with one Append and records them in m.
func appendBatches(t testing.TB, s *Segment, m *model, batches ...record.Batch) {
	t.Helper()
	next, pos := s.NextOffset(), s.Size()
	if next != m.next() || pos != m.size() {
		t.Fatalf("segment at offset %d, size %d; model at %d, %d", next, pos, m.next(), m.size())
	}
	var data []byte
	for _, b := range batches {
		b.SetBaseOffset(next)
		m.add(t, b, pos+int64(len(data)))
		data = append(data, b...)
		next = b.NextOffset()
	}
	if err := s.Append(data); err != nil {
		t.Fatalf("Append: %v", err)
	}
}

// fill appends n random batches, one Append each.
func fill(t testing.TB, s *Segment, m *model, rng *rand.Rand, n int) {
	t.Helper()
	for range n {
		appendBatches(t, s, m, randBatch(t, rng, 0))
	}
}

// expectedOffsetEntries is the offset index a segment built by appending
// m's batches from empty holds: an entry (last offset, position) for a batch
// once more than interval bytes were appended since the previous entry.
func expectedOffsetEntries(m *model, interval int) []index.OffsetEntry {
	var out []index.OffsetEntry
	since := 0
	for _, b := range m.batches {
		if since > interval {
			out = append(out, index.OffsetEntry{Offset: b.last, Position: b.pos})
			since = 0
		}
		since += int(b.size)
	}
	return out
}

func offsetEntries(s *Segment) []index.OffsetEntry {
	out := make([]index.OffsetEntry, s.oidx.Entries())
	for i := range out {
		out[i].Offset, out[i].Position = s.oidx.Entry(i)
	}
	return out
}

func timeEntries(s *Segment) []index.TimeEntry {
	out := make([]index.TimeEntry, s.tidx.Entries())
	for i := range out {
		out[i].Timestamp, out[i].Offset = s.tidx.Entry(i)
	}
	return out
}

// checkTimeIndex checks the time index's invariants against m: timestamps
// strictly increasing, offsets non-decreasing and each entry (T, o) true:
// T is the largest timestamp of the batches up to the one holding o.
func checkTimeIndex(t testing.TB, s *Segment, m *model) {
	t.Helper()
	if err := s.tidx.Check(s.NextOffset()); err != nil {
		t.Fatal(err)
	}
	for _, e := range timeEntries(s) {
		maxTs := int64(-1)
		found := false
		for _, b := range m.batches {
			if b.base > e.Offset {
				break
			}
			maxTs = max(maxTs, b.maxTs)
			found = e.Offset <= b.last
		}
		if !found || maxTs != e.Timestamp {
			t.Fatalf("time index entry %+v: largest timestamp up to it is %d (offset in a batch: %v)", e, maxTs, found)
		}
	}
}

// checkState checks every getter, Find and PositionOf for every offset
// around the segment, the index invariants, and the bytes of the segment
// against m.
func checkState(t testing.TB, s *Segment, m *model) {
	t.Helper()
	if got, want := s.NextOffset(), m.next(); got != want {
		t.Fatalf("NextOffset = %d, want %d", got, want)
	}
	if got, want := s.Size(), m.size(); got != want {
		t.Fatalf("Size = %d, want %d", got, want)
	}
	if got, want := s.MaxTimestamp(), m.maxTs(); got != want {
		t.Fatalf("MaxTimestamp = %d, want %d", got, want)
	}
	if got, want := s.FirstBatchTimestamp(), m.firstTs(); got != want {
		t.Fatalf("FirstBatchTimestamp = %d, want %d", got, want)
	}
	if err := s.oidx.Check(s.Size()); err != nil {
		t.Fatal(err)
	}
	for _, e := range offsetEntries(s) {
		if pos, ok := m.find(e.Offset); !ok || pos != e.Position {
			t.Fatalf("offset index entry %+v: the batch holding it is at %d (%v)", e, pos, ok)
		}
	}
	checkTimeIndex(t, s, m)
	checkLookups(t, s, m)
}

// checkLookups checks Find, PositionOf, ReadOffset and MaxTimestampBelow
// for every offset around the segment, and the bytes of the segment,
// against m: what a segment answers whatever its index entries before the
// last ones hold (a lookup skips a bad entry).
func checkLookups(t testing.TB, s *Segment, m *model) {
	t.Helper()
	all := m.bytes()
	// One buffer for the reads into a buffer, reused dirty: a read must
	// not depend on what a buffer held before.
	dst := make([]byte, 0, len(all)+headerScanBlock)
	for off := m.base - 2; off <= m.next()+2; off++ {
		want, ok := m.find(off)
		got, err := s.Find(off)
		switch {
		case off >= m.next():
			if err != ErrOffsetNotHere {
				t.Fatalf("Find(%d) past the end = %d, %v; want ErrOffsetNotHere", off, got, err)
			}
		case !ok:
			if err != ErrOffsetNotHere {
				t.Fatalf("Find(%d) in an empty segment = %d, %v; want ErrOffsetNotHere", off, got, err)
			}
		case err != nil || got != want:
			t.Fatalf("Find(%d) = %d, %v; want %d", off, got, err, want)
		}
		if !ok {
			want = m.size()
		}
		if got, err := s.PositionOf(off); err != nil || got != want {
			t.Fatalf("PositionOf(%d) = %d, %v; want %d", off, got, err, want)
		}
		checkReadOffset(t, s, m, all, dst, off, want)
		if got, err := s.MaxTimestampBelow(off); err != nil || got != m.maxTsBelow(off) {
			t.Fatalf("MaxTimestampBelow(%d) = %d, %v; want %d", off, got, err, m.maxTsBelow(off))
		}
	}
	var buf bytes.Buffer
	if _, err := s.WriteTo(&buf, 0, s.Size()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), m.bytes()) {
		t.Fatalf("segment bytes differ from the batches appended")
	}
}

// checkReadOffset compares ReadOffset from off (whose batch is at pos, or
// the size) with the model's bytes (all of them), for bounds upTo around
// off and the end, into no buffer or into buf (whose capacity holds all
// and a block): the batches from pos that hold no offset at or past upTo,
// at least one (or all of them on the OS's FS, which reads whole batches
// up to maxBytes; on the memory FS a read may stop at the end of a chunk).
func checkReadOffset(t testing.TB, s *Segment, m *model, all, buf []byte, off, pos int64) {
	t.Helper()
	_, memory := s.fs.(*vfs.MemFS)
	for i, upTo := range []int64{off, off + 1, off + 5, m.next(), math.MaxInt64} {
		end := m.size()
		if p, ok := m.find(upTo); ok {
			end = p
		}
		want := all[min(pos, end):end]
		var dst []byte
		if i%2 == 1 {
			dst = buf[:0]
		}
		got, err := s.ReadOffset(dst, off, 1<<30, upTo)
		if err != nil {
			t.Fatalf("ReadOffset(%d, upTo %d): %v", off, upTo, err)
		}
		if !bytes.Equal(got, want) && (!memory || len(got) == 0 || !bytes.HasPrefix(want, got)) {
			t.Fatalf("ReadOffset(%d, upTo %d) = %d bytes, want %d (from %d)", off, upTo, len(got), len(want), pos)
		}
	}
}

// checkFindTime compares FindTime with a naive scan for timestamps around
// every record's (each distinct one once: the records of a LogAppendTime
// batch share one).
func checkFindTime(t testing.TB, s *Segment, m *model) {
	t.Helper()
	tss := []int64{-1, 0, tsBase - 1, m.maxTs(), m.maxTs() + 1, m.maxTs() + 1000}
	for _, b := range m.batches {
		for _, r := range b.recs {
			tss = append(tss, r.ts-1, r.ts, r.ts+1)
		}
	}
	slices.Sort(tss)
	tss = slices.Compact(tss)
	froms := []int64{m.base, m.next()}
	for i, b := range m.batches {
		if i%3 == 1 {
			froms = append(froms, b.recs[len(b.recs)/2].off)
		}
	}
	for _, ts := range tss {
		for _, from := range froms {
			want, wok := m.findTime(ts, from)
			got, ok, err := s.FindTime(ts, from)
			if err != nil || ok != wok || (ok && got != want) {
				t.Fatalf("FindTime(%d, %d) = %d, %v, %v; want %d, %v", ts, from, got, ok, err, want, wok)
			}
		}
	}
}

func logPath(dir string, base int64) string {
	return filepath.Join(dir, FileName(base, LogSuffix))
}

// readFile returns the contents of a file of fsys.
func readFile(t testing.TB, fsys vfs.FS, name string) []byte {
	t.Helper()
	f, err := fsys.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return readAll(t, f)
}

// editFile opens a file of fsys and lets fn change it.
func editFile(t testing.TB, fsys vfs.FS, name string, fn func(f vfs.File)) {
	t.Helper()
	f, err := fsys.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	fn(f)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// flipByte inverts the byte at pos of a file.
func flipByte(t testing.TB, fsys vfs.FS, name string, pos int64) {
	t.Helper()
	editFile(t, fsys, name, func(f vfs.File) {
		b := make([]byte, 1)
		if _, err := f.ReadAt(b, pos); err != nil {
			t.Fatal(err)
		}
		b[0] ^= 0xff
		if _, err := f.WriteAt(b, pos); err != nil {
			t.Fatal(err)
		}
	})
}

func fileSize(t testing.TB, fsys vfs.FS, name string) int64 {
	t.Helper()
	fi, err := fsys.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func mustCreate(t testing.TB, fsys vfs.FS, dir string, base int64, cfg Config) *Segment {
	t.Helper()
	s, err := Create(fsys, dir, base, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustOpen(t testing.TB, fsys vfs.FS, dir string, base int64, cfg Config, active bool) (*Segment, bool) {
	t.Helper()
	s, needs, err := Open(fsys, dir, base, cfg, OpenOptions{Active: active})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, needs
}

func mustClose(t testing.TB, s *Segment) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// Readers run concurrently with the writer (go test -race).
func TestConcurrentReads(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := mustCreate(t, fsys, dir, 0, Config{IndexIntervalBytes: 100})
		n := 300
		if testing.Short() {
			n = 100
		}
		m := &model{}
		whileReading(t, 2, func(r int) func() error {
			rng := rand.New(rand.NewPCG(uint64(r), 18))
			return func() error {
				next := s.NextOffset()
				if next == 0 {
					return nil
				}
				off := rng.Int64N(next)
				pos, err := s.Find(off)
				if err != nil {
					return fmt.Errorf("Find(%d) below next %d: %w", off, next, err)
				}
				data, err := s.Read(pos, 1000)
				if err != nil {
					return err
				}
				b, err := record.Parse(data, pos)
				if err != nil || off < b.BaseOffset() || off > b.LastOffset() {
					return fmt.Errorf("Find(%d) = %d, where the batch is not: %v", off, pos, err)
				}
				_, _, err = s.FindTime(tsBase+rng.Int64N(int64(n)), 0)
				return err
			}
		}, func() {
			for i := range n {
				appendBatches(t, s, m, simpleBatch(t, int64(i), 1+i%4, 50))
			}
		})
		checkState(t, s, m)
	})
}

// whileReading runs write while readers goroutines each call a read
// function (made for it by newReader) in a loop, then stops them and
// fails t with the first error a read returned (which also stops its
// reader), or if any goroutine outlives them. The readers stop also when
// write fails t.
func whileReading(t *testing.T, readers int, newReader func(r int) func() error, write func()) {
	t.Helper()
	defer goleak.VerifyNone(t)
	var wg sync.WaitGroup
	done := make(chan struct{})
	stop := sync.OnceFunc(func() { close(done); wg.Wait() })
	defer stop()
	errc := make(chan error, readers)
	for r := range readers {
		read := newReader(r)
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if err := read(); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	write()
	stop()
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
}

// An append that would add more index entries than the indexes have room
// for still appends: the indexes are sparse, and the log rolls on
// IndexFull before the next append.
func TestAppendIndexFull(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		// Room for 4 offset entries and 3 time entries, the last of
		// which is held for Seal's.
		cfg := Config{IndexIntervalBytes: 1, MaxIndexBytes: 36}
		s := mustCreate(t, fsys, dir, 0, cfg)
		m := &model{}
		appendBatches(t, s, m, simpleBatch(t, 0, 2, 10))
		appendBatches(t, s, m, simpleBatch(t, 0, 2, 10))
		if s.IndexFull() {
			t.Fatal("index full after one entry")
		}
		var batches []record.Batch
		for i := range 6 {
			batches = append(batches, simpleBatch(t, int64(10*i), 2, 10))
		}
		appendBatches(t, s, m, batches...)
		if !s.IndexFull() {
			t.Fatal("IndexFull is false")
		}
		checkState(t, s, m)
		checkFindTime(t, s, m)
		if err := s.Seal(true); err != nil {
			t.Fatal(err)
		}
		checkSealed(t, fsys, dir, s, m)
		mustClose(t, s)
		s, needs := mustOpen(t, fsys, dir, 0, cfg, false)
		if needs {
			t.Fatal("needs recovery after Close")
		}
		checkState(t, s, m)
		checkFindTime(t, s, m)
		if res, err := s.Recover(0); err != nil || res.Batches != len(m.batches) {
			t.Fatalf("Recover = %v, %v", res, err)
		}
		checkState(t, s, m)
		checkFindTime(t, s, m)
	})
}

// A segment written with roomy indexes recovers under a config whose
// indexes hold fewer entries (segment.index.bytes lowered).
func TestRecoverSmallerIndexes(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := mustCreate(t, fsys, dir, 0, Config{IndexIntervalBytes: 1})
		m := &model{}
		fill(t, s, m, rand.New(rand.NewPCG(15, 15)), 30)
		mustClose(t, s)
		if err := fsys.Remove(filepath.Join(dir, FileName(0, IndexSuffix))); err != nil {
			t.Fatal(err)
		}
		cfg := Config{IndexIntervalBytes: 1, MaxIndexBytes: 40}
		s, needs := mustOpen(t, fsys, dir, 0, cfg, true)
		if !needs {
			t.Fatal("no recovery asked for without an .index")
		}
		if res, err := s.Recover(0); err != nil || res.Batches != len(m.batches) {
			t.Fatalf("Recover = %v, %v", res, err)
		}
		checkState(t, s, m)
		checkFindTime(t, s, m)
	})
}

func TestAppendFull(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := mustCreate(t, fsys, dir, 10, Config{})
		m := &model{base: 10}
		appendBatches(t, s, m, simpleBatch(t, 0, 2, 2))
		b := simpleBatch(t, 0, 2, 2)
		b.SetBaseOffset(10 + math.MaxInt32)
		if s.Fits(len(b), b.LastOffset()) {
			t.Fatal("Fits accepts an offset 2^31 past the base")
		}
		if err := s.Append(b); err != ErrFull {
			t.Fatalf("Append past the relative offset range: %v", err)
		}
		if s.Fits(math.MaxInt32, 11) {
			t.Fatal("Fits accepts a segment over 2 GiB")
		}
		if !s.Fits(100, 10+math.MaxInt32) {
			t.Fatal("Fits rejects the last relative offset")
		}
		checkState(t, s, m)
	})
}

func TestString(t *testing.T) {
	if got := (RecoveryResult{Batches: 3}).String(); got != "3 batches, nothing cut" {
		t.Fatal(got)
	}
	if got := (RecoveryResult{Batches: 3, Truncated: 10, At: 400}).String(); got != "3 batches, cut 10 bytes of torn tail at position 400" {
		t.Fatal(got)
	}
	s := mustCreate(t, vfs.NewMem(), "/", 5, Config{})
	appendBatches(t, s, &model{base: 5}, simpleBatch(t, 0, 3, 1))
	want := fmt.Sprintf("segment %s [5, 8) %d bytes", filepath.Join("/", "00000000000000000005.log"), s.Size())
	if got := s.String(); got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
}

// faultScenario drives a segment through its life on fsys, stopping at the
// first error, which it returns.
func faultScenario(fsys vfs.FS, dir string) (err error) {
	var tb fakeTB
	cfg := Config{IndexIntervalBytes: 100}
	s, err := Create(fsys, dir, 0, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := s.Close(); err == nil {
			err = cerr
		}
	}()
	for i := range 10 {
		b := simpleBatch(&tb, 0, 1+i%3, 60)
		b.SetBaseOffset(s.NextOffset())
		if err := s.Append(b); err != nil {
			return err
		}
	}
	if err := s.Sync(); err != nil {
		return err
	}
	if err := s.SyncIndexes(); err != nil {
		return err
	}
	if _, err := s.Find(7); err != nil {
		return err
	}
	if _, err := s.Read(0, 500); err != nil {
		return err
	}
	if _, _, err := s.FindTime(tsBase+1, 0); err != nil {
		return err
	}
	if _, err := s.WriteTo(io.Discard, 0, s.Size()); err != nil {
		return err
	}
	if _, err := s.TruncateTo(9); err != nil {
		return err
	}
	if err := s.Seal(true); err != nil {
		return err
	}
	if err := s.Unseal(); err != nil {
		return err
	}
	if _, err := s.Recover(0); err != nil {
		return err
	}
	if err := s.Close(); err != nil {
		return err
	}
	s, _, err = Open(fsys, dir, 0, cfg, OpenOptions{})
	if err != nil {
		s = &Segment{}
		s.closed.Store(true)
		return err
	}
	if _, err := s.Recover(0); err != nil {
		return err
	}
	if err := s.Close(); err != nil {
		return err
	}
	return s.Delete()
}

// fakeTB lets the batch helpers run outside a test; they fail only on
// builder errors, which do not happen here.
type fakeTB struct{ testing.TB }

func (fakeTB) Helper()               {}
func (fakeTB) Fatal(args ...any)     { panic(fmt.Sprint(args...)) }
func (fakeTB) Fatalf(string, ...any) { panic("fatal") }

// Every operation of a segment's life failing in turn: no panic, and the
// error surfaces.
func TestFaultSweep(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		c := vfs.Count()
		if err := faultScenario(vfs.WithFaults(fsys, c), filepath.Join(dir, "count")); err == nil {
			t.Fatal("test bug: the scenario's directory does not exist, yet it succeeded")
		}
		if err := fsys.MkdirAll(filepath.Join(dir, "count"), 0o755); err != nil {
			t.Fatal(err)
		}
		c = vfs.Count()
		if err := faultScenario(vfs.WithFaults(fsys, c), filepath.Join(dir, "count")); err != nil {
			t.Fatal(err)
		}
		n := c.N()
		step := 1
		if _, mem := fsys.(*vfs.MemFS); !mem {
			step = 3 // fsyncs make the OS slow; the kinds of operation repeat
		}
		if testing.Short() {
			step = 7
		}
		for k := 1; k <= n; k += step {
			sub := filepath.Join(dir, fmt.Sprint(k))
			if err := fsys.MkdirAll(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			err := faultScenario(vfs.WithFaults(fsys, vfs.FailNth(k)), sub)
			if err != nil && !errors.Is(err, vfs.ErrInjected) {
				t.Errorf("operation %d of %d failing: %v, not the injected fault", k, n, err)
			}
		}
	})
}

// TestAppendRejectsPartialBatches: data that is not whole batches is an
// error, not a hang or a panic, and nothing is written.
func TestAppendRejectsPartialBatches(t *testing.T) {
	fsys := vfs.NewMem()
	if err := fsys.MkdirAll("/d", 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := Create(fsys, "/d", 0, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	neg := make([]byte, record.HeaderSize)
	binary.BigEndian.PutUint32(neg[8:], 0xffffffff)
	for _, in := range [][]byte{neg, neg[:5], make([]byte, record.HeaderSize)} {
		if err := s.Append(in); !errors.Is(err, record.ErrCorrupt) {
			t.Fatalf("Append(%d bytes) = %v, want ErrCorrupt", len(in), err)
		}
		if s.Size() != 0 {
			t.Fatalf("size %d after a rejected append", s.Size())
		}
	}
}

// TestZeroTimestampAtBaseSurvivesReopen: the first batch holds the
// segment's base offset with timestamp 0 (1970-01-01), and the first time
// index entry is then (0, base): all zeros, which opening an index drops
// as preallocated padding. A reopened segment took the max timestamp 0 for
// the tail's batch (the next offset), and its seal indexed it there:
// FindTime(0) then skipped the base's record (found by the log's rapid
// test of OffsetOfMaxTimestamp). A truncation after the reopen did the
// same. MaxTimestampBelow must not take the lost entry for none either.
func TestZeroTimestampAtBaseSurvivesReopen(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		const base = 7
		cfg := Config{IndexIntervalBytes: 1}
		s := mustCreate(t, fsys, dir, base, cfg)
		for i := range 3 {
			if err := s.Append(mkBatch(t, base+int64(i), []int64{0}, 5, -1)); err != nil {
				t.Fatal(err)
			}
		}
		check := func(s *Segment, what string) {
			t.Helper()
			if got := s.MaxTimestamp(); got != 0 {
				t.Fatalf("%s: MaxTimestamp = %d, want 0", what, got)
			}
			if off, ok, err := s.FindTime(0, base); err != nil || !ok || off != base {
				t.Fatalf("%s: FindTime(0) = %d, %v, %v; want %d", what, off, ok, err, base)
			}
			// And the max below an offset, which looks up the time entry
			// of an offset entry's batch: there is none.
			for end := int64(base + 1); end <= s.NextOffset(); end++ {
				if got, err := s.MaxTimestampBelow(end); err != nil || got != 0 {
					t.Fatalf("%s: MaxTimestampBelow(%d) = %d, %v; want 0", what, end, got, err)
				}
			}
		}
		check(s, "appended")
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s, needs := mustOpen(t, fsys, dir, base, cfg, true)
		if needs {
			t.Fatal("a segment closed cleanly needs recovery")
		}
		check(s, "reopened")
		if next, err := s.TruncateTo(base + 2); err != nil || next != base+2 {
			t.Fatalf("TruncateTo = %d, %v", next, err)
		}
		check(s, "truncated after reopen")
		if err := s.Seal(false); err != nil {
			t.Fatal(err)
		}
		check(s, "sealed after reopen")
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s, _ = mustOpen(t, fsys, dir, base, cfg, false)
		check(s, "reopened sealed")
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestMaxTimestampBelowAfterLostZeroEntry: the first batch has timestamp
// 0, every later one none (-1), so that the time index's only entry is
// (0, base), all zeros, which a reopen drops (see
// TestZeroTimestampAtBaseSurvivesReopen). MaxTimestampBelow, which finds
// no time index entry at or before the offset index entry it starts from,
// still answers 0 below every offset past the first batch: it reads the
// first batch's header for what the lost entry said.
func TestMaxTimestampBelowAfterLostZeroEntry(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		const base = 7
		cfg := Config{IndexIntervalBytes: 1}
		s := mustCreate(t, fsys, dir, base, cfg)
		m := &model{base: base}
		appendBatches(t, s, m, mkBatch(t, 0, []int64{0}, 5, -1))
		for range 5 {
			appendBatches(t, s, m, mkBatch(t, 0, []int64{-1}, 5, -1))
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s, needs := mustOpen(t, fsys, dir, base, cfg, true)
		defer s.Close()
		if needs || s.tidx.Entries() != 0 || s.oidx.Entries() == 0 {
			t.Fatalf("reopened: recovery %v, %d time index entries, %d offset index entries", needs, s.tidx.Entries(), s.oidx.Entries())
		}
		for end := int64(base + 1); end <= m.next(); end++ {
			if got, err := s.MaxTimestampBelow(end); err != nil || got != 0 {
				t.Fatalf("MaxTimestampBelow(%d) = %d, %v; want 0", end, got, err)
			}
		}
		checkState(t, s, m)
	})
}

// TestMaxTimestampBelowChecksTheTimeEntry: a time index entry gone bad in
// a way that keeps the index's order (a timestamp lowered, not the last
// entry, which Open checks) would make MaxTimestampBelow answer below the
// true largest timestamp, which no record has. It checks the entry
// against its batch as a lookup does, marks it bad, and reads the headers
// from the segment's start instead; the answers stay right.
func TestMaxTimestampBelowChecksTheTimeEntry(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s, m := openWithFirstTimeEntryAt(t, fsys, dir, 400) // 500 → 400
		defer s.Close()
		end := int64(mtBase + 5)
		if got, err := s.MaxTimestampBelow(end); err != nil || got != 500 {
			t.Fatalf("MaxTimestampBelow(%d) = %d, %v; want 500", end, got, err)
		}
		if !s.IndexDistrusted().Time {
			t.Fatal("the time index is not distrusted")
		}
		for off := int64(mtBase - 1); off <= m.next()+1; off++ {
			if got, err := s.MaxTimestampBelow(off); err != nil || got != m.maxTsBelow(off) {
				t.Fatalf("MaxTimestampBelow(%d) = %d, %v; want %d", off, got, err, m.maxTsBelow(off))
			}
		}
	})
}

// TestDefaultIndexInterval: the zero Config indexes every 4096 bytes of
// batches (index.interval.bytes' default), as a Config that says so.
func TestDefaultIndexInterval(t *testing.T) {
	entries := func(cfg Config) []index.OffsetEntry {
		s := mustCreate(t, newMemDir(t), memDir, 0, cfg)
		m := &model{}
		for range 12 {
			appendBatches(t, s, m, simpleBatch(t, 0, 2, 400))
		}
		return offsetEntries(s)
	}
	want := entries(Config{IndexIntervalBytes: 4096})
	require.NotEmpty(t, want)
	require.Equal(t, want, entries(Config{}))
}

// TestFitsBoundaries: a segment takes batches up to 2^31-1 bytes in all
// and a last offset up to 2^31-1 past its base, and no more.
func TestFitsBoundaries(t *testing.T) {
	s := &Segment{base: 1000}
	s.size.Store(math.MaxInt32 - 100)
	require.True(t, s.Fits(100, 1000))
	require.False(t, s.Fits(101, 1000))
	require.True(t, s.Fits(0, 1000+math.MaxInt32))
	require.False(t, s.Fits(0, 1000+math.MaxInt32+1))
}

// TestTimeIndexFullFirst: a time index that fills before the offset index
// beside it (its entries are larger, and every index point grew the max
// timestamp) stops both: later Appends add no entry, and do not fail. It
// fills one entry short of its room, as Kafka's TimeIndex.isFull: Seal
// writes the segment's max timestamp into the last slot.
func TestTimeIndexFullFirst(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		cfg := Config{IndexIntervalBytes: 1, MaxIndexBytes: 36} // 4 offset entries, 3 time entries
		s := mustCreate(t, fsys, dir, 0, cfg)
		m := &model{}
		for i := range 6 {
			appendBatches(t, s, m, simpleBatch(t, int64(10*i), 2, 10))
		}
		require.True(t, s.IndexFull())
		require.Len(t, timeEntries(s), 2, "the last slot is held for Seal's entry")
		require.Len(t, offsetEntries(s), 2, "the offset index stops where the time index did")
		checkState(t, s, m)
		checkFindTime(t, s, m)
		require.NoError(t, s.Seal(true))
		require.Len(t, timeEntries(s), 3, "Seal's entry of the max timestamp")
		checkFindTime(t, s, m)
	})
}

// TestTimeIndexEntriesAfterClose: a closed segment reports the number of
// entries its Close left in the .timeindex, not those of the index it
// closed (none); a discarded one, those it had.
func TestTimeIndexEntriesAfterClose(t *testing.T) {
	for _, discard := range []bool{false, true} {
		fsys := newMemDir(t)
		s := mustCreate(t, fsys, memDir, 0, Config{IndexIntervalBytes: 1})
		m := &model{}
		for i := range 4 {
			appendBatches(t, s, m, simpleBatch(t, int64(10*i), 2, 10))
		}
		want := s.TimeIndexEntries()
		require.NotZero(t, want)
		if discard {
			require.NoError(t, s.Discard())
			require.Equal(t, want, s.TimeIndexEntries(), "after Discard")
			continue
		}
		mustClose(t, s)
		entries, err := index.DecodeTimeEntries(readFile(t, fsys, filepath.Join(memDir, FileName(0, TimeIndexSuffix))), 0)
		require.NoError(t, err)
		require.Equal(t, len(entries), s.TimeIndexEntries(), "after Close")
	}
}

// TestTimeIndexEntriesOfOneEntryAtTheBase: a time index whose one entry
// is at the segment's base offset, with a timestamp other than 0, holds
// that entry (only (0, base) reads as padding).
func TestTimeIndexEntriesOfOneEntryAtTheBase(t *testing.T) {
	fsys := newMemDir(t)
	s := mustCreate(t, fsys, memDir, 0, Config{IndexIntervalBytes: 1})
	m := &model{}
	appendBatches(t, s, m, mkBatch(t, 0, []int64{tsBase}, 10, -1))
	appendBatches(t, s, m, mkBatch(t, 0, []int64{tsBase - 1}, 10, -1)) // an index point; the max does not grow
	require.Equal(t, []index.TimeEntry{{Timestamp: tsBase, Offset: 0}}, timeEntries(s))
	require.Equal(t, 1, s.TimeIndexEntries())
}

// TestAppendRefusesABatchOneByteShort: data that ends one byte before its
// last batch does is not whole batches: Append refuses it and writes
// nothing.
func TestAppendRefusesABatchOneByteShort(t *testing.T) {
	fsys := newMemDir(t)
	s := mustCreate(t, fsys, memDir, 0, Config{})
	b := simpleBatch(t, 0, 2, 10)
	var ce *record.CorruptError
	require.ErrorAs(t, s.Append(b[:len(b)-1]), &ce)
	require.Zero(t, s.Size())
	require.Zero(t, s.NextOffset())
}

// TestSealSetsTheLimit: Seal of a segment that appended nothing since it
// was opened (with no End: after a crash, say) still sets its limit at the
// offset after its last batch, so that a base offset of that batch that
// grows on disk afterwards is reported, not served.
func TestSealSetsTheLimit(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := mustCreate(t, fsys, dir, 10, Config{})
		m := &model{base: 10}
		appendBatches(t, s, m, simpleBatch(t, 10, 2, 10), simpleBatch(t, 12, 3, 10))
		mustClose(t, s)
		s, needs := mustOpen(t, fsys, dir, 10, Config{}, true)
		require.False(t, needs)
		require.NoError(t, s.Seal(false))
		requireSecondBatchMovedUpCorrupt(t, fsys, dir, s, m)
	})
}

// TestUnsealLiftsTheEnd: a segment opened with an End its batches pass (a
// stale clean-shutdown marker) asks for recovery; Unseal lifts that End,
// and Recover then keeps every batch instead of refusing those past it.
func TestUnsealLiftsTheEnd(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := mustCreate(t, fsys, dir, 0, Config{})
		m := &model{}
		appendBatches(t, s, m, simpleBatch(t, 0, 2, 10), simpleBatch(t, 0, 3, 10))
		mustClose(t, s)
		s, needs, err := Open(fsys, dir, 0, Config{}, OpenOptions{Active: true, End: m.batches[0].last + 1})
		require.NoError(t, err)
		defer s.Close()
		require.True(t, needs)
		require.NoError(t, s.Unseal())
		res, err := s.Recover(0)
		require.NoError(t, err)
		require.Equal(t, len(m.batches), res.Batches)
		require.Equal(t, m.next(), s.NextOffset())
	})
}
