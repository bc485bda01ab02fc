package consumer_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestOffsetForTimeModel: ListOffset by time answers the first
// offset at or above the log start whose record's timestamp is at least
// the time asked, for CreateTime timestamps that go back and forth within
// and across batches and segments, equal ones, a log start inside a batch
// (DeleteRecords), and a time past every record (the high watermark).
func TestOffsetForTimeModel(t *testing.T) {
	testkit.Seeds(t, "RUNNEL_CONSUMER_TIME_SEEDS", 30, 5, func(t *testing.T, seed uint64) {
		rng := rand.New(rand.NewPCG(seed, 7))
		eachFS(t, func(t *testing.T, cfg runnel.Config) {
			b := openCfg(t, cfg)
			ctx := testCtx(t)
			require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{
				SegmentBytes: int64(200 + rng.IntN(2000)), IndexIntervalBytes: 1 + rng.IntN(500), RetentionTime: -1,
			}}))
			var ts []int64
			for range 40 {
				n := 1 + rng.IntN(5)
				var recs []rec
				for range n {
					v := int64(1 + rng.IntN(100))
					recs = append(recs, rec{ts: v, value: "x"})
					ts = append(ts, v)
				}
				produce(t, b, "t", 0, allCodecs[rng.IntN(len(allCodecs))], recs...)
			}
			start := int64(0)
			if rng.IntN(2) == 0 {
				start = int64(rng.IntN(len(ts)))
				_, err := b.DeleteRecords(ctx, "t", 0, start)
				require.NoError(t, err)
			}
			for q := int64(0); q <= 102; q++ {
				want := int64(len(ts))
				for i := start; i < int64(len(ts)); i++ {
					if ts[i] >= q {
						want = i
						break
					}
				}
				lo, err := b.ListOffset(ctx, "t", 0, q)
				require.NoError(t, err)
				require.Equal(t, want, lo.Offset, fmt.Sprintf("seed %d q %d start %d ts %v", seed, q, start, ts))
			}
		})
	})
}

// TestOffsetForTimeCompacted: after compaction, ListOffset by time
// answers the first record a consumer reads whose timestamp is at least
// the time asked, across the gaps compaction left.
func TestOffsetForTimeCompacted(t *testing.T) {
	testkit.Seeds(t, "RUNNEL_CONSUMER_TIME_SEEDS", 20, 3, func(t *testing.T, seed uint64) {
		rng := rand.New(rand.NewPCG(seed, 9))
		eachFS(t, func(t *testing.T, cfg runnel.Config) {
			b := openCfg(t, cfg)
			ctx := testCtx(t)
			require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{
				SegmentBytes: int64(200 + rng.IntN(1000)), IndexIntervalBytes: 1 + rng.IntN(500), RetentionTime: -1,
				CleanupPolicy: log.Compact, MinCleanableDirtyRatio: -1,
			}}))
			total := 0
			for range 40 {
				n := 1 + rng.IntN(5)
				var recs []rec
				for range n {
					recs = append(recs, rec{ts: int64(1 + rng.IntN(100)), key: []byte(fmt.Sprint("k", rng.IntN(8))), value: "x"})
				}
				produce(t, b, "t", 0, allCodecs[rng.IntN(len(allCodecs))], recs...)
				total += n
			}
			require.NoError(t, b.Maintain(ctx))
			c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond))
			require.NoError(t, c.Assign("t", 0, consumer.Start()))
			var offs, ts []int64
			for r, err := range c.Records(ctx) {
				require.NoError(t, err)
				offs = append(offs, r.Offset)
				ts = append(ts, r.Timestamp.UnixMilli())
				if p, _ := c.Position("t", 0); p >= int64(total) {
					break
				}
			}
			for q := int64(0); q <= 102; q++ {
				want := int64(total)
				for i := range ts {
					if ts[i] >= q {
						want = offs[i]
						break
					}
				}
				lo, err := b.ListOffset(ctx, "t", 0, q)
				require.NoError(t, err)
				require.Equal(t, want, lo.Offset, fmt.Sprintf("seed %d q %d offs %v ts %v", seed, q, offs, ts))
			}
		})
	})
}

// TestAtTimeEdges: AtTime with equal timestamps, CreateTime
// timestamps that go back within and across batches, and a time past
// every record (End); a batch that straddles the offset found returns no
// record before it.
func TestAtTimeEdges(t *testing.T) {
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

// TestLogAppendTimeAtTime: on a LogAppendTime topic AtTime finds
// records by the broker's append time, not the producer's.
func TestLogAppendTimeAtTime(t *testing.T) {
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

// TestAtTimeCompactedGap: AtTime and At inside a gap compaction
// left land on the next record kept.
func TestAtTimeCompactedGap(t *testing.T) {
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

// TestAtTimeLogStartInsideBatch: with the log start inside a
// batch, AtTime and At below it give no record below the log start.
func TestAtTimeLogStartInsideBatch(t *testing.T) {
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
