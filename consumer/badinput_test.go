package consumer_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// TestNewBadOptions: New refuses a nil Client and every option out of
// range with ErrInvalidOption.
func TestNewBadOptions(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	var nilBroker *runnel.Broker
	for _, tc := range []struct {
		name string
		c    consumer.Client
		opts []consumer.Opt
	}{
		{"nil Client", nil, nil},
		{"nil *runnel.Broker", nilBroker, nil},
		{"FetchMaxBytes 0", b, []consumer.Opt{consumer.FetchMaxBytes(0)}},
		{"FetchMaxBytes negative", b, []consumer.Opt{consumer.FetchMaxBytes(-1)}},
		{"FetchMaxPartitionBytes 0", b, []consumer.Opt{consumer.FetchMaxPartitionBytes(0)}},
		{"FetchMaxPartitionBytes MinInt", b, []consumer.Opt{consumer.FetchMaxPartitionBytes(math.MinInt)}},
		{"FetchMaxWait negative", b, []consumer.Opt{consumer.FetchMaxWait(-time.Millisecond)}},
		{"FetchMinBytes negative", b, []consumer.Opt{consumer.FetchMinBytes(-1)}},
		{"ResetOffset unknown", b, []consumer.Opt{consumer.ResetOffset(consumer.ResetNone + 1)}},
		{"ResetOffset negative", b, []consumer.Opt{consumer.ResetOffset(-1)}},
		{"RetryBackoff negative", b, []consumer.Opt{consumer.RetryBackoff(-1)}},
	} {
		var c *consumer.Consumer
		err := testkit.NoPanic(t, tc.name, func() error {
			var err error
			c, err = consumer.New(tc.c, tc.opts...)
			return err
		})
		require.ErrorIs(t, err, consumer.ErrInvalidOption, tc.name)
		require.Nil(t, c, tc.name)
	}
	c, err := consumer.New(b, nil, consumer.Logger(nil))
	require.NoError(t, err)
	require.NoError(t, c.Close())
}

