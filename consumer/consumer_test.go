package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

func TestPollReadsEverythingInOrder(t *testing.T) {
	b := openBroker(t, map[string]int{"orders": 3})
	for p := range int32(3) {
		for i := 0; i < 30; i += 10 {
			values(t, b, "orders", p, seq("v", i, 10)...)
		}
	}
	c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.AssignTopic(testCtx(t), "orders", consumer.Start()))
	require.Equal(t, []api.TopicPartition{{Topic: "orders", Partition: 0}, {Topic: "orders", Partition: 1}, {Topic: "orders", Partition: 2}}, c.Assigned())
	_, ok := c.Position("orders", 0)
	require.False(t, ok, "Start is resolved by the first Poll")

	g := pollUntil(t, c, 90)
	for p := range int32(3) {
		require.Equal(t, seq("v", 0, 30), g.values("orders", p))
		pos, ok := c.Position("orders", p)
		require.True(t, ok)
		require.EqualValues(t, 30, pos)
	}
	next := map[int32]int64{}
	for _, r := range g.recs {
		require.Equal(t, "orders", r.Topic)
		require.Equal(t, next[r.Partition], r.Offset, "partition %d in offset order", r.Partition)
		require.Equal(t, record.CreateTime, r.TimestampType)
		require.EqualValues(t, -1, r.Sequence)
		next[r.Partition]++
	}

	// Nothing more: a Poll waits FetchMaxWait and returns no fetches.
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.Empty(t, fs)
	require.Zero(t, fs.NumRecords())
	require.NoError(t, fs.Err())
}

func TestFetchesHelpers(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 2})
	values(t, b, "t", 0, "a", "b", "c")
	values(t, b, "t", 0, "d")
	values(t, b, "t", 1, "x", "y")
	c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.At(1))) // inside the first batch
	require.NoError(t, c.Assign("t", 1, consumer.At(0)))
	var fs consumer.Fetches
	for fs.NumRecords() < 5 {
		more, err := c.Poll(testCtx(t))
		require.NoError(t, err)
		fs = append(fs, more...)
	}
	require.Equal(t, 5, fs.NumRecords())
	require.NoError(t, fs.Err())
	var each []string
	fs.EachRecord(func(r *record.Record) { each = append(each, r.Topic+"/"+string(r.Value)) })
	require.ElementsMatch(t, []string{"t/b", "t/c", "t/d", "t/x", "t/y"}, each)
	for _, f := range fs {
		require.Equal(t, "t", f.Topic)
		if f.Partition == 0 {
			require.EqualValues(t, 4, f.HighWatermark)
			require.Zero(t, f.LogStartOffset)
			require.Equal(t, 3, f.NumRecords())
			// The raw bytes hold both whole batches, the first from 0.
			var bases []int64
			for batch, err := range record.Batches(f.Batches) {
				require.NoError(t, err)
				bases = append(bases, batch.BaseOffset())
			}
			require.Equal(t, []int64{0, 3}, bases)
		}
	}
}

func TestRecordsIteratorBreakLosesNothing(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	values(t, b, "t", 0, seq("v", 0, 10)...)
	values(t, b, "t", 0, seq("v", 10, 10)...)
	c := newConsumer(t, b)
	require.NoError(t, c.Assign("t", 0, consumer.Start()))

	first := readN(t, c, 4)
	require.Equal(t, seq("v", 0, 4), vals(first))
	pos, ok := c.Position("t", 0)
	require.True(t, ok)
	require.EqualValues(t, 4, pos, "the position is after the last record yielded")

	rest := readN(t, c, 16)
	require.Equal(t, seq("v", 4, 16), vals(rest))

	// Poll goes on from where Records stopped.
	values(t, b, "t", 0, "last")
	g := pollUntil(t, c, 1)
	require.Equal(t, []string{"last"}, g.values("t", 0))
}

func TestPositionInsideRecordsLoop(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	values(t, b, "t", 0, seq("v", 0, 5)...)
	c := newConsumer(t, b)
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	n := 0
	for r, err := range c.Records(testCtx(t)) {
		require.NoError(t, err)
		pos, ok := c.Position("t", 0)
		require.True(t, ok)
		require.Equal(t, r.Offset+1, pos)
		if n++; n == 5 {
			break
		}
	}
	require.Equal(t, 5, n)
}

