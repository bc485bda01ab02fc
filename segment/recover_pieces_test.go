package segment

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// recBatch returns a valid batch of one record of value size n at base.
func recBatch(t *testing.T, base int64, n int) []byte {
	t.Helper()
	var bld record.Builder
	bld.Reset()
	bld.Append(1, nil, bytes.Repeat([]byte{'v'}, n), nil)
	b, err := bld.Finish(compression.None)
	require.NoError(t, err)
	b.SetBaseOffset(base)
	return append([]byte(nil), b...)
}

// TestRecoverFindsABatchAtEveryPieceBoundary: Recover's search for
// a valid batch after a bad one finds it wherever it starts relative to
// the pieces it reads a file without views in (recoverCheckBytes), also
// when the batch is larger than a piece, on the OS's files, on a memory
// file without views and on one with them (its chunks): bad bytes followed by a valid batch are
// corruption, and nothing is cut.
func TestRecoverFindsABatchAtEveryPieceBoundary(t *testing.T) {
	if testing.Short() {
		t.Skip("writes files of several MiB")
	}
	first := recBatch(t, 0, 50)
	from := int64(len(first)) // where the bad bytes start
	for _, fsName := range []string{"os", "mem", "memviews"} {
		for _, size := range []int{30, recoverCheckBytes + 1000} {
			second := recBatch(t, 1, size)
			for _, d := range []int{-record.HeaderSize - 1, -record.HeaderSize, -record.HeaderSize + 1,
				-record.MagicOffset - 1, -record.MagicOffset, -record.MagicOffset + 1, -1, 0, 1, 2} {
				// The second batch starts d bytes from the end of the first
				// piece the search reads, which begins at from+1.
				at := from + 1 + recoverCheckBytes + int64(d)
				name := fmt.Sprintf("%s/size%d/d%d", fsName, size, d)
				var fsys vfs.FS
				dir := "/d"
				switch fsName {
				case "os":
					fsys, dir = vfs.OS, t.TempDir()
				case "memviews":
					mem := vfs.NewMem()
					require.NoError(t, mem.MkdirAll(dir, 0o755))
					fsys = mem
				default:
					var largest atomic.Int64
					mem := vfs.NewMem()
					require.NoError(t, mem.MkdirAll(dir, 0o755))
					fsys = readSizes{mem, &largest}
				}
				s, err := Create(fsys, dir, 0, Config{})
				require.NoError(t, err)
				require.NoError(t, s.Append(first))
				require.NoError(t, s.Close())
				f, err := fsys.Open(dir + "/" + FileName(0, LogSuffix))
				require.NoError(t, err)
				_, err = f.WriteAt(bytes.Repeat([]byte{'x'}, int(at-from)), from)
				require.NoError(t, err)
				_, err = f.WriteAt(second, at)
				require.NoError(t, err)
				require.NoError(t, f.Close())

				s, _, err = Open(fsys, dir, 0, Config{}, OpenOptions{Active: true})
				require.NoError(t, err, name)
				_, err = s.Recover(0)
				var ce *record.CorruptError
				require.ErrorAs(t, err, &ce, name)
				require.Contains(t, ce.Reason, fmt.Sprintf("followed by a valid batch at position %d", at), name)
				require.EqualValues(t, at+int64(len(second)), s.Size(), name)
				require.NoError(t, s.Close())
			}
		}
	}
}

// TestRecoverReadsACandidateInPieces: bad bytes that look like a
// batch header (the magic byte where a batch has it) and claim a length
// larger than a piece, but are no batch (their CRC fails), are read in
// pieces of recoverCheckBytes too, not in one buffer of the length they
// claim: up to the segment's size, which a 32-bit process may not have
// room for. The tail is cut as torn, as before.
func TestRecoverReadsACandidateInPieces(t *testing.T) {
	mem, _ := candidateTail(t)
	var largest atomic.Int64
	s, _, err := Open(readSizes{mem, &largest}, "/d", 0, Config{}, OpenOptions{Active: true})
	require.NoError(t, err)
	largest.Store(0)
	res, err := s.Recover(0)
	require.NoError(t, err)
	require.Equal(t, int64(candidateTailBytes), res.Truncated)
	require.LessOrEqual(t, largest.Load(), int64(recoverCheckBytes), "a read of the tail")
	require.NoError(t, s.Close())
}

