package consumer_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestReview33BreakThenPollAndRecordsMixed: records of a batch after a
// Records loop's break are returned by the next Poll or Records, once.
func TestReview33BreakThenPollAndRecordsMixed(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	values(t, b, "t", 0, seq("v", 0, 6)...)
	c := newConsumer(t, b)
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	require.Equal(t, []string{"v0", "v1"}, vals(readN(t, c, 2)))
	pos, ok := c.Position("t", 0)
	require.True(t, ok)
	require.EqualValues(t, 2, pos)
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	g := &got{}
	g.add(fs)
	require.Equal(t, []string{"v2", "v3", "v4", "v5"}, g.values("t", 0))
	values(t, b, "t", 0, seq("w", 0, 3)...)
	require.Equal(t, []string{"w0"}, vals(readN(t, c, 1)))
	require.Equal(t, []string{"w1", "w2"}, vals(readN(t, c, 2)))
}

// TestReview33TimeEdges: AtTime with equal timestamps, CreateTime
// timestamps that go back within and across batches, and a time past
// every record (End); a batch that straddles the offset found returns no
// record before it.
func TestReview33TimeEdges(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	produce(t, b, "t", 0, compression.None, rec{ts: 300, value: "a"})                                                     // 0
	produce(t, b, "t", 0, compression.None, rec{ts: 100, value: "b"}, rec{ts: 200, value: "c"})                           // 1,2
	produce(t, b, "t", 0, compression.None, rec{ts: 100, value: "d"}, rec{ts: 400, value: "e"}, rec{ts: 350, value: "f"}) // 3,4,5
	produce(t, b, "t", 0, compression.None, rec{ts: 500, value: "g"})                                                     // 6
	ctx := testCtx(t)
	for _, tc := range []struct {
		ms   int64
		want int64
	}{{0, 0}, {150, 0}, {300, 0}, {301, 4}, {360, 4}, {401, 6}, {500, 6}, {501, 7}} {
		lo, err := b.ListOffset(ctx, "t", 0, tc.ms)
		require.NoError(t, err)
		require.Equal(t, tc.want, lo.Offset, "ts %d", tc.ms)
		c := newConsumer(t, b)
		require.NoError(t, c.Assign("t", 0, consumer.AtTime(time.UnixMilli(tc.ms))))
		if tc.want < 7 {
			r := readN(t, c, 1)
			require.Equal(t, tc.want, r[0].Offset, "ts %d", tc.ms)
		}
	}
}

// TestReview33LogAppendTimeAtTime: on a LogAppendTime topic AtTime finds
// records by the broker's append time, not the producer's.
func TestReview33LogAppendTimeAtTime(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.TopicConfig("t", log.TopicConfig{Partitions: 1, Config: log.Config{TimestampType: log.LogAppendTime}}))
	before := time.Now().Add(-time.Second)
	produce(t, b, "t", 0, compression.None, rec{ts: 1, value: "a"}, rec{ts: 2, value: "b"})
	produce(t, b, "t", 0, compression.None, rec{ts: 1, value: "c"})
	c := newConsumer(t, b)
	require.NoError(t, c.Assign("t", 0, consumer.AtTime(before)))
	r := readN(t, c, 3)
	require.EqualValues(t, 0, r[0].Offset)
	require.True(t, !r[0].Timestamp.Before(before), "%v", r[0].Timestamp)
	c2 := newConsumer(t, b)
	require.NoError(t, c2.Assign("t", 0, consumer.AtTime(time.UnixMilli(5))))
	require.EqualValues(t, 0, readN(t, c2, 1)[0].Offset)
}

// TestReview33MaxPartBytesBelowOneBatch: a per-partition limit below one
// batch still reads both partitions to the end (KIP-74).
func TestReview33MaxPartBytesBelowOneBatch(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 2))
	for i := range 5 {
		values(t, b, "t", 0, seq("a", i*10, 10)...)
		values(t, b, "t", 1, seq("b", i*10, 10)...)
	}
	c := newConsumer(t, b, consumer.FetchMaxPartitionBytes(10), consumer.FetchMaxWait(0))
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	require.NoError(t, c.Assign("t", 1, consumer.Start()))
	g := pollUntil(t, c, 100)
	require.Equal(t, seq("a", 0, 50), g.values("t", 0))
	require.Equal(t, seq("b", 0, 50), g.values("t", 1))
}

