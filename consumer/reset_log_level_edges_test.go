package consumer_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// TestResetLineAtTheEdges: the reset of a position one past the log end
// (the high watermark 1, the position 2) is logged at Warn, as one far
// past it is (TestResetLineLevels); and an out-of-range answer that gives
// no high watermark nor log start (-1, as Kafka's broker answers one)
// tells neither where the position is, so its reset is logged at Info,
// as the Java consumer logs every reset, not at Warn as one past the end.
func TestResetLineAtTheEdges(t *testing.T) {
	t.Run("one past the end", func(t *testing.T) {
		b := openBroker(t, map[string]int{"t": 1})
		values(t, b, "t", 0, "a")
		var rec logRecorder
		c := newConsumer(t, b, consumer.Logger(rec.logger()), consumer.FetchMaxWait(time.Millisecond))
		require.NoError(t, c.Assign("t", 0, consumer.At(2)))
		// The reset's Poll, then the one that looks up the log start and
		// reads "a" from it.
		pollUntil(t, c, 1)
		require.Equal(t, []string{"2 1"}, rec.attrs("offset out of range past the log end: resetting", "offset", "high_watermark"))
		require.Empty(t, rec.attrs("offset out of range: resetting"))
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, r := range rec.recs {
			if r.Message == "offset out of range past the log end: resetting" {
				require.Equal(t, slog.LevelWarn, r.Level)
			}
		}
	})
	t.Run("not told", func(t *testing.T) {
		client := &fakeClient{t: t,
			listOffset: func(_ context.Context, _ string, _ int32, ts int64) (api.ListedOffset, error) {
				return api.ListedOffset{Offset: 7}, nil
			},
			fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
				return api.FetchResponse{Partitions: []api.FetchedPartition{{Topic: "t", Partition: 0,
					Err: log.ErrOffsetOutOfRange, HighWatermark: -1, LogStartOffset: -1}}}, nil
			}}
		var rec logRecorder
		c := newConsumer(t, client, consumer.Logger(rec.logger()), consumer.RetryBackoff(time.Hour), consumer.FetchMaxWait(time.Millisecond))
		require.NoError(t, c.Assign("t", 0, consumer.At(3)))
		_, err := c.Poll(testCtx(t))
		require.NoError(t, err)
		require.Equal(t, []string{"3 -1"}, rec.attrs("offset out of range: resetting", "offset", "high_watermark"))
		require.Empty(t, rec.attrs("offset out of range past the log end: resetting"))
	})
}
