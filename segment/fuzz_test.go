package segment

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// The segment FuzzRecover starts from: three valid batches at fuzzBase.
const fuzzBase = 100

var fuzzCfg = Config{IndexIntervalBytes: 64}

func fuzzPrefix(t testing.TB) []byte {
	var out []byte
	next := int64(fuzzBase)
	for i, n := range []int{3, 1, 5} {
		b := mkBatch(t, next, []int64{tsBase + int64(i), tsBase - 7, tsBase + 3, tsBase, tsBase + 1}[:n], 10*i, -1)
		out = append(out, b...)
		next = b.NextOffset()
	}
	return out
}

// fuzzNext is the offset after fuzzPrefix's batches.
const fuzzNext = fuzzBase + 3 + 1 + 5

// FuzzRecover appends arbitrary bytes to a segment of valid batches and
// recovers it. Recover must not panic; on the in-memory FS its only errors
// are corruption, which leave the file as it was; and when it succeeds
// the valid batches are all kept, what it cut does not start with a whole
// batch, every batch left reads back with a valid CRC and increasing
// offsets, and the segment reopens as recovered. It runs on the memory FS
// as it is, with its files cut into small pieces (piecesFS), so that
// batches and headers straddle the pieces that ViewPrefix returns, and
// with no views at all (plainFS), as a file system that only reads, so
// that ReadOffset's scan hands it the batches it read.
func FuzzRecover(f *testing.F) {
	valid := simpleBatch(f, fuzzNext, 3, 20)
	f.Add([]byte{})
	f.Add(make([]byte, 100))
	f.Add([]byte(valid))
	f.Add([]byte(valid[:len(valid)-7]))
	f.Add([]byte(valid[:20]))
	f.Add(append(bytes.Clone(valid), make([]byte, 30)...))
	f.Add([]byte("\x02 garbage that is not a batch at all, with a magic byte \x02 here and there \x02"))
	backwards := bytes.Clone(valid)
	record.Batch(backwards).SetBaseOffset(fuzzBase)
	f.Add(backwards)
	// Tails of the other shapes a segment holds: LogAppendTime, two
	// batches, a gap in the offsets (compaction's), compressed and
	// idempotent, no records (the cleaner's); and a valid batch after a
	// hole of zeros (a power loss's).
	f.Add([]byte(mkBatch(f, fuzzNext, []int64{tsBase + 9, tsBase}, 15, tsBase+50)))
	f.Add(append(bytes.Clone(valid), simpleBatch(f, fuzzNext+3, 2, 5)...))
	f.Add([]byte(simpleBatch(f, fuzzNext+40, 1, 5)))
	var b record.Builder
	b.SetProducer(4, 1, 0)
	for i := range 4 {
		b.Append(tsBase+int64(i), []byte("k"), bytes.Repeat([]byte("z"), 40), nil)
	}
	f.Add([]byte(stamped(f, &b, fuzzNext, compression.Zstd)))
	b.Reset()
	b.SetLastOffsetDelta(4)
	b.SetEmptyMaxTimestamp(tsBase + 2)
	f.Add([]byte(stamped(f, &b, fuzzNext, compression.None)))
	f.Add(append(make([]byte, 512), valid...))
	f.Fuzz(func(t *testing.T, tail []byte) {
		for _, piece := range []int64{0, 1, 61, 100, -1} {
			mem := vfs.NewMem()
			var fsys vfs.FS = mem
			if piece > 0 {
				fsys = piecesFS{mem, piece}
			} else if piece < 0 {
				fsys = plainFS{mem}
			}
			fuzzRecover(t, fsys, mem, tail)
		}
	})
}

// stamped is b's batch of codec at base offset base, as a log writes it.
func stamped(t testing.TB, b *record.Builder, base int64, codec compression.Codec) record.Batch {
	batch, err := b.Finish(codec)
	if err != nil || batch == nil {
		t.Fatalf("Finish: %d bytes, %v", len(batch), err)
	}
	out := append(record.Batch(nil), batch...)
	out.SetBaseOffset(base)
	return out
}