// TestReview33LongPollWokenByAnyPartition: a long poll over three
// partitions answers an append to any of them.
func TestReview33LongPollWokenByAnyPartition(t *testing.T) {
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

// TestReview33DeleteRecordsUnderRecordsLoop: DeleteRecords past the
// position between two Records loops resets it per the policy.
func TestReview33DeleteRecordsUnderRecordsLoop(t *testing.T) {
	for _, tc := range []struct {
		reset consumer.ResetPolicy
		want  []string
	}{{consumer.ResetEarliest, seq("v", 5, 5)}, {consumer.ResetLatest, []string{"n0"}}} {
		b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
		for i := range 10 {
			values(t, b, "t", 0, seq("v", i, 1)...)
		}
		c := newConsumer(t, b, consumer.ResetOffset(tc.reset))
		require.NoError(t, c.Assign("t", 0, consumer.Start()))
		require.Equal(t, seq("v", 0, 3), vals(readN(t, c, 3)))
		_, err := b.DeleteRecords(testCtx(t), "t", 0, 5)
		require.NoError(t, err)
		if tc.reset == consumer.ResetLatest {
			// The reset, then the look-up of End, then an append.
			fs, err := c.Poll(testCtx(t))
			require.NoError(t, err)
			require.Zero(t, fs.NumRecords())
			fs, err = c.Poll(testCtx(t))
			require.NoError(t, err)
			require.Zero(t, fs.NumRecords())
			values(t, b, "t", 0, "n0")
		}
		require.Equal(t, tc.want, vals(readN(t, c, len(tc.want))), tc.reset.String())
	}
}

// TestReview33ResetNoneYieldsAndGoesOn: under ResetNone a Records loop
// yields the out-of-range error and goes on with the other partition.
func TestReview33ResetNoneYieldsAndGoesOn(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 2))
	for i := range 10 {
		values(t, b, "t", 0, seq("v", i, 1)...)
	}
	c := newConsumer(t, b, consumer.ResetOffset(consumer.ResetNone))
	require.NoError(t, c.Assign("t", 0, consumer.At(2)))
	require.NoError(t, c.Assign("t", 1, consumer.Start()))
	_, err := b.DeleteRecords(testCtx(t), "t", 0, 5)
	require.NoError(t, err)
	values(t, b, "t", 1, "p1")
	var errs []error
	var recs []string
	for r, err := range c.Records(testCtx(t)) {
		if err != nil {
			errs = append(errs, err)
			if len(recs) == 1 {
				break
			}
			continue
		}
		recs = append(recs, string(r.Value))
		if len(recs) == 1 && len(errs) == 1 {
			break
		}
	}
	require.Len(t, errs, 1)
	require.ErrorIs(t, errs[0], log.ErrOffsetOutOfRange)
	require.Equal(t, []string{"p1"}, recs)
}

// TestReview33AtTimeCompactedGap: AtTime and At inside a gap compaction
// left land on the next record kept.
func TestReview33AtTimeCompactedGap(t *testing.T) {
	b := runneltest.NewBroker(t)
	ctx := testCtx(t)
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{
		CleanupPolicy: log.Compact, SegmentBytes: 200, MinCleanableDirtyRatio: -1,
	}}))
	k := func(s string) []byte { return []byte(s) }
	produce(t, b, "t", 0, compression.None, rec{ts: 100, key: k("a"), value: "a0"}, rec{ts: 200, key: k("b"), value: "b0"}, rec{ts: 300, key: k("a"), value: "a1"})
	produce(t, b, "t", 0, compression.None, rec{ts: 400, key: k("b"), value: "b1"})
	for i := range 5 {
		produce(t, b, "t", 0, compression.None, rec{ts: 1000 + int64(i), key: k(fmt.Sprint("tail", i)), value: "tail"})
	}
	require.NoError(t, b.Maintain(ctx))
	for _, tc := range []struct {
		ms   int64
		want string
		off  int64
	}{{50, "a1", 2}, {150, "a1", 2}, {301, "b1", 3}, {350, "b1", 3}} {
		lo, err := b.ListOffset(ctx, "t", 0, tc.ms)
		require.NoError(t, err)
		require.Equal(t, tc.off, lo.Offset, "ts %d", tc.ms)
		c := newConsumer(t, b)
		require.NoError(t, c.Assign("t", 0, consumer.AtTime(time.UnixMilli(tc.ms))))
		r := readN(t, c, 1)
		require.Equal(t, tc.want, string(r[0].Value), "ts %d", tc.ms)
		c2 := newConsumer(t, b)
		require.NoError(t, c2.Assign("t", 0, consumer.At(1)))
		r = readN(t, c2, 1)
		require.Equal(t, "a1", string(r[0].Value))
	}
}

