package log

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDeleteSegmentsStopLeftovers: what a deletion of segments cut short
// by a failed removal leaves below the log start offset is not served
// (reads, time searches) once the log is reopened, and goes at the next
// ApplyRetention whatever the retention, as Kafka's
// deleteLogStartOffsetBreachedSegments removes them: nothing removed them,
// under unlimited retention or a compact policy.
func TestDeleteSegmentsStopLeftovers(t *testing.T) {
	for _, cfg := range []Config{
		{Sync: SyncAlways, SegmentBytes: 100, RetentionTime: -1},
		{Sync: SyncAlways, SegmentBytes: 100, CleanupPolicy: Compact},
	} {
		t.Run(cfg.CleanupPolicy.String(), func(t *testing.T) {
			const ts = 1_700_000_000_000
			e, _ := deletionStoppedAt1(t, cfg)

			l := e.open(cfg)
			defer l.Close()
			require.EqualValues(t, 3, l.LogStartOffset())
			off, ok, err := l.OffsetForTime(ts + 1)
			require.NoError(t, err)
			require.True(t, ok)
			require.EqualValues(t, 3, off, "not an offset below the log start")
			off, ok, err = l.OffsetOfMaxTimestamp(context.Background())
			require.NoError(t, err)
			require.True(t, ok)
			require.EqualValues(t, 4, off)
			_, err = l.Read(1, 1<<20, l.LogEndOffset())
			require.ErrorIs(t, err, ErrOffsetOutOfRange)

			start, err := l.DeleteRecordsBefore(context.Background(), 3)
			require.NoError(t, err)
			require.EqualValues(t, 3, start)
			require.Equal(t, 4, l.Segments(), "a deletion at the log start deletes nothing")
			n, err := l.ApplyRetention(context.Background())
			require.NoError(t, err)
			require.Equal(t, 2, n, "the segments wholly below the log start, under unlimited retention")
			require.Equal(t, 2, l.Segments())
			require.EqualValues(t, 3, l.LogStartOffset())
			require.Len(t, readAll(t, l, 3), 2)

		})
	}
}
