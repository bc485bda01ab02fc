package runnel

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// blockSyncs returns an FS whose file syncs of names containing match block,
// once armed, until release is called; reached is closed at the first.
// release may be called more than once, and is called at t's cleanup
// (before the Close of a broker opened earlier with open): a test that
// fails while the sync is held frees it. A test that defers its broker's
// Close defers release after it, so that it runs first: that Close
// waits for the call stuck in the sync.
func blockSyncs(t testing.TB, match string) (fsys vfs.FS, arm func(), reached chan struct{}, release func()) {
	var armed atomic.Bool
	reached, held := make(chan struct{}), make(chan struct{})
	release = sync.OnceFunc(func() { close(held) })
	t.Cleanup(release)
	fsys = vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if (op == vfs.OpSync || op == vfs.OpSyncDir) && strings.Contains(name, match) && armed.CompareAndSwap(true, false) {
			close(reached)
			<-held
		}
		return nil
	}))
	return fsys, func() { armed.Store(true) }, reached, release
}

// TestAdminCallsDoNotStallOtherTopics: while an admin call is in its file
// I/O (here, each one held at its first fsync), produce, fetch and describe
// on another topic go on. They used to wait for the broker-wide lock that
// admin calls held across their fsyncs: seconds for a topic of hundreds of
// partitions.
func TestAdminCallsDoNotStallOtherTopics(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		match string // the file whose fsync is held
		call  func(b *Broker) error
	}{
		{"create", metaTmp, func(b *Broker) error { return b.CreateTopic(ctx, "new", log.TopicConfig{Partitions: 2}) }},
		{"delete", "topics", func(b *Broker) error { return b.DeleteTopic(ctx, "slow") }},
		{"alter", metaTmp, func(b *Broker) error {
			return b.AlterTopicConfig(ctx, "slow", log.Config{MaxMessageBytes: 1 << 20})
		}},
		{"grow", metaTmp, func(b *Broker) error { return b.CreatePartitions(ctx, "slow", 3) }},
		{"producer id", metaTmp, func(b *Broker) error { _, _, err := b.InitProducerID(ctx); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys, arm, reached, release := blockSyncs(t, tc.match)
			b, err := Open(Config{Dir: "/data", FS: fsys, TopicDefaults: log.Config{Sync: log.SyncNever}})
			require.NoError(t, err)
			defer b.Close()
			defer release() // first: a failed assertion frees the stuck call, or Close waits for it
			require.NoError(t, b.CreateTopic(ctx, "slow", log.TopicConfig{Partitions: 1}))
			require.NoError(t, b.CreateTopic(ctx, "other", log.TopicConfig{Partitions: 1}))

			arm()
			done := make(chan error, 1)
			go func() { done <- tc.call(b) }()
			testkit.AwaitHold(t, reached, done, tc.name)
			served := make(chan error, 1)
			go func() {
				_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "other", Acks: api.AcksAll, Batches: batch(t, "during")})
				if err == nil {
					_, err = b.Fetch(ctx, &api.FetchRequest{MaxBytes: 1 << 20, Partitions: []api.FetchPartition{{Topic: "other", MaxBytes: 1 << 20}}})
				}
				if err == nil {
					_, err = b.DescribeTopic(ctx, "other")
				}
				served <- err
			}()
			select {
			case err := <-served:
				require.NoError(t, err)
			case <-time.After(testkit.HangGuard): // a deadlock detector, not a speed limit
				t.Fatal("produce to another topic waited for the admin call's fsync")
			}
			release()
			require.NoError(t, testkit.Await(t, done, tc.name+"'s answer"))
		})
	}
}