// TestReview33SeekWhilePaused: a Seek of a paused partition (At or End)
// is where it reads from after Resume; End is looked up while paused.
func TestReview33SeekWhilePaused(t *testing.T) {
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

// TestReview33PastEndResets: a position past the log end under each
// reset policy.
func TestReview33PastEndResets(t *testing.T) {
	for _, reset := range []consumer.ResetPolicy{consumer.ResetEarliest, consumer.ResetLatest, consumer.ResetNone} {
		b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
		values(t, b, "t", 0, seq("v", 0, 5)...)
		c := newConsumer(t, b, consumer.ResetOffset(reset), consumer.FetchMaxWait(10*time.Millisecond))
		require.NoError(t, c.Assign("t", 0, consumer.At(9)))
		var errs []error
		for range 2 {
			fs, err := c.Poll(testCtx(t))
			require.NoError(t, err)
			require.Zero(t, fs.NumRecords())
			if err := fs.Err(); err != nil {
				errs = append(errs, err)
			}
			if reset != consumer.ResetNone {
				break
			}
		}
		if reset != consumer.ResetNone {
			_, ok := c.Position("t", 0)
			require.False(t, ok)
			fs, err := c.Poll(testCtx(t))
			require.NoError(t, err)
			_ = fs
		}
		p, ok := c.Position("t", 0)
		switch reset {
		case consumer.ResetEarliest:
			require.Equal(t, []any{int64(5), true}, []any{p, ok}) // read 0..4
		case consumer.ResetLatest:
			require.Equal(t, []any{int64(5), true}, []any{p, ok})
		case consumer.ResetNone:
			require.Equal(t, []any{int64(9), true}, []any{p, ok})
			require.Len(t, errs, 1)
			require.ErrorIs(t, errs[0], log.ErrOffsetOutOfRange)
		}
	}
}

// TestReview33TopicDeletedDuringLongPoll: a topic deleted and created
// again under a Records loop's long poll is reported once per partition
// and read from the new topic's start.
func TestReview33TopicDeletedDuringLongPoll(t *testing.T) {
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

// TestReview33AtTimeLogStartInsideBatch: with the log start inside a
// batch, AtTime and At below it give no record below the log start.
func TestReview33AtTimeLogStartInsideBatch(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	ctx := testCtx(t)
	produce(t, b, "t", 0, compression.None, rec{ts: 100, value: "a"}, rec{ts: 200, value: "b"}, rec{ts: 300, value: "c"}, rec{ts: 400, value: "d"})
	produce(t, b, "t", 0, compression.None, rec{ts: 500, value: "e"})
	_, err := b.DeleteRecords(ctx, "t", 0, 2)
	require.NoError(t, err)
	for _, tc := range []struct {
		ms   int64
		want int64
	}{{50, 2}, {150, 2}, {300, 2}, {301, 3}, {450, 4}} {
		lo, err := b.ListOffset(ctx, "t", 0, tc.ms)
		require.NoError(t, err)
		require.Equal(t, tc.want, lo.Offset, "ts %d", tc.ms)
		c := newConsumer(t, b)
		require.NoError(t, c.Assign("t", 0, consumer.AtTime(time.UnixMilli(tc.ms))))
		require.Equal(t, tc.want, readN(t, c, 1)[0].Offset)
	}
	c := newConsumer(t, b)
	require.NoError(t, c.Assign("t", 0, consumer.At(1)))
	require.EqualValues(t, 2, readN(t, c, 1)[0].Offset)
}

// TestReview33MinBytesAcrossPartitions: FetchMinBytes is met by bytes
// of two partitions, the second appended during the long poll.
func TestReview33MinBytesAcrossPartitions(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 2))
	s := newSignalClient(b)
	c := newConsumer(t, s, consumer.FetchMaxWait(time.Hour), consumer.FetchMinBytes(150))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	require.NoError(t, c.Assign("t", 1, consumer.At(0)))
	values(t, b, "t", 0, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
	ch := async(func() int {
		fs, err := c.Poll(testCtx(t))
		if err != nil {
			return -1
		}
		return fs.NumRecords()
	})
	recv(t, s.fetching)
	values(t, b, "t", 1, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
	require.Equal(t, 2, recv(t, ch))
}

// TestReview33TinyLimitsAcrossSegmentsEachFS: fetch limits of one byte
// over several segments, every codec, on both file systems, with Poll and
// with Records loops broken out of.
func TestReview33TinyLimitsAcrossSegmentsEachFS(t *testing.T) {
	eachFS(t, func(t *testing.T, cfg runnel.Config) {
		b := openCfg(t, cfg)
		ctx := testCtx(t)
		require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2, Config: log.Config{SegmentBytes: 300}}))
		want := map[int32][]string{}
		for i := range 12 {
			for p := range int32(2) {
				codec := allCodecs[(i+int(p))%len(allCodecs)]
				vs := seq(fmt.Sprintf("p%d-%d-", p, i), 0, 1+i%4)
				var recs []rec
				for _, v := range vs {
					recs = append(recs, rec{value: v})
				}
				produce(t, b, "t", p, codec, recs...)
				want[p] = append(want[p], vs...)
			}
		}
		_, err := b.DeleteRecords(ctx, "t", 1, 3)
		require.NoError(t, err)
		want[1] = want[1][3:]
		for _, mode := range []string{"records", "poll"} {
			c := newConsumer(t, b, consumer.FetchMaxPartitionBytes(1), consumer.FetchMaxBytes(1), consumer.FetchMaxWait(time.Millisecond))
			require.NoError(t, c.Assign("t", 0, consumer.At(1)))
			require.NoError(t, c.Assign("t", 1, consumer.Start()))
			g := map[int32][]string{}
			n := len(want[0]) - 1 + len(want[1])
			if mode == "poll" {
				gg := pollUntil(t, c, n)
				g[0], g[1] = gg.values("t", 0), gg.values("t", 1)
			} else {
				k := 0
				for k < n {
					for _, r := range readN(t, c, min(3, n-k)) {
						g[r.Partition] = append(g[r.Partition], string(r.Value))
						k++
					}
				}
			}
			require.Equal(t, want[0][1:], g[0], mode)
			require.Equal(t, want[1], g[1], mode)
		}
	})
}

// TestReview33PartitionsGrownUnderLongPoll: CreatePartitions and a
// config change (a reopen) under a long poll; the poll still answers the
// next append, and a partition added is read once assigned.
func TestReview33PartitionsGrownUnderLongPoll(t *testing.T) {
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

// TestReview33BreakAtEveryRecordEachCodec: a Records loop broken at each
// record of compressed batches loses and repeats nothing.
func TestReview33BreakAtEveryRecordEachCodec(t *testing.T) {
	for _, codec := range allCodecs {
		b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
		var recs []rec
		for i := range 7 {
			recs = append(recs, rec{value: fmt.Sprint(i)})
		}
		produce(t, b, "t", 0, codec, recs[:4]...)
		produce(t, b, "t", 0, codec, recs[4:]...)
		c := newConsumer(t, b)
		require.NoError(t, c.Assign("t", 0, consumer.Start()))
		for i := range 7 {
			r := readN(t, c, 1)
			require.EqualValues(t, i, r[0].Offset, codec.String())
		}
	}
}