// candidateTail makes the segment /d of a memory FS: a batch, then a
// tail of 3 × recoverCheckBytes bad bytes holding, 100 bytes in, what
// looks like a batch header (the magic byte where a batch has it)
// claiming all but the last 100 of them, which is no batch (its CRC
// fails). It returns the FS and where the tail begins.
func candidateTail(t *testing.T) (vfs.FS, int64) {
	t.Helper()
	mem := vfs.NewMem()
	require.NoError(t, mem.MkdirAll("/d", 0o755))
	s, err := Create(mem, "/d", 0, Config{})
	require.NoError(t, err)
	first := recBatch(t, 0, 50)
	require.NoError(t, s.Append(first))
	require.NoError(t, s.Close())
	from := int64(len(first))
	bad := bytes.Repeat([]byte{'x'}, candidateTailBytes)
	hdr := bad[100:]
	record.Batch(hdr).SetBaseOffset(1)
	binary.BigEndian.PutUint32(hdr[8:], uint32(candidateTailBytes-200-12))
	hdr[record.MagicOffset] = record.Magic
	f, err := mem.Open("/d/" + FileName(0, LogSuffix))
	require.NoError(t, err)
	_, err = f.WriteAt(bad, from)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return mem, from
}

// candidateTailBytes is the length of candidateTail's tail.
const candidateTailBytes = 3 * recoverCheckBytes

// cancelAt is an FS whose files have no views and that calls cancel at
// the first read of a byte past position after.
type cancelAt struct {
	vfs.FS
	after  int64
	cancel context.CancelFunc
}

func (c cancelAt) Open(name string) (vfs.File, error) {
	f, err := c.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return cancelAtFile{f, c}, nil
}

type cancelAtFile struct {
	vfs.File
	c cancelAt
}

func (f cancelAtFile) ReadAt(b []byte, off int64) (int, error) {
	if off+int64(len(b)) > f.c.after+1 {
		f.c.cancel()
	}
	return f.File.ReadAt(b, off)
}

// TestRecoverContextEndsInTheSearch: RecoverContext looks at its
// ctx while it searches a bad tail for a valid batch too, piece by piece:
// a ctx that ends there cuts it short, nothing cut and the indexes
// distrusted, as when it ends while batches are read. The search, which
// reads up to the whole rest of the segment (and a candidate's claimed
// length at each position that looks like a batch header), went on to
// its end and cut the tail.
func TestRecoverContextEndsInTheSearch(t *testing.T) {
	mem := vfs.NewMem()
	require.NoError(t, mem.MkdirAll("/d", 0o755))
	s, err := Create(mem, "/d", 0, Config{})
	require.NoError(t, err)
	first := recBatch(t, 0, 50)
	require.NoError(t, s.Append(first))
	require.NoError(t, s.Close())
	from := int64(len(first))
	const tail = 3 * recoverCheckBytes
	f, err := mem.Open("/d/" + FileName(0, LogSuffix))
	require.NoError(t, err)
	_, err = f.WriteAt(bytes.Repeat([]byte{'x'}, tail), from)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, _, err = Open(cancelAt{mem, from + record.HeaderSize, cancel}, "/d", 0, Config{}, OpenOptions{Active: true})
	require.NoError(t, err)
	require.NoError(t, ctx.Err(), "Open read the tail")
	_, err = s.RecoverContext(ctx, 0)
	require.ErrorIs(t, err, context.Canceled)
	require.EqualValues(t, from+tail, s.Size(), "nothing cut")
	require.True(t, s.IndexDistrusted().Offset)
	require.NoError(t, s.Close())
	st, err := mem.Stat("/d/" + FileName(0, LogSuffix))
	require.NoError(t, err)
	require.EqualValues(t, from+tail, st.Size())
}

// readSizes is an FS whose files have no views (as the OS's), and that
// records the largest ReadAt.
type readSizes struct {
	vfs.FS
	largest *atomic.Int64
}

func (r readSizes) Open(name string) (vfs.File, error) {
	f, err := r.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return readSizesFile{f, r.largest}, nil
}

type readSizesFile struct {
	vfs.File
	largest *atomic.Int64
}

