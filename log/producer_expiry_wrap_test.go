package log

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestProducerExpiryAcrossTheNanosecondWrap: an idempotent producer id is
// kept for ProducerExpiration after its last append by the log's clock,
// also when that clock has just passed 2262-04-11T23:47:16.854775807Z,
// the last instant whose Unix nanoseconds an int64 holds. The ids' times
// are kept in Unix nanoseconds, which wrap there (time.Time.UnixNano is
// undefined past it, and wraps in practice): for ProducerExpiration after
// that instant, an id appended since read as appended some 584 years
// before the cutoff, and every Maintain forgot it, so that a retry of
// its last batch was appended again rather than answered as a duplicate.
func TestProducerExpiryAcrossTheNanosecondWrap(t *testing.T) {
	ctx := context.Background()
	for _, start := range []time.Time{
		time.Date(2262, 4, 11, 23, 50, 0, 0, time.UTC), // just past the wrap
		time.Date(2262, 4, 11, 23, 40, 0, 0, time.UTC), // just before it
	} {
		t.Run(start.Format(time.RFC3339), func(t *testing.T) {
			clock := &fakeClock{t: start}
			l, err := Open("/d", Config{RetentionTime: -1, TimestampAfterMax: -1}, Options{FS: vfs.NewMem(), Clock: clock, ProducerExpiration: 24 * time.Hour})
			require.NoError(t, err)
			defer l.Close()
			first := appendOK(t, l, idemBatch(t, 7, 0, 0, 2))
			clock.Advance(time.Hour) // within ProducerExpiration
			require.NoError(t, l.Maintain(ctx))
			requireDuplicate(t, l, idemBatch(t, 7, 0, 0, 2), first.FirstOffset)
			clock.Advance(24 * time.Hour) // past it
			require.NoError(t, l.Maintain(ctx))
			res := appendOK(t, l, idemBatch(t, 7, 0, 0, 2))
			require.False(t, res.Duplicate, "forgotten ProducerExpiration after its last append")
		})
	}
}

// TestMergeSnapshotKeepsTheLaterTimeAcrossTheWrap: merging a snapshot's
// producer state keeps the later of the two last-append times as expire
// reads them (now - last, wrapping), also when the two straddle the
// Unix-nanosecond wrap: max of the raw int64s kept the earlier one, an
// id then read as some 584 years old and forgotten at the next Maintain.
func TestMergeSnapshotKeepsTheLaterTimeAcrossTheWrap(t *testing.T) {
	before := int64(math.MaxInt64) - int64(time.Minute) // just before the wrap
	after := before + int64(2*time.Minute)              // a minute past it: negative
	require.Negative(t, after)
	for _, tc := range []struct{ mine, snap int64 }{{before, after}, {after, before}} {
		b := []producerBatch{{firstSeq: 0, lastSeq: 1, firstOffset: 0, lastOffs: 1, appendTime: unknownAppendTime}}
		ps := producers{7: {batches: slices.Clone(b), last: tc.mine}}
		ps.mergeSnapshot(producers{7: {batches: slices.Clone(b), last: tc.snap}}, nil)
		require.Equal(t, after, ps[7].last, "merged %d with the snapshot's %d", tc.mine, tc.snap)
		require.Zero(t, ps.expire(after+int64(time.Hour), 24*time.Hour), "forgotten an hour after its last append")
	}
}
