package runnel

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestTopicConfigOverridesDefaults: a topic's zero fields take the broker's
// TopicDefaults, and every value can be asked for over them explicitly —
// SyncAlways over a broker default of SyncNever, CreateTime over
// LogAppendTime, no compaction lag over an hour, no limit over a limit —
// before and after a reopen.
func TestTopicConfigOverridesDefaults(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	defaults := log.Config{
		Sync: log.SyncNever, TimestampType: log.LogAppendTime, MinCompactionLag: time.Hour,
		FlushMessages: 100, FlushInterval: time.Second, RetentionBytes: 1 << 30, MinCleanableDirtyRatio: 0.9,
	}
	cfg := Config{Dir: "/data", FS: mem, TopicDefaults: defaults}
	b, err := Open(cfg)
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(ctx, "inherits", log.TopicConfig{Partitions: 1}))
	require.NoError(t, b.CreateTopic(ctx, "explicit", log.TopicConfig{Partitions: 1, Config: log.Config{
		Sync: log.SyncAlways, TimestampType: log.CreateTime, MinCompactionLag: -1,
		FlushMessages: -1, FlushInterval: -1, RetentionBytes: -1, MinCleanableDirtyRatio: -1,
	}}))
	check := func(b *Broker) {
		t.Helper()
		info, err := b.DescribeTopic(ctx, "inherits")
		require.NoError(t, err)
		c := info.Config.Config
		require.Equal(t, log.SyncNever, c.Sync)
		require.Equal(t, log.LogAppendTime, c.TimestampType)
		require.Equal(t, time.Hour, c.MinCompactionLag)
		require.EqualValues(t, 100, c.FlushMessages)
		require.Equal(t, time.Second, c.FlushInterval)
		require.EqualValues(t, 1<<30, c.RetentionBytes)
		require.Equal(t, 0.9, c.MinCleanableDirtyRatio)

		info, err = b.DescribeTopic(ctx, "explicit")
		require.NoError(t, err)
		c = info.Config.Config
		require.Equal(t, log.SyncAlways, c.Sync)
		require.Equal(t, log.CreateTime, c.TimestampType)
		require.Zero(t, c.MinCompactionLag)
		require.Zero(t, c.FlushMessages, "unlimited")
		require.Zero(t, c.FlushInterval, "unlimited")
		require.Negative(t, c.RetentionBytes, "unlimited")
		require.Zero(t, c.MinCleanableDirtyRatio)
		// The log runs with what DescribeTopic says.
		require.Equal(t, log.SyncAlways, b.topics["explicit"].Partitions[0].Log().Config().Sync)
		require.Equal(t, log.SyncNever, b.topics["inherits"].Partitions[0].Log().Config().Sync)
	}
	check(b)
	require.NoError(t, b.Close())
	b, err = Open(cfg)
	require.NoError(t, err)
	defer b.Close()
	check(b)
}

// TestTopicRecordVersion0: a topic record written before the enums had a
// "default" value (version 0: Sync 0 always/default, 1 periodic, 2 never;
// TimestampType 0 CreateTime/default, 1 LogAppendTime) opens with the same
// meaning.
func TestTopicRecordVersion0(t *testing.T) {
	mem := vfs.NewMem()
	b, err := Open(Config{Dir: "/data", FS: mem, TopicDefaults: log.Config{Sync: log.SyncPeriodic}})
	require.NoError(t, err)
	require.NoError(t, b.Close())
	for name, rec := range map[string]string{
		"never":    `{"name":"never","config":{"Partitions":1,"Sync":2,"TimestampType":1}}`,
		"periodic": `{"name":"periodic","config":{"Partitions":1,"Sync":1}}`,
		"dflt":     `{"name":"dflt","config":{"Partitions":1,"Sync":0,"TimestampType":0}}`,
	} {
		f, err := mem.Create(filepath.Join("/data", topicsDir, name+".json"))
		require.NoError(t, err)
		_, err = f.Write([]byte(rec))
		require.NoError(t, err)
		require.NoError(t, f.Close())
	}
	b, err = Open(Config{Dir: "/data", FS: mem, TopicDefaults: log.Config{Sync: log.SyncPeriodic}})
	require.NoError(t, err)
	defer b.Close()
	for name, want := range map[string]struct {
		sync log.SyncPolicy
		ts   log.TimestampType
	}{
		"never":    {log.SyncNever, log.LogAppendTime},
		"periodic": {log.SyncPeriodic, log.CreateTime},
		"dflt":     {log.SyncPeriodic, log.CreateTime}, // the broker's default
	} {
		info, err := b.DescribeTopic(context.Background(), name)
		require.NoError(t, err)
		require.Equal(t, want.sync, info.Config.Sync, name)
		require.Equal(t, want.ts, info.Config.TimestampType, name)
	}
}
