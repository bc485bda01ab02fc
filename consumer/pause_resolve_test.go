package consumer_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/stretchr/testify/require"
)

// listingClient wraps a broker and reports each ListOffset as it starts,
// then holds it until the test releases it or its ctx ends.
type listingClient struct {
	*runnel.Broker
	lists   atomic.Int32
	listing chan struct{}
	release chan struct{}
}

func (l *listingClient) ListOffset(ctx context.Context, topic string, p int32, ts int64) (api.ListedOffset, error) {
	l.lists.Add(1)
	l.listing <- struct{}{}
	select {
	case <-l.release:
	case <-ctx.Done():
	}
	return l.Broker.ListOffset(context.Background(), topic, p, ts)
}

// TestPausedPartitionResolvedWhenResumed pins a deliberate difference
// from Kafka's consumer (see Pause): a paused partition's Start, End or
// AtTime position is looked up once it is resumed, not while it is
// paused; a look-up in flight when Pause comes is dropped, and made again
// after Resume. So End is the end at Resume: records produced during the
// pause are not read (Kafka's consumer looks the position up at the next
// poll, paused or not, and would read them).
func TestPausedPartitionResolvedWhenResumed(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	values(t, b, "t", 0, "a", "b")
	lc := &listingClient{Broker: b, listing: make(chan struct{}, 10), release: make(chan struct{})}
	c := newConsumer(t, lc, consumer.FetchMaxWait(time.Millisecond))
	p0 := api.TopicPartition{Topic: "t", Partition: 0}
	require.NoError(t, c.Assign("t", 0, consumer.End()))

	polled := async(func() error { _, err := c.Poll(testCtx(t)); return err })
	recv(t, lc.listing) // the look-up of End is in flight
	c.Pause(p0)
	require.NoError(t, recv(t, polled), "Pause ended the Poll")
	_, ok := c.Position("t", 0)
	require.False(t, ok, "the look-up in flight was dropped")

	values(t, b, "t", 0, "during the pause")
	for range 3 {
		fs, err := c.Poll(testCtx(t))
		require.NoError(t, err)
		require.Empty(t, fs)
	}
	require.EqualValues(t, 1, lc.lists.Load(), "no look-up while paused")

	c.Resume(p0)
	close(lc.release)
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.Zero(t, fs.NumRecords())
	require.EqualValues(t, 2, lc.lists.Load(), "looked up again once resumed")
	pos, ok := c.Position("t", 0)
	require.True(t, ok)
	require.EqualValues(t, 3, pos, "the end at Resume: the record produced during the pause is not read")
}
