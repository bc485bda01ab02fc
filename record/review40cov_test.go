package record

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReview40ShortBatch: every entry point that checks a batch refuses
// one shorter than a header — Validate, IterBuffer, CheckFraming,
// CheckFramingBuffer — with a *CorruptError at the position given,
// matching ErrCorrupt and ErrTruncated (a torn write, or a read that cut
// the batch), and does not panic (the session 40 coverage pass found no
// test giving them one: callers check the length first).
func TestReview40ShortBatch(t *testing.T) {
	for _, n := range []int{0, 1, LogOverhead, HeaderSize - 1} {
		b := Batch(make([]byte, n))
		check := func(what string, err error) {
			t.Helper()
			require.ErrorIs(t, err, ErrCorrupt, "%s of %d bytes", what, n)
			require.ErrorIs(t, err, ErrTruncated, "%s of %d bytes", what, n)
			var ce *CorruptError
			require.True(t, errors.As(err, &ce), "%s: %T", what, err)
			require.Equal(t, int64(77), ce.Position, what)
		}
		check("Validate", b.Validate(77))
		_, err := b.IterBuffer(77, 1<<20, nil)
		check("IterBuffer", err)
		ts, err := b.CheckFraming(77)
		check("CheckFraming", err)
		require.Equal(t, int64(NoTimestamp), ts)
		buf := make([]byte, 0, 8)
		out, ts, err := b.CheckFramingBuffer(77, 1<<20, buf)
		check("CheckFramingBuffer", err)
		require.Equal(t, int64(NoTimestamp), ts)
		require.Equal(t, 0, len(out))
	}
}
