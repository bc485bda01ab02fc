package producer_test

// Review45mut: a mutation pass over the producer's code changed by the
// review rounds of 2026-12-04 (the failed batches' log throttling). Each
// test names the mutant it kills.

import (
	"errors"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestReview45MutFailedBatchLocalKinds: two local errors (Kafka code -1)
// are one kind of failure only when both are delivery timeouts, or
// neither is: a delivery timeout after a batch refused with an error of
// the Client's own begins a run of its own, at Warn. And each line names
// its topic and partition. Kills: failureKind without its timeout flag
// (p03), the line without its partition (p12).
func TestReview45MutFailedBatchLocalKinds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := bubbleBroker(t)
		f := runneltest.NewFaults(t, c.Broker)
		logs := &failedLines{}
		p, err := producer.New(f, producer.DefaultTopic("t"), producer.Logger(logs.logger()),
			producer.DeliveryTimeout(10*time.Second), producer.RetryBackoff(time.Second))
		require.NoError(t, err)
		defer p.Close()
		produce := func() error {
			return p.ProduceSync(t.Context(), &record.Record{Value: []byte("x")})
		}
		own := errors.New("the client's own error")
		rule := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: own, Count: runneltest.Unlimited})
		require.ErrorIs(t, produce(), own)
		rule.Remove()
		// Held until its deadline: a delivery timeout of no Kafka code.
		rule = f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.HoldRequest, Count: runneltest.Unlimited})
		require.ErrorIs(t, produce(), producer.ErrDeliveryTimeout)
		rule.Remove()
		f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: api.ErrNotLeader, Count: runneltest.Unlimited})
		require.ErrorIs(t, produce(), producer.ErrDeliveryTimeout)
		lines := logs.take()
		require.Len(t, lines, 3)
		require.Equal(t, slog.LevelWarn, lines[0].level, "the first")
		require.Equal(t, slog.LevelWarn, lines[1].level, "a delivery timeout: another kind")
		require.Equal(t, slog.LevelWarn, lines[2].level, "a delivery timeout of another Kafka code")
		for _, l := range lines {
			require.Equal(t, "t", l.attrs["topic"])
			require.EqualValues(t, 0, l.attrs["partition"])
		}
	})
}

// TestReview45MutPipelinedFailuresThrottled: with an AsyncClient and
// MaxInFlight above 1, a batch appended and then failed by its
// acknowledgement is logged as the others are: a run of failures of one
// kind at Warn for the first, then at Debug. Kills: the pipeline's
// "batch failed" line logged at Warn each time, outside the run (p18).
func TestReview45MutPipelinedFailuresThrottled(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := newAckClient(b)
	logs := &failedLines{}
	p := newProducer(t, c, producer.DefaultTopic("t"), producer.MaxInFlight(2), producer.Logger(logs.logger()))
	stop := c.answerAll(func(int) error { return api.ErrPolicyViolation })
	defer stop()
	ctx := testCtx(t)
	for range 3 {
		require.ErrorIs(t, p.ProduceSync(ctx, &record.Record{Value: []byte("x")}), api.ErrPolicyViolation)
	}
	lines := logs.take()
	require.Len(t, lines, 3)
	require.Equal(t, slog.LevelWarn, lines[0].level, "the first")
	require.Equal(t, slog.LevelDebug, lines[1].level)
	require.Equal(t, slog.LevelDebug, lines[2].level)
}

// TestReview45MutFailedBatchClosedKind: a batch failed by the producer's
// Close after a batch refused with an error of the Client's own (both of
// no Kafka code) begins a run of its own, at Warn. Kills: failureKind
// without its closed flag (p04).
func TestReview45MutFailedBatchClosedKind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := bubbleBroker(t)
		f := runneltest.NewFaults(t, c.Broker)
		logs := &failedLines{}
		p, err := producer.New(f, producer.DefaultTopic("t"), producer.Logger(logs.logger()))
		require.NoError(t, err)
		own := errors.New("the client's own error")
		rule := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: own, Count: runneltest.Unlimited})
		require.ErrorIs(t, p.ProduceSync(t.Context(), &record.Record{Value: []byte("x")}), own)
		rule.Remove()
		rule = f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.HoldRequest, Count: runneltest.Unlimited})
		done := make(chan error, 1)
		p.Produce(t.Context(), &record.Record{Value: []byte("y")}, func(_ *record.Record, err error) { done <- err })
		synctest.Wait() // held
		p.Close()
		require.ErrorIs(t, <-done, producer.ErrClosed)
		rule.Remove()
		lines := logs.take()
		require.Len(t, lines, 2)
		require.Equal(t, slog.LevelWarn, lines[0].level, "the first")
		require.Equal(t, slog.LevelWarn, lines[1].level, "a batch failed by Close: another kind")
	})
}
