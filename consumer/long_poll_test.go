package consumer_test

import (
	"errors"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestLongPollWokenByAnyPartition: a long poll over three
// partitions answers an append to any of them.
func TestLongPollWokenByAnyPartition(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 3))
	s := newSignalClient(b)
	c := newConsumer(t, s, consumer.FetchMaxWait(time.Hour))
	for p := range int32(3) {
		require.NoError(t, c.Assign("t", p, consumer.At(0)))
	}
	ch := async(func() error {
		fs, err := c.Poll(testCtx(t))
		if err == nil && fs.NumRecords() != 1 {
			return errors.New("not one record")
		}
		return err
	})
	recv(t, s.fetching) // the long poll began (or is about to: either order is right)
	values(t, b, "t", 2, "x")
	require.NoError(t, recv(t, ch))
}

// TestTopicDeletedDuringLongPoll: a topic deleted and created
// again under a Records loop's long poll is reported once per partition
// and read from the new topic's start.
func TestTopicDeletedDuringLongPoll(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 2))
	values(t, b, "t", 0, "a", "b")
	s := newSignalClient(b)
	c := newConsumer(t, s, consumer.FetchMaxWait(time.Hour), consumer.RetryBackoff(time.Millisecond))
	require.NoError(t, c.AssignTopic(testCtx(t), "t", consumer.Start()))
	require.Equal(t, []string{"a", "b"}, vals(readN(t, c, 2)))
	for len(s.fetching) > 0 {
		<-s.fetching
	}
	type res struct {
		vals []string
		errs []error
	}
	ch := async(func() res {
		var r res
		for rec, err := range c.Records(testCtx(t)) {
			if err != nil {
				r.errs = append(r.errs, err)
				continue
			}
			r.vals = append(r.vals, string(rec.Value))
			if len(r.vals) == 2 {
				break
			}
		}
		return r
	})
	recv(t, s.fetching)
	require.NoError(t, b.DeleteTopic(testCtx(t), "t"))
	require.NoError(t, b.CreateTopic(testCtx(t), "t", log.TopicConfig{Partitions: 3}))
	values(t, b, "t", 0, "n0")
	values(t, b, "t", 1, "n1")
	r := recv(t, ch)
	require.ElementsMatch(t, []string{"n0", "n1"}, r.vals)
	require.Len(t, r.errs, 2, "%v", r.errs)
	for _, err := range r.errs {
		require.ErrorIs(t, err, api.ErrUnknownTopicID)
	}
}

// TestPartitionsGrownUnderLongPoll: CreatePartitions and a
// config change (a reopen) under a long poll; the poll still answers the
// next append, and a partition added is read once assigned.
func TestPartitionsGrownUnderLongPoll(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	values(t, b, "t", 0, "a")
	s := newSignalClient(b)
	c := newConsumer(t, s, consumer.FetchMaxWait(time.Hour), consumer.RetryBackoff(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	require.Equal(t, []string{"a"}, vals(readN(t, c, 1)))
	for len(s.fetching) > 0 {
		<-s.fetching
	}
	ch := async(func() []string { return vals(readN(t, c, 1)) })
	recv(t, s.fetching)
	require.NoError(t, b.CreatePartitions(testCtx(t), "t", 3))
	require.NoError(t, b.UpdateTopicConfig(testCtx(t), "t", func(c *log.Config) { c.SegmentBytes = 1 << 20 }))
	values(t, b, "t", 0, "b")
	require.Equal(t, []string{"b"}, recv(t, ch))
	// The new partition, assigned now, from its start.
	values(t, b, "t", 2, "c")
	require.NoError(t, c.Assign("t", 2, consumer.Start()))
	require.Equal(t, []string{"c"}, vals(readN(t, c, 1)))
}
