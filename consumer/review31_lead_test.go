package consumer

import (
	"bytes"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
)

// TestReview31TrimLastOffsetAtMaxInt64: a batch whose last offset is
// math.MaxInt64 has no offset after it (NextOffset wraps to
// math.MinInt64); kept after another batch, it moved the position back
// to math.MinInt64, checked or not, though trim promises it never moves
// back.
func TestReview31TrimLastOffsetAtMaxInt64(t *testing.T) {
	batch := func(base int64, n int) []byte {
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
	first, last := batch(math.MaxInt64-3, 1), batch(math.MaxInt64-2, 3)
	require.Equal(t, int64(math.MaxInt64), record.Batch(last).LastOffset())
	data := append(bytes.Clone(first), last...)
	for _, check := range []bool{true, false} {
		_, next, _ := trim(data, math.MaxInt64-3, math.MaxInt64, check)
		require.GreaterOrEqual(t, next, int64(math.MaxInt64-3), "check %v: the position moved back", check)
	}
}
