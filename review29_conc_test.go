package runnel

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// TestReview29MaintainFollowsAReopen: a config change that reopens a
// partition while Maintain works on it, after Maintain took the
// partition's log and before it maintained it, is no failure: Maintain
// maintains the new log and answers nil, not log.ErrLogFenced (the answer
// for a partition whose reopen failed).
func TestReview29MaintainFollowsAReopen(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	produce(t, b, "t", 0, "a")
	old := b.testLog(t, "t")
	var alterErr error
	testHookMaintainLog = func() {
		testHookMaintainLog = nil
		alterErr = b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.MaxMessageBytes = 2 << 20 })
	}
	defer func() { testHookMaintainLog = nil }()
	require.NoError(t, b.Maintain(ctx))
	require.NoError(t, alterErr)
	require.NotSame(t, old, b.testLog(t, "t"), "the config change reopened the partition under Maintain")
	require.Equal(t, 2<<20, b.testLog(t, "t").Config().MaxMessageBytes)
	produce(t, b, "t", 0, "b")
}

// TestReview29FetchClosedDuringItsRead: a broker closed while a Fetch
// reads (the first read, or the last look once MaxWait has passed) fails
// the Fetch with ErrClosed, as Fetch's doc says, rather than answering
// each partition with the error of its closed log.
func TestReview29FetchClosedDuringItsRead(t *testing.T) {
	for _, read := range []int{1, 2} {
		t.Run(map[int]string{1: "first read", 2: "read after MaxWait"}[read], func(t *testing.T) {
			ctx := context.Background()
			b := open(t, Config{})
			require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
			reads := 0
			var closeErr error
			testHookFetchRead = func() {
				if reads++; reads == read {
					closeErr = b.Close()
				}
			}
			defer func() { testHookFetchRead = nil }()
			req := &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t"}}}
			if read == 2 {
				req.MaxWait = time.Millisecond // nothing comes: the timer ends the wait
			}
			_, err := b.Fetch(ctx, req)
			require.ErrorIs(t, err, ErrClosed)
			require.NoError(t, closeErr)
			require.Equal(t, read, reads)
		})
	}
}

// TestReview29MaintenanceQuietOnADeletedTopic: a topic deleted during a
// round of the broker's maintenance, after the round listed its
// partitions, is no maintenance failure: its partitions' closed logs
// (log.ErrClosed) are not logged as errors.
func TestReview29MaintenanceQuietOnADeletedTopic(t *testing.T) {
	ctx := context.Background()
	h := &captured{}
	b := open(t, Config{Logger: slog.New(h), MaintenanceInterval: time.Hour})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	produce(t, b, "t", 0, "a")
	var delErr error
	testHookMaintainLog = func() {
		testHookMaintainLog = nil
		delErr = b.DeleteTopic(ctx, "t")
	}
	defer func() { testHookMaintainLog = nil }()
	failing := b.maintainRound(nil, nil)
	require.NoError(t, delErr)
	require.Empty(t, failing)
	require.Empty(t, h.errs(slog.LevelError, "maintenance failed", "t"))
}