func TestStartEndAtAndAtTime(t *testing.T) {
	const t0 = int64(1_700_000_000_000)
	b := openBroker(t, map[string]int{"t": 1})
	// Ten records one second apart, in two batches.
	var recs []rec
	for i := range 10 {
		recs = append(recs, rec{ts: t0 + int64(i)*1000, value: seq("v", i, 1)[0]})
	}
	produce(t, b, "t", 0, compression.None, recs[:5]...)
	produce(t, b, "t", 0, compression.None, recs[5:]...)

	// read also returns what the consumer logged of resolving at: the
	// Offset as it prints, and the offset it resolved to.
	read := func(at consumer.Offset, n int) ([]string, []string) {
		logs := &logRecorder{}
		c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond), consumer.Logger(logs.logger()))
		require.NoError(t, c.Assign("t", 0, at))
		return vals(readN(t, c, n)), logs.attrs("resolved offset", "at", "offset")
	}
	for _, tc := range []struct {
		at       consumer.Offset
		want     []string
		resolved []string // nil: nothing to resolve
		msg      string
	}{
		{consumer.Start(), seq("v", 0, 10), []string{"start 0"}, ""},
		{consumer.Offset{}, seq("v", 0, 10), []string{"start 0"}, "the zero Offset is Start"},
		{consumer.At(3), seq("v", 3, 7), nil, "inside a batch"},
		{consumer.At(5), seq("v", 5, 5), nil, ""},
		{consumer.AtTime(time.UnixMilli(t0 + 2500)), seq("v", 3, 7), []string{"time 2023-11-14T22:13:22.5Z 3"}, ""},
		{consumer.AtTime(time.UnixMilli(t0 + 6000)), seq("v", 6, 4), []string{"time 2023-11-14T22:13:26Z 6"}, ""},
		{consumer.AtTime(time.Unix(-100, 0)), seq("v", 0, 10), []string{"time 1970-01-01T00:00:00Z 0"}, "before 1970: the start"},
	} {
		got, resolved := read(tc.at, len(tc.want))
		require.Equal(t, tc.want, got, tc.msg)
		require.Equal(t, tc.resolved, resolved, tc.msg)
	}

	// End and a time after every record: only what comes next.
	hw := int64(10)
	for _, at := range []consumer.Offset{consumer.End(), consumer.AtTime(time.Now().Add(time.Hour))} {
		c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond))
		require.NoError(t, c.Assign("t", 0, at))
		fs, err := c.Poll(testCtx(t))
		require.NoError(t, err)
		require.Zero(t, fs.NumRecords())
		pos, ok := c.Position("t", 0)
		require.True(t, ok)
		require.Equal(t, hw, pos, "%v resolves to the high watermark", at)
		off := values(t, b, "t", 0, "new")
		hw++
		got := readN(t, c, 1)
		require.Equal(t, off, got[0].Offset)
		require.Equal(t, "new", string(got[0].Value))
	}
}

func TestLongPollWokenByProduce(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	sc := newSignalClient(b)
	c := newConsumer(t, sc, consumer.FetchMaxWait(time.Hour))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	res := async(func() error {
		fs, err := c.Poll(testCtx(t))
		if err == nil && fs.NumRecords() != 1 {
			err = errors.New("want one record")
		}
		return err
	})
	recv(t, sc.fetching)
	values(t, b, "t", 0, "wake up")
	require.NoError(t, recv(t, res), "the produce answered the long poll")
}

func TestMaxWaitReturnsEmpty(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	c := newConsumer(t, b, consumer.FetchMaxWait(10*time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.End()))
	for range 3 {
		fs, err := c.Poll(testCtx(t))
		require.NoError(t, err)
		require.Empty(t, fs)
	}
	// Nothing assigned at all: the same.
	c.Unassign("t", 0)
	c.Unassign("t", 0) // again: nothing happens
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.Empty(t, fs)
	_, ok := c.Position("t", 0)
	require.False(t, ok)
}

func TestMinBytes(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	first := encode(t, compression.None, rec{value: "one"})
	sc := newSignalClient(b)
	// Two batches' worth: one batch is not enough for an answer.
	c := newConsumer(t, sc, consumer.FetchMinBytes(2*len(first)-1), consumer.FetchMaxWait(time.Hour))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	values(t, b, "t", 0, "one")
	res := async(func() consumer.Fetches {
		fs, err := c.Poll(testCtx(t))
		if err != nil {
			t.Error(err)
		}
		return fs
	})
	recv(t, sc.fetching)
	values(t, b, "t", 0, "two")
	g := &got{}
	g.add(recv(t, res))
	require.Equal(t, []string{"one", "two"}, g.values("t", 0), "one Poll waited for both")

	// Not enough bytes before FetchMaxWait: what there is.
	c2 := newConsumer(t, b, consumer.FetchMinBytes(1<<20), consumer.FetchMaxWait(5*time.Millisecond))
	require.NoError(t, c2.Assign("t", 0, consumer.At(1)))
	fs, err := c2.Poll(testCtx(t))
	require.NoError(t, err)
	g = &got{}
	g.add(fs)
	require.Equal(t, []string{"two"}, g.values("t", 0))
}

