package runnel_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestDeletedTopicBackWithStaleConfig pins what the docs of
// DeleteTopic, Config.TopicDefaults and TopicConfigError promise together
// when a crash brings back a deleted topic whose config the broker's
// defaults, changed since, make invalid (what seed 41002752 of
// TestAdminModelProperty found): a DeleteTopic that fails after removing
// the topic's record (its sync of <Dir>/topics fails) answers an error
// and the topic is gone; a crash then undoes the record's renaming to the
// deletion marker, which was never synced, and Open with a default
// MinCompactionLag above the topic's own MaxCompactionLag refuses the
// record with a *TopicConfigError naming the topic and
// TopicDefaults.MinCompactionLag, not ErrCorruptMetadata; an Open with
// that default given back (here Kafka's, 0) serves the topic again, with
// its ID and its own config; and deleted again, the deletion durable, the
// broker opens with the new defaults after another crash. Without the
// crash, a clean restart with the new default opens, as no record of the
// topic is found, and makes the deletion durable: it removes the marker
// and syncs <Dir>/topics, so a crash after it does not bring the topic
// back.
func TestDeletedTopicBackWithStaleConfig(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	var failSyncDir atomic.Bool
	topicsDir := filepath.Join("/data", "topics")
	inj := vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSyncDir && filepath.Clean(name) == topicsDir && failSyncDir.Load() {
			return vfs.ErrInjected
		}
		return nil
	})
	cfg := runnel.Config{Dir: "/data", FS: vfs.WithFaults(mem, inj)}
	b, err := runnel.Open(cfg)
	require.NoError(t, err)
	own := log.Config{MaxCompactionLag: 5 * time.Millisecond}
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: own}))
	info, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	id := info.ID

	failSyncDir.Store(true)
	err = b.DeleteTopic(ctx, "t")
	failSyncDir.Store(false)
	require.ErrorIs(t, err, vfs.ErrInjected, "DeleteTopic with <Dir>/topics not synced")
	_, err = b.DescribeTopic(ctx, "t")
	require.ErrorIs(t, err, runnel.ErrUnknownTopic, "the topic is gone here once its record is removed")
	require.NoError(t, b.Close())
	// The crash keeps only what was synced: the rename was not.
	crashed := mem.CrashClone(vfs.CrashOptions{Tail: vfs.TailDrop})

	// A clean restart with a default the topic's config does not go with:
	// no record of it, nothing to refuse; the deletion durable from then
	// on.
	changed := cfg
	changed.TopicDefaults.MinCompactionLag = 10 * time.Millisecond
	b, err = runnel.Open(changed)
	require.NoError(t, err, "Open with new defaults, the topic's record removed")
	require.Empty(t, b.Topics())
	require.NoError(t, b.Close())
	after := changed
	after.FS = mem.CrashClone(vfs.CrashOptions{Tail: vfs.TailDrop})
	b, err = runnel.Open(after)
	require.NoError(t, err, "a crash after a clean Open does not bring the deleted topic back")
	require.Empty(t, b.Topics())
	require.NoError(t, b.Close())

	changed.FS, cfg.FS = crashed, crashed
	_, err = runnel.Open(changed)
	var tce *runnel.TopicConfigError
	require.ErrorAs(t, err, &tce, "Open after the crash brought the deleted topic's record back")
	require.ErrorIs(t, err, log.ErrInvalidConfig)
	require.False(t, errors.Is(err, runnel.ErrCorruptMetadata), "the record is sound: %v", err)
	require.Equal(t, "t", tce.Topic)
	require.Equal(t, []string{"MinCompactionLag"}, tce.Defaults)

	// The default given back, the topic is served again, as it was set.
	b, err = runnel.Open(cfg)
	require.NoError(t, err, "Open with the old default")
	info, err = b.DescribeTopic(ctx, "t")
	require.NoError(t, err, "the crash brought the topic back")
	require.Equal(t, id, info.ID)
	require.Equal(t, own, info.Overrides)
	require.Len(t, info.Partitions, 1)
	require.NoError(t, b.DeleteTopic(ctx, "t"))
	require.NoError(t, b.Close())

	// Deleted durably this time: the new defaults open after a crash.
	crashed = crashed.CrashClone(vfs.CrashOptions{Tail: vfs.TailDrop})
	changed.FS = crashed
	b, err = runnel.Open(changed)
	require.NoError(t, err, "Open with the new defaults after a durable deletion and a crash")
	require.Empty(t, b.Topics())
	require.NoError(t, b.Close())
}
