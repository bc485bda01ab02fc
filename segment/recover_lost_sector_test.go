package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// The boundaries of what Recover takes for a lost sector: each test fails
// with a mutant of recover.go that the rest of the suite let through.

// recoverTail writes f's batches, pad to end them at a chosen position,
// then tail, and runs Recover past durable on the segment reopened, which
// closes with the test.
func recoverTail(t *testing.T, fsys vfs.FS, f *recoverFixture, tail func(at int64) []byte) (*Segment, RecoveryResult, int64, error) {
	t.Helper()
	s := f.open(t)
	mustClose(t, s)
	data := tail(f.m.size())
	appendToFile(t, fsys, f.path, data)
	s, _, err := Open(fsys, f.dir, f.base, f.cfg, OpenOptions{Active: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	res, err := s.Recover(f.m.next())
	return s, res, f.m.size() + int64(len(data)), err
}

// padTo appends to f a batch that makes its batches end at the first
// position past its end, and a sector past it, that is off modulo
// sectorSize.
func padTo(t *testing.T, fsys vfs.FS, f *recoverFixture, off int64) {
	t.Helper()
	s := f.open(t)
	end := (f.m.size()/sectorSize+2)*sectorSize + off
	appendBatches(t, s, f.m, padBatch(t, f.m.next(), end-f.m.size()))
	mustClose(t, s)
}

// TestRecoverLostSectorEndsElevenBytesIn: a sector the disk never wrote
// may end 11 bytes into the next whole batch (its base offset and the high
// three bytes of its length, zeros for a batch under 256 bytes): the
// largest overlap zeroSectorIn allows. A whole aligned sector, or the end
// of the first one, so lost is a hole before that batch.
func TestRecoverLostSectorEndsElevenBytesIn(t *testing.T) {
	for _, aligned := range []bool{false, true} {
		t.Run(fmt.Sprintf("aligned=%v", aligned), func(t *testing.T) {
			forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
				f := newRecoverFixture(t, fsys, dir, 3)
				padTo(t, fsys, f, 250)
				var q int64
				s, res, size, err := recoverTail(t, fsys, f, func(at int64) []byte {
					lost := (at/sectorSize + 1) * sectorSize
					if aligned {
						lost += sectorSize
					}
					q = lost - 11
					torn := padBatch(t, f.m.next(), q-at)
					after := simpleBatch(t, f.m.next()+1, 2, 20)
					if len(after) >= 256 {
						t.Fatalf("a batch of %d bytes", len(after))
					}
					data := append(bytes.Clone([]byte(torn)), after...)
					from := at
					if aligned {
						from = lost - sectorSize
					}
					clear(data[from-at : lost-at])
					return data
				})
				if err != nil {
					t.Fatalf("aligned %v: Recover: %v", aligned, err)
				}
				if res.HoleBefore != q {
					t.Fatalf("aligned %v: Recover = %v: want a hole before the valid batch at %d", aligned, res, q)
				}
				res.HoleBefore = 0
				f.checkRecovered(t, s, res, err, size)
			})
		})
	}
}

// TestRecoverElevenZerosAreNoLostSector: zeros from the end of the valid
// batches to the end of their sector are a lost sector's only if there are
// at least 12 of them (a batch's base offset and length, never all zero):
// 11 zeros, then bad bytes and a valid batch, are corruption, not cut.
func TestRecoverElevenZerosAreNoLostSector(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newRecoverFixture(t, fsys, dir, 3)
		padTo(t, fsys, f, sectorSize-11)
		_, res, _, err := recoverTail(t, fsys, f, func(at int64) []byte {
			data := bytes.Repeat([]byte{0xff}, 11+600)
			clear(data[:11])
			return append(data, simpleBatch(t, f.m.next()+1, 2, 20)...)
		})
		var ce *record.CorruptError
		if !errors.As(err, &ce) {
			t.Fatalf("Recover = %v, %v: want a *record.CorruptError", res, err)
		}
	})
}

// TestRecoverValidBatchOneByteAfterBadBytes: Recover looks for a valid
// batch from the byte after the bad one on: one bad byte and a whole valid
// batch after it are corruption (nothing lost a sector), not a torn tail
// to cut.
func TestRecoverValidBatchOneByteAfterBadBytes(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newRecoverFixture(t, fsys, dir, 3)
		_, res, _, err := recoverTail(t, fsys, f, func(at int64) []byte {
			return append([]byte{0xff}, simpleBatch(t, f.m.next(), 2, 20)...)
		})
		var ce *record.CorruptError
		if !errors.As(err, &ce) {
			t.Fatalf("Recover = %v, %v: want a *record.CorruptError", res, err)
		}
	})
}

