package consumer_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/stretchr/testify/require"
)

// TestPositionAboveHighWatermarkNotMovedBack: a position above the high
// watermark (a Seek past it, to an offset the log holds but has not made
// readable yet) while the Client answers with a batch that straddles the
// high watermark and holds the position. Nothing is readable: the position
// stays where it is, and once the high watermark passes it, the records
// come from there on, none below it (they are before the position the
// application set). The consumer moved the position back to the high
// watermark, and later returned the records from there, below the
// position, which a Kafka user reads as records it skipped on purpose
// coming back.
func TestPositionAboveHighWatermarkNotMovedBack(t *testing.T) {
	for _, mode := range []string{"Poll", "Records"} {
		t.Run(mode, func(t *testing.T) {
			// Offsets 3 to 11 in one batch; the high watermark is 5 at
			// first, then 12.
			data := batchAt(t, 3, "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11")
			var hw atomic.Int64
			hw.Store(5)
			var fetched atomic.Int32
			var onSecond func() // runs in the second fetch
			client := &fakeClient{t: t, fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
				if fetched.Add(1) == 2 && onSecond != nil {
					onSecond()
				}
				return api.FetchResponse{Partitions: []api.FetchedPartition{{
					Topic: "t", Partition: 0, HighWatermark: hw.Load(), Records: data,
				}}}, nil
			}}
			c := newConsumer(t, client, consumer.FetchMaxWait(time.Millisecond))
			require.NoError(t, c.Assign("t", 0, consumer.At(10)))

			// Nothing to read yet.
			switch mode {
			case "Poll":
				fs, err := c.Poll(testCtx(t))
				require.NoError(t, err)
				require.Zero(t, fs.NumRecords())
			case "Records":
				// The loop's first fetch is answered; the second tells
				// that the loop went on past that answer, and ends it.
				ctx, cancel := context.WithCancel(testCtx(t))
				onSecond = cancel
				for r, err := range c.Records(ctx) {
					if !ctxEnd(ctx, err) {
						t.Fatalf("yielded %v, %v", r, err)
					}
				}
				cancel()
				onSecond = nil
			}
			pos, ok := c.Position("t", 0)
			require.True(t, ok)
			require.EqualValues(t, 10, pos, "the position moved back")

			hw.Store(12)
			var got []string
			switch mode {
			case "Poll":
				got = pollUntil(t, c, 2).values("t", 0)
			case "Records":
				got = vals(readN(t, c, 2))
			}
			require.Equal(t, []string{"v10", "v11"}, got)
			pos, _ = c.Position("t", 0)
			require.EqualValues(t, 12, pos)
		})
	}
}
