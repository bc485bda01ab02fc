package log

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRetentionStopsAtHighWatermark: as Kafka's, retention deletes no
// segment that holds records at or past the high watermark (under
// SyncAlways the durable offset), so that the log start offset is never
// past it: consumers would see an earliest offset past the latest.
func TestRetentionStopsAtHighWatermark(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{SegmentBytes: 300, RetentionTime: time.Hour})
	defer l.Close()
	old := e.clock.Now().UnixMilli()
	var waits []Durability
	for i := range 20 {
		_, d, err := l.AppendAsync(context.Background(), valueBatch(t, old, fmt.Sprint(i)), AppendOptions{})
		require.NoError(t, err)
		waits = append(waits, d)
	}
	require.Greater(t, l.Segments(), 2)
	e.clock.Advance(2 * time.Hour)
	_, err := l.ApplyRetention()
	require.NoError(t, err)
	o := l.Offsets()
	require.LessOrEqual(t, o.Start, o.Durable, "the log start offset passed the high watermark")

	for _, d := range waits {
		require.NoError(t, d.Wait(context.Background()))
	}
	_, err = l.ApplyRetention()
	require.NoError(t, err)
	require.Equal(t, 1, l.Segments(), "every rolled segment went, once synced")
}
