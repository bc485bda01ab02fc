package runnel

import (
	"context"
	"testing"
	"time"

	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// TestDescribeTopicOverrides: DescribeTopic reports the config as it was
// set beside the one the logs run with, as Kafka's DescribeConfigs tells a
// topic's own values from the defaults by their source; and Overrides,
// given back to AlterTopicConfig, changes nothing. Config does not round
// trip: a field set to zero explicitly (a negative value) reads 0, which
// AlterTopicConfig takes for the default — DeleteRetentionTime went from 0
// to a day, MinCleanableDirtyRatio from 0 to 0.5. Found by the config
// audit; there was no way to read the config as set but through
// UpdateTopicConfig, which rewrites the record and reopens every
// partition.
func TestDescribeTopicOverrides(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{TopicDefaults: log.Config{FlushMessages: 100, RetentionTime: time.Hour}})
	set := log.Config{DeleteRetentionTime: -1, MinCleanableDirtyRatio: -1, FlushMessages: -1, SegmentBytes: 1 << 20, CleanupPolicy: log.Compact | log.Delete}
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2, Config: set}))

	info, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, set, info.Overrides, "the config as set")
	require.Zero(t, info.Overrides.RetentionTime, "taken from the broker's defaults: not the topic's own")
	require.Equal(t, time.Hour, info.Config.RetentionTime, "the broker's default")
	require.Zero(t, info.Config.DeleteRetentionTime)
	require.Zero(t, info.Config.FlushMessages)

	require.NoError(t, b.AlterTopicConfig(ctx, "t", info.Overrides))
	again, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, info.Config, again.Config, "Overrides round-trips")
	require.Equal(t, info.Overrides, again.Overrides)

	// Config is for reading; as documented, its zeros take the defaults
	// when given back.
	require.NoError(t, b.AlterTopicConfig(ctx, "t", info.Config.Config))
	again, err = b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, log.DefaultDeleteRetention, again.Config.DeleteRetentionTime)
	require.EqualValues(t, 100, again.Config.FlushMessages)
}