func TestMaxPartitionBytesMakesProgress(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	for i := 0; i < 40; i += 4 {
		values(t, b, "t", 0, seq("v", i, 4)...)
	}
	// Smaller than any batch: each fetch brings exactly one whole batch.
	c := newConsumer(t, b, consumer.FetchMaxPartitionBytes(1), consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.At(2)))
	g := &got{}
	polls := 0
	for len(g.recs) < 38 {
		fs, err := c.Poll(testCtx(t))
		require.NoError(t, err)
		require.Len(t, fs, 1)
		n := 0
		for range record.Batches(fs[0].Batches) {
			n++
		}
		require.Equal(t, 1, n, "one batch per fetch")
		g.add(fs)
		polls++
	}
	require.Equal(t, seq("v", 2, 38), g.values("t", 0))
	require.Equal(t, 10, polls)
}

func TestMaxBytesRotatesPartitions(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 2})
	for range 5 {
		values(t, b, "t", 0, "p0")
		values(t, b, "t", 1, "p1")
	}
	// One batch per fetch over all partitions: they must take turns.
	c := newConsumer(t, b, consumer.FetchMaxBytes(1), consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.AssignTopic(testCtx(t), "t", consumer.Start()))
	var order []int32
	for len(order) < 10 {
		fs, err := c.Poll(testCtx(t))
		require.NoError(t, err)
		for _, f := range fs {
			require.Equal(t, 1, f.NumRecords())
			order = append(order, f.Partition)
		}
	}
	for i := 1; i < len(order); i++ {
		require.NotEqual(t, order[i-1], order[i], "turns: %v", order)
	}
}

func TestPauseResume(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 2})
	values(t, b, "t", 0, "a0", "a1")
	values(t, b, "t", 1, "b0", "b1")
	c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.AssignTopic(testCtx(t), "t", consumer.Start()))
	p0 := api.TopicPartition{Topic: "t", Partition: 0}
	c.Pause(p0, api.TopicPartition{Topic: "nope", Partition: 9})

	g := pollUntil(t, c, 2)
	require.Equal(t, []string{"b0", "b1"}, g.values("t", 1))
	for range 2 {
		fs, err := c.Poll(testCtx(t))
		require.NoError(t, err)
		require.Zero(t, fs.NumRecords(), "partition 0 is paused")
	}
	pos, ok := c.Position("t", 0)
	require.True(t, ok, "a paused partition is resolved by the next Poll, as in Kafka")
	require.EqualValues(t, 0, pos)

	c.Resume(p0)
	g = pollUntil(t, c, 2)
	require.Equal(t, []string{"a0", "a1"}, g.values("t", 0))
}

func TestPauseStopsRecordsLoop(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	values(t, b, "t", 0, seq("v", 0, 10)...)
	c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	tp := api.TopicPartition{Topic: "t", Partition: 0}
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	var got []string
	var errs []error
	for r, err := range c.Records(ctx) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		got = append(got, string(r.Value))
		if len(got) == 3 {
			c.Pause(tp) // the rest of the fetched batch is not yielded
			cancel()
		}
	}
	require.Equal(t, seq("v", 0, 3), got)
	require.Equal(t, []error{context.Canceled}, errs, "ctx's error, last")
	pos, _ := c.Position("t", 0)
	require.EqualValues(t, 3, pos)
	c.Resume(tp)
	require.Equal(t, seq("v", 3, 7), vals(readN(t, c, 7)))
}

func TestSeekDuringRecords(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	values(t, b, "t", 0, seq("v", 0, 10)...)
	c := newConsumer(t, b)
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	var got []string
	seeked := false
	for r, err := range c.Records(testCtx(t)) {
		require.NoError(t, err)
		got = append(got, string(r.Value))
		if r.Offset == 5 && !seeked {
			seeked = true
			require.NoError(t, c.Seek("t", 0, consumer.At(2)))
		}
		if len(got) == 14 {
			break
		}
	}
	want := append(seq("v", 0, 6), seq("v", 2, 8)...)
	require.Equal(t, want, got, "nothing from the old position after the Seek")
}

func TestSeekDuringPoll(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	values(t, b, "t", 0, seq("v", 0, 5)...)
	sc := newSignalClient(b)
	c := newConsumer(t, sc, consumer.FetchMaxWait(time.Hour))
	require.NoError(t, c.Assign("t", 0, consumer.End()))
	res := async(func() error {
		_, err := c.Poll(testCtx(t))
		return err
	})
	recv(t, sc.fetching) // waiting at the end
	require.NoError(t, c.Seek("t", 0, consumer.At(1)))
	require.NoError(t, recv(t, res), "the Seek ended the wait")
	g := pollUntil(t, c, 4)
	require.Equal(t, seq("v", 1, 4), g.values("t", 0))

	require.ErrorIs(t, c.Seek("t", 7, consumer.Start()), consumer.ErrNotAssigned)
	require.ErrorIs(t, c.Seek("t", 0, consumer.At(-1)), consumer.ErrInvalidOffset)
}