// TestLongTopicNamesOnDisk: a topic name of Kafka's longest, 249
// characters, works on disk: its record's temporary file used to be 258
// characters long, too long a file name.
func TestLongTopicNamesOnDisk(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	name := strings.Repeat("n", api.MaxTopicNameLength)
	b, err := Open(Config{Dir: dir})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(ctx, name, log.TopicConfig{Partitions: 2}))
	produce(t, b, name, 1, "x")
	require.NoError(t, b.UpdateTopicConfig(ctx, name, func(c *log.Config) { c.RetentionBytes = 1 << 30 }))
	require.NoError(t, b.Close())
	b, err = Open(Config{Dir: dir})
	require.NoError(t, err)
	defer b.Close()
	info, err := b.DescribeTopic(ctx, name)
	require.NoError(t, err)
	require.EqualValues(t, 1, info.Partitions[1].LogEndOffset)
	require.EqualValues(t, 1<<30, info.Config.RetentionBytes)
	require.NoError(t, b.DeleteTopic(ctx, name))
	left, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range left {
		require.NotContains(t, e.Name(), name)
	}
}

// TestCreateTopicFailureLeavesNothing: a CreateTopic that fails writing the
// topic's record removes the partition directories it made.
func TestCreateTopicFailureLeavesNothing(t *testing.T) {
	mem := vfs.NewMem()
	var fail atomic.Bool
	fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if fail.Load() && op == vfs.OpCreate && strings.Contains(name, filepath.Join(topicsDir, metaTmp)) {
			return vfs.ErrInjected
		}
		return nil
	}))
	b, err := Open(Config{Dir: "/data", FS: fsys})
	require.NoError(t, err)
	defer b.Close()
	fail.Store(true)
	err = b.CreateTopic(context.Background(), "t", log.TopicConfig{Partitions: 3})
	require.ErrorIs(t, err, vfs.ErrInjected)
	names, err := mem.List("/data")
	require.NoError(t, err)
	require.ElementsMatch(t, []string{topicsDir, lockFile}, names)
	require.Empty(t, b.Topics())
}

// TestCreateTopicCollisions: as Kafka, a name equal to an existing one but
// for '.' against '_' is refused.
func TestCreateTopicCollisions(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(ctx, "orders.v1", log.TopicConfig{Partitions: 1}))
	err := b.CreateTopic(ctx, "orders_v1", log.TopicConfig{Partitions: 1})
	require.ErrorIs(t, err, ErrInvalidTopic)
	require.ErrorContains(t, err, "orders.v1")
	require.NoError(t, b.CreateTopic(ctx, "orders_v2", log.TopicConfig{Partitions: 1}))
}

// TestOpenRefusesNegativeDefaultPartitions: auto-create with a negative
// partition count used to create topics of 0 partitions.
func TestOpenRefusesNegativeDefaultPartitions(t *testing.T) {
	_, err := Open(Config{AutoCreateTopics: true, DefaultPartitions: -3})
	require.ErrorIs(t, err, ErrInvalidPartitions)
}

// TestUpdateTopicConfig changes one field and keeps the others, where
// AlterTopicConfig sets them all (its zero fields back to the defaults).
func TestUpdateTopicConfig(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2, Config: log.Config{
		CleanupPolicy: log.Compact, Sync: log.SyncNever, RetentionTime: time.Hour,
	}}))
	require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.MaxMessageBytes = 4 << 20 }))
	info, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, log.Compact, info.Config.CleanupPolicy)
	require.Equal(t, log.SyncNever, info.Config.Sync)
	require.Equal(t, time.Hour, info.Config.RetentionTime)
	require.Equal(t, 4<<20, info.Config.MaxMessageBytes)
	require.Len(t, info.Partitions, 2)
	require.Equal(t, 4<<20, b.topics["t"].Partitions[1].Log().Config().MaxMessageBytes, "the logs were reopened with it")

	err = b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.SegmentBytes = 5 })
	require.ErrorIs(t, err, log.ErrInvalidConfig)
	err = b.UpdateTopicConfig(ctx, "nope", func(c *log.Config) {})
	require.ErrorIs(t, err, ErrUnknownTopic)

	require.NoError(t, b.AlterTopicConfig(ctx, "t", log.Config{MaxMessageBytes: 2 << 20}))
	info, err = b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, log.Delete, info.Config.CleanupPolicy, "AlterTopicConfig replaces the whole config")
	require.Equal(t, log.SyncAlways, info.Config.Sync)
}

