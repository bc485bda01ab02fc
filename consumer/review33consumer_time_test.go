package consumer_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// TestReview33OffsetForTimeModel: ListOffset by time answers the first
// offset at or above the log start whose record's timestamp is at least
// the time asked, for CreateTime timestamps that go back and forth within
// and across batches and segments, equal ones, a log start inside a batch
// (DeleteRecords), and a time past every record (the high watermark).
func TestReview33OffsetForTimeModel(t *testing.T) {
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

// TestReview33OffsetForTimeCompacted: after compaction, ListOffset by time
// answers the first record a consumer reads whose timestamp is at least
// the time asked, across the gaps compaction left.
func TestReview33OffsetForTimeCompacted(t *testing.T) {
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