// fuzzRecover is FuzzRecover's check of one tail on fsys, whose files are
// mem's.
func fuzzRecover(t *testing.T, fsys vfs.FS, mem *vfs.MemFS, tail []byte) {
	prefix := fuzzPrefix(t)
	const dir = "/p"
	if err := mem.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := Create(fsys, dir, fuzzBase, fuzzCfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append(prefix); err != nil {
		t.Fatal(err)
	}
	if s.NextOffset() != fuzzNext {
		t.Fatalf("the prefix ends at %d, not fuzzNext", s.NextOffset())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	path := logPath(dir, fuzzBase)
	appendToFile(t, mem, path, tail)
	before := readFile(t, mem, path)

	s, _, err = Open(fsys, dir, fuzzBase, fuzzCfg, OpenOptions{Active: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	res, err := s.Recover(0)
	after := readFile(t, mem, path)
	if err != nil {
		if !errors.Is(err, record.ErrCorrupt) {
			t.Fatalf("Recover: %v, not corruption", err)
		}
		if !bytes.Equal(after, before) {
			t.Fatalf("a failed Recover changed the file")
		}
		return
	}
	if !bytes.HasPrefix(after, prefix) || !bytes.HasPrefix(before, after) {
		t.Fatalf("Recover kept %d bytes of %d: not the valid prefix (%d bytes) and some of the tail", len(after), len(before), len(prefix))
	}
	if res.Truncated != int64(len(before)-len(after)) || (res.Truncated > 0 && res.At != int64(len(after))) {
		t.Fatalf("Recover = %v for a file cut from %d to %d bytes", res, len(before), len(after))
	}
	if res.Truncated > 0 {
		// A torn write leaves no whole batch with a valid CRC where it
		// starts.
		if b, err := record.Parse(before[res.At:], res.At); err == nil && b.Validate(res.At) == nil {
			t.Fatalf("Recover cut a whole valid batch at %d as a torn tail", res.At)
		}
	}
	if s.Size() != int64(len(after)) {
		t.Fatalf("Size %d, file %d bytes", s.Size(), len(after))
	}

	type span struct{ pos, base, last int64 }
	var batches []span
	next := int64(fuzzBase)
	for pos := int64(0); pos < s.Size(); {
		data, err := s.Read(pos, 1)
		if err != nil || len(data) == 0 {
			t.Fatalf("Read(%d) = %d bytes, %v", pos, len(data), err)
		}
		b, err := record.Parse(data, pos)
		if err != nil || len(b) != len(data) {
			t.Fatalf("Read(%d, 1) returned %d bytes that are not one batch: %v", pos, len(data), err)
		}
		if err := b.Validate(pos); err != nil {
			t.Fatalf("batch at %d: %v", pos, err)
		}
		if b.BaseOffset() < next || b.LastOffset()-fuzzBase > math.MaxInt32 {
			t.Fatalf("batch at %d holds [%d, %d] after %d", pos, b.BaseOffset(), b.LastOffset(), next)
		}
		batches = append(batches, span{pos, b.BaseOffset(), b.LastOffset()})
		next = b.NextOffset()
		pos += int64(len(b))
	}
	if len(batches) != res.Batches {
		t.Fatalf("read %d batches, Recover kept %d", len(batches), res.Batches)
	}
	// Read with room for everything: whole batches, all of them in the
	// end, however the file's pieces cut them.
	var all []byte
	for pos := int64(0); pos < s.Size(); {
		data, err := s.Read(pos, 1<<20)
		if err != nil || len(data) == 0 {
			t.Fatalf("Read(%d, 1 MiB) = %d bytes, %v", pos, len(data), err)
		}
		all = append(all, data...)
		pos += int64(len(data))
	}
	if !bytes.Equal(all, after) {
		t.Fatalf("Read returned %d bytes in all, the file has %d", len(all), len(after))
	}
	if s.NextOffset() != next {
		t.Fatalf("NextOffset %d, last batch's next offset %d", s.NextOffset(), next)
	}
	for _, b := range batches {
		for _, off := range []int64{b.base, b.last} {
			if pos, err := s.Find(off); err != nil || pos != b.pos {
				t.Fatalf("Find(%d) = %d, %v; want %d", off, pos, err, b.pos)
			}
		}
	}

	checkReadPaths(t, s, after, func(i int) (pos, base, last int64) {
		return batches[i].pos, batches[i].base, batches[i].last
	}, len(batches))

	maxTs := s.MaxTimestamp()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, needs, err := Open(fsys, dir, fuzzBase, fuzzCfg, OpenOptions{Active: true})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if needs || s.NextOffset() != next || s.Size() != int64(len(after)) || s.MaxTimestamp() != maxTs {
		t.Fatalf("reopened: needs recovery %v, next %d, size %d, max timestamp %d; want false, %d, %d, %d",
			needs, s.NextOffset(), s.Size(), s.MaxTimestamp(), next, len(after), maxTs)
	}
}

// checkReadPaths checks that the ways of reading a recovered segment, s,
// whose file holds file and whose n batches span(i) gives, agree: from
// each batch's first and last offset, ReadOffset (whose scan may hand it
// the batches) reads what PositionOf and then ReadInto read, with and
// without a buffer for its scan, for any maxBytes; and up to the offset
// after the batch, it reads exactly that batch. ReadOffset's answers are
// compared after all of them were read: none is memory a later read
// reuses.
func checkReadPaths(t *testing.T, s *Segment, file []byte, span func(int) (pos, base, last int64), n int) {
	t.Helper()
	type read struct {
		what string
		got  []byte
		want func() []byte
	}
	var reads []read
	for i := range n {
		pos, base, last := span(i)
		end := int64(len(file))
		if i+1 < n {
			end, _, _ = span(i + 1)
		}
		for _, off := range []int64{base, last} {
			if p, err := s.PositionOf(off); err != nil || p != pos {
				t.Fatalf("PositionOf(%d) = %d, %v; want %d", off, p, err, pos)
			}
			for _, maxBytes := range []int{1, 100, 1 << 20} {
				slow := func() []byte {
					data, err := s.ReadInto(nil, pos, maxBytes)
					if err != nil {
						t.Fatalf("ReadInto(%d, %d): %v", pos, maxBytes, err)
					}
					return data
				}
				fast, err := s.ReadOffset(nil, off, maxBytes, math.MaxInt64)
				if err != nil {
					t.Fatalf("ReadOffset(%d, %d): %v", off, maxBytes, err)
				}
				reads = append(reads, read{fmt.Sprintf("ReadOffset(%d, %d)", off, maxBytes), fast, slow})
				into, err := s.ReadOffset(make([]byte, 0, headerScanBlock), off, maxBytes, math.MaxInt64)
				if err != nil {
					t.Fatalf("ReadOffset(%d, %d) into a buffer: %v", off, maxBytes, err)
				}
				reads = append(reads, read{fmt.Sprintf("ReadOffset(%d, %d) into a buffer", off, maxBytes), into, slow})
			}
			one, err := s.ReadOffset(nil, off, 1<<20, last+1)
			if err != nil {
				t.Fatalf("ReadOffset(%d) up to %d: %v", off, last+1, err)
			}
			reads = append(reads, read{fmt.Sprintf("ReadOffset(%d) up to %d", off, last+1), one, func() []byte { return file[pos:end] }})
		}
	}
	for _, r := range reads {
		if want := r.want(); !bytes.Equal(r.got, want) {
			t.Fatalf("%s = %d bytes %x; PositionOf and ReadInto read %d bytes %x", r.what, len(r.got), r.got, len(want), want)
		}
	}
}

// plainFS is an FS whose files only read and write: no views, as the
// OS's files without a mapping.
type plainFS struct{ vfs.FS }

func (p plainFS) Create(name string) (vfs.File, error) { return p.wrap(p.FS.Create(name)) }
func (p plainFS) Open(name string) (vfs.File, error)   { return p.wrap(p.FS.Open(name)) }

func (p plainFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return plainFile{f}, nil
}

// plainFile has vfs.File's methods only.
type plainFile struct{ vfs.File }