// TestOpenRemovesStrayPartitions: partition directories that no topic
// record claims (a deletion cut short by a crash after the record went, a
// CreatePartitions that failed before its record) are removed at Open, as
// Kafka removes stray logs; everything else in the directory is left.
func TestOpenRemovesStrayPartitions(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	b, err := Open(Config{Dir: "/data", FS: mem})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(ctx, "a", log.TopicConfig{Partitions: 2}))
	require.NoError(t, b.CreateTopic(ctx, "b", log.TopicConfig{Partitions: 1}))
	produce(t, b, "b", 0, "kept")
	require.NoError(t, b.Close())

	// a's record gone (its deletion interrupted), b-5 and b-x made by hand,
	// a file that looks like a partition.
	require.NoError(t, mem.Remove("/data/topics/a.json"))
	for _, d := range []string{"/data/b-5", "/data/b-x", "/data/notes"} {
		require.NoError(t, mem.MkdirAll(d, 0o755))
	}
	f, err := mem.Create("/data/c-1")
	require.NoError(t, err)
	require.NoError(t, f.Close())

	b, err = Open(Config{Dir: "/data", FS: mem})
	require.NoError(t, err)
	defer b.Close()
	names, err := mem.List("/data")
	require.NoError(t, err)
	require.ElementsMatch(t, []string{topicsDir, lockFile, "b-0", "b-x", "notes", "c-1"}, names)
	require.Equal(t, []string{"b"}, b.Topics())
	info, err := b.DescribeTopic(ctx, "b")
	require.NoError(t, err)
	require.EqualValues(t, 1, info.Partitions[0].LogEndOffset)
}

// TestFailedReopen: a partition whose log cannot be opened again when its
// config changes answers log.ErrLogFenced (the storage error, retriable),
// not "unknown topic"; the other partitions take the new config; a later
// config change that can open it brings it back, with its records.
func TestFailedReopen(t *testing.T) {
	ctx := context.Background()
	var armed atomic.Bool
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if armed.Load() && op == vfs.OpList && filepath.ToSlash(name) == "/data/t-1" {
			return vfs.ErrInjected
		}
		return nil
	}))
	b := open(t, Config{Dir: "/data", FS: fsys})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}))
	produce(t, b, "t", 0, "a0")
	produce(t, b, "t", 1, "a1")

	armed.Store(true)
	err := b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.MaxMessageBytes = 2 << 20 })
	require.ErrorIs(t, err, vfs.ErrInjected)
	require.ErrorContains(t, err, "t-1")
	require.Equal(t, 2<<20, b.topics["t"].Partitions[0].Log().Config().MaxMessageBytes)

	_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: 1, Acks: api.AcksAll, Batches: batch(t, "b1")})
	require.ErrorIs(t, err, log.ErrLogFenced)
	require.ErrorIs(t, err, vfs.ErrInjected)
	require.True(t, api.IsRetriable(err))
	resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", Partition: 1}}})
	require.NoError(t, err)
	require.ErrorIs(t, resp.Partitions[0].Err, log.ErrLogFenced)
	_, err = b.ListOffset(ctx, "t", 1, 0)
	require.ErrorIs(t, err, log.ErrLogFenced)
	produce(t, b, "t", 0, "b0")

	armed.Store(false)
	require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) {}))
	produce(t, b, "t", 1, "b1")
	resp, err = b.Fetch(ctx, &api.FetchRequest{MaxBytes: 1 << 20, Partitions: []api.FetchPartition{{Topic: "t", Partition: 1, MaxBytes: 1 << 20}}})
	require.NoError(t, err)
	require.NoError(t, resp.Partitions[0].Err)
	require.Equal(t, []string{"a1", "b1"}, values(t, resp.Partitions[0].Records))

	// The broker's maintenance tries the failed reopen again: in vain while
	// the fault lasts, then with the config the call asked for.
	armed.Store(true)
	require.ErrorIs(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.MaxMessageBytes = 3 << 20 }), vfs.ErrInjected)
	err = b.Maintain(ctx)
	require.ErrorIs(t, err, vfs.ErrInjected)
	require.ErrorContains(t, err, "t-1")
	_, err = b.ListOffset(ctx, "t", 1, 0)
	require.ErrorIs(t, err, log.ErrLogFenced)
	armed.Store(false)
	require.NoError(t, b.Maintain(ctx))
	require.Equal(t, 3<<20, b.topics["t"].Partitions[1].Log().Config().MaxMessageBytes)
	produce(t, b, "t", 1, "c1")
	resp, err = b.Fetch(ctx, &api.FetchRequest{MaxBytes: 1 << 20, Partitions: []api.FetchPartition{{Topic: "t", Partition: 1, MaxBytes: 1 << 20}}})
	require.NoError(t, err)
	require.Equal(t, []string{"a1", "b1", "c1"}, values(t, resp.Partitions[0].Records))
	require.NoError(t, b.Maintain(ctx)) // nothing left to retry
}