func TestAssignDuringPoll(t *testing.T) {
	for _, tc := range []struct {
		name   string
		assign func(*consumer.Consumer) error
	}{
		{"Assign", func(c *consumer.Consumer) error { return c.Assign("u", 1, consumer.At(0)) }},
		{"AssignTopic", func(c *consumer.Consumer) error { return c.AssignTopic(testCtx(t), "u", consumer.At(0)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := openBroker(t, map[string]int{"t": 1, "u": 3})
			values(t, b, "u", 1, "x")
			sc := newSignalClient(b)
			c := newConsumer(t, sc, consumer.FetchMaxWait(time.Hour))
			require.NoError(t, c.Assign("t", 0, consumer.End()))
			res := async(func() error {
				_, err := c.Poll(testCtx(t))
				return err
			})
			recv(t, sc.fetching) // waiting at the end of t-0
			require.NoError(t, tc.assign(c))
			require.NoError(t, recv(t, res), "the assignment ended the wait")
			require.Equal(t, []string{"x"}, pollUntil(t, c, 1).values("u", 1))
		})
	}
}

func TestAssignReplacesPosition(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	values(t, b, "t", 0, seq("v", 0, 5)...)
	c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	require.Equal(t, seq("v", 0, 5), pollUntil(t, c, 5).values("t", 0))
	require.NoError(t, c.Assign("t", 0, consumer.At(3)))
	require.Len(t, c.Assigned(), 1)
	pos, ok := c.Position("t", 0)
	require.True(t, ok)
	require.EqualValues(t, 3, pos)
	require.Equal(t, seq("v", 3, 2), pollUntil(t, c, 2).values("t", 0))
}

func TestResetPolicyPastTheEnd(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	values(t, b, "t", 0, seq("v", 0, 5)...)

	t.Run("earliest", func(t *testing.T) {
		c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond))
		require.NoError(t, c.Assign("t", 0, consumer.At(100)))
		require.Equal(t, seq("v", 0, 5), vals(readN(t, c, 5)))
	})
	t.Run("latest", func(t *testing.T) {
		c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond), consumer.ResetOffset(consumer.ResetLatest))
		require.NoError(t, c.Assign("t", 0, consumer.At(100)))
		for {
			fs, err := c.Poll(testCtx(t))
			require.NoError(t, err)
			require.NoError(t, fs.Err())
			require.Zero(t, fs.NumRecords())
			if pos, ok := c.Position("t", 0); ok && pos == 5 {
				break
			}
		}
	})
	t.Run("none", func(t *testing.T) {
		c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond), consumer.ResetOffset(consumer.ResetNone))
		require.NoError(t, c.Assign("t", 0, consumer.At(100)))
		fs, err := c.Poll(testCtx(t))
		require.NoError(t, err)
		require.Len(t, fs, 1)
		require.ErrorIs(t, fs.Err(), log.ErrOffsetOutOfRange)
		var pe *consumer.PartitionError
		require.ErrorAs(t, fs[0].Err, &pe)
		require.Equal(t, "t", pe.Topic)
		require.EqualValues(t, 100, pe.Offset)
		require.EqualValues(t, 5, fs[0].HighWatermark)
		// The partition stays where it is, unfetched, until a Seek.
		for range 2 {
			fs, err := c.Poll(testCtx(t))
			require.NoError(t, err)
			require.Empty(t, fs)
		}
		pos, _ := c.Position("t", 0)
		require.EqualValues(t, 100, pos)
		require.NoError(t, c.Seek("t", 0, consumer.At(4)))
		require.Equal(t, []string{"v4"}, vals(readN(t, c, 1)))
	})
}

func TestResetPolicyAfterRetention(t *testing.T) {
	b := openBroker(t, nil)
	ctx := testCtx(t)
	// Tiny segments; records from 2001, long past the 7-day retention,
	// but the last one, which keeps its segment.
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 100}}))
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	for i := range 6 {
		ts := old
		if i == 5 {
			ts = time.Now().UnixMilli()
		}
		produce(t, b, "t", 0, compression.None, rec{ts: ts, value: seq("v", i, 1)[0]})
	}
	c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	require.Equal(t, []string{"v0"}, vals(readN(t, c, 1)))

	require.NoError(t, b.Maintain(ctx))
	info, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	start := info.Partitions[0].LogStartOffset
	require.Greater(t, start, int64(1), "retention deleted the old segments")

	// Offset 1 is gone: the consumer goes on from the log start.
	got := readN(t, c, int(6-start))
	require.Equal(t, start, got[0].Offset)
	require.Equal(t, seq("v", int(start), int(6-start)), vals(got))
}

