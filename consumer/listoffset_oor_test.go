package consumer_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// TestListOffsetOutOfRangeRetried: *runnel.Broker's ListOffset answers
// log.ErrOffsetOutOfRange when the log kept moving under its search
// (truncations, DeleteRecords): the look-up raced with the log, no
// position is out of range, and the same look-up made again answers. The
// consumer looks the position up again after RetryBackoff, without a
// word, under every reset policy, and reads from the offset found. It
// reported the error (under ResetEarliest too, whose out-of-range
// positions are reset without a word) and stopped the partition for good,
// at no position, until a Seek or Assign.
func TestListOffsetOutOfRangeRetried(t *testing.T) {
	for _, policy := range []consumer.ResetPolicy{consumer.ResetEarliest, consumer.ResetLatest, consumer.ResetNone} {
		t.Run(policy.String(), func(t *testing.T) {
			data := batchAt(t, 0, "a", "b", "c")
			var lookups atomic.Int32
			client := &fakeClient{t: t,
				listOffset: func(_ context.Context, topic string, p int32, ts int64) (api.ListedOffset, error) {
					if lookups.Add(1) == 1 {
						return api.ListedOffset{}, log.ErrOffsetOutOfRange
					}
					return api.ListedOffset{Offset: 1, Timestamp: 1}, nil
				},
				fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
					return api.FetchResponse{Partitions: []api.FetchedPartition{{
						Topic: "t", Partition: 0, HighWatermark: 3, Records: data,
					}}}, nil
				},
			}
			c := newConsumer(t, client, consumer.ResetOffset(policy),
				consumer.FetchMaxWait(time.Millisecond), consumer.RetryBackoff(time.Millisecond))
			require.NoError(t, c.Assign("t", 0, consumer.AtTime(time.UnixMilli(1))))
			// pollUntil fails on any error a Poll reports.
			require.Equal(t, []string{"b", "c"}, pollUntil(t, c, 2).values("t", 0))
			require.GreaterOrEqual(t, lookups.Load(), int32(2))
		})
	}
}