// TestFailedReopenRetriedByMaintenance: the broker's own maintenance
// goroutine reopens a partition whose reopen failed, once the fault is
// gone.
func TestFailedReopenRetriedByMaintenance(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testkit.HangGuard)
	defer cancel()
	var armed atomic.Bool
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if armed.Load() && op == vfs.OpList && filepath.ToSlash(name) == "/data/t-0" {
			return vfs.ErrInjected
		}
		return nil
	}))
	b := open(t, Config{Dir: "/data", FS: fsys, MaintenanceInterval: time.Millisecond})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	armed.Store(true)
	require.ErrorIs(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.MaxMessageBytes = 2 << 20 }), vfs.ErrInjected)
	armed.Store(false)
	for {
		_, err := b.ListOffset(ctx, "t", 0, 0)
		if err == nil {
			break
		}
		require.ErrorIs(t, err, log.ErrLogFenced)
		select {
		case <-ctx.Done():
			t.Fatal("maintenance never reopened the partition")
		case <-time.After(time.Millisecond):
		}
	}
	produce(t, b, "t", 0, "a")
}

// TestAlterConfigAfterRetentionUnderSyncNever: on a SyncNever topic whose
// retention deleted segments rolled since the log opened, AlterTopicConfig
// reopens every partition and the partition goes on taking records. The
// log's Close used to fsync the deleted segments too, fail with
// segment.ErrClosed, and leave the partition fenced (log.ErrLogFenced)
// until the broker was reopened. Found by TestSoak.
func TestAlterConfigAfterRetentionUnderSyncNever(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	cfg := log.Config{Sync: log.SyncNever, SegmentBytes: 300, RetentionBytes: 600, RetentionTime: -1}
	require.NoError(t, b.CreateTopic(ctx, "m", log.TopicConfig{Partitions: 1, Config: cfg}))
	for i := range 30 {
		produce(t, b, "m", 0, strings.Repeat("x", i))
	}
	require.NoError(t, b.Maintain(ctx))
	info, err := b.DescribeTopic(ctx, "m")
	require.NoError(t, err)
	require.Positive(t, info.Partitions[0].LogStartOffset, "retention deleted segments")
	cfg.SegmentBytes = 400
	require.NoError(t, b.AlterTopicConfig(ctx, "m", cfg))
	resp := produce(t, b, "m", 0, "after")
	require.EqualValues(t, 30, resp.BaseOffset)
}

// TestCleanerMapBytes: the broker's CleanerMapBytes reaches its
// partitions' cleaner. With room for one key a pass, one maintenance run
// leaves duplicates that the default map cleans at once; a value below
// log.MinCleanerMapBytes is refused.
func TestCleanerMapBytes(t *testing.T) {
	ctx := context.Background()
	_, err := Open(Config{CleanerMapBytes: log.MinCleanerMapBytes - 1})
	require.ErrorIs(t, err, log.ErrInvalidConfig)
	left := func(mapBytes int64) int {
		b := open(t, Config{CleanerMapBytes: mapBytes})
		cfg := log.Config{CleanupPolicy: log.Compact, SegmentBytes: 200, MinCleanableDirtyRatio: 0.01}
		require.NoError(t, b.CreateTopic(ctx, "c", log.TopicConfig{Partitions: 1, Config: cfg}))
		for range 10 {
			for _, v := range []string{"a", "b", "c", "d"} {
				produce(t, b, "c", 0, v)
			}
		}
		require.NoError(t, b.Maintain(ctx))
		resp, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: 1 << 20, Partitions: []api.FetchPartition{{Topic: "c", MaxBytes: 1 << 20}}})
		require.NoError(t, err)
		require.NoError(t, resp.Partitions[0].Err)
		return len(values(t, resp.Partitions[0].Records))
	}
	unbounded, bounded := left(0), left(log.MinCleanerMapBytes)
	require.Less(t, unbounded, 40, "the default map cleans in one run")
	require.Greater(t, bounded, unbounded, "one key a pass leaves more")
}