// TestConsumerBadInput: every method of a Consumer, given bad input,
// returns its documented error (or, for those without one, does nothing),
// nothing panics, and the consumer then reads everything from where it
// was.
func TestConsumerBadInput(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 2, "gone": 1})
	ctx := testCtx(t)
	require.NoError(t, b.DeleteTopic(ctx, "gone"))
	values(t, b, "t", 0, "a", "b", "c")
	c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	require.Equal(t, []string{"a"}, vals(readN(t, c, 1)))

	tp := func(topic string, p int32) api.TopicPartition { return api.TopicPartition{Topic: topic, Partition: p} }
	for _, tc := range []struct {
		name string
		call func() error
		want error
	}{
		{"Assign empty topic", func() error { return c.Assign("", 0, consumer.Start()) }, api.ErrInvalidTopic},
		{"Assign invalid topic", func() error { return c.Assign("a b", 0, consumer.Start()) }, api.ErrInvalidTopic},
		{"Assign topic too long", func() error { return c.Assign(strings.Repeat("x", 250), 0, consumer.Start()) }, api.ErrInvalidTopic},
		{"Assign negative partition", func() error { return c.Assign("t", -1, consumer.Start()) }, api.ErrUnknownTopicOrPartition},
		{"Assign MinInt32 partition", func() error { return c.Assign("t", math.MinInt32, consumer.Start()) }, api.ErrUnknownTopicOrPartition},
		{"Assign negative offset", func() error { return c.Assign("t", 1, consumer.At(-1)) }, consumer.ErrInvalidOffset},
		{"Assign MinInt64 offset", func() error { return c.Assign("t", 1, consumer.At(math.MinInt64)) }, consumer.ErrInvalidOffset},
		{"AssignTopic empty", func() error { return c.AssignTopic(ctx, "", consumer.Start()) }, api.ErrInvalidTopic},
		{"AssignTopic invalid", func() error { return c.AssignTopic(ctx, "..", consumer.Start()) }, api.ErrInvalidTopic},
		{"AssignTopic unknown", func() error { return c.AssignTopic(ctx, "nope", consumer.Start()) }, api.ErrUnknownTopicOrPartition},
		{"AssignTopic deleted", func() error { return c.AssignTopic(ctx, "gone", consumer.Start()) }, api.ErrUnknownTopicOrPartition},
		{"AssignTopic negative offset", func() error { return c.AssignTopic(ctx, "t", consumer.At(-5)) }, consumer.ErrInvalidOffset},
		{"Seek not assigned", func() error { return c.Seek("t", 1, consumer.Start()) }, consumer.ErrNotAssigned},
		{"Seek unknown topic", func() error { return c.Seek("nope", 0, consumer.Start()) }, consumer.ErrNotAssigned},
		{"Seek invalid topic", func() error { return c.Seek("", 0, consumer.Start()) }, api.ErrInvalidTopic},
		{"Seek negative partition", func() error { return c.Seek("t", -1, consumer.Start()) }, api.ErrUnknownTopicOrPartition},
		{"Seek negative offset", func() error { return c.Seek("t", 0, consumer.At(-1)) }, consumer.ErrInvalidOffset},
		{"Pause not assigned", func() error { c.Pause(tp("t", 1), tp("", -1), tp("nope", 0)); return nil }, nil},
		{"Pause nothing", func() error { c.Pause(); return nil }, nil},
		{"Resume not assigned", func() error { c.Resume(tp("t", 1), tp("", -1)); return nil }, nil},
		{"Unassign not assigned", func() error { c.Unassign("nope", -1); c.Unassign("", 0); return nil }, nil},
		{"Position not assigned", func() error {
			if _, ok := c.Position("t", 1); ok {
				return fmt.Errorf("a position for a partition not assigned")
			}
			_, ok := c.Position("", -1)
			require.False(t, ok)
			return nil
		}, nil},
		{"Poll with a done ctx", func() error {
			done, cancel := context.WithCancel(ctx)
			cancel()
			_, err := c.Poll(done)
			return err
		}, context.Canceled},
		{"Records with a done ctx", func() error {
			done, cancel := context.WithCancel(ctx)
			cancel()
			var errs []error
			for r, err := range c.Records(done) {
				if r != nil {
					return fmt.Errorf("yielded record %v", r)
				}
				errs = append(errs, err)
			}
			if len(errs) != 1 {
				return fmt.Errorf("yielded %d errors, want ctx's alone: %v", len(errs), errs)
			}
			return errs[0]
		}, context.Canceled},
	} {
		err := testkit.NoPanic(t, tc.name, tc.call)
		if tc.want == nil {
			require.NoError(t, err, tc.name)
			continue
		}
		require.ErrorIs(t, err, tc.want, tc.name)
	}
	// Nothing of the bad calls stuck: the one partition, where it was.
	require.Equal(t, []api.TopicPartition{tp("t", 0)}, c.Assigned())
	pos, ok := c.Position("t", 0)
	require.True(t, ok)
	require.EqualValues(t, 1, pos)
	values(t, b, "t", 0, "d")
	require.Equal(t, []string{"b", "c", "d"}, vals(readN(t, c, 3)))
}

