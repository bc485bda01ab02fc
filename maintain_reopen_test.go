package runnel

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// TestMaintainFollowsAReopen: a config change that reopens a
// partition while Maintain works on it, after Maintain took the
// partition's log and before it maintained it, is no failure: Maintain
// maintains the new log and answers nil, not log.ErrLogFenced (the answer
// for a partition whose reopen failed).
func TestMaintainFollowsAReopen(t *testing.T) {
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

// TestMaintenanceQuietOnADeletedTopic: a topic deleted during a
// round of the broker's maintenance, after the round listed its
// partitions, is no maintenance failure: its partitions' closed logs
// (log.ErrClosed) are not logged as errors.
func TestMaintenanceQuietOnADeletedTopic(t *testing.T) {
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
