package consumer_test

// The throttling of the consumer's logs of a reported error (runs of
// lines, by internal/logrun): what begins a run and what ends it. Each
// test names the broken variants of the code it catches ("Kills: ...";
// the kNN are the ids of those variants in the mutation run).

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestReportedErrorLogRunsByOffsetAndText: a reported error (a corrupt batch)
// that comes back at the same offset with the same text is one run of
// logs (Warn, then Debug); one with another text, or at another offset,
// begins a run of its own, at Warn. Kills: the run's kind without the
// error's text (k05), without its offset (k06), its first at Info (k07).
func TestReportedErrorLogRunsByOffsetAndText(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bubbleBroker(t)
		syncProduce(t, b, "a", "b")
		f := runneltest.NewFaults(t, b)
		var mu sync.Mutex
		var levels []slog.Level
		c, err := consumer.New(f, consumer.Logger(slog.New(testkit.LineFunc(func(r slog.Record) {
			if r.Message == "partition error" {
				mu.Lock()
				levels = append(levels, r.Level)
				mu.Unlock()
			}
		}))))
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.Assign("t", 0, consumer.Start()))
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		poll := func(want error) []string {
			t.Helper()
			fs, err := c.Poll(ctx)
			require.NoError(t, err)
			var vals []string
			for _, fe := range fs {
				if want != nil {
					require.ErrorIs(t, fe.Err, want)
					continue
				}
				require.NoError(t, fe.Err)
				for r, err := range fe.Records() {
					require.NoError(t, err)
					vals = append(vals, string(r.Value))
				}
			}
			return vals
		}
		take := func() []slog.Level {
			mu.Lock()
			defer mu.Unlock()
			l := levels
			levels = nil
			return l
		}
		fault := func(err error) *runneltest.Rule {
			return f.Add(runneltest.Fault{Op: runneltest.OpFetch, Action: runneltest.FailPartitions, Err: err, Count: runneltest.Unlimited})
		}
		another := fmt.Errorf("%w: another", record.ErrCorrupt)
		rule := fault(record.ErrCorrupt)
		poll(record.ErrCorrupt)
		poll(record.ErrCorrupt)
		rule.Remove()
		rule = fault(another)
		poll(another)
		rule.Remove()
		require.Equal(t, []slog.Level{slog.LevelWarn, slog.LevelWarn}, take(), "at offset 0 (the second at Debug, which the handler drops): another text")
		var vals []string
		for i := 0; len(vals) < 2 && i < 10; i++ { // after RetryBackoff
			vals = append(vals, poll(nil)...)
		}
		require.Equal(t, []string{"a", "b"}, vals)
		syncProduce(t, b, "c")
		rule = fault(another)
		poll(another)
		rule.Remove()
		require.Equal(t, []slog.Level{slog.LevelWarn}, take(), "at offset 2, the same text")
	})
}

// TestResolvedEndsTheErrorLogRun: a partition whose start offset's
// look-up failed (a retriable error, logged at Info) and then resolved
// has answered: its next retriable error, a fetch's, is the first of a
// run again, at Info. On the bubble's clock, which the nanosecond
// backoffs move far less than logrun.Every: a run that went on would log
// it at Debug. Kills: the run not ended by the resolution (k03).
func TestResolvedEndsTheErrorLogRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := openBroker(t, map[string]int{"t": 1})
		values(t, b, "t", 0, "a", "b")
		f := &flakyClient{Broker: b}
		f.listErrs = []error{api.ErrNotLeader}
		f.partErrs = []error{api.ErrNotLeader}
		logs := &logRecorder{}
		c := newConsumer(t, f, consumer.RetryBackoff(time.Nanosecond), consumer.Logger(logs.logger()))
		require.NoError(t, c.Assign("t", 0, consumer.Start()))
		for got := 0; got < 2; {
			fs, err := c.Poll(testCtx(t))
			require.NoError(t, err)
			require.NoError(t, fs.Err())
			got += fs.NumRecords()
		}
		f.mu.Lock()
		require.Equal(t, 2, f.listOffset, "a look-up that failed, then one that resolved")
		f.mu.Unlock()
		require.Equal(t, []slog.Level{slog.LevelInfo, slog.LevelInfo}, logs.levels("partition error: retrying"),
			"the look-up's error, then the fetch's after the resolution")
	})
}

// TestCorruptBatchLoggedOnChange: a consumer stuck on a
// corrupt batch reports it to the application at every retry (each
// RetryBackoff), as it should; its log says so at Warn once, and again
// every so often while it lasts ("failing", as for a transient error),
// not at every retry: a minute at the default 500 ms backoff made 120
// Warn lines.
func TestCorruptBatchLoggedOnChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bubbleBroker(t)
		syncProduce(t, b, "a", "b")
		f := runneltest.NewFaults(t, b)
		var mu sync.Mutex
		levels := map[slog.Level]int{}
		c, err := consumer.New(f, consumer.Logger(slog.New(testkit.LineFunc(func(r slog.Record) {
			if r.Message == "partition error" {
				mu.Lock()
				levels[r.Level]++
				mu.Unlock()
			}
		}))))
		require.NoError(t, err)
		defer c.Close()
		f.Add(runneltest.Fault{Op: runneltest.OpFetch, Action: runneltest.FailPartitions, Err: record.ErrCorrupt, Count: runneltest.Unlimited})
		require.NoError(t, c.Assign("t", 0, consumer.Start()))
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		reported := 0
		for ctx.Err() == nil {
			fs, err := c.Poll(ctx)
			if err != nil {
				break
			}
			for _, fe := range fs {
				require.ErrorIs(t, fe.Err, record.ErrCorrupt)
				reported++
			}
		}
		require.Greater(t, reported, 100, "reported at each retry")
		mu.Lock()
		defer mu.Unlock()
		require.Positive(t, levels[slog.LevelWarn])
		require.LessOrEqual(t, levels[slog.LevelWarn], 3, "one Warn, then one every 30s: %v", levels)
	})
}
