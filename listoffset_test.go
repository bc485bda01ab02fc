package runnel

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestTimestampAtCompactedOffset: ListOffset's timestamp read for an
// offset that compaction removed after the look-up found it answers -1
// (no record there any more), not the timestamp of the record after it
// in the cleaned batch (mutation B03, client.go's `r.Offset > off`).
func TestTimestampAtCompactedOffset(t *testing.T) {
	ctx := t.Context()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(ctx, "c", log.TopicConfig{Partitions: 1, Config: log.Config{CleanupPolicy: log.Compact}}))
	put := func(ts int64, kv ...string) {
		var bl record.Builder
		bl.Reset()
		for i := 0; i < len(kv); i += 2 {
			bl.Append(ts+int64(i/2), []byte(kv[i]), []byte(kv[i+1]), nil) // a time of its own each
		}
		data, err := bl.AppendTo(nil, compression.None)
		require.NoError(t, err)
		_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "c", Acks: api.AcksAll, Batches: data})
		require.NoError(t, err)
	}
	// One batch: offset 0 (k, superseded; 1000), offset 1 (other; 1001),
	// offset 2 (k; 1002).
	put(1_000, "k", "old", "other", "x", "k", "new")
	l := b.testLog(t, "c")
	require.NoError(t, l.Roll())
	res, err := l.Compact(ctx)
	require.NoError(t, err)
	require.NotZero(t, res, "the pass cleaned the sealed segment")

	p, err := b.partition(ctx, "c", 0, false)
	require.NoError(t, err)
	ts, err := timestampAt(context.Background(), p, 0, 3)
	require.NoError(t, err)
	require.EqualValues(t, -1, ts, "offset 0 was compacted away: no record, no timestamp")
	ts, err = timestampAt(context.Background(), p, 1, 3)
	require.NoError(t, err)
	require.EqualValues(t, 1_001, ts, "offset 1 is still there")
}

// TestListOffsetOfFencedPartition: a partition whose reopen after
// a config change failed answers every ListOffset with log.ErrLogFenced,
// as ListOffset's doc says and as Kafka answers every ListOffsets of an
// offline partition (KAFKA_STORAGE_ERROR): Latest, Earliest and
// EarliestLocal as well as a look-up by time. They answered the offsets of
// the closed log, with no error.
func TestListOffsetOfFencedPartition(t *testing.T) {
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

// TestListOffsetOfTopicDeletedDuringTheCall: a ListOffset whose
// topic is deleted (and maybe created again) between its look-up of the
// partition and the offset's answers ErrUnknownTopic, as its doc says ("also
// for a topic deleted during the call"), for Latest and Earliest as for a
// look-up by time. Latest and Earliest answered the deleted topic's offsets
// with its ID.
func TestListOffsetOfTopicDeletedDuringTheCall(t *testing.T) {
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

// TestListOffsetLatestIsFetchsHighWatermark: under each fsync
// policy, ListOffset's Latest (now read by Partition.ListedOffsets) is
// the high watermark Fetch and DescribeTopic report, and Earliest their
// log start offset.
func TestListOffsetLatestIsFetchsHighWatermark(t *testing.T) {
	ctx := context.Background()
	for _, sync := range []log.SyncPolicy{log.SyncAlways, log.SyncPeriodic, log.SyncNever} {
		b := open(t, Config{Dir: t.TempDir()})
		require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{Sync: sync, FlushMessages: 1000}}))
		produce(t, b, "t", 0, "a", "b", "c")
		_, err := b.DeleteRecords(ctx, "t", 0, 1)
		require.NoError(t, err)

		latest, err := b.ListOffset(ctx, "t", 0, api.Latest)
		require.NoError(t, err)
		earliest, err := b.ListOffset(ctx, "t", 0, api.Earliest)
		require.NoError(t, err)
		resp, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: 1 << 20, Partitions: []api.FetchPartition{{Topic: "t", Partition: 0, Offset: 1, MaxBytes: 1 << 20}}})
		require.NoError(t, err)
		info, err := b.DescribeTopic(ctx, "t")
		require.NoError(t, err)
		fp := resp.Partitions[0]
		require.NoError(t, fp.Err)
		require.Equal(t, fp.HighWatermark, latest.Offset, "sync %v", sync)
		require.Equal(t, info.Partitions[0].HighWatermark, latest.Offset, "sync %v", sync)
		require.Equal(t, fp.LogStartOffset, earliest.Offset, "sync %v", sync)
		require.Equal(t, info.Partitions[0].LogStartOffset, earliest.Offset, "sync %v", sync)
	}
}

