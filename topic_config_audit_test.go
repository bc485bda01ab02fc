package runnel

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
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
	b := open(t, Config{TopicDefaults: log.Config{FlushMessages: 100, RetentionTime: time.Hour, TimestampBeforeMax: time.Hour}})
	set := log.Config{DeleteRetentionTime: -1, MinCleanableDirtyRatio: -1, FlushMessages: -1, SegmentBytes: 1 << 20, CleanupPolicy: log.Compact | log.Delete,
		TimestampAfterMax: -1}
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2, Config: set}))

	info, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, set, info.Overrides, "the config as set")
	require.Zero(t, info.Overrides.RetentionTime, "taken from the broker's defaults: not the topic's own")
	require.Equal(t, time.Hour, info.Config.RetentionTime, "the broker's default")
	require.Zero(t, info.Config.DeleteRetentionTime)
	require.Zero(t, info.Config.FlushMessages)
	require.Equal(t, time.Hour, info.Config.TimestampBeforeMax, "the broker's default")
	require.Zero(t, info.Overrides.TimestampBeforeMax)
	require.Equal(t, time.Duration(-1), info.Config.TimestampAfterMax, "the topic's own: no limit")

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
	require.Equal(t, time.Duration(-1), again.Config.TimestampAfterMax, "a negative value is kept")
	require.Equal(t, time.Hour, again.Config.TimestampBeforeMax)
}

// TestUnchangedConfigReopensNothing: a config change that leaves the
// config the logs run with as it was — the same config, or one that sets
// explicitly what a default gave — closed and reopened every partition
// (each one's appends and reads waiting, and a reopen that fails leaving
// it fenced), where Kafka leaves such a log alone: a service that sets the
// config it wants at each start paid it every time. It now reopens
// nothing, records a config set explicitly, and still tries again a
// partition whose last reopen failed. Found by the config audit.
func TestUnchangedConfigReopensNothing(t *testing.T) {
	ctx := context.Background()
	var listFault atomic.Bool
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpList && strings.Contains(filepath.ToSlash(name), "/t-1") && listFault.Load() {
			return vfs.ErrInjected
		}
		return nil
	}))
	cfg := Config{Dir: "/data", FS: fsys, TopicDefaults: log.Config{RetentionTime: time.Hour}, MaintenanceInterval: time.Hour}
	b, err := Open(cfg)
	require.NoError(t, err)
	defer func() { b.Close() }()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2, Config: log.Config{SegmentBytes: 1 << 20}}))
	logs := func() []*log.Log { return partitionLogs(b, "t") }
	before := logs()

	require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(*log.Config) {}))
	require.NoError(t, b.AlterTopicConfig(ctx, "t", log.Config{SegmentBytes: 1 << 20}))
	require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) {
		c.RetentionTime = time.Hour                    // the broker's default, set explicitly
		c.MaxMessageBytes = log.DefaultMaxMessageBytes // Kafka's
	}))
	require.Equal(t, before, logs(), "no partition was reopened")
	info, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, log.Config{SegmentBytes: 1 << 20, RetentionTime: time.Hour, MaxMessageBytes: log.DefaultMaxMessageBytes}, info.Overrides,
		"the config as set is recorded")

	// A change reopens; one whose reopen fails is tried again by a later
	// call that changes nothing, as by a change.
	listFault.Store(true)
	err = b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.SegmentBytes = 2 << 20 })
	require.ErrorIs(t, err, vfs.ErrInjected)
	after := logs()
	require.NotSame(t, before[0], after[0], "reopened with the change")
	require.Equal(t, 2<<20, int(after[0].Config().SegmentBytes))
	_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: 1, Acks: api.AcksAll, Batches: batch(t, "x")})
	require.ErrorIs(t, err, log.ErrLogFenced, "its reopen failed")
	require.ErrorIs(t, b.UpdateTopicConfig(ctx, "t", func(*log.Config) {}), vfs.ErrInjected, "tried again")
	listFault.Store(false)
	require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(*log.Config) {}))
	require.Same(t, after[0], logs()[0], "partition 0 was not reopened")
	produce(t, b, "t", 1, "reopened")
	require.Equal(t, 2<<20, int(b.topics["t"].Partitions[1].Log().Config().SegmentBytes))

	require.NoError(t, b.Close())
	b, err = Open(cfg)
	require.NoError(t, err)
	info, err = b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, log.Config{SegmentBytes: 2 << 20, RetentionTime: time.Hour, MaxMessageBytes: log.DefaultMaxMessageBytes}, info.Overrides)
}

// TestOpenNamesBadTopicDefaults: Open's error for TopicDefaults out of
// range said which field was out of range but not that it was one of the
// broker's defaults, which a caller could take for a topic's. Found by the
// config audit.
func TestOpenNamesBadTopicDefaults(t *testing.T) {
	_, err := Open(Config{TopicDefaults: log.Config{SegmentIndexBytes: 4}})
	require.ErrorIs(t, err, log.ErrInvalidConfig)
	require.ErrorContains(t, err, "TopicDefaults")
	require.ErrorContains(t, err, "SegmentIndexBytes = 4 (segment.index.bytes: from 12 to 2147483647)")
}

// partitionLogs returns the logs of topic's partitions, in order, as b
// holds them now (a config change that reopens a partition gives it a new
// one).
func partitionLogs(b *Broker, topic string) []*log.Log {
	var out []*log.Log
	for _, p := range b.topics[topic].Partitions {
		out = append(out, p.Log())
	}
	return out
}
