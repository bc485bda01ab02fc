package log

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestOffsetOfMaxTimestampBelowUnderChurn: searches below a bound inside
// the sealed segments while appends, rolls and compactions (which replace
// and close the segments the searches read) go on. Compaction only drops
// records below the bound, so an answer holds as of some moment of the
// search when it names a record that was there before it, with a
// timestamp no record still there after it exceeds, and no record still
// there with that timestamp lies before it.
func TestOffsetOfMaxTimestampBelowUnderChurn(t *testing.T) {
	defer goleak.VerifyNone(t)
	rounds := 300
	if testing.Short() {
		rounds = 40
	}
	e := newEnv(t)
	l := e.open(Config{CleanupPolicy: Compact, MinCleanableDirtyRatio: -1, SegmentBytes: 600, IndexIntervalBytes: 50})
	defer l.Close()
	rng := rand.New(rand.NewPCG(5, 6))
	appendSome := func(rng *rand.Rand, n int) error {
		for range n {
			var recs []kv
			for range 1 + rng.IntN(3) {
				recs = append(recs, kv{fmt.Appendf(nil, "k%d", rng.IntN(6)), []byte("v"), rng.Int64N(1000)})
			}
			if _, err := l.Append(context.Background(), batchOf(t, compression.None, recs...), AppendOptions{}); err != nil {
				return err
			}
		}
		return nil
	}
	require.NoError(t, appendSome(rng, 60))
	ctx := context.Background()
	below := func(upTo int64) []*record.Record {
		var out []*record.Record
		for _, r := range readAll(t, l, l.LogStartOffset()) {
			if r.Offset < upTo {
				out = append(out, r)
			}
		}
		return out
	}
	for range rounds {
		upTo := l.LogEndOffset() - 1 - rng.Int64N(20)
		before := below(upTo)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			wrng := rand.New(rand.NewPCG(rng.Uint64(), 1))
			for range 3 {
				if err := appendSome(wrng, 4); err != nil {
					t.Error(err)
					return
				}
				if _, err := l.Compact(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		var got []int64
		var oks []bool
		for range 5 {
			off, ok, err := l.OffsetOfMaxTimestampBelow(ctx, upTo)
			require.NoError(t, err)
			got, oks = append(got, off), append(oks, ok)
		}
		wg.Wait()
		after := below(upTo)
		afterMax := int64(math.MinInt64)
		for _, r := range after {
			afterMax = max(afterMax, r.Timestamp.UnixMilli())
		}
		for i, off := range got {
			if !oks[i] {
				require.Empty(t, after, "no answer below %d", upTo)
				continue
			}
			var rec *record.Record
			for _, r := range before {
				if r.Offset == off {
					rec = r
				}
			}
			require.NotNil(t, rec, "answer %d below %d was no record", off, upTo)
			ts := rec.Timestamp.UnixMilli()
			require.GreaterOrEqual(t, ts, afterMax, "answer %d below %d", off, upTo)
			for _, r := range after {
				if r.Timestamp.UnixMilli() == ts {
					require.LessOrEqual(t, off, r.Offset, "answer %d below %d: %d has its timestamp", off, upTo, r.Offset)
					break
				}
			}
		}
	}
}