func TestDeletedTopic(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1, "keep": 1})
	values(t, b, "t", 0, "a")
	values(t, b, "keep", 0, "k")
	c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond), consumer.RetryBackoff(time.Hour))
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	require.NoError(t, c.Assign("keep", 0, consumer.Start()))
	pollUntil(t, c, 2)

	require.NoError(t, b.DeleteTopic(testCtx(t), "t"))
	values(t, b, "keep", 0, "k2")
	g := &got{}
	var errs []error
	for len(errs) == 0 || len(g.recs) == 0 {
		fs, err := c.Poll(testCtx(t))
		require.NoError(t, err)
		g.add(fs)
		if err := fs.Err(); err != nil {
			errs = append(errs, err)
		}
	}
	require.Len(t, errs, 1)
	require.ErrorIs(t, errs[0], runnel.ErrUnknownTopic)
	require.ErrorIs(t, errs[0], api.ErrUnknownTopicOrPartition)
	require.Equal(t, []string{"k2"}, g.values("keep", 0), "the other partition reads on")
	// Backed off: not fetched again for RetryBackoff.
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.NoError(t, fs.Err())
}

// readOldTopic opens a broker with topic "t", writes old0..old4 and
// returns a consumer (reset policy policy) that has read them.
func readOldTopic(t *testing.T, policy consumer.ResetPolicy) (*runnel.Broker, *consumer.Consumer, context.Context) {
	b := openBroker(t, map[string]int{"t": 1})
	ctx := testCtx(t)
	values(t, b, "t", 0, seq("old", 0, 5)...)
	c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond), consumer.RetryBackoff(0), consumer.ResetOffset(policy))
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	require.Equal(t, seq("old", 0, 5), vals(readN(t, c, 5)))
	return b, c, ctx
}

// A topic deleted and created again under the same name while a consumer
// reads it: once the consumer has seen the partition gone, its position
// (an offset of the old topic) is not carried over to the new one; the
// reset policy says where to go instead, as for an offset out of range.
func TestRecreatedTopicPositionNotCarriedOver(t *testing.T) {
	for _, policy := range []consumer.ResetPolicy{consumer.ResetEarliest, consumer.ResetLatest, consumer.ResetNone} {
		t.Run(policy.String(), func(t *testing.T) {
			b, c, ctx := readOldTopic(t, policy)

			require.NoError(t, b.DeleteTopic(ctx, "t"))
			fs, err := c.Poll(ctx)
			require.NoError(t, err)
			require.ErrorIs(t, fs.Err(), api.ErrUnknownTopicOrPartition, "the consumer sees the topic gone")
			var pe *consumer.PartitionError
			require.ErrorAs(t, fs.Err(), &pe)
			require.EqualValues(t, 5, pe.Offset)

			require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
			values(t, b, "t", 0, seq("new", 0, 8)...)
			switch policy {
			case consumer.ResetEarliest:
				require.Equal(t, seq("new", 0, 8), vals(readN(t, c, 8)), "from the new topic's start, not from offset 5")
			case consumer.ResetLatest:
				for {
					fs, err := c.Poll(ctx)
					require.NoError(t, err)
					require.NoError(t, fs.Err())
					require.Zero(t, fs.NumRecords(), "nothing before the new topic's end")
					if pos, ok := c.Position("t", 0); ok {
						require.EqualValues(t, 8, pos)
						break
					}
				}
				values(t, b, "t", 0, "after")
				require.Equal(t, []string{"after"}, vals(readN(t, c, 1)))
			case consumer.ResetNone:
				// Stopped, at its old position, until the application says
				// where to go.
				for range 3 {
					fs, err := c.Poll(ctx)
					require.NoError(t, err)
					require.Empty(t, fs)
				}
				pos, _ := c.Position("t", 0)
				require.EqualValues(t, 5, pos)
				require.NoError(t, c.Seek("t", 0, consumer.Start()))
				require.Equal(t, seq("new", 0, 8), vals(readN(t, c, 8)))
			}
		})
	}
}

