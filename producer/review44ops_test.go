package producer_test

import (
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

// TestReview44FailedBatchesThrottled: a refusal that does not go away
// (a policy that refuses every produce, here) fails every batch, and
// each promise gets its error; the log says so at Warn when it begins,
// then at Warn once every 30 s while it lasts, saying for how long and
// how many batches failed, and at Debug between. It said it at Warn
// for every batch: 300 lines in 5 minutes at one produce a second.
// A success ends the run (the next failure is at Warn again), and so
// does a failure of another kind (another Kafka error code).
func TestReview44FailedBatchesThrottled(t *testing.T) {
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