// TestAtTimePastLargestTimestamp: AtTime of a time past what an int64 of
// Unix milliseconds holds is past a record stamped math.MaxInt64 ms (Kafka's
// largest timestamp, which a record may have): the end, as End. It was
// looked up at math.MaxInt64 ms, and so resolved to that record.
func TestAtTimePastLargestTimestamp(t *testing.T) {
	// A record stamped math.MaxInt64 ms: no TimestampAfterMax.
	b := openBroker(t, nil)
	require.NoError(t, b.CreateTopic(testCtx(t), "t", log.TopicConfig{Partitions: 1, Config: log.Config{TimestampAfterMax: -1}}))
	produce(t, b, "t", 0, compression.None, rec{ts: 1, value: "a"}, rec{ts: math.MaxInt64, value: "last"}, rec{ts: 2, value: "b"})
	for _, tc := range []struct {
		at   time.Time
		want int64
	}{
		{time.UnixMilli(math.MaxInt64), 1}, // the record at the largest timestamp
		{time.UnixMilli(math.MaxInt64).Add(time.Millisecond), 3},
		{time.UnixMilli(math.MaxInt64).Add(time.Millisecond - 1), 1}, // within its millisecond (UnixMilli truncates)
		{time.Unix(math.MaxInt64/1000+1, 0), 3},
		{time.Date(300_000_000, 1, 1, 0, 0, 0, 0, time.UTC), 3},
	} {
		c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond))
		require.NoError(t, c.Assign("t", 0, consumer.AtTime(tc.at)))
		fs, err := c.Poll(testCtx(t))
		require.NoError(t, err)
		first := int64(3) // the end: no record
		for r, err := range fs.Records() {
			require.NoError(t, err)
			first = r.Offset
			break
		}
		require.Equal(t, tc.want, first, "AtTime(%v) (%s)", tc.at, consumer.AtTime(tc.at))
		require.NotEmpty(t, consumer.AtTime(tc.at).String())
	}
}

// TestAtTimeFarFuture: AtTime of a time whose Unix milliseconds do not fit
// an int64 is past every record (the end), not the Unix epoch (the start)
// that an overflowed, negative, value would be clamped to.
func TestAtTimeFarFuture(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	values(t, b, "t", 0, "a", "b")
	for _, at := range []time.Time{
		time.Unix(math.MaxInt64/1000+1, 0),
		time.Date(300_000_000, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond))
		require.NoError(t, c.Assign("t", 0, consumer.AtTime(at)))
		fs, err := c.Poll(testCtx(t))
		require.NoError(t, err)
		require.Zero(t, fs.NumRecords(), "AtTime(%v) returned records", at)
		pos, ok := c.Position("t", 0)
		require.True(t, ok)
		require.EqualValues(t, 2, pos, "AtTime(%v) is the end", at)
		require.NotEmpty(t, consumer.AtTime(at).String())
	}
	// And one far before 1970 is the epoch: the start.
	c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.AtTime(time.Unix(math.MinInt64/1000-1, 0))))
	require.Equal(t, []string{"a", "b"}, vals(readN(t, c, 2)))
}

// TestConsumerCallsAfterClose: after Close the methods that return an
// error return ErrClosed, for good input and bad, the others do nothing, and
// Position and Assigned still answer.
func TestConsumerCallsAfterClose(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	c, err := consumer.New(b)
	require.NoError(t, err)
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	require.NoError(t, c.Close())
	require.NoError(t, c.Close())
	ctx := testCtx(t)
	require.ErrorIs(t, c.Assign("t", 0, consumer.Start()), consumer.ErrClosed)
	require.ErrorIs(t, c.AssignTopic(ctx, "t", consumer.Start()), consumer.ErrClosed)
	require.ErrorIs(t, c.Seek("t", 0, consumer.End()), consumer.ErrClosed)
	// Bad arguments too: a closed consumer says it is closed first, as
	// its doc says of every method.
	require.ErrorIs(t, c.Assign("", -1, consumer.At(-7)), consumer.ErrClosed)
	require.ErrorIs(t, c.AssignTopic(ctx, "a b", consumer.Start()), consumer.ErrClosed)
	require.ErrorIs(t, c.Seek("t", -1, consumer.End()), consumer.ErrClosed)
	_, err = c.Poll(ctx)
	require.ErrorIs(t, err, consumer.ErrClosed)
	for r, err := range c.Records(ctx) {
		t.Fatalf("a closed consumer yielded %v, %v", r, err)
	}
	c.Pause(api.TopicPartition{Topic: "t"})
	c.Resume(api.TopicPartition{Topic: "t"})
	c.Unassign("nope", 0)
	pos, ok := c.Position("t", 0)
	require.True(t, ok)
	require.Zero(t, pos)
	require.Len(t, c.Assigned(), 1)
}

