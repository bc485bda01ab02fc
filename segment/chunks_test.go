package segment

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"unsafe"

	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// The in-memory FS holds a large .log in chunks (vfs.MemFS: one array up to
// 64 KiB, then chunks of growing size, one Write never split). These tests
// read across those chunks.

const memDir = "/data/topic-0"

func newMemDir(t *testing.T) *vfs.MemFS {
	t.Helper()
	fsys := vfs.NewMem()
	if err := fsys.MkdirAll(memDir, 0o755); err != nil {
		t.Fatal(err)
	}
	return fsys
}

// sameMemory reports whether a and b are the same bytes in memory.
func sameMemory(a, b []byte) bool {
	return len(a) == len(b) && unsafe.SliceData(a) == unsafe.SliceData(b)
}

// checkWholeBatches checks that data is a run of whole, valid batches.
func checkWholeBatches(t *testing.T, data []byte, pos int64) {
	t.Helper()
	for p := 0; p < len(data); {
		b, err := record.Parse(data[p:], pos+int64(p))
		if err == nil {
			err = b.Validate(pos + int64(p))
		}
		if err != nil {
			t.Fatalf("batch at %d: %v", pos+int64(p), err)
		}
		p += len(b)
	}
}

// batchIndex returns the index of the model's batch holding position pos.
func batchIndex(t *testing.T, m *model, pos int64) int {
	t.Helper()
	for i, b := range m.batches {
		if pos >= b.pos && pos < b.pos+b.size {
			return i
		}
	}
	t.Fatalf("no batch at %d", pos)
	return -1
}

