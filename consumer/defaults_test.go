package consumer_test

import (
	"context"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// TestDocumentedFetchDefaults: the fetch settings of a consumer
// made without options are those its options' docs, the README ("the
// same names, in consumer"; FetchMaxWait 500 ms, Kafka's
// fetch.max.wait.ms) and docs/details.md state, Kafka's consumer
// defaults: FetchMinBytes 1, FetchMaxWait 500 ms, FetchMaxBytes 50 MiB,
// FetchMaxPartitionBytes 1 MiB; and an offset out of range goes to the
// log start (ResetEarliest). Only FetchMaxWait was pinned.
func TestDocumentedFetchDefaults(t *testing.T) {
	var reqs []api.FetchRequest
	var looked []int64
	fc := &fakeClient{t: t,
		listOffset: func(ctx context.Context, topic string, p int32, ts int64) (api.ListedOffset, error) {
			looked = append(looked, ts)
			return api.ListedOffset{Offset: 3, Timestamp: -1}, nil
		},
		fetch: func(ctx context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
			reqs = append(reqs, *req)
			resp := api.FetchResponse{}
			for _, p := range req.Partitions {
				fp := api.FetchedPartition{Topic: p.Topic, Partition: p.Partition, HighWatermark: 5}
				if p.Offset == 100 {
					fp.Err = log.ErrOffsetOutOfRange
				}
				resp.Partitions = append(resp.Partitions, fp)
			}
			return resp, nil
		}}
	c := newConsumer(t, fc)
	require.NoError(t, c.Assign("t", 0, consumer.At(100)))
	for range 2 {
		_, err := c.Poll(testCtx(t))
		require.NoError(t, err)
	}
	require.NotEmpty(t, reqs)
	r := reqs[0]
	require.Equal(t, 1, r.MinBytes, "FetchMinBytes")
	require.Equal(t, 500*time.Millisecond, r.MaxWait, "FetchMaxWait")
	require.Equal(t, 50<<20, r.MaxBytes, "FetchMaxBytes")
	require.Len(t, r.Partitions, 1)
	require.Equal(t, 1<<20, r.Partitions[0].MaxBytes, "FetchMaxPartitionBytes")
	require.Equal(t, []int64{api.Earliest}, looked, "out of range: reset to the log start")
	pos, ok := c.Position("t", 0)
	require.True(t, ok)
	require.EqualValues(t, 3, pos)
}
