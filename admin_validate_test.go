package runnel

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/runnel/runnel/api"
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

// TestCreateTopicErrorOrder: where several errors apply, CreateTopic
// answers as Kafka's controller (ReplicationControlManager.createTopics):
// an existing topic is ErrTopicExists whatever partition count or config
// the call asks for (a "create unless it exists" call at a service's
// start was told ErrInvalidPartitions or ErrInvalidConfig instead), and
// a config error comes before a partition count error. Found by the
// parity suite (TestParityCreateTopicErrors).
func TestCreateTopicErrorOrder(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(ctx, "exists", log.TopicConfig{Partitions: 2}))
	bad := log.Config{MinCleanableDirtyRatio: 1.5}
	require.ErrorIs(t, b.CreateTopic(ctx, "exists", log.TopicConfig{Partitions: 0}), ErrTopicExists)
	require.ErrorIs(t, b.CreateTopic(ctx, "exists", log.TopicConfig{Partitions: -2}), ErrTopicExists)
	require.ErrorIs(t, b.CreateTopic(ctx, "exists", log.TopicConfig{Partitions: 1, Config: bad}), ErrTopicExists)
	require.ErrorIs(t, b.CreateTopic(ctx, "new", log.TopicConfig{Partitions: 0, Config: bad}), log.ErrInvalidConfig)
	require.ErrorIs(t, b.CreateTopic(ctx, "new", log.TopicConfig{Partitions: 0}), ErrInvalidPartitions)
	require.ErrorIs(t, b.CreateTopic(ctx, "bad name", log.TopicConfig{Partitions: 0, Config: bad}), ErrInvalidTopic)
	require.ErrorIs(t, b.CreateTopic(ctx, "exists", log.TopicConfig{Partitions: 3}), ErrTopicExists)
	require.Equal(t, []string{"exists"}, b.Topics())
}

// A closed broker answers every admin call ErrClosed, whatever else is
// wrong with it: CreateTopic gave a bad name's ErrInvalidTopic first.
func TestAdminCallsAfterCloseAreClosed(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	require.NoError(t, b.Close())
	bad := log.Config{MinCleanableDirtyRatio: 1.5}
	require.ErrorIs(t, b.CreateTopic(ctx, "bad name", log.TopicConfig{Partitions: 0, Config: bad}), ErrClosed)
	require.ErrorIs(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}), ErrClosed)
	require.ErrorIs(t, b.CreatePartitions(ctx, "t", 0), ErrClosed)
	require.ErrorIs(t, b.AlterTopicConfig(ctx, "t", bad), ErrClosed)
	require.ErrorIs(t, b.DeleteTopic(ctx, "missing"), ErrClosed)
}

// TestCreateTopicCollisionBeforeConfig: a name that collides with an
// existing topic's ('.' against '_', or, in runnel, case) is a name
// error, answered before the config and the partition count, as Kafka's
// controller answers it (validateNewTopicNames runs before the config is
// looked at). CreateTopic answered log.ErrInvalidConfig or
// ErrInvalidPartitions instead. Found by TestAdminModelProperty (seed 7).
func TestCreateTopicCollisionBeforeConfig(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(ctx, "a.b", log.TopicConfig{Partitions: 1}))
	bad := log.Config{MaxMessageBytes: 60}
	for _, name := range []string{"a_b", "A.B", "A_b"} {
		require.ErrorIs(t, b.CreateTopic(ctx, name, log.TopicConfig{Partitions: 1, Config: bad}), ErrInvalidTopic, name)
		require.ErrorIs(t, b.CreateTopic(ctx, name, log.TopicConfig{Partitions: 0}), ErrInvalidTopic, name)
		require.ErrorIs(t, b.CreateTopic(ctx, name, log.TopicConfig{Partitions: -2, Config: bad}), ErrInvalidTopic, name)
	}
	require.ErrorIs(t, b.CreateTopic(ctx, "a.b", log.TopicConfig{Partitions: 0, Config: bad}), ErrTopicExists)
	require.Equal(t, []string{"a.b"}, b.Topics())
}

// A zero TopicConfig, a first user's CreateTopic, is refused for its 0
// partitions: the error says which counts CreateTopic takes (it said only
// "invalid number of partitions: 0", while Config's zero fields take the
// broker's defaults).
func TestCreateTopicZeroPartitionsSaysWhatToGive(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	err := b.CreateTopic(ctx, "orders", log.TopicConfig{})
	require.ErrorIs(t, err, ErrInvalidPartitions)
	require.ErrorContains(t, err, "at least 1, or -1 for the broker's DefaultPartitions")
	require.NoError(t, b.CreateTopic(ctx, "orders", log.TopicConfig{Partitions: -1}), "DefaultPartitions, 1")
}

// A name that collides with several existing topics (possible only for
// topics that already collide with each other, created by a runnel older
// than the case rule) is answered with the same topic every time: the
// first by name of those it collides with in '.' against '_', else of
// those it collides with in case. checkCollision walked the topics in
// map order, so the error named any of them.
func TestCreateTopicCollisionNamesTheSameTopicEachTime(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	for _, tc := range []struct {
		existing []string
		name     string
		want     string
	}{
		{[]string{"a.b", "A_b"}, "a_b", `"a_b" collides with the existing topic "a.b" ('.' and '_'`},
		{[]string{"a_B", "A.b"}, "a.b", `"a.b" collides with the existing topic "A.b" (on a case-insensitive`},
		{[]string{"x.y", "X_Y", "x_Y"}, "X.y", `"X.y" collides with the existing topic "X_Y" (on a case-insensitive`},
		{[]string{"a_b.c", "a.b_c", "A.B.C"}, "a_b_c", `"a_b_c" collides with the existing topic "a.b_c" ('.' and '_'`},
	} {
		// An older runnel's colliding topics: the first created, the
		// others as more names of it in the broker's map (CreateTopic
		// refuses them now), removed before the next case.
		require.NoError(t, b.CreateTopic(ctx, tc.existing[0], log.TopicConfig{Partitions: 1}))
		require.NoError(t, b.lockAdmin(ctx))
		for _, other := range tc.existing[1:] {
			b.setTopic(other, b.topics[tc.existing[0]])
		}
		b.unlockAdmin()
		for range 20 {
			err := b.CreateTopic(ctx, tc.name, log.TopicConfig{Partitions: 1})
			require.ErrorIs(t, err, ErrInvalidTopic)
			require.ErrorContains(t, err, tc.want)
		}
		require.NoError(t, b.lockAdmin(ctx))
		for _, other := range tc.existing[1:] {
			b.setTopic(other, nil)
		}
		b.unlockAdmin()
		require.NoError(t, b.DeleteTopic(ctx, tc.existing[0]))
	}
}

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

// TestImpossibleTopicNameAnswers pins what the admin calls answer
// for a name no topic can have, as Kafka's controller answers them:
// DeleteTopic and CreatePartitions look the name up and answer
// ErrUnknownTopic (UNKNOWN_TOPIC_OR_PARTITION: Kafka's DeleteTopics
// resolves names to ids, and CreatePartitions looks the topic up, without
// validating the name), while AlterTopicConfig and UpdateTopicConfig
// answer ErrInvalidTopic (INVALID_TOPIC_EXCEPTION: Kafka validates a
// TOPIC config resource's name before it looks it up), as DescribeTopic
// does (what a Kafka client's Metadata request learns). Neither call
// changes the broker's topics.
func TestImpossibleTopicNameAnswers(t *testing.T) {
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
