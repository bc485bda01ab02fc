package producer_test

import (
	"errors"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// The throttling of the producer's "batch failed" lines (runs of lines,
// by internal/logrun): what is one kind of failure and what begins a run
// of its own. Some tests name the broken variants of the code they catch
// ("Kills: ..."; the pNN are the ids of those variants in the mutation
// run).

// failedLine is one "batch failed" line: its level and its attributes.
type failedLine struct {
	level slog.Level
	attrs map[string]any
}

// failedLines keeps the producer's "batch failed" lines.
type failedLines struct {
	mu    sync.Mutex
	lines []failedLine
}

func (f *failedLines) logger() *slog.Logger {
	return slog.New(testkit.LineFunc(func(r slog.Record) {
		if r.Message != "batch failed" {
			return
		}
		l := failedLine{level: r.Level, attrs: map[string]any{}}
		r.Attrs(func(a slog.Attr) bool { l.attrs[a.Key] = a.Value.Any(); return true })
		f.mu.Lock()
		f.lines = append(f.lines, l)
		f.mu.Unlock()
	}))
}

// take returns the lines kept since the last take.
func (f *failedLines) take() []failedLine {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.lines
	f.lines = nil
	return l
}

func warns(lines []failedLine) (n int) {
	for _, l := range lines {
		if l.level == slog.LevelWarn {
			n++
		}
	}
	return n
}

// TestFailedBatchesThrottled: a refusal that does not go away
// (a policy that refuses every produce, here) fails every batch, and
// each promise gets its error; the log says so at Warn when it begins,
// then at Warn once every 30 s while it lasts, saying for how long and
// how many batches failed, and at Debug between. It said it at Warn
// for every batch: 300 lines in 5 minutes at one produce a second.
// A success ends the run (the next failure is at Warn again), and so
// does a failure of another kind (another Kafka error code).
func TestFailedBatchesThrottled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := bubbleBroker(t)
		f := runneltest.NewFaults(t, c.Broker)
		logs := &failedLines{}
		p, err := producer.New(f, producer.DefaultTopic("t"), producer.Logger(logs.logger()))
		require.NoError(t, err)
		defer p.Close()
		produce := func() error {
			return p.ProduceSync(t.Context(), &record.Record{Value: []byte("x")})
		}

		rule := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: api.ErrPolicyViolation, Count: runneltest.Unlimited})
		const n = 300 // one a second
		for range n {
			require.ErrorIs(t, produce(), api.ErrPolicyViolation)
			time.Sleep(time.Second)
		}
		lines := logs.take()
		require.Len(t, lines, n, "every failed batch is logged, most at Debug")
		require.Equal(t, slog.LevelWarn, lines[0].level, "the first")
		require.Equal(t, 1+(n-1)/30, warns(lines), "then one every 30 s")
		last := lines[0]
		for _, l := range lines[1:] {
			if l.level == slog.LevelWarn {
				last = l
			}
		}
		require.Equal(t, 270*time.Second, last.attrs["failing"], "the last Warn, at the 271st")
		require.EqualValues(t, 271, last.attrs["failures"])

		// A failure of another kind begins a run of its own.
		rule.Remove()
		f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: log.ErrInvalidRecord, Count: 1})
		rule = f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: api.ErrPolicyViolation, Count: runneltest.Unlimited})
		require.ErrorIs(t, produce(), log.ErrInvalidRecord)
		require.ErrorIs(t, produce(), api.ErrPolicyViolation)
		lines = logs.take()
		require.Len(t, lines, 2)
		require.Equal(t, slog.LevelWarn, lines[0].level, "another error")
		require.Equal(t, slog.LevelWarn, lines[1].level, "the first again")

		// A success ends the run.
		rule.Remove()
		require.NoError(t, produce())
		f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: api.ErrPolicyViolation, Count: 2})
		require.ErrorIs(t, produce(), api.ErrPolicyViolation)
		require.ErrorIs(t, produce(), api.ErrPolicyViolation)
		lines = logs.take()
		require.Len(t, lines, 2)
		require.Equal(t, slog.LevelWarn, lines[0].level, "after a success")
		require.Equal(t, slog.LevelDebug, lines[1].level)
	})
}

// TestFailedBatchLogLocalKinds: two local errors (Kafka code -1)
// are one kind of failure only when both are delivery timeouts, or
// neither is: a delivery timeout after a batch refused with an error of
// the Client's own begins a run of its own, at Warn. And each line names
// its topic and partition. Kills: failureKind without its timeout flag
// (p03), the line without its partition (p12).
func TestFailedBatchLogLocalKinds(t *testing.T) {
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

// TestPipelinedFailuresThrottled: with an AsyncClient and
// MaxInFlight above 1, a batch appended and then failed by its
// acknowledgement is logged as the others are: a run of failures of one
// kind at Warn for the first, then at Debug. Kills: the pipeline's
// "batch failed" line logged at Warn each time, outside the run (p18).
func TestPipelinedFailuresThrottled(t *testing.T) {
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

// TestFailedBatchLogClosedKind: a batch failed by the producer's
// Close after a batch refused with an error of the Client's own (both of
// no Kafka code) begins a run of its own, at Warn. Kills: failureKind
// without its closed flag (p04).
func TestFailedBatchLogClosedKind(t *testing.T) {
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
