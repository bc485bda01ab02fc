package consumer_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/stretchr/testify/require"
)

// levels returns the levels of the records logged with message msg.
func (l *logRecorder) levels(msg string) []slog.Level {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []slog.Level
	for _, r := range l.recs {
		if r.Message == msg {
			out = append(out, r.Level)
		}
	}
	return out
}

// TestTransientErrorsLoggedOnceThenWarned: a retriable error is retried
// without being reported (TestTransientErrorsRetriedQuietly), so the log
// is where a condition that does not go away shows: its first retry is
// logged at Info, the next ones at Debug but for one at Warn each
// stillFailingEvery (30 s) while it goes on, saying for how long; once
// the partition answers again, the next error is a first again. The
// same for a Fetch that fails as a whole.
func TestTransientErrorsLoggedOnceThenWarned(t *testing.T) {
	for _, tc := range []struct {
		name, msg string
		queue     func(f *flakyClient, errs []error)
	}{
		{"partition", "partition error: retrying", func(f *flakyClient, errs []error) { f.partErrs = errs }},
		{"fetch", "fetch failed: retrying", func(f *flakyClient, errs []error) { f.fetchErrs = errs }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := openBroker(t, map[string]int{"t": 1})
			values(t, b, "t", 0, "a", "b")
			f := &flakyClient{Broker: b}
			errs := func(n int) []error {
				out := make([]error, n)
				for i := range out {
					out[i] = api.ErrNotLeader
				}
				return out
			}
			logs := &logRecorder{}
			c := newConsumer(t, f, consumer.RetryBackoff(time.Nanosecond), consumer.Logger(logs.logger()))
			require.NoError(t, c.Assign("t", 0, consumer.Start()))

			pollUntil := func(want int) {
				t.Helper()
				got := 0
				for got < want {
					fs, err := c.Poll(testCtx(t))
					require.NoError(t, err)
					require.NoError(t, fs.Err())
					got += fs.NumRecords()
				}
			}
			consumer.SetStillFailingEvery(t, time.Hour)
			f.mu.Lock()
			tc.queue(f, errs(4))
			f.mu.Unlock()
			pollUntil(2)
			require.Equal(t, []slog.Level{slog.LevelInfo, slog.LevelDebug, slog.LevelDebug, slog.LevelDebug}, logs.levels(tc.msg),
				"the first at Info, then quietly")

			consumer.SetStillFailingEvery(t, 0) // every retry is past it
			values(t, b, "t", 0, "c")
			f.mu.Lock()
			tc.queue(f, errs(3))
			f.mu.Unlock()
			pollUntil(1)
			require.Equal(t, []slog.Level{slog.LevelInfo, slog.LevelDebug, slog.LevelDebug, slog.LevelDebug,
				slog.LevelInfo, slog.LevelWarn, slog.LevelWarn}, logs.levels(tc.msg),
				"after a good answer a first again, then warned while it goes on")
		})
	}
}
