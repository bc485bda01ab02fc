package runnel_test

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/leakcheck"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// A process that embeds a broker for months, whose workload
// churns (topics, producers, consumers, config changes, restarts) while
// the data it holds stays bounded. The leak tests (leak_test.go,
// leak_cycles_test.go) run with the default logger, which logs nowhere:
// the logs' line queues (package lockedlog), the Held loggers of admin
// calls and maintenance, and HoldLines then do nothing at all. A service
// logs; these cycles run with a handler that takes every level, so that
// those paths run at every cycle, and measure what stays.

// growthLogger is a logger that takes every level (Debug too) and writes
// the lines, formatted, nowhere.
func growthLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// growthHeapSlack is how much the live heap may grow over a growth
// test's cycles (after leakcheck.Bounded's warm-up) before it counts as
// growth per cycle: a few hundred cycles of a line kept per cycle (some
// 300 bytes, a queued slog.Record with its attributes) pass it.
const growthHeapSlack = 96 << 10

// growthBounded is leakcheck.Bounded with a tighter check of the live
// heap: it may grow by growthHeapSlack over the cycles, not double.
func growthBounded(t *testing.T, n int, slack int64, measure func() int64, cycle func(i int)) {
	t.Helper()
	var h0 int64
	leakcheck.Bounded(t, n, slack, true, measure, func(i int) {
		if i == leakcheck.Warm {
			h0 = leakcheck.LiveHeap()
		}
		cycle(i)
	})
	h1 := leakcheck.LiveHeap()
	t.Logf("live heap %d -> %d over %d cycles (%+.0f B/cycle)", h0, h1, n, float64(h1-h0)/float64(n))
	require.LessOrEqual(t, h1-h0, int64(growthHeapSlack), "the live heap grew with the cycles")
}

// An in-memory broker that logs at Debug, through cycles of a topic
// created, written by a producer made for the cycle (a new idempotent
// producer id), read by a consumer made for the cycle, reconfigured
// (its logs reopened), maintained (ids expire) and deleted, under one
// name; and of a long-lived producer and consumer that write and read a
// second topic all along: the heap, goroutines and the memory FS stay
// where they were after the first cycles.
func TestGrowthLoggedChurn(t *testing.T) {
	ctx := context.Background()
	lg := growthLogger()
	mem := vfs.NewMem()
	clock := &stepClock{}
	clock.ns.Store(time.Now().UnixNano())
	b, err := runnel.Open(runnel.Config{FS: mem, Logger: lg, Clock: clock, ProducerIDExpiration: 10 * time.Minute})
	require.NoError(t, err)
	defer b.Close()
	cfg := log.Config{SegmentBytes: 8 << 10, RetentionBytes: 32 << 10}
	require.NoError(t, b.CreateTopic(ctx, "steady", log.TopicConfig{Partitions: 2, Config: cfg}))
	steadyP, err := producer.New(b, producer.Logger(lg))
	require.NoError(t, err)
	defer steadyP.Close()
	steadyC, err := consumer.New(b, consumer.Logger(lg))
	require.NoError(t, err)
	defer steadyC.Close()
	require.NoError(t, steadyC.AssignTopic(ctx, "steady", consumer.Start()))
	val := make([]byte, 500)
	// Filled to its retention first, so that what the cycles add to it
	// only replaces what retention deletes.
	for range 100 {
		require.NoError(t, steadyP.ProduceSync(ctx, &record.Record{Topic: "steady", Value: val}))
	}
	require.NoError(t, b.Maintain(ctx))
	growthBounded(t, leakcheck.Cycles(t, 800), 64<<10, mem.Allocated, func(i int) {
		require.NoError(t, b.CreateTopic(ctx, "churn", log.TopicConfig{Partitions: 2, Config: log.Config{SegmentBytes: 8 << 10}}))
		p, err := producer.New(b, producer.Logger(lg))
		require.NoError(t, err)
		for k := range 4 {
			require.NoError(t, p.ProduceSync(ctx,
				&record.Record{Topic: "churn", Key: []byte(fmt.Sprint(k)), Value: val},
				&record.Record{Topic: "steady", Value: val}))
		}
		require.NoError(t, p.Close())
		c, err := consumer.New(b, consumer.Logger(lg))
		require.NoError(t, err)
		require.NoError(t, c.AssignTopic(ctx, "churn", consumer.Start()))
		fs, err := c.Poll(ctx)
		require.NoError(t, err)
		require.NotZero(t, fs.NumRecords())
		require.NoError(t, c.Close())
		for got := 0; got < 4; {
			fs, err := steadyC.Poll(ctx)
			require.NoError(t, err)
			got += fs.NumRecords()
		}
		require.NoError(t, b.UpdateTopicConfig(ctx, "churn", func(c *log.Config) { c.FlushMessages = int64(i%7 + 1) }))
		clock.ns.Add(int64(time.Minute))
		require.NoError(t, b.Maintain(ctx))
		require.NoError(t, b.DeleteTopic(ctx, "churn"))
	})
}

