package runnel

import (
	"context"
	"testing"
	"time"

	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// TestReview30ExplicitUnlimitedReopensNothing: a config change that only
// spells "unlimited" or "never" another way — Kafka's retention.bytes=-1
// over the default (0, unlimited), -1 over a broker default of -2 for
// retention.ms and segment.ms, max.compaction.lag.ms -1 over the default
// (0, never), flush.messages and flush.ms under SyncAlways, which ignores
// them — leaves the logs running as they do, and, as
// UpdateTopicConfig documents for "one that sets explicitly what a
// default gave", reopens nothing; it closed and reopened every partition
// (pausing its appends and reads, and fencing it should the open fail),
// the comparison keeping each negative value as it was.
func TestReview30ExplicitUnlimitedReopensNothing(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{TopicDefaults: log.Config{RetentionTime: -2, SegmentTime: -3}, MaintenanceInterval: time.Hour})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}))
	logs := func() []*log.Log { return partitionLogs(b, "t") }
	before := logs()
	set := log.Config{RetentionBytes: -1, RetentionTime: -1, SegmentTime: -1, MaxCompactionLag: -1,
		FlushMessages: 10, FlushInterval: time.Second} // which SyncAlways, the default, ignores
	require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { *c = set }))
	for i, l := range logs() {
		require.True(t, before[i] == l, "partition %d was reopened", i)
	}
	info, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, set, info.Overrides, "the config as set is recorded")

	require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.RetentionBytes = 1 << 30 }))
	require.True(t, before[0] != logs()[0], "a change reopens")
	require.EqualValues(t, 1<<30, logs()[1].Config().RetentionBytes)

	// Under SyncPeriodic, which reads them, a change of either reopens.
	require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.Sync = log.SyncPeriodic }))
	for _, change := range []func(*log.Config){
		func(c *log.Config) { c.FlushMessages = 20 },
		func(c *log.Config) { c.FlushInterval = 2 * time.Second },
	} {
		before = logs()
		require.NoError(t, b.UpdateTopicConfig(ctx, "t", change))
		require.True(t, before[0] != logs()[0], "a change of flush.messages or flush.ms under SyncPeriodic reopens")
	}
	require.EqualValues(t, 20, logs()[0].Config().FlushMessages)
	require.Equal(t, 2*time.Second, logs()[1].Config().FlushInterval)
}