// Reading a large segment on the memory FS returns views of the file,
// never copies: each Read ends at the last whole batch of the chunk it
// starts in, and the next Read goes on from there.
func TestReadViewsAcrossChunks(t *testing.T) {
	fsys := newMemDir(t)
	s := mustCreate(t, fsys, memDir, 0, Config{})
	m := &model{}
	for s.Size() < 1<<20 {
		appendBatches(t, s, m, simpleBatch(t, 0, 5, 997)) // ~5 KB, one Write each
	}
	f, err := fsys.Open(logPath(memDir, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	const maxBytes = 200 << 10
	var got []byte
	cutByChunk := 0
	for pos := int64(0); pos < s.Size(); {
		data, err := s.Read(pos, maxBytes)
		if err != nil || len(data) == 0 {
			t.Fatalf("Read(%d) = %d bytes, %v", pos, len(data), err)
		}
		checkWholeBatches(t, data, pos)
		v, err := vfs.ReadViewPrefix(f, pos, len(data))
		if err != nil {
			t.Fatal(err)
		}
		if !sameMemory(data, v) {
			t.Fatalf("Read(%d) returned a copy, not the file's memory", pos)
		}
		if cap(data) != len(data) {
			t.Fatalf("Read returned %d bytes with capacity %d", len(data), cap(data))
		}
		end := pos + int64(len(data))
		if i := batchIndex(t, m, end-1) + 1; i < len(m.batches) && end+m.batches[i].size-pos <= maxBytes {
			cutByChunk++ // the next batch fit in maxBytes: a chunk ended here
		}
		got = append(got, data...)
		pos = end
	}
	if !bytes.Equal(got, m.bytes()) {
		t.Fatal("the reads do not add up to the segment")
	}
	if cutByChunk == 0 {
		t.Fatal("no read ended at a chunk boundary: the segment is not in chunks")
	}

	allocs := testing.AllocsPerRun(20, func() {
		if _, err := s.Read(m.batches[100].pos, maxBytes); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Read on the memory FS allocates %v times", allocs)
	}

	// WriteTo writes the whole segment, chunk by chunk.
	var w bytes.Buffer
	if n, err := s.WriteTo(&w, 0, s.Size()); err != nil || n != s.Size() || !bytes.Equal(w.Bytes(), m.bytes()) {
		t.Fatalf("WriteTo = %d, %v", n, err)
	}
}

// writeSplit writes data as the segment's .log in two Writes cut at cut,
// so that on the memory FS the bytes around cut lie in two chunks (a first
// Write under 64 KiB, a second that takes the file beyond it).
func writeSplit(t *testing.T, fsys vfs.FS, data []byte, cut int) {
	t.Helper()
	if cut >= 64<<10 || len(data) <= 64<<10 {
		t.Fatalf("a cut at %d of %d bytes does not fall between two chunks", cut, len(data))
	}
	f, err := fsys.Create(logPath(memDir, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range [][]byte{data[:cut], data[cut:]} {
		if _, err := f.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := vfs.ReadViewPrefix(f, int64(cut-1), 2); err != nil || len(v) != 1 {
		t.Fatalf("ViewPrefix across the cut = %d bytes, %v: the cut is not a chunk boundary", len(v), err)
	}
}

// splitModel returns a model of batches of about 5 KB filling ~100 KB, and
// the index of one that starts before 40 KiB and ends after it; the bytes
// are not written anywhere.
func splitModel(t *testing.T) (*model, int) {
	t.Helper()
	m := &model{}
	var pos int64
	for pos < 100<<10 {
		b := simpleBatch(t, 0, 5, 997)
		b.SetBaseOffset(m.next())
		m.add(t, b, pos)
		pos += int64(len(b))
	}
	return m, batchIndex(t, m, 40<<10)
}

// A batch that was not written by one Write may straddle two chunks: Read
// returns the batches before it as a view, then that batch whole as a copy;
// recovery keeps it.
func TestReadBatchAcrossChunks(t *testing.T) {
	fsys := newMemDir(t)
	m, k := splitModel(t)
	split := m.batches[k]
	writeSplit(t, fsys, m.bytes(), int(split.pos+split.size/2))

	s, _ := mustOpen(t, fsys, memDir, 0, Config{}, true)
	res, err := s.Recover(0)
	if err != nil || res.Batches != len(m.batches) || res.Truncated != 0 {
		t.Fatalf("Recover = %v, %v; want %d batches", res, err, len(m.batches))
	}
	checkState(t, s, m)
	checkFindTime(t, s, m)

	data, err := s.Read(0, 1<<20)
	if err != nil || !bytes.Equal(data, m.bytes()[:split.pos]) {
		t.Fatalf("Read(0) = %d bytes, %v; want the %d bytes before the split batch", len(data), err, split.pos)
	}
	for _, maxBytes := range []int{1, int(split.size), 1 << 20} {
		data, err = s.Read(split.pos, maxBytes)
		if err != nil || !bytes.Equal(data, split.data) {
			t.Fatalf("Read(split, %d) = %d bytes, %v; want the split batch (%d bytes)", maxBytes, len(data), err, split.size)
		}
	}
	after := split.pos + split.size
	data, err = s.Read(after, 1<<20)
	if err != nil || !bytes.Equal(data, m.bytes()[after:]) {
		t.Fatalf("Read after the split batch = %d bytes, %v; want the rest (%d bytes)", len(data), err, m.size()-after)
	}
	var w bytes.Buffer
	if n, err := s.WriteTo(&w, 0, s.Size()); err != nil || n != s.Size() || !bytes.Equal(w.Bytes(), m.bytes()) {
		t.Fatalf("WriteTo = %d, %v", n, err)
	}
}

// Recovery tells a torn tail from corruption across chunks: bad bytes
// followed by a valid batch that straddles two chunks, or by one in a
// later chunk, are corruption; a torn tail in later chunks is cut.
func TestRecoverAcrossChunks(t *testing.T) {
	t.Run("valid batch straddling chunks after bad bytes", func(t *testing.T) {
		fsys := newMemDir(t)
		m, k := splitModel(t)
		bad := m.batches[k-1]
		data := bytes.Clone(m.bytes())
		data[bad.pos+record.HeaderSize+2] ^= 0xff // a CRC mismatch
		for _, b := range m.batches[k+1:] {
			data[b.pos+16] = 0 // a bad magic byte: only the split batch is valid
		}
		split := m.batches[k]
		writeSplit(t, fsys, data, int(split.pos+split.size/2))
		s, _ := mustOpen(t, fsys, memDir, 0, Config{}, true)
		_, err := s.Recover(0)
		checkCorrupt(t, err, logPath(memDir, 0), bad.pos)
		var ce *record.CorruptError
		if !errors.As(err, &ce) || !strings.Contains(ce.Reason, "followed by a valid batch") {
			t.Fatalf("Recover: %v; want bad bytes followed by a valid batch", err)
		}
	})

	t.Run("valid batch in a later chunk", func(t *testing.T) {
		fsys := newMemDir(t)
		s := mustCreate(t, fsys, memDir, 0, Config{})
		m := &model{}
		for s.Size() < 300<<10 {
			appendBatches(t, s, m, simpleBatch(t, 0, 5, 997))
		}
		mustClose(t, s)
		path := logPath(memDir, 0)
		editFile(t, fsys, path, func(f vfs.File) {
			// Bad magic from the third batch to the last but one.
			for _, b := range m.batches[2 : len(m.batches)-1] {
				if _, err := f.WriteAt([]byte{0}, b.pos+16); err != nil {
					t.Fatal(err)
				}
			}
		})
		s, _ = mustOpen(t, fsys, memDir, 0, Config{}, true)
		_, err := s.Recover(0)
		checkCorrupt(t, err, path, m.batches[2].pos)
	})

	t.Run("torn tail in later chunks", func(t *testing.T) {
		fsys := newMemDir(t)
		s := mustCreate(t, fsys, memDir, 0, Config{})
		m := &model{}
		for s.Size() < 100<<10 {
			appendBatches(t, s, m, simpleBatch(t, 0, 5, 997))
		}
		mustClose(t, s)
		torn := simpleBatch(t, m.next(), 5, 997)
		var size int64
		editFile(t, fsys, logPath(memDir, 0), func(f vfs.File) {
			// A torn batch, then zeros, each in chunks of their own.
			for _, p := range [][]byte{torn[:len(torn)-100], make([]byte, 200<<10)} {
				if _, err := f.Write(p); err != nil {
					t.Fatal(err)
				}
			}
			size, _ = f.Size()
		})
		s, _ = mustOpen(t, fsys, memDir, 0, Config{}, true)
		res, err := s.Recover(0)
		if err != nil || res.Batches != len(m.batches) || res.At != m.size() || res.Truncated != size-m.size() {
			t.Fatalf("Recover = %v, %v; want %d batches and the tail from %d cut", res, err, len(m.batches), m.size())
		}
		checkState(t, s, m)
	})
}

// When every batch was written whole, a Read ends exactly at a chunk
// boundary, and ReadViewPrefix past the end is io.ErrUnexpectedEOF.
func TestReadEndsAtChunkBoundary(t *testing.T) {
	fsys := newMemDir(t)
	m, k := splitModel(t)
	writeSplit(t, fsys, m.bytes(), int(m.batches[k].pos))
	f, err := fsys.Open(logPath(memDir, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := vfs.ReadViewPrefix(f, m.size()-1, 2); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("ReadViewPrefix past the end: %v", err)
	}
	s, _ := mustOpen(t, fsys, memDir, 0, Config{}, true)
	if _, err := s.Recover(0); err != nil {
		t.Fatal(err)
	}
	data, err := s.Read(0, 1<<20)
	if err != nil || int64(len(data)) != m.batches[k].pos {
		t.Fatalf("Read(0) = %d bytes, %v; want up to the chunk boundary at %d", len(data), err, m.batches[k].pos)
	}
	v, err := vfs.ReadViewPrefix(f, 0, len(data))
	if err != nil || !sameMemory(data, v) {
		t.Fatalf("Read(0) is not a view of the file: %v", err)
	}
}

// TestReadHeaderAcrossChunks: on the memory FS, a batch whose header two
// chunks hold (it was not written by one Write), in a segment that Recover
// checked, is read whole from its position and from its offset, however
// few of its bytes the first chunk holds.
func TestReadHeaderAcrossChunks(t *testing.T) {
	for _, in := range []int64{5, 20, 40, record.HeaderSize - 1} {
		fsys := newMemDir(t)
		m, k := splitModel(t)
		split := m.batches[k]
		writeSplit(t, fsys, m.bytes(), int(split.pos+in))
		s, _ := mustOpen(t, fsys, memDir, 0, Config{}, true)
		_, err := s.Recover(0)
		require.NoError(t, err)
		data, err := s.Read(split.pos, 1)
		require.NoErrorf(t, err, "header cut %d bytes in", in)
		require.Equalf(t, split.data, data, "Read: header cut %d bytes in", in)
		data, err = s.ReadOffset(nil, split.base, 1, split.last+1)
		require.NoErrorf(t, err, "header cut %d bytes in", in)
		require.Equalf(t, split.data, data, "ReadOffset: header cut %d bytes in", in)
		mustClose(t, s)
	}
}