// TestRecreatedBetweenFetches: a topic deleted and created again between
// two fetches is told from the old one by its topic ID: the position is
// not carried over to the new topic, whose first records it would skip.
func TestRecreatedBetweenFetches(t *testing.T) {
	for _, policy := range []consumer.ResetPolicy{consumer.ResetEarliest, consumer.ResetLatest, consumer.ResetNone} {
		t.Run(policy.String(), func(t *testing.T) {
			b, c, ctx := readOldTopic(t, policy)

			// No fetch between the delete and the new topic's records.
			require.NoError(t, b.DeleteTopic(ctx, "t"))
			require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
			values(t, b, "t", 0, seq("new", 0, 8)...)

			fs, err := c.Poll(ctx)
			require.NoError(t, err)
			require.ErrorIs(t, fs.Err(), api.ErrUnknownTopicID, "the consumer sees its topic gone, not new5..")
			require.ErrorIs(t, fs.Err(), runnel.ErrUnknownTopicID)
			require.Zero(t, fs.NumRecords())
			var pe *consumer.PartitionError
			require.ErrorAs(t, fs.Err(), &pe)
			require.EqualValues(t, 5, pe.Offset)
			switch policy {
			case consumer.ResetEarliest:
				require.Equal(t, seq("new", 0, 8), vals(readN(t, c, 8)), "from the new topic's start")
			case consumer.ResetLatest:
				values(t, b, "t", 0, "after")
				for {
					pos, ok := c.Position("t", 0)
					if ok {
						require.EqualValues(t, 9, pos)
						break
					}
					fs, err := c.Poll(ctx)
					require.NoError(t, err)
					require.NoError(t, fs.Err())
					require.Zero(t, fs.NumRecords(), "nothing before the new topic's end")
				}
				values(t, b, "t", 0, "later")
				require.Equal(t, []string{"later"}, vals(readN(t, c, 1)))
			case consumer.ResetNone:
				fs, err := c.Poll(ctx)
				require.NoError(t, err)
				require.Empty(t, fs, "stopped until Seek")
				require.NoError(t, c.Seek("t", 0, consumer.At(2)))
				require.Equal(t, seq("new", 2, 6), vals(readN(t, c, 6)), "a Seek is into the topic as it is now")
			}
		})
	}
}

// A partition of a topic that does not exist yet is retried without a
// word, as Kafka's consumers retry UNKNOWN_TOPIC_OR_PARTITION (the Java
// consumer logs it, franz-go strips it from its fetches), and read once
// the topic is created; its look-ups are logged.
func TestUnknownTopicAssigned(t *testing.T) {
	b := openBroker(t, nil)
	logs := &logRecorder{}
	c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond), consumer.RetryBackoff(time.Millisecond),
		consumer.Logger(logs.logger()))
	require.ErrorIs(t, c.AssignTopic(testCtx(t), "missing", consumer.Start()), runnel.ErrUnknownTopic)
	require.NoError(t, c.Assign("missing", 0, consumer.Start()))
	require.NoError(t, c.Assign("missing", 1, consumer.At(0)))
	for range 3 {
		fs, err := c.Poll(testCtx(t))
		require.NoError(t, err)
		require.Empty(t, fs, "nothing to report")
	}
	require.NotEmpty(t, logs.attrs("partition error: retrying", "partition", "err"))
	require.NoError(t, b.CreateTopic(testCtx(t), "missing", log.TopicConfig{Partitions: 2}))
	values(t, b, "missing", 0, "a")
	values(t, b, "missing", 1, "b")
	g := pollUntil(t, c, 2)
	require.Equal(t, []string{"a"}, g.values("missing", 0))
	require.Equal(t, []string{"b"}, g.values("missing", 1))
}

func TestCancelEndsRecords(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	values(t, b, "t", 0, seq("v", 0, 3)...)
	c := newConsumer(t, b, consumer.FetchMaxWait(time.Hour))
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	done := async(func() []error {
		var errs []error
		for r, err := range c.Records(ctx) {
			if err != nil {
				errs = append(errs, err) // and go on: the loop must end all the same
				continue
			}
			if n++; r.Offset == 2 {
				cancel() // from inside the loop
			}
		}
		return errs
	})
	require.Equal(t, []error{context.Canceled}, recv(t, done), "ctx's error, once, last")
	require.Equal(t, 3, n)

	// Cancelled while the long poll waits: the loop yields ctx's error
	// and ends.
	sc := newSignalClient(b)
	c2 := newConsumer(t, sc, consumer.FetchMaxWait(time.Hour))
	require.NoError(t, c2.Assign("t", 0, consumer.End()))
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	done = async(func() []error {
		var errs []error
		for r, err := range c2.Records(ctx2) {
			if r != nil {
				err = fmt.Errorf("a record at %d", r.Offset)
			}
			errs = append(errs, err)
		}
		return errs
	})
	recv(t, sc.fetching)
	cancel2()
	require.Equal(t, []error{context.Canceled}, recv(t, done))
	_, err := c2.Poll(ctx2)
	require.ErrorIs(t, err, context.Canceled)
}

