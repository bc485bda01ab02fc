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

// A look-up (ListOffset) that fails tells no high watermark or log start:
// its Fetch reports -1 for both (resolve's noOffsets), not 0, which reads
// as an empty partition's. Here the error is the Client's broken contract
// (a negative offset), reported rather than retried.
func TestListOffsetErrorHasNoOffsets(t *testing.T) {
	var fetched atomic.Int32
	client := serve(t, 1, batchAt(t, 0, "a"), &fetched)
	client.listOffset = func(ctx context.Context, topic string, p int32, ts int64) (api.ListedOffset, error) {
		return api.ListedOffset{Offset: -7}, nil
	}
	c := newConsumer(t, client, consumer.RetryBackoff(time.Hour), consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.End()))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.Len(t, fs, 1)
	require.ErrorIs(t, fs[0].Err, api.ErrInvalidRequest)
	require.EqualValues(t, -1, fs[0].HighWatermark, "%v", fs[0].Err)
	require.EqualValues(t, -1, fs[0].LogStartOffset, "%v", fs[0].Err)
}
