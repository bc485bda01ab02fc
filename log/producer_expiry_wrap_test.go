package log

import (
	"context"
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
