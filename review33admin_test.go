package runnel

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestReview33ListOffsetOfFencedPartition: a partition whose reopen after
// a config change failed answers every ListOffset with log.ErrLogFenced,
// as ListOffset's doc says and as Kafka answers every ListOffsets of an
// offline partition (KAFKA_STORAGE_ERROR): Latest, Earliest and
// EarliestLocal as well as a look-up by time. They answered the offsets of
// the closed log, with no error.
func TestReview33ListOffsetOfFencedPartition(t *testing.T) {
	ctx := context.Background()
	var armed atomic.Bool
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if armed.Load() && op == vfs.OpList && filepath.ToSlash(name) == "/data/t-0" {
			return vfs.ErrInjected
		}
		return nil
	}))
	b := open(t, Config{Dir: "/data", FS: fsys})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	produce(t, b, "t", 0, "a", "b")

	armed.Store(true)
	require.ErrorIs(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.MaxMessageBytes = 2 << 20 }), vfs.ErrInjected)
	for _, ts := range []int64{0, api.Latest, api.Earliest, api.EarliestLocal, api.MaxTimestamp} {
		lo, err := b.ListOffset(ctx, "t", 0, ts)
		require.ErrorIs(t, err, log.ErrLogFenced, "timestamp %d: answered %+v", ts, lo)
		require.True(t, api.IsRetriable(err))
	}

	armed.Store(false)
	require.NoError(t, b.Maintain(ctx))
	for _, ts := range []int64{api.Latest, api.Earliest} {
		lo, err := b.ListOffset(ctx, "t", 0, ts)
		require.NoError(t, err)
		require.EqualValues(t, map[int64]int64{api.Latest: 2, api.Earliest: 0}[ts], lo.Offset)
	}
}

// TestReview33ListOffsetOfTopicDeletedDuringTheCall: a ListOffset whose
// topic is deleted (and maybe created again) between its look-up of the
// partition and the offset's answers ErrUnknownTopic, as its doc says ("also
// for a topic deleted during the call"), for Latest and Earliest as for a
// look-up by time. Latest and Earliest answered the deleted topic's offsets
// with its ID.
func TestReview33ListOffsetOfTopicDeletedDuringTheCall(t *testing.T) {
	ctx := context.Background()
	for _, again := range []bool{false, true} {
		for _, ts := range []int64{0, api.Latest, api.Earliest, api.EarliestLocal, api.MaxTimestamp} {
			b := open(t, Config{})
			require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
			produce(t, b, "t", 0, "a", "b")
			testHookListOffsetFound = func() {
				testHookListOffsetFound = nil
				require.NoError(t, b.DeleteTopic(ctx, "t"))
				if again {
					require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
				}
			}
			lo, err := b.ListOffset(ctx, "t", 0, ts)
			testHookListOffsetFound = nil
			require.ErrorIs(t, err, ErrUnknownTopic, "created again %v, timestamp %d: answered %+v", again, ts, lo)
		}
	}
}