// TestTimestampAtRecordGone: ListOffset's timestampAt answers -1
// (no timestamp), not an error, for an offset that no record has any
// more — DeleteRecords passed it since the look-up by time found it — and
// for an offset with nothing below the bound to read; and a record's own
// timestamp otherwise.
func TestTimestampAtRecordGone(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	produce(t, b, "t", 0, "a", "b")
	produce(t, b, "t", 0, "c")
	_, p, err := b.topicPartition(ctx, "t", 0, false)
	require.NoError(t, err)
	ts, err := timestampAt(ctx, p, 2, 3)
	require.NoError(t, err)
	require.Positive(t, ts, "the timestamp of a record there")

	low, err := b.DeleteRecords(ctx, "t", 0, 2)
	require.NoError(t, err)
	require.EqualValues(t, 2, low)
	for _, off := range []int64{0, 1} {
		ts, err := timestampAt(ctx, p, off, 3)
		require.NoError(t, err, "offset %d, below the log start", off)
		require.EqualValues(t, -1, ts, "offset %d, below the log start", off)
	}
	ts, err = timestampAt(ctx, p, 3, 3)
	require.NoError(t, err, "the log end")
	require.EqualValues(t, -1, ts, "the log end")
}

// stampedBatch encodes one record stamped ts (ms).
func stampedBatch(t *testing.T, ts int64, v string) []byte {
	t.Helper()
	var bl record.Builder
	bl.Reset()
	bl.Append(ts, nil, []byte(v), nil)
	data, err := bl.AppendTo(nil, compression.None)
	require.NoError(t, err)
	return data
}

// TestListOffsetDuringAlter: a ListOffset by time under way when
// AlterTopicConfig reopens the partition's log used to search the log
// being closed, take its closed segments for ones retention removed, and
// answer the high watermark — a consumer assigned AtTime would have skipped
// every record from then on (found by review). The look-up now holds the
// partition's log open, and the reopen waits for it.
func TestListOffsetDuringAlter(t *testing.T) {
	ctx := context.Background()
	var armed atomic.Bool
	reached, release := make(chan struct{}), make(chan struct{})
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		// Hold the search's first read of the partition's log.
		if op == vfs.OpRead && strings.Contains(filepath.ToSlash(name), "/t-0/") && strings.HasSuffix(name, ".log") && armed.CompareAndSwap(true, false) {
			close(reached)
			<-release
		}
		return nil
	}))
	b := open(t, Config{Dir: "/data", FS: fsys})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	for i, ts := range []int64{1000, 2000, 3000} {
		_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: stampedBatch(t, ts, string(rune('a'+i)))})
		require.NoError(t, err)
	}
	off, err := b.ListOffset(ctx, "t", 0, 2000)
	require.NoError(t, err)
	require.EqualValues(t, 1, off.Offset)

	armed.Store(true)
	got := make(chan int64, 1)
	go func() {
		off, err := b.ListOffset(ctx, "t", 0, 2000)
		if err != nil {
			off.Offset = -1
		}
		got <- off.Offset
	}()
	testkit.AwaitHold(t, reached, got, "the ListOffset")
	altered := make(chan error, 1)
	go func() { altered <- b.AlterTopicConfig(ctx, "t", log.Config{MaxMessageBytes: 1 << 20}) }()
	// Give the reopen the chance to close the log under the search, as it
	// did before; now it waits for the search (this sleep proves nothing
	// either way about speed: it only lets the old bug show).
	select {
	case err := <-altered:
		altered <- err
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	require.EqualValues(t, 1, testkit.Await(t, got, "ListOffset's answer"), "ListOffset(2000) must find the record stamped 2000")
	require.NoError(t, testkit.Await(t, altered, "AlterTopicConfig's answer"))
}