func (f readSizesFile) ReadAt(b []byte, off int64) (int, error) {
	for {
		if l := f.largest.Load(); int64(len(b)) <= l || f.largest.CompareAndSwap(l, int64(len(b))) {
			break
		}
	}
	return f.File.ReadAt(b, off)
}

// TestRecoverReadsABadTailInPieces: Recover's search for a valid
// batch after a bad one reads a file without views (the OS's) in pieces
// of recoverCheckBytes, not the whole rest of the segment in one buffer:
// up to segment.bytes (1 GiB by default, 2 GiB - 1 at most) at once, which
// a 32-bit process may not have room for. The answer is the same: bad
// bytes followed by a valid batch are corruption.
func TestRecoverReadsABadTailInPieces(t *testing.T) {
	mem := vfs.NewMem()
	require.NoError(t, mem.MkdirAll("/d", 0o755))
	s, err := Create(mem, "/d", 0, Config{})
	require.NoError(t, err)
	value := make([]byte, 64<<10)
	for i := range value {
		value[i] = 'x' // no zeros: a bad batch is not taken for a lost sector
	}
	for i := range int64(200) { // 12.8 MiB
		var bld record.Builder
		bld.Reset()
		bld.Append(1, nil, value, nil)
		b, err := bld.Finish(compression.None)
		require.NoError(t, err)
		b.SetBaseOffset(i)
		require.NoError(t, s.Append(b))
	}
	require.NoError(t, s.Close())
	f, err := mem.Open("/d/" + FileName(0, LogSuffix))
	require.NoError(t, err)
	_, err = f.WriteAt([]byte{1}, record.HeaderSize+100) // the first batch's CRC fails
	require.NoError(t, err)
	require.NoError(t, f.Close())

	var largest atomic.Int64
	s, _, err = Open(readSizes{mem, &largest}, "/d", 0, Config{}, OpenOptions{Active: true})
	require.NoError(t, err)
	largest.Store(0)
	_, err = s.Recover(0)
	var ce *record.CorruptError
	require.ErrorAs(t, err, &ce)
	require.Contains(t, ce.Reason, "followed by a valid batch")
	require.LessOrEqual(t, largest.Load(), int64(recoverCheckBytes), "a read of the tail")
	require.NoError(t, s.Close())
}

// TestRecoverContextEndsInACandidatesCRC: RecoverContext looks at
// its ctx before each piece of a candidate batch's CRC that it reads (a
// header in a bad tail claiming megabytes): a ctx that ends while the
// first piece is read stops the search there, no later piece read, as
// it does between the pieces of the tail. Kills: crcHolds without its
// ctx check (it read the candidate's every piece, then the search
// stopped at its next piece of the tail).
func TestRecoverContextEndsInACandidatesCRC(t *testing.T) {
	mem, from := candidateTail(t) // the header's CRC is read in three pieces
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &cancelOnRead{FS: mem, cancel: cancel, past: from + 1 + recoverCheckBytes}
	s, _, err := Open(w, "/d", 0, Config{}, OpenOptions{Active: true})
	require.NoError(t, err)
	w.armed.Store(true)
	_, err = s.RecoverContext(ctx, 0)
	require.ErrorIs(t, err, context.Canceled)
	require.EqualValues(t, 1, w.after.Load(), "reads from the one that ended ctx on (the CRC's first piece)")
	require.EqualValues(t, from+candidateTailBytes, s.Size(), "nothing cut")
	require.NoError(t, s.Close())
}

// cancelOnRead is an FS whose files' first ReadAt, once armed, that ends
// past past calls cancel; after counts the reads from that one on.
type cancelOnRead struct {
	vfs.FS
	cancel context.CancelFunc
	past   int64
	armed  atomic.Bool
	after  atomic.Int32
}

func (c *cancelOnRead) Open(name string) (vfs.File, error) {
	f, err := c.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return cancelOnReadFile{f, c}, nil
}

type cancelOnReadFile struct {
	vfs.File
	c *cancelOnRead
}

func (f cancelOnReadFile) ReadAt(b []byte, off int64) (int, error) {
	if f.c.after.Load() > 0 {
		f.c.after.Add(1)
	} else if f.c.armed.Load() && off+int64(len(b)) > f.c.past {
		f.c.after.Add(1)
		f.c.cancel()
	}
	return f.File.ReadAt(b, off)
}
