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

// TestReview32RecoverFindsABatchAtEveryPieceBoundary: Recover's search for
// a valid batch after a bad one finds it wherever it starts relative to
// the pieces it reads a file without views in (recoverCheckBytes), also
// when the batch is larger than a piece, on the OS's files, on a memory
// file without views and on one with them (its chunks): bad bytes followed by a valid batch are
// corruption, and nothing is cut.
func TestReview32RecoverFindsABatchAtEveryPieceBoundary(t *testing.T) {
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

// TestReview32RecoverReadsACandidateInPieces: bad bytes that look like a
// batch header (the magic byte where a batch has it) and claim a length
// larger than a piece, but are no batch (their CRC fails), are read in
// pieces of recoverCheckBytes too, not in one buffer of the length they
// claim: up to the segment's size, which a 32-bit process may not have
// room for. The tail is cut as torn, as before.
func TestReview32RecoverReadsACandidateInPieces(t *testing.T) {
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

// TestReview32RecoverContextEndsInTheSearch: RecoverContext looks at its
// ctx while it searches a bad tail for a valid batch too, piece by piece:
// a ctx that ends there cuts it short, nothing cut and the indexes
// distrusted, as when it ends while batches are read. The search, which
// reads up to the whole rest of the segment (and a candidate's claimed
// length at each position that looks like a batch header), went on to
// its end and cut the tail.
func TestReview32RecoverContextEndsInTheSearch(t *testing.T) {
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
