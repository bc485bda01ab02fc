package segment

import (
	"math"
	"testing"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// lastBase is the largest base offset a segment can have.
const lastBase int64 = math.MaxInt64 - math.MaxInt32

// endingBatch returns a batch of one record at base whose last offset is
// last (a compacted batch's offset range).
func endingBatch(t *testing.T, base, last int64) []byte {
	t.Helper()
	var bld record.Builder
	bld.Reset()
	bld.SetLastOffsetDelta(int32(last - base))
	bld.Append(1, []byte("k"), []byte("v"), nil)
	b, err := bld.Finish(compression.None)
	require.NoError(t, err)
	b.SetBaseOffset(base)
	return append([]byte(nil), b...)
}

// TestReview32BatchEndingAtMaxInt64: a segment refuses a batch whose
// last offset is math.MaxInt64 — Append as corrupt, nothing written, and
// Open's scan and Recover as corrupt, not a torn write — since no offset
// follows it (NextOffset would wrap); one ending at math.MaxInt64 - 1 is
// a segment's. Append took it, the segment's NextOffset then
// math.MinInt64; Recover took it too.
func TestReview32BatchEndingAtMaxInt64(t *testing.T) {
	fsys := vfs.NewMem()
	require.NoError(t, fsys.MkdirAll("/d", 0o755))
	s, err := Create(fsys, "/d", lastBase, Config{})
	require.NoError(t, err)
	var ce *record.CorruptError
	require.ErrorAs(t, s.Append(endingBatch(t, lastBase, math.MaxInt64)), &ce)
	require.EqualValues(t, lastBase, s.NextOffset())
	require.Zero(t, s.Size())
	require.NoError(t, s.Append(endingBatch(t, lastBase, math.MaxInt64-1)))
	require.EqualValues(t, int64(math.MaxInt64), s.NextOffset())
	require.NoError(t, s.Close())

	// On disk, its base offset (which no CRC covers) changed to end it at
	// math.MaxInt64.
	f, err := fsys.Open("/d/" + FileName(lastBase, LogSuffix))
	require.NoError(t, err)
	var off [8]byte
	record.Batch(off[:]).SetBaseOffset(lastBase + 1)
	_, err = f.WriteAt(off[:], 0)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	for _, active := range []bool{false, true} {
		s, needs, err := Open(fsys, "/d", lastBase, Config{}, OpenOptions{Active: active})
		require.NoError(t, err)
		require.True(t, needs, "active %v: Open's scan took the batch", active)
		_, err = s.Recover(0)
		require.ErrorAs(t, err, &ce, "active %v", active)
		require.NoError(t, s.Close())
	}
}
