package producer_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// TestTimestampPastInt64Millis: a Timestamp whose Unix milliseconds do not
// fit an int64 (time.Time reaches far past them) is refused with
// ErrInvalidTimestamp, as one before the epoch is: its UnixMilli wraps, and
// the record was stored with whatever the wrap gave (384 ms for the first
// case: 1970). The largest Kafka timestamp, math.MaxInt64 ms, is kept as
// it is.
func TestTimestampPastInt64Millis(t *testing.T) {
	// math.MaxInt64 ms is far past the broker's clock: the topic has no
	// TimestampAfterMax (its default, an hour, would refuse it).
	b := newBroker(t, runneltest.TopicConfig("t", log.TopicConfig{Partitions: 1, Config: log.Config{TimestampAfterMax: -1}}))
	p := newProducer(t, b)
	ctx := testCtx(t)
	for _, ts := range []time.Time{
		time.Unix(2*(math.MaxInt64/1000+1), 0),              // UnixMilli wraps to 384
		time.Unix(math.MaxInt64/1000+1, 0),                  // UnixMilli wraps negative
		time.UnixMilli(math.MaxInt64).Add(time.Millisecond), // UnixMilli wraps negative
		time.Unix(-2*(math.MaxInt64/1000+1)+1, 0),           // before the epoch, UnixMilli wraps positive
	} {
		err := p.ProduceSync(ctx, &record.Record{Topic: "t", Timestamp: ts, Value: []byte("far")})
		require.ErrorIs(t, err, producer.ErrInvalidTimestamp, "%v (UnixMilli %d)", ts, ts.UnixMilli())
	}
	// The largest Kafka timestamp, also from a time within its
	// millisecond (UnixMilli truncates, as for any other).
	for _, ts := range []time.Time{time.UnixMilli(math.MaxInt64), time.UnixMilli(math.MaxInt64).Add(time.Millisecond - 1)} {
		require.NoError(t, p.ProduceSync(ctx, &record.Record{Topic: "t", Timestamp: ts, Value: []byte("last")}))
	}
	got := readRecords(t, b, "t", 0)
	require.Len(t, got, 2)
	for _, r := range got {
		require.Equal(t, int64(math.MaxInt64), r.Timestamp.UnixMilli())
	}
}

// hugeCountClient is a Client that reports a partition count past an
// int32, which no Kafka topic has.
type hugeCountClient struct {
	*runnel.Broker
	n int
}

func (c hugeCountClient) Partitions(context.Context, string) (int, error) { return c.n, nil }

// TestPartitionCountPastInt32: a Client that reports more partitions than
// an int32 numbers breaks its contract: the record fails with
// api.ErrInvalidRequest, and the producer goes on. It made a partition of
// each: make panicked ("len out of range") for a count past memory, and a
// count past math.MaxInt32 that fits took it all, with int32 ids wrapping.
func TestPartitionCountPastInt32(t *testing.T) {
	if math.MaxInt == math.MaxInt32 {
		t.Skip("an int holds no count past an int32")
	}
	b := newBroker(t, runneltest.Topic("t", 1))
	p := newProducer(t, hugeCountClient{Broker: b, n: testkit.PastInt32(1 << 46)})
	err := testkit.NoPanic(t, "produce", func() error {
		return p.ProduceSync(testCtx(t), &record.Record{Topic: "t", Value: []byte("v")})
	})
	require.ErrorIs(t, err, api.ErrInvalidRequest)
	require.Empty(t, readRecords(t, b, "t", 0))
}

// TestTimestampsProperty: records with timestamps drawn across and past
// what a Kafka timestamp holds, batched together (their deltas from the
// batch's first span the whole int64), are each either refused with
// ErrInvalidTimestamp — exactly those before 1970 or past the millisecond
// math.MaxInt64 — or stored with their time truncated to the millisecond,
// in order.
func TestTimestampsProperty(t *testing.T) {
	lastMs := time.UnixMilli(math.MaxInt64)
	rapid.Check(t, func(rt *rapid.T) {
		// Timestamps up to math.MaxInt64 ms, far past the broker's clock:
		// no TimestampAfterMax.
		b, err := runnel.Open(runnel.Config{TopicDefaults: log.Config{Sync: log.SyncNever, TimestampAfterMax: -1}})
		if err != nil {
			rt.Fatal(err)
		}
		defer b.Close()
		ctx := context.Background()
		if err := b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}); err != nil {
			rt.Fatal(err)
		}
		p, err := producer.New(b, producer.DefaultTopic("t"), producer.Linger(time.Hour), producer.DeliveryTimeout(2*time.Hour))
		if err != nil {
			rt.Fatal(err)
		}
		defer p.Close()
		times := rapid.SliceOfN(rapid.Custom(func(rt *rapid.T) time.Time {
			switch rapid.IntRange(0, 4).Draw(rt, "kind") {
			case 0: // around the largest timestamp, by the nanosecond
				return lastMs.Add(time.Duration(rapid.Int64Range(-2e6, 2e6).Draw(rt, "ns")))
			case 1: // around the epoch
				return time.Unix(0, rapid.Int64Range(-2e6, 2e6).Draw(rt, "ns"))
			case 2: // anywhere a time.Time's seconds go, far past an int64 of ms
				return time.Unix(rapid.Int64Range(-1<<62, 1<<62).Draw(rt, "s"), rapid.Int64Range(0, 999_999_999).Draw(rt, "ns"))
			case 3: // where UnixMilli wraps to small values
				return time.Unix(rapid.SampledFrom([]int64{2 * (math.MaxInt64/1000 + 1), -2 * (math.MaxInt64 / 1000)}).Draw(rt, "wrap"), 0)
			default:
				return time.UnixMilli(rapid.Int64Range(0, math.MaxInt64).Draw(rt, "ms"))
			}
		}), 1, 8).Draw(rt, "times")
		errs := make([]error, len(times))
		var wg sync.WaitGroup
		for i, ts := range times {
			wg.Add(1)
			p.Produce(ctx, &record.Record{Value: []byte{byte(i)}, Timestamp: ts}, func(_ *record.Record, err error) {
				errs[i] = err
				wg.Done()
			})
		}
		if err := p.Flush(ctx); err != nil {
			rt.Fatal(err)
		}
		wg.Wait()
		var want []int64
		for i, ts := range times {
			ok := !ts.Before(time.Unix(0, 0)) && ts.Before(lastMs.Add(time.Millisecond))
			switch {
			case ok && errs[i] != nil:
				rt.Fatalf("%v refused: %v", ts, errs[i])
			case !ok && !errors.Is(errs[i], producer.ErrInvalidTimestamp):
				rt.Fatalf("%v: %v, want ErrInvalidTimestamp", ts, errs[i])
			case ok:
				want = append(want, ts.UnixMilli())
			}
		}
		var got []int64
		for _, r := range readAllRecords(rt, b, "t", 0) {
			got = append(got, r.Timestamp.UnixMilli())
		}
		if !slices.Equal(got, want) {
			rt.Fatalf("stored timestamps %v, want %v", got, want)
		}
	})
}