// A long-lived consumer that logs at Debug, moved all over its
// partitions at every cycle (Assign at random offsets, Seek by time,
// Pause and Resume, Unassign, a Records loop left at its first record),
// and assigned to a topic deleted and created again under its name (a
// partition gone, reported and reset, and errors a Records loop ends
// before yielding, held for the next Poll): its state, and the broker's,
// stay where they were.
func TestGrowthConsumerMoves(t *testing.T) {
	ctx := context.Background()
	lg := growthLogger()
	b, err := runnel.Open(runnel.Config{Logger: lg})
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, b.CreateTopic(ctx, "s", log.TopicConfig{Partitions: 4}))
	for k := range 200 {
		leakProduce(t, b, "s", int32(k%4), "", []byte("v"))
	}
	c, err := consumer.New(b, consumer.Logger(lg), consumer.FetchMaxWait(time.Millisecond), consumer.RetryBackoff(time.Millisecond))
	require.NoError(t, err)
	defer c.Close()
	r := rand.New(rand.NewPCG(44, 44))
	growthBounded(t, leakcheck.Cycles(t, 800), 0, nil, func(i int) {
		for k := range 4 {
			require.NoError(t, c.Assign("s", int32(k), consumer.At(int64(r.IntN(60)))))
		}
		c.Pause(api.TopicPartition{Topic: "s", Partition: 1})
		_, err := c.Poll(ctx)
		require.NoError(t, err)
		c.Resume(api.TopicPartition{Topic: "s", Partition: 1})
		require.NoError(t, c.Seek("s", 2, consumer.AtTime(time.Now().Add(-time.Hour))))
		for _, err := range c.Records(ctx) {
			require.NoError(t, err)
			break
		}
		c.Unassign("s", int32(i%4))

		// A topic deleted under the consumer and created again.
		require.NoError(t, b.CreateTopic(ctx, "gone", log.TopicConfig{Partitions: 1}))
		leakProduce(t, b, "gone", 0, "", []byte("v"))
		require.NoError(t, c.Assign("gone", 0, consumer.Start()))
		for got := 0; got == 0; {
			fs, err := c.Poll(ctx)
			require.NoError(t, err)
			for _, f := range fs {
				if f.Topic == "gone" {
					got += f.NumRecords()
				}
			}
		}
		require.NoError(t, b.DeleteTopic(ctx, "gone"))
		pctx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
		for _, err := range c.Records(pctx) {
			if err != nil {
				break // the partition's error, or pctx's
			}
		}
		cancel()
		c.Unassign("gone", 0)
	})
}

// dirEntries counts the files and directories under dir.
func dirEntries(t testing.TB, dir string) int64 {
	var n int64
	require.NoError(t, filepath.WalkDir(dir, func(_ string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		n++
		return nil
	}))
	return n
}

