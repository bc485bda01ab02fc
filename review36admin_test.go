package runnel

import (
	"context"
	"strings"
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// TestReview36ImpossibleTopicNameAnswers pins what the admin calls answer
// for a name no topic can have, as Kafka's controller answers them:
// DeleteTopic and CreatePartitions look the name up and answer
// ErrUnknownTopic (UNKNOWN_TOPIC_OR_PARTITION: Kafka's DeleteTopics
// resolves names to ids, and CreatePartitions looks the topic up, without
// validating the name), while AlterTopicConfig and UpdateTopicConfig
// answer ErrInvalidTopic (INVALID_TOPIC_EXCEPTION: Kafka validates a
// TOPIC config resource's name before it looks it up), as DescribeTopic
// does (what a Kafka client's Metadata request learns). Neither call
// changes the broker's topics.
func TestReview36ImpossibleTopicNameAnswers(t *testing.T) {
	ctx := context.Background()
	b, err := Open(Config{})
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	for _, name := range []string{"a/b", strings.Repeat("x", 250), "", "..", "a b"} {
		err := b.DeleteTopic(ctx, name)
		require.ErrorIs(t, err, ErrUnknownTopic, "DeleteTopic(%.20q)", name)
		require.EqualValues(t, 3, api.Code(err))
		err = b.CreatePartitions(ctx, name, 2)
		require.ErrorIs(t, err, ErrUnknownTopic, "CreatePartitions(%.20q)", name)
		require.EqualValues(t, 3, api.Code(err))

		err = b.AlterTopicConfig(ctx, name, log.Config{})
		require.ErrorIs(t, err, ErrInvalidTopic, "AlterTopicConfig(%.20q)", name)
		require.EqualValues(t, 17, api.Code(err))
		err = b.UpdateTopicConfig(ctx, name, func(*log.Config) {})
		require.ErrorIs(t, err, ErrInvalidTopic, "UpdateTopicConfig(%.20q)", name)
		_, err = b.DescribeTopic(ctx, name)
		require.ErrorIs(t, err, ErrInvalidTopic, "DescribeTopic(%.20q)", name)
	}
	require.Equal(t, []string{"t"}, b.Topics())
}
