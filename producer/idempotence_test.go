package producer_test

import (
	"context"
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// Broker.Produce may answer api.ErrBrokerClosed after the append (the
// broker closed and its closing fsync failed, as ProduceAsync's Wait
// documents): the batch's sequence numbers must not go to other records,
// or a broker that kept the batch takes the next one of the same size for
// a duplicate and drops it, answering with the first one's offsets.
func TestBrokerClosedAfterTheAppendDoesNotReuseSequences(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := &hookClient{b: b}
	c.setHook(func(_ context.Context, call int, _ *api.ProduceRequest, next func() (api.ProduceResponse, error)) (api.ProduceResponse, error) {
		resp, err := next()
		if call == 0 && err == nil {
			return api.ProduceResponse{}, api.ErrBrokerClosed // appended, then closed
		}
		return resp, err
	})
	p := newProducer(t, c, producer.DefaultTopic("t"))
	ctx := testCtx(t)
	first := &record.Record{Value: []byte("first")}
	require.ErrorIs(t, p.ProduceSync(ctx, first), api.ErrBrokerClosed)
	second := &record.Record{Value: []byte("second")}
	require.NoError(t, p.ProduceSync(ctx, second))
	got := values(readRecords(t, b, "t", 0))
	require.Contains(t, got, "second", "a record whose promise got nil is not in the log")
	require.Equal(t, []string{"first", "second"}, got)
	require.EqualValues(t, 1, second.Offset)
	require.Equal(t, 2, c.initCount(), "a new producer id: the first batch may be in the log")
}