// emptyBatch is a batch of no records at base, a header alone (as Kafka's
// cleaner leaves one to keep a producer's state), valid.
func emptyBatch(t *testing.T, base int64) record.Batch {
	t.Helper()
	b := append(record.Batch(nil), simpleBatch(t, base, 1, 1)[:record.HeaderSize]...)
	binary.BigEndian.PutUint32(b[8:], record.HeaderSize-12) // the length
	binary.BigEndian.PutUint32(b[57:], 0)                   // the record count
	b.UpdateCRC()
	if err := b.Validate(0); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRecoverValidEmptyBatchAtTheEnd: Recover looks for a valid batch
// after bad bytes up to the last position one fits at: a batch of a
// header alone ending the file, after bad bytes, is corruption, not a
// torn tail to cut.
func TestRecoverValidEmptyBatchAtTheEnd(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newRecoverFixture(t, fsys, dir, 3)
		_, res, _, err := recoverTail(t, fsys, f, func(at int64) []byte {
			return append(bytes.Repeat([]byte{0xff}, 40), emptyBatch(t, f.m.next())...)
		})
		var ce *record.CorruptError
		if !errors.As(err, &ce) {
			t.Fatalf("Recover = %v, %v: want a *record.CorruptError", res, err)
		}
	})
}

// TestRecoverWrongBaseOffsetIsNoLostSector: a whole batch with a valid CRC
// whose base offset is wrong (it overlaps the batch before) is corruption,
// past durable too, even when it starts 4 bytes before a sector boundary
// and those 4 bytes are zeros (as in any base offset below 2^32): a lost
// sector would have left the base offset's bytes past the boundary those
// of the offset that follows.
func TestRecoverWrongBaseOffsetIsNoLostSector(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newRecoverFixture(t, fsys, dir, 3)
		padTo(t, fsys, f, sectorSize-4)
		_, res, _, err := recoverTail(t, fsys, f, func(at int64) []byte {
			return simpleBatch(t, f.m.next()-1, 2, 20) // overlaps the last batch
		})
		if !errors.Is(err, record.ErrCorrupt) {
			t.Fatalf("Recover = %v, %v: want record.ErrCorrupt", res, err)
		}
	})
}

// TestRecoverCutFirstBatchResetsFirstTimestamp: a Recover that cuts every
// batch (the first one torn) leaves the segment empty, its first batch
// timestamp -1 (segment.ms then waits for a new first batch), not that of
// the batch cut, which Open read.
func TestRecoverCutFirstBatchResetsFirstTimestamp(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		const base = 1000
		s := mustCreate(t, fsys, dir, base, Config{})
		b := simpleBatch(t, base, 3, 20)
		if err := s.Append(b); err != nil {
			t.Fatal(err)
		}
		mustClose(t, s)
		path := logPath(dir, base)
		editFile(t, fsys, path, func(f vfs.File) {
			if _, err := f.WriteAt([]byte{^b[len(b)-1]}, int64(len(b)-1)); err != nil {
				t.Fatal(err)
			}
		})
		s, _ = mustOpen(t, fsys, dir, base, Config{}, true)
		defer s.Close()
		res, err := s.Recover(base)
		if err != nil || res.Truncated != int64(len(b)) {
			t.Fatalf("Recover = %v, %v: want the torn batch cut", res, err)
		}
		if got := s.FirstBatchTimestamp(); got != -1 {
			t.Fatalf("FirstBatchTimestamp = %d of an empty segment, want -1", got)
		}
	})
}

// TestBadBaseOffsetNotAHole: a whole batch with a valid CRC whose
// base offset does not follow, starting a few bytes before a sector
// boundary, is taken for a lost sector only when those bytes are zeros
// (zeroedBaseOffset); with a nonzero byte among them it is corruption
// wherever it is — past durable too — and Recover cuts nothing.
func TestBadBaseOffsetNotAHole(t *testing.T) {
	mem := vfs.NewMem()
	const dir = "/d"
	require.NoError(t, mem.MkdirAll(dir, 0o755))
	f := newRecoverFixture(t, mem, dir, 3)
	s := f.open(t)
	at := (f.m.size()/sectorSize+2)*sectorSize - 6 // 6 bytes before a boundary
	appendBatches(t, s, f.m, padBatch(t, f.m.next(), at-f.m.size()))
	appendBatches(t, s, f.m, simpleBatch(t, f.m.next(), 2, 100))
	mustClose(t, s)
	require.Equal(t, at, f.last().pos)
	setBaseOffset(t, mem, f.path, at, 1<<60) // its first 6 bytes not all zero
	before := readFile(t, mem, f.path)
	s = f.open(t)
	_, err := s.Recover(0)
	f.checkNothingCut(t, err, at, before)
}
