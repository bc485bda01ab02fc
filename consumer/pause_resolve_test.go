package consumer_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/runneltest"
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

// TestPausedPartitionResolvedWhilePaused: a paused partition's Start,
// End or AtTime position is looked up by the next Poll, paused or not, as
// Kafka's consumer does (SubscriptionState.partitionsNeedingReset has no
// pause filter). So End is the end at that Poll, and a record produced
// during the pause is read after Resume. It was looked up only once
// resumed, and such a record was skipped.
func TestPausedPartitionResolvedWhilePaused(t *testing.T) {
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
	require.False(t, ok, "the look-up in flight ended with the Poll")

	close(lc.release)
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.Empty(t, fs)
	pos, ok := c.Position("t", 0)
	require.True(t, ok, "looked up while paused")
	require.EqualValues(t, 2, pos, "the end at the Poll")
	lists := lc.lists.Load()

	values(t, b, "t", 0, "during the pause")
	for range 3 {
		fs, err := c.Poll(testCtx(t))
		require.NoError(t, err)
		require.Empty(t, fs, "nothing fetched while paused")
	}
	require.Equal(t, lists, lc.lists.Load(), "no more look-ups once resolved")

	c.Resume(p0)
	fs, err = c.Poll(testCtx(t))
	require.NoError(t, err)
	require.Equal(t, 1, fs.NumRecords())
	var got []string
	for r, err := range fs.Records() {
		require.NoError(t, err)
		got = append(got, string(r.Value))
	}
	require.Equal(t, []string{"during the pause"}, got, "the record produced during the pause is read")
}

// TestSeekWhilePaused: a Seek of a paused partition (At or End)
// is where it reads from after Resume; End is looked up while paused.
func TestSeekWhilePaused(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 2))
	values(t, b, "t", 0, seq("v", 0, 5)...)
	values(t, b, "t", 1, "x")
	c := newConsumer(t, b, consumer.FetchMaxWait(10*time.Millisecond))
	tp := api.TopicPartition{Topic: "t", Partition: 0}
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	require.NoError(t, c.Assign("t", 1, consumer.Start()))
	g := pollUntil(t, c, 6)
	require.Len(t, g.values("t", 0), 5)
	c.Pause(tp)
	require.NoError(t, c.Seek("t", 0, consumer.At(2)))
	values(t, b, "t", 1, "y")
	g = pollUntil(t, c, 1)
	require.Equal(t, []string{"y"}, g.values("t", 1))
	p, ok := c.Position("t", 0)
	require.True(t, ok)
	require.EqualValues(t, 2, p)
	c.Resume(tp)
	g = pollUntil(t, c, 3)
	require.Equal(t, seq("v", 2, 3), g.values("t", 0))
	// Seek End while paused: resolved now, the records after are read after Resume.
	c.Pause(tp)
	require.NoError(t, c.Seek("t", 0, consumer.End()))
	values(t, b, "t", 1, "z")
	g = pollUntil(t, c, 1)
	require.Equal(t, []string{"z"}, g.values("t", 1))
	p, ok = c.Position("t", 0)
	require.True(t, ok)
	require.EqualValues(t, 5, p)
	values(t, b, "t", 0, "w")
	c.Resume(tp)
	g = pollUntil(t, c, 1)
	require.Equal(t, []string{"w"}, g.values("t", 0))
}
