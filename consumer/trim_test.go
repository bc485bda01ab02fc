package consumer

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
)

// TestTrimRefusesOffsetsRunningBack: with CRCs unchecked (the
// Client vouches for them), a batch whose last offset lies below its base
// is refused with record.ErrCorrupt, where trim kept it and moved the
// position back below where the fetch began (FuzzFetchRecords
// found it): a consumer would read records again, or loop.
func TestTrimRefusesOffsetsRunningBack(t *testing.T) {
	first, back := trimBatch(t, 5, 1), trimBatch(t, 6, 1)
	binary.BigEndian.PutUint32(back[23:], uint32(0xfffffff0)) // lastOffsetDelta -16: last offset -10
	require.Equal(t, int32(-16), record.Batch(back).LastOffsetDelta())
	data := append(bytes.Clone(first), back...)

	kept, next, err := trim(data, 5, 100, false)
	require.ErrorIs(t, err, record.ErrCorrupt)
	require.Equal(t, first, kept, "the good batch before it is kept")
	require.EqualValues(t, 6, next, "the position moves past the good batch only")

	kept, next, err = trim(back, 6, 100, false)
	require.ErrorIs(t, err, record.ErrCorrupt)
	require.Empty(t, kept)
	require.EqualValues(t, 6, next)

	// Checked, the CRC (changed with the field) refuses it already.
	_, _, err = trim(data, 5, 100, true)
	require.ErrorIs(t, err, record.ErrCorrupt)
}

// TestTrimLastOffsetAtMaxInt64: a batch whose last offset is
// math.MaxInt64 has no offset after it (NextOffset wraps to
// math.MinInt64); kept after another batch, it moved the position back
// to math.MinInt64, checked or not, though trim promises it never moves
// back.
func TestTrimLastOffsetAtMaxInt64(t *testing.T) {
	first, last := trimBatch(t, math.MaxInt64-3, 1), trimBatch(t, math.MaxInt64-2, 3)
	require.Equal(t, int64(math.MaxInt64), record.Batch(last).LastOffset())
	data := append(bytes.Clone(first), last...)
	for _, check := range []bool{true, false} {
		_, next, _ := trim(data, math.MaxInt64-3, math.MaxInt64, check)
		require.GreaterOrEqual(t, next, int64(math.MaxInt64-3), "check %v: the position moved back", check)
	}
}

// trimBatch is a batch of n records at base, its CRC sound.
func trimBatch(t *testing.T, base int64, n int) []byte {
	var b record.Builder
	b.Reset()
	for range n {
		b.Append(1_700_000_000_000, nil, []byte("v"), nil)
	}
	data, err := b.AppendTo(nil, compression.None)
	require.NoError(t, err)
	record.Batch(data).SetBaseOffset(base)
	record.Batch(data).UpdateCRC()
	return data
}