// On disk, with a logger at Debug: cycles of a producer made for the
// cycle writing to topics under each fsync policy (SyncNever with
// retention, SyncPeriodic compacted and deleted, SyncAlways cut by
// DeleteRecords), a consumer made for the cycle, maintenance, a config
// change every tenth cycle and a restart every twentieth: the files in
// the data directory (segments, indexes, producer-state snapshots,
// checkpoints), the open descriptors and the mappings stay where they
// were, besides the heap and the goroutines. leak_test.go counts the
// descriptors and mappings; nothing counted the files. On /dev/shm where
// there is one (FastTempDir: the same files, descriptors and mappings as
// a disk's, without the fsync waits that were most of its time).
func TestGrowthDiskFiles(t *testing.T) {
	skipWithoutProcFD(t)
	ctx := context.Background()
	lg := growthLogger()
	dir := testkit.FastTempDir(t)
	clock := &stepClock{}
	clock.ns.Store(time.Now().UnixNano())
	cfg := runnel.Config{Dir: dir, Logger: lg, Clock: clock, ProducerIDExpiration: 10 * time.Minute}
	b, err := runnel.Open(cfg)
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()
	seg := int64(8 << 10)
	never := log.Config{SegmentBytes: seg, Sync: log.SyncNever, RetentionBytes: 4 * seg}
	periodic := log.Config{SegmentBytes: seg, Sync: log.SyncPeriodic, FlushMessages: 7, CleanupPolicy: log.Compact | log.Delete, RetentionBytes: 6 * seg, MinCleanableDirtyRatio: -1}
	require.NoError(t, b.CreateTopic(ctx, "never", log.TopicConfig{Partitions: 2, Config: never}))
	require.NoError(t, b.CreateTopic(ctx, "periodic", log.TopicConfig{Partitions: 2, Config: periodic}))
	require.NoError(t, b.CreateTopic(ctx, "cut", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: seg}}))
	val := make([]byte, 1000)
	cycle := func(i int) {
		p, err := producer.New(b, producer.Logger(lg))
		require.NoError(t, err)
		for k := range 6 {
			require.NoError(t, p.ProduceSync(ctx,
				&record.Record{Topic: "never", Key: []byte(fmt.Sprint(k)), Value: val},
				&record.Record{Topic: "periodic", Key: []byte(fmt.Sprint(k % 5)), Value: val},
				&record.Record{Topic: "cut", Value: val}))
		}
		require.NoError(t, p.Close())
		_, err = b.DeleteRecords(ctx, "cut", 0, api.Latest)
		require.NoError(t, err)
		c, err := consumer.New(b, consumer.Logger(lg))
		require.NoError(t, err)
		require.NoError(t, c.AssignTopic(ctx, "periodic", consumer.AtTime(time.Now().Add(-time.Second))))
		require.NoError(t, c.Assign("never", 0, consumer.Start()))
		_, err = c.Poll(ctx)
		require.NoError(t, err)
		require.NoError(t, c.Close())
		clock.ns.Add(int64(time.Minute))
		require.NoError(t, b.Maintain(ctx))
		if i%10 == 9 {
			require.NoError(t, b.UpdateTopicConfig(ctx, "periodic", func(c *log.Config) { c.FlushMessages = int64(i%11 + 1) }))
		}
		if i%20 == 19 {
			require.NoError(t, b.Close())
			b, err = runnel.Open(cfg)
			require.NoError(t, err)
		}
	}
	files := func() int64 { return dirEntries(t, dir) }
	handles := func() int64 { return openFiles(t) + mappings(t) }
	// Warmed up past a restart and the topics' retention, so that the
	// measures start from the steady state.
	const warm = 30
	for i := range warm {
		cycle(i)
	}
	f0, h0 := files(), handles()
	n := leakcheck.Cycles(t, 100)
	for i := warm; i < warm+n; i++ {
		cycle(i)
	}
	f1, h1 := files(), handles()
	t.Logf("%d cycles: files in the data directory %d -> %d, descriptors and mappings %d -> %d", n, f0, f1, h0, h1)
	require.LessOrEqual(t, f1, f0+6, "files piled up in the data directory")
	require.LessOrEqual(t, h1, h0+10, "descriptors or mappings grew with the cycles")
}