// TestFailedAdminCallLeavesItsRecordAsItWas: when the fsync of
// <Dir>/topics fails after a topic's record was renamed into place,
// CreateTopic, UpdateTopicConfig and CreatePartitions fail and put the
// record back as it was, so that a restart finds what the broker served
// after the failure. They left the new record in place: the topic, config
// or partitions the caller was told had failed appeared at the next Open
// (and a later CreatePartitions wrote the failed update's config back
// over the record). Found by TestAdminModelProperty (seed 2).
func TestFailedAdminCallLeavesItsRecordAsItWas(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	var fail atomic.Bool
	fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if fail.Load() && op == vfs.OpSyncDir && filepath.Base(name) == topicsDir {
			return vfs.ErrInjected
		}
		return nil
	}))
	cfg := Config{Dir: "/data", FS: fsys}
	b, err := Open(cfg)
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(ctx, "u", log.TopicConfig{Partitions: 1}))
	describe := func(b *Broker) []string {
		var out []string
		for _, name := range b.Topics() {
			info, err := b.DescribeTopic(ctx, name)
			require.NoError(t, err)
			out = append(out, fmt.Sprintf("%s %v max.message.bytes %d, %d partitions", name, info.ID, info.Overrides.MaxMessageBytes, len(info.Partitions)))
		}
		return out
	}
	before := describe(b)
	fail.Store(true)
	require.ErrorIs(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 3}), vfs.ErrInjected)
	require.ErrorIs(t, b.UpdateTopicConfig(ctx, "u", func(c *log.Config) { c.MaxMessageBytes = 1000 }), vfs.ErrInjected)
	require.ErrorIs(t, b.CreatePartitions(ctx, "u", 3), vfs.ErrInjected)
	fail.Store(false)
	require.Equal(t, before, describe(b), "the failed calls changed nothing")
	names, err := mem.List(filepath.Join("/data", topicsDir))
	require.NoError(t, err)
	require.Equal(t, []string{"u.json"}, names)
	require.NoError(t, b.Close())
	b, err = Open(cfg)
	require.NoError(t, err)
	defer b.Close()
	require.Equal(t, before, describe(b), "a restart finds what the broker served")
}

// TestDeleteTopicAfterItsRecordIsGone: once DeleteTopic has removed the
// topic's record, a failure after it (here, the directory's sync) no
// longer leaves the topic served without a record — acknowledging records
// that the next Open would not know (found by review). The topic is gone;
// a second DeleteTopic says so.
func TestDeleteTopicAfterItsRecordIsGone(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	var armed atomic.Bool
	fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSyncDir && strings.HasSuffix(filepath.ToSlash(name), "/"+topicsDir) && armed.CompareAndSwap(true, false) {
			return vfs.ErrInjected
		}
		return nil
	}))
	b, err := Open(Config{Dir: "/data", FS: fsys})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}))
	produce(t, b, "t", 0, "before")

	armed.Store(true)
	require.ErrorIs(t, b.DeleteTopic(ctx, "t"), vfs.ErrInjected)
	_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(t, "after")})
	require.ErrorIs(t, err, ErrUnknownTopic)
	require.ErrorIs(t, b.DeleteTopic(ctx, "t"), ErrUnknownTopic)
	require.Empty(t, b.Topics())
	require.NoError(t, b.Close())

	b, err = Open(Config{Dir: "/data", FS: mem})
	require.NoError(t, err)
	defer b.Close()
	require.Empty(t, b.Topics())
	names, err := mem.List("/data")
	require.NoError(t, err)
	for _, n := range names {
		require.False(t, strings.HasPrefix(n, "t-"), "the partition directory %s is left", n)
	}
}