// A ctx cancelled inside a Records loop ends the loop at once: the rest of
// the fetch is left for the next Poll, not yielded after the cancel.
func TestCancelInsideRecordsLoopStopsAtOnce(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	values(t, b, "t", 0, seq("v", 0, 5)...)
	c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []string
	var errs []error
	for r, err := range c.Records(ctx) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		got = append(got, string(r.Value))
		if r.Offset == 1 {
			cancel()
		}
	}
	require.Equal(t, seq("v", 0, 2), got)
	require.Equal(t, []error{context.Canceled}, errs, "then ctx's error")
	require.Equal(t, seq("v", 2, 3), vals(readN(t, c, 3)), "nothing lost")
}

func TestCloseDuringPoll(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	sc := newSignalClient(b)
	c, err := consumer.New(sc, consumer.FetchMaxWait(time.Hour))
	require.NoError(t, err)
	require.NoError(t, c.Assign("t", 0, consumer.End()))
	res := async(func() error {
		_, err := c.Poll(context.Background())
		return err
	})
	recv(t, sc.fetching)
	require.NoError(t, c.Close())
	require.ErrorIs(t, recv(t, res), consumer.ErrClosed)

	// Afterwards: ErrClosed, or nothing.
	require.NoError(t, c.Close(), "idempotent")
	_, err = c.Poll(testCtx(t))
	require.ErrorIs(t, err, consumer.ErrClosed)
	require.ErrorIs(t, c.Assign("t", 0, consumer.Start()), consumer.ErrClosed)
	require.ErrorIs(t, c.AssignTopic(testCtx(t), "t", consumer.Start()), consumer.ErrClosed)
	require.ErrorIs(t, c.Seek("t", 0, consumer.Start()), consumer.ErrClosed)
	for range c.Records(testCtx(t)) {
		t.Fatal("Records of a closed consumer yields nothing")
	}
	c.Pause(api.TopicPartition{Topic: "t"})
	c.Resume(api.TopicPartition{Topic: "t"})
	c.Unassign("t", 0)
}

func TestCloseEndsRecords(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	sc := newSignalClient(b)
	c, err := consumer.New(sc, consumer.FetchMaxWait(time.Hour))
	require.NoError(t, err)
	require.NoError(t, c.Assign("t", 0, consumer.End()))
	done := async(func() error {
		for _, err := range c.Records(context.Background()) {
			return err
		}
		return nil
	})
	recv(t, sc.fetching)
	require.NoError(t, c.Close())
	require.NoError(t, recv(t, done), "Records simply ends")
}

func TestCloseInsideRecordsLoop(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	values(t, b, "t", 0, seq("v", 0, 10)...)
	c, err := consumer.New(b)
	require.NoError(t, err)
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	var got []string
	for r, err := range c.Records(testCtx(t)) {
		require.NoError(t, err)
		got = append(got, string(r.Value))
		if r.Offset == 3 {
			require.NoError(t, c.Close())
		}
	}
	require.Equal(t, seq("v", 0, 4), got, "nothing after Close, not even the rest of the batch")
	pos, ok := c.Position("t", 0)
	require.True(t, ok, "positions stay readable after Close")
	require.EqualValues(t, 4, pos)
}

func TestCompressedBatchesAndHeaders(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	codecs := []compression.Codec{compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd}
	var want []rec
	for _, codec := range codecs {
		var recs []rec
		for i := range 20 {
			r := rec{ts: int64(1000 + i), key: []byte(codec.String()), value: seq(codec.String()+"-", i, 1)[0]}
			if i%2 == 0 {
				r.headers = []record.Header{{Key: "codec", Value: []byte(codec.String())}, {Key: "null"}}
			}
			if i == 3 {
				r.key = nil
			}
			recs = append(recs, r)
		}
		produce(t, b, "t", 0, codec, recs...)
		want = append(want, recs...)
	}
	c := newConsumer(t, b)
	require.NoError(t, c.Assign("t", 0, consumer.At(5))) // inside the first batch
	got := readN(t, c, len(want)-5)
	for i, r := range got {
		w := want[i+5]
		require.EqualValues(t, i+5, r.Offset)
		require.Equal(t, w.value, string(r.Value))
		require.Equal(t, w.key, r.Key)
		require.Equal(t, w.ts, r.Timestamp.UnixMilli())
		require.Equal(t, w.headers, r.Headers, "record %d", r.Offset)
	}
	require.Nil(t, got[3-5+20].Key, "a null key stays null") // offset 23: codec gzip, i == 3
}

