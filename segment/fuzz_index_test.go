package segment

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/runnel/runnel/index"
	"github.com/runnel/runnel/vfs"
)

// FuzzIndexFiles replaces a closed segment's .index or .timeindex (or
// both) with arbitrary bytes and opens it as a log does (Recover when
// Open asks for it), sealed or active. Open never fails for an index: a
// bad one is checked, skipped or rebuilt, never a wrong answer. Every
// offset and timestamp lookup answers as the segment's batches say, the
// max timestamp is the batches', and after a close and reopen the same
// holds.
func FuzzIndexFiles(f *testing.F) {
	fsys := vfs.NewMem()
	if err := fsys.MkdirAll("/s", 0o755); err != nil {
		f.Fatal(err)
	}
	fx := newICFixture(f, fsys, "/s", 30)
	idx, tim := fx.idxBytes, fx.timBytes
	f.Add(uint8(0), idx, false)
	f.Add(uint8(1), tim, false)
	f.Add(uint8(2), append(bytes.Clone(idx), tim...), true)
	f.Add(uint8(0), append(bytes.Clone(idx), make([]byte, 4096)...), true) // preallocated, as an active index is
	f.Add(uint8(1), append(bytes.Clone(tim), make([]byte, 1200)...), true)
	f.Add(uint8(0), idx[:len(idx)-3], false)
	f.Add(uint8(1), tim[:index.TimeEntrySize*2], false)
	f.Add(uint8(0), []byte{}, false)
	f.Add(uint8(1), make([]byte, 48), true)
	swapped := bytes.Clone(idx)
	copy(swapped[8:16], idx[16:24])
	copy(swapped[16:24], idx[8:16])
	f.Add(uint8(0), swapped, false)
	// A middle entry changed so that the entries stay in order and Open
	// finds nothing wrong: checked when a lookup uses it.
	for _, d := range []int32{7, -7, 1} {
		k := len(fx.oidx) / 2
		moved := bytes.Clone(idx)
		binary.BigEndian.PutUint32(moved[k*index.OffsetEntrySize+4:], uint32(fx.oidx[k].Position+int64(d)))
		f.Add(uint8(0), moved, d > 0)
		k = len(fx.tidx) / 2
		moved = bytes.Clone(tim)
		ts := moved[k*index.TimeEntrySize:]
		binary.BigEndian.PutUint64(ts, uint64(fx.tidx[k].Timestamp+int64(d)))
		f.Add(uint8(1), moved, d < 0)
		moved = bytes.Clone(tim)
		binary.BigEndian.PutUint32(moved[k*index.TimeEntrySize+8:], uint32(fx.tidx[k].Offset-icBase+int64(d)))
		f.Add(uint8(1), moved, d > 0)
	}
	late := bytes.Clone(tim)
	binary.BigEndian.PutUint64(late[len(late)-12:], uint64(fx.batches[len(fx.batches)-1].maxTs+1000))
	f.Add(uint8(1), late, true)
	logBytes := readFile(f, fsys, fx.path(LogSuffix))
	f.Fuzz(func(t *testing.T, which uint8, data []byte, active bool) {
		// The fixture's files, copied to a new FS (building it again for
		// each input would take most of the time).
		mem := vfs.NewMem()
		if err := mem.MkdirAll("/s", 0o755); err != nil {
			t.Fatal(err)
		}
		fx := *fx
		fx.fsys = mem
		icRewrite(t, mem, fx.path(LogSuffix), logBytes)
		icRewrite(t, mem, fx.path(IndexSuffix), idx)
		icRewrite(t, mem, fx.path(TimeIndexSuffix), tim)
		switch which % 3 {
		case 0:
			icRewrite(t, mem, fx.path(IndexSuffix), data)
		case 1:
			icRewrite(t, mem, fx.path(TimeIndexSuffix), data)
		case 2:
			n := len(data) / 2 / index.OffsetEntrySize * index.OffsetEntrySize
			icRewrite(t, mem, fx.path(IndexSuffix), data[:n])
			icRewrite(t, mem, fx.path(TimeIndexSuffix), data[n:])
		}
		for round := range 2 {
			s, needs, err := Open(mem, "/s", icBase, icCfg, OpenOptions{Active: active})
			if err != nil {
				t.Fatalf("round %d: Open: %v", round, err)
			}
			if needs {
				if _, err := s.Recover(0); err != nil {
					s.Close()
					t.Fatalf("round %d: Recover: %v", round, err)
				}
			}
			if err := fx.checkOffsets(s); err != nil {
				s.Close()
				t.Fatalf("round %d: %v", round, err)
			}
			if err := fx.checkTimes(s); err != nil {
				s.Close()
				t.Fatalf("round %d: %v", round, err)
			}
			if got, want := s.MaxTimestamp(), fx.batches[len(fx.batches)-1].maxTs; got != want {
				s.Close()
				t.Fatalf("round %d: MaxTimestamp %d, want %d", round, got, want)
			}
			if s.NextOffset() != fx.next() || s.Size() != fx.batches[len(fx.batches)-1].pos+fx.batches[len(fx.batches)-1].size {
				s.Close()
				t.Fatalf("round %d: next offset %d, size %d", round, s.NextOffset(), s.Size())
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
	})
}