// TestConsumerOnClosedBroker: a consumer whose broker closed gets the
// broker's ErrClosed from Poll, and its positions stay.
func TestConsumerOnClosedBroker(t *testing.T) {
	b, err := runnel.Open(runnel.Config{})
	require.NoError(t, err)
	ctx := testCtx(t)
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	c := newConsumer(t, b)
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	require.NoError(t, b.Close())
	_, err = c.Poll(ctx)
	require.ErrorIs(t, err, runnel.ErrClosed)
	require.ErrorIs(t, c.AssignTopic(ctx, "t", consumer.Start()), runnel.ErrClosed)
	pos, ok := c.Position("t", 0)
	require.True(t, ok)
	require.Zero(t, pos)
}

// TestZeroConsumer: a Consumer not made by New is closed: its methods
// return ErrClosed or do nothing, rather than panic.
func TestZeroConsumer(t *testing.T) {
	ctx := testCtx(t)
	c := &consumer.Consumer{}
	tp := api.TopicPartition{Topic: "t"}
	require.ErrorIs(t, testkit.NoPanic(t, "Assign", func() error { return c.Assign("t", 0, consumer.Start()) }), consumer.ErrClosed)
	require.ErrorIs(t, testkit.NoPanic(t, "AssignTopic", func() error { return c.AssignTopic(ctx, "t", consumer.Start()) }), consumer.ErrClosed)
	require.ErrorIs(t, testkit.NoPanic(t, "Seek", func() error { return c.Seek("t", 0, consumer.Start()) }), consumer.ErrClosed)
	require.ErrorIs(t, testkit.NoPanic(t, "Poll", func() error { _, err := c.Poll(ctx); return err }), consumer.ErrClosed)
	require.NoError(t, testkit.NoPanic(t, "Records", func() error {
		for r, err := range c.Records(ctx) {
			return fmt.Errorf("yielded %v, %v", r, err)
		}
		return nil
	}))
	require.NoError(t, testkit.NoPanic(t, "the others", func() error {
		c.Pause(tp)
		c.Resume(tp)
		c.Unassign("t", 0)
		if _, ok := c.Position("t", 0); ok {
			return fmt.Errorf("a position")
		}
		if len(c.Assigned()) != 0 {
			return fmt.Errorf("assigned")
		}
		return nil
	}))
	require.NoError(t, testkit.NoPanic(t, "Close", c.Close))
}

// hugeCountClient is a Client that reports a partition count no Kafka
// topic has: past an int32, or below 1.
type hugeCountClient struct {
	*runnel.Broker
	n int
}

func (c hugeCountClient) Partitions(context.Context, string) (int, error) { return c.n, nil }

// TestAssignTopicCountPastInt32: AssignTopic refuses a partition count
// past an int32 from its Client with api.ErrInvalidRequest, and assigns
// nothing. It assigned every partition, the int32 ids wrapping, until
// memory ran out.
func TestAssignTopicCountPastInt32(t *testing.T) {
	if math.MaxInt == math.MaxInt32 {
		t.Skip("an int holds no count past an int32")
	}
	b := openBroker(t, map[string]int{"t": 1})
	c := newConsumer(t, hugeCountClient{Broker: b, n: testkit.PastInt32(2)})
	require.ErrorIs(t, c.AssignTopic(testCtx(t), "t", consumer.Start()), api.ErrInvalidRequest)
	require.Empty(t, c.Assigned())
}

// TestAssignTopicCountBelowOne: AssignTopic takes a partition count below
// 1 from its Client as the producer does, api.ErrUnknownTopicOrPartition,
// and assigns nothing. It returned nil, having assigned nothing, so a
// caller took the topic for assigned and read nothing from it.
func TestAssignTopicCountBelowOne(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	for _, n := range []int{0, -1} {
		c := newConsumer(t, hugeCountClient{Broker: b, n: n})
		require.ErrorIs(t, c.AssignTopic(testCtx(t), "t", consumer.Start()), api.ErrUnknownTopicOrPartition, "count %d", n)
		require.Empty(t, c.Assigned(), "count %d", n)
	}
}
