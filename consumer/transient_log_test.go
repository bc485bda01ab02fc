package consumer_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/logrun"
	"github.com/runnel/runnel/internal/testkit"
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
// logrun.Every (30 s) while it goes on, saying for how long; once the
// partition answers again, the next error is a first again. The same for
// a Fetch that fails as a whole. The Warn lines say for how long
// (failing=) and how many failures (failures=) the run has lasted. On
// the bubble's clock: the nanosecond backoffs keep the first run within
// Every, and the second run's Polls are Every apart, so that each of its
// retries is past it.
func TestTransientErrorsLoggedOnceThenWarned(t *testing.T) {
	for _, tc := range []struct {
		name, msg string
		queue     func(f *flakyClient, errs []error)
		// wait is how long a Poll that met the error lasts: one whose
		// fetch failed as a whole waits out RetryBackoff before it
		// returns; a partition's error is retried by the next Poll.
		wait time.Duration
	}{
		{"partition", "partition error: retrying", func(f *flakyClient, errs []error) { f.partErrs = errs }, 0},
		{"fetch", "fetch failed: retrying", func(f *flakyClient, errs []error) { f.fetchErrs = errs }, time.Nanosecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
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

				// pollUntil polls until want records came, waiting apart
				// after each Poll that got none (a Poll fetches once).
				pollUntil := func(want int, apart time.Duration) {
					t.Helper()
					got := 0
					for got < want {
						fs, err := c.Poll(testCtx(t))
						require.NoError(t, err)
						require.NoError(t, fs.Err())
						got += fs.NumRecords()
						if fs.NumRecords() == 0 {
							time.Sleep(apart)
						}
					}
				}
				f.mu.Lock()
				tc.queue(f, errs(4))
				f.mu.Unlock()
				pollUntil(2, 0)
				require.Equal(t, []slog.Level{slog.LevelInfo, slog.LevelDebug, slog.LevelDebug, slog.LevelDebug}, logs.levels(tc.msg),
					"the first at Info, then quietly")

				values(t, b, "t", 0, "c")
				f.mu.Lock()
				tc.queue(f, errs(3))
				f.mu.Unlock()
				pollUntil(1, logrun.Every) // every retry is past it
				require.Equal(t, []slog.Level{slog.LevelInfo, slog.LevelDebug, slog.LevelDebug, slog.LevelDebug,
					slog.LevelInfo, slog.LevelWarn, slog.LevelWarn}, logs.levels(tc.msg),
					"after a good answer a first again, then warned while it goes on")
				// The Warn lines say how long the run has lasted and how
				// many failures it counts (the second and third of the run,
				// its Polls Every apart, each of which lasted wait); the
				// others add neither.
				want := []string{" ", " ", " ", " ", " ",
					(logrun.Every + tc.wait).String() + " 2", (2*logrun.Every + 2*tc.wait).String() + " 3"}
				require.Equal(t, want, logs.attrs(tc.msg, "failing", "failures"), "failing= and failures= of each line")
			})
		})
	}
}

// flakyPartitionsClient fails the first len(errs) Partitions calls with
// errs, one each, then answers as the broker does.
type flakyPartitionsClient struct {
	*runnel.Broker
	mu    sync.Mutex
	errs  []error
	calls int
}

func (f *flakyPartitionsClient) Partitions(ctx context.Context, topic string) (int, error) {
	f.mu.Lock()
	f.calls++
	err := pop(&f.errs)
	f.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return f.Broker.Partitions(ctx, topic)
}

// TestAssignTopicRetriesTransientErrors: AssignTopic asks the Client for
// the topic's partition count again after RetryBackoff when the answer is
// an error Kafka's table calls retriable (not the leader, a request timed
// out), as the Java consumer's partitionsFor retries until
// default.api.timeout.ms; an unknown topic is its answer at once, and a
// ctx that ends or a Close ends the retries.
func TestAssignTopicRetriesTransientErrors(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 3})
	f := &flakyPartitionsClient{Broker: b, errs: []error{api.ErrNotLeader, api.ErrRequestTimedOut}}
	c := newConsumer(t, f, consumer.RetryBackoff(time.Millisecond))
	require.NoError(t, c.AssignTopic(testCtx(t), "t", consumer.Start()))
	require.Equal(t, 3, f.calls, "two retries")
	for p := range int32(3) {
		values(t, b, "t", p, "v")
	}
	got := 0
	for got < 3 {
		fs, err := c.Poll(testCtx(t))
		require.NoError(t, err)
		got += fs.NumRecords()
	}

	f.calls = 0
	require.ErrorIs(t, c.AssignTopic(testCtx(t), "missing", consumer.Start()), api.ErrUnknownTopicOrPartition)
	require.Equal(t, 1, f.calls, "an unknown topic is an answer")

	always := make([]error, 1<<20)
	for i := range always {
		always[i] = api.ErrNotLeader
	}
	f.errs = always
	ctx, cancel := context.WithTimeout(testCtx(t), 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, c.AssignTopic(ctx, "t", consumer.Start()), context.DeadlineExceeded)

	done := make(chan error, 1)
	slow := newConsumer(t, f, consumer.RetryBackoff(time.Hour))
	f.mu.Lock()
	before := f.calls
	f.mu.Unlock()
	go func() { done <- slow.AssignTopic(testCtx(t), "t", consumer.Start()) }()
	for asked := false; !asked; time.Sleep(time.Millisecond) {
		f.mu.Lock()
		asked = f.calls > before // then in its hour of backoff
		f.mu.Unlock()
	}
	require.NoError(t, slow.Close())
	require.ErrorIs(t, testkit.Await(t, done, "AssignTopic's answer"), consumer.ErrClosed)
}
