package runnel

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
)

// TestAlterConfigOfAnInvalidNameIsInvalidTopic: AlterTopicConfig and
// UpdateTopicConfig of a name no topic can have answer ErrInvalidTopic, as
// DescribeTopic does, and as Kafka's AlterConfigs and
// IncrementalAlterConfigs do: its controller validates a topic
// resource's name before it looks the topic up
// (ControllerConfigurationValidator; ZooKeeper's
// AdminZkClient.validateTopicConfig did too), INVALID_TOPIC_EXCEPTION
// before UNKNOWN_TOPIC_OR_PARTITION. They answered ErrUnknownTopic.
func TestAlterConfigOfAnInvalidNameIsInvalidTopic(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	for _, name := range []string{"a b", "..", "a/b", strings.Repeat("n", 250)} {
		_, err := b.DescribeTopic(ctx, name)
		require.ErrorIs(t, err, ErrInvalidTopic, "DescribeTopic(%q)", name)
		err = b.AlterTopicConfig(ctx, name, log.Config{})
		require.ErrorIs(t, err, ErrInvalidTopic, "AlterTopicConfig(%q)", name)
		require.NotErrorIs(t, err, ErrUnknownTopic)
		require.EqualValues(t, 17, api.Code(err), "INVALID_TOPIC_EXCEPTION")
		err = b.UpdateTopicConfig(ctx, name, func(*log.Config) {})
		require.ErrorIs(t, err, ErrInvalidTopic, "UpdateTopicConfig(%q)", name)
	}
	// A valid name that no topic has is unknown, as before.
	require.ErrorIs(t, b.AlterTopicConfig(ctx, "nope", log.Config{}), ErrUnknownTopic)
	require.ErrorIs(t, b.UpdateTopicConfig(ctx, "nope", func(*log.Config) {}), ErrUnknownTopic)
}
