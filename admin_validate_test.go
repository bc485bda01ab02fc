package runnel

import (
	"context"
	"math"
	"testing"

	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// TestConfigThatCannotBeRecorded: a MinCleanableDirtyRatio of -Inf (a
// negative ratio, which the log takes for 0) passed validation, and then
// CreateTopic and UpdateTopicConfig failed writing the topic's record
// with an untyped JSON error ("unsupported value: -Inf"). It is
// log.ErrInvalidConfig, and changes nothing. Found by review.
func TestConfigThatCannotBeRecorded(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	bad := log.Config{MinCleanableDirtyRatio: math.Inf(-1), CleanupPolicy: log.Compact}
	require.ErrorIs(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: bad}), log.ErrInvalidConfig)
	require.Empty(t, b.Topics())

	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{MinCleanableDirtyRatio: -1}}))
	require.ErrorIs(t, b.AlterTopicConfig(ctx, "t", bad), log.ErrInvalidConfig)
	require.ErrorIs(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.MinCleanableDirtyRatio = math.Inf(-1) }), log.ErrInvalidConfig)
	info, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.Zero(t, info.Config.MinCleanableDirtyRatio, "-1 stands for 0")
	require.Equal(t, log.Delete, info.Config.CleanupPolicy, "unchanged")
}
