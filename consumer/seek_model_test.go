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

// TestSeekBreakModel: with fetch limits below one batch (KIP-74's
// first batch whole), every codec, compaction's gaps or a log start
// inside a batch, seeks to offsets and times, and Records loops broken
// out of mixed with Polls, the records read are those a plain consumer
// reads from the position, once each, in order, and Position stays
// between the last record read and the next.
func TestSeekBreakModel(t *testing.T) {
	testkit.Seeds(t, "RUNNEL_CONSUMER_SEEK_SEEDS", 30, 5, func(t *testing.T, seed uint64) {
		rng := rand.New(rand.NewPCG(seed, 11))
		eachFS(t, func(t *testing.T, cfg runnel.Config) {
			b := openCfg(t, cfg)
			ctx := testCtx(t)
			compact := rng.IntN(2) == 0
			lc := log.Config{SegmentBytes: int64(200 + rng.IntN(1000)), RetentionTime: -1, MinCleanableDirtyRatio: -1}
			if compact {
				lc.CleanupPolicy = log.Compact
			}
			require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: lc}))
			total := 0
			for range 30 {
				n := 1 + rng.IntN(6)
				var recs []rec
				for range n {
					recs = append(recs, rec{ts: int64(1 + rng.IntN(100)), key: []byte(fmt.Sprint("k", rng.IntN(10))), value: fmt.Sprint("v", total)})
					total++
				}
				produce(t, b, "t", 0, allCodecs[rng.IntN(len(allCodecs))], recs...)
			}
			require.NoError(t, b.Maintain(ctx))
			start := int64(0)
			if !compact && rng.IntN(2) == 0 {
				start = int64(rng.IntN(total))
				_, err := b.DeleteRecords(ctx, "t", 0, start)
				require.NoError(t, err)
			}
			// The model: every record kept, as a plain consumer reads them.
			base := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond))
			require.NoError(t, base.Assign("t", 0, consumer.Start()))
			type kept struct {
				off, ts int64
				v       string
			}
			var model []kept
			for r, err := range base.Records(ctx) {
				require.NoError(t, err)
				model = append(model, kept{r.Offset, r.Timestamp.UnixMilli(), string(r.Value)})
				if p, _ := base.Position("t", 0); p >= int64(total) {
					break
				}
			}
			from := func(off int64) int {
				for i, k := range model {
					if k.off >= off {
						return i
					}
				}
				return len(model)
			}
			atTime := func(ms int64) int {
				for i, k := range model {
					if k.ts >= ms {
						return i
					}
				}
				return len(model)
			}
			c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond),
				consumer.FetchMaxPartitionBytes(1+rng.IntN(400)), consumer.FetchMaxBytes(1+rng.IntN(800)))
			require.NoError(t, c.Assign("t", 0, consumer.Start()))
			next := 0
			for step := range 30 {
				switch rng.IntN(4) {
				case 0:
					off := int64(rng.IntN(total + 1))
					if off < start {
						off = start
					}
					require.NoError(t, c.Seek("t", 0, consumer.At(off)))
					next = from(off)
				case 1:
					ms := int64(rng.IntN(110))
					require.NoError(t, c.Seek("t", 0, consumer.AtTime(time.UnixMilli(ms))))
					next = atTime(ms)
				}
				n := min(rng.IntN(8), len(model)-next)
				if n == 0 {
					continue
				}
				var got []string
				if rng.IntN(2) == 0 {
					got = vals(readN(t, c, n))
				} else {
					for len(got) < n {
						fs, err := c.Poll(ctx)
						require.NoError(t, err)
						for r, err := range fs.Records() {
							require.NoError(t, err)
							got = append(got, string(r.Value))
						}
					}
				}
				var want []string
				for _, k := range model[next:min(next+len(got), len(model))] {
					want = append(want, k.v)
				}
				require.Equal(t, want, got, "seed %d step %d compact %v", seed, step, compact)
				next += len(got)
				if next < len(model) {
					p, ok := c.Position("t", 0)
					require.True(t, ok, "seed %d step %d compact %v: no position", seed, step, compact)
					require.LessOrEqual(t, p, model[next].off, "seed %d step %d compact %v: position", seed, step, compact)
					require.Greater(t, p, model[next-1].off, "seed %d step %d compact %v: position", seed, step, compact)
				}
			}
		})
	})
}