// TestControlBatchesSkipped: transaction markers (control batches), as a
// Kafka-written log holds them, are not records. A broker refuses them
// from producers, as Kafka's does, so a fake Client serves them.
func TestControlBatchesSkipped(t *testing.T) {
	marker := encode(t, compression.None, rec{key: []byte{0, 0, 0, 1}, value: "\x00\x00\x00\x00\x00\x00"})
	setControl(marker)
	record.Batch(marker).SetBaseOffset(1)
	var n atomic.Int32
	c := newConsumer(t, serve(t, 3, cat(batchAt(t, 0, "a"), marker, batchAt(t, 2, "b")), &n), consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	got := readN(t, c, 2)
	require.Equal(t, []string{"a", "b"}, vals(got))
	require.Equal(t, []int64{0, 2}, []int64{got[0].Offset, got[1].Offset})

	// A fetch of nothing but the marker advances past it.
	c2 := newConsumer(t, serve(t, 2, marker, &n), consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c2.Assign("t", 0, consumer.At(1)))
	fs, err := c2.Poll(testCtx(t))
	require.NoError(t, err)
	require.Zero(t, fs.NumRecords())
	pos, _ := c2.Position("t", 0)
	require.EqualValues(t, 2, pos)
}

func TestInvalidArguments(t *testing.T) {
	_, err := consumer.New(nil)
	require.ErrorIs(t, err, consumer.ErrInvalidOption)
	_, err = consumer.New((*runnel.Broker)(nil)) // whose methods would panic
	require.ErrorIs(t, err, consumer.ErrInvalidOption)
	b := openBroker(t, nil)
	for _, opt := range []consumer.Opt{
		consumer.FetchMinBytes(-1), consumer.FetchMaxWait(-time.Second), consumer.FetchMaxBytes(0),
		consumer.FetchMaxPartitionBytes(0), consumer.ResetOffset(7), consumer.RetryBackoff(-1),
	} {
		_, err := consumer.New(b, opt)
		require.ErrorIs(t, err, consumer.ErrInvalidOption)
	}
	_, err = consumer.New(b, consumer.ResetOffset(7))
	require.ErrorContains(t, err, "ResetOffset(ResetPolicy(7))", "the error names the bad value")
	c0, err := consumer.New(b, consumer.FetchMaxBytes(0), consumer.FetchMaxBytes(1<<20))
	require.NoError(t, err, "New validates the options' result: a later option overrides an earlier one")
	require.NoError(t, c0.Close())
	c := newConsumer(t, b, consumer.Logger(nil), nil)
	require.ErrorIs(t, c.Assign("", 0, consumer.Start()), api.ErrInvalidTopic)
	require.ErrorIs(t, c.Assign("t", -1, consumer.Start()), api.ErrUnknownTopicOrPartition)
	require.ErrorIs(t, c.Assign("t", 0, consumer.At(-5)), consumer.ErrInvalidOffset)
	require.ErrorIs(t, c.AssignTopic(testCtx(t), "", consumer.Start()), api.ErrInvalidTopic)
	require.ErrorIs(t, c.AssignTopic(testCtx(t), "t", consumer.At(-1)), consumer.ErrInvalidOffset)

	// A name Kafka refuses is refused at once, by every method that takes
	// one, not at the next Poll.
	for _, name := range []string{"a/b", "bad name!", ".", "..", strings.Repeat("x", 250)} {
		require.ErrorIs(t, c.Assign(name, 0, consumer.Start()), api.ErrInvalidTopic, "%q", name)
		require.ErrorIs(t, c.Assign(name, 0, consumer.At(0)), runnel.ErrInvalidTopic, "%q", name)
		require.ErrorIs(t, c.AssignTopic(testCtx(t), name, consumer.Start()), api.ErrInvalidTopic, "%q", name)
		require.ErrorIs(t, c.Seek(name, 0, consumer.Start()), api.ErrInvalidTopic, "%q: not ErrNotAssigned", name)
	}
	require.ErrorIs(t, c.Seek("t", -1, consumer.Start()), api.ErrUnknownTopicOrPartition)
	require.Empty(t, c.Assigned(), "bad input changes nothing")
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.Empty(t, fs, "nothing was assigned to fail later")
}

// A break out of Fetches.Records at a record ends the loop there: the
// Fetches after that record's Fetch are not gone on with (a yield after
// the loop body's false would panic).
func TestFetchesRecordsBreakBeforeTheLastFetch(t *testing.T) {
	fs := consumer.Fetches{
		{Topic: "t", Partition: 0, Batches: batchAt(t, 0, "a", "b")},
		{Topic: "t", Partition: 1, Batches: batchAt(t, 0, "c")},
	}
	for _, stop := range []string{"a", "b"} {
		var got []string
		for r, err := range fs.Records() {
			require.NoError(t, err)
			got = append(got, string(r.Value))
			if string(r.Value) == stop {
				break
			}
		}
		require.Equal(t, stop, got[len(got)-1])
	}
}
