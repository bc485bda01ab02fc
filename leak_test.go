package runnel_test

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"fmt"
	"iter"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/leakcheck"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// The tests in this file run a broker's workload for many cycles and check
// that what it holds — the live heap, goroutines, the memory FS's chunks,
// open files — returns after each cycle's cleanup to about its level
// after the first few cycles: they catch growth per cycle, not noise.
// RUNNEL_LEAK_CYCLES sets the number of cycles for a longer run.

// leakBatch is a batch of one record with the key key (none if "") and
// the value val, stamped now.
func leakBatch(t testing.TB, key string, val []byte) []byte {
	return leakBatchAt(t, time.Now().UnixMilli(), key, val)
}

// leakBatchAt is leakBatch with the record stamped ts (Unix ms).
func leakBatchAt(t testing.TB, ts int64, key string, val []byte) []byte {
	var b record.Builder
	var k []byte
	if key != "" {
		k = []byte(key)
	}
	b.Append(ts, k, val, nil)
	out, err := b.AppendTo(nil, compression.None)
	require.NoError(t, err)
	return out
}

func leakProduce(t testing.TB, b *runnel.Broker, topic string, partition int32, key string, val []byte) {
	t.Helper()
	_, err := b.Produce(context.Background(), &api.ProduceRequest{Topic: topic, Partition: partition, Acks: api.AcksLeader, Batches: leakBatch(t, key, val)})
	require.NoError(t, err)
}

// Topics created, written, read and deleted over and over, under new names
// and under one name, leave nothing behind in an in-memory broker: the
// deleted topics' names, IDs, partitions and files are all let go.
func TestLeakTopicChurn(t *testing.T) {
	ctx := context.Background()
	val := make([]byte, 1000)
	for _, same := range []bool{false, true} {
		t.Run(fmt.Sprint("same-name=", same), func(t *testing.T) {
			fs := vfs.NewMem()
			b, err := runnel.Open(runnel.Config{FS: fs})
			require.NoError(t, err)
			defer b.Close()
			leakcheck.Bounded(t, leakcheck.Cycles(t, 400), 64<<10, true, fs.Allocated, func(i int) {
				name := fmt.Sprint("t", i)
				if same {
					name = "t"
				}
				require.NoError(t, b.CreateTopic(ctx, name, log.TopicConfig{Partitions: 2, Config: log.Config{SegmentBytes: 8 << 10}}))
				for k := range 20 {
					leakProduce(t, b, name, int32(k%2), "", val)
				}
				resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: name}, {Topic: name, Partition: 1}}})
				require.NoError(t, err)
				require.NotEmpty(t, resp.Partitions[0].Records)
				require.NoError(t, b.DeleteTopic(ctx, name))
			})
			require.Empty(t, b.Topics())
			require.Zero(t, fs.Allocated())
		})
	}
}

// Retention, DeleteRecords and compaction cycles on long-lived topics of
// an in-memory broker free the segments they delete or swap out.
func TestLeakBrokerMaintenance(t *testing.T) {
	ctx := context.Background()
	val := make([]byte, 1000)
	fs := vfs.NewMem()
	b, err := runnel.Open(runnel.Config{FS: fs})
	require.NoError(t, err)
	defer b.Close()
	seg := int64(16 << 10)
	require.NoError(t, b.CreateTopic(ctx, "retention", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: seg, RetentionBytes: 4 * seg}}))
	require.NoError(t, b.CreateTopic(ctx, "deleterecords", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: seg}}))
	require.NoError(t, b.CreateTopic(ctx, "compacted", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: seg, CleanupPolicy: log.Compact, MinCleanableDirtyRatio: -1}}))
	leakcheck.Bounded(t, leakcheck.Cycles(t, 400), 64<<10, true, fs.Allocated, func(i int) {
		for k := range 20 {
			leakProduce(t, b, "retention", 0, "", val)
			leakProduce(t, b, "deleterecords", 0, "", val)
			leakProduce(t, b, "compacted", 0, fmt.Sprint(k), val)
		}
		_, err := b.DeleteRecords(ctx, "deleterecords", 0, api.Latest)
		require.NoError(t, err)
		require.NoError(t, b.Maintain(ctx))
	})
}

// Short-lived idempotent producers (each a producer.New, which takes a new
// producer id, a record, and Close) leave a bounded state on the broker
// once their ids expire (ProducerIDExpiration), and no goroutine.
func TestLeakProducerIDChurn(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewMem()
	clock := &stepClock{}
	clock.ns.Store(time.Now().UnixNano())
	b, err := runnel.Open(runnel.Config{FS: fs, Clock: clock, ProducerIDExpiration: 10 * time.Minute})
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, b.CreateTopic(ctx, "p", log.TopicConfig{Partitions: 2, Config: log.Config{SegmentBytes: 16 << 10, RetentionBytes: 64 << 10}}))
	// Filled to its retention first, so that what the cycles add to the
	// log only replaces what retention deletes.
	for range 100 {
		leakProduce(t, b, "p", 0, "", make([]byte, 1000))
		leakProduce(t, b, "p", 1, "", make([]byte, 1000))
	}
	require.NoError(t, b.Maintain(ctx))
	leakcheck.Bounded(t, leakcheck.Cycles(t, 400), 64<<10, true, fs.Allocated, func(i int) {
		p, err := producer.New(b)
		require.NoError(t, err)
		require.NoError(t, p.ProduceSync(ctx, &record.Record{Topic: "p", Value: []byte("x")}))
		require.NoError(t, p.Close())
		clock.ns.Add(int64(time.Minute))
		require.NoError(t, b.Maintain(ctx))
	})
}

// Long polls that time out, and ones whose ctx is cancelled, leave
// nothing waiting on the partitions; nor does a consumer that assigns,
// polls and unassigns partitions of topics deleted afterwards.
func TestLeakWaitsAndAssignments(t *testing.T) {
	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{})
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, b.CreateTopic(ctx, "f", log.TopicConfig{Partitions: 3}))
	c, err := consumer.New(b)
	require.NoError(t, err)
	defer c.Close()
	leakcheck.Bounded(t, leakcheck.Cycles(t, 200), 0, true, nil, func(i int) {
		resp, err := b.Fetch(ctx, &api.FetchRequest{MaxWait: time.Microsecond, Partitions: []api.FetchPartition{{Topic: "f"}, {Topic: "f", Partition: 1}}})
		require.NoError(t, err)
		require.Empty(t, resp.Partitions[0].Records)
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error)
		go func() {
			_, err := b.Fetch(cctx, &api.FetchRequest{MaxWait: time.Hour, Partitions: []api.FetchPartition{{Topic: "f", Partition: 2}}})
			done <- err
		}()
		cancel()
		require.ErrorIs(t, testkit.Await(t, done, "Fetch's answer"), context.Canceled)

		name := fmt.Sprint("c", i)
		require.NoError(t, b.CreateTopic(ctx, name, log.TopicConfig{Partitions: 2}))
		leakProduce(t, b, name, 0, "", []byte("v"))
		require.NoError(t, c.AssignTopic(ctx, name, consumer.Start()))
		fs, err := c.Poll(ctx)
		require.NoError(t, err)
		require.NotEmpty(t, fs)
		c.Unassign(name, 0)
		c.Unassign(name, 1)
		require.NoError(t, b.DeleteTopic(ctx, name))
	})
}

// openFiles counts the process's open file descriptors (Linux only).
func openFiles(t testing.TB) int64 {
	names, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return int64(len(names))
}

// mappings counts the process's memory mappings (Linux only).
func mappings(t testing.TB) int64 {
	data, err := os.ReadFile("/proc/self/maps")
	require.NoError(t, err)
	return int64(bytes.Count(data, []byte("\n")))
}

// skipWithoutProcFD skips a test that counts the process's open files
// and mappings through Linux's /proc/self/fd and /proc/self/maps: on
// macOS there is none, and a Windows program under Wine sees Linux's
// /proc as Z:\proc, whose entries are no Windows handles.
func skipWithoutProcFD(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("no /proc/self/fd to count open files on " + runtime.GOOS)
	}
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("no /proc/self/fd to count open files")
	}
}

// On disk, topics created and deleted, and segments deleted by retention,
// DeleteRecords or swapped by compaction, close their files and unmap
// their indexes: the broker's open file descriptors and memory mappings
// stay bounded. On /dev/shm where there is one (FastTempDir: its files
// are opened and mapped as a disk's are, and its fsyncs, most of the
// test's time on a VM's disk, cost nothing).
func TestLeakOpenFiles(t *testing.T) {
	skipWithoutProcFD(t)
	ctx := context.Background()
	val := make([]byte, 1000)
	base := openFiles(t) + mappings(t)
	b, err := runnel.Open(runnel.Config{Dir: testkit.FastTempDir(t)})
	require.NoError(t, err)
	defer b.Close()
	seg := int64(16 << 10)
	nosync := log.Config{SegmentBytes: seg, Sync: log.SyncNever}
	retention, compacted := nosync, nosync
	retention.RetentionBytes = 2 * seg
	compacted.CleanupPolicy, compacted.MinCleanableDirtyRatio = log.Compact, -1
	require.NoError(t, b.CreateTopic(ctx, "retention", log.TopicConfig{Partitions: 1, Config: retention}))
	require.NoError(t, b.CreateTopic(ctx, "deleterecords", log.TopicConfig{Partitions: 1, Config: nosync}))
	require.NoError(t, b.CreateTopic(ctx, "compacted", log.TopicConfig{Partitions: 1, Config: compacted}))
	m0, m1 := leakcheck.Bounded(t, leakcheck.Cycles(t, 150), 10, true, func() int64 { return openFiles(t) + mappings(t) - base }, func(i int) {
		name := fmt.Sprint("t", i)
		churn := i%10 == 0 // a topic's creation and deletion take fsyncs: every tenth cycle
		if churn {
			require.NoError(t, b.CreateTopic(ctx, name, log.TopicConfig{Partitions: 2, Config: nosync}))
		}
		for k := range 20 {
			if churn {
				leakProduce(t, b, name, int32(k%2), "", val)
			}
			leakProduce(t, b, "retention", 0, "", val)
			leakProduce(t, b, "deleterecords", 0, "", val)
			leakProduce(t, b, "compacted", 0, fmt.Sprint(k), val)
		}
		_, err := b.DeleteRecords(ctx, "deleterecords", 0, api.Latest)
		require.NoError(t, err)
		require.NoError(t, b.Maintain(ctx))
		if churn {
			require.NoError(t, b.DeleteTopic(ctx, name))
		}
	})
	// Descriptors and mappings are not noise: a tighter bound than the heap's.
	require.LessOrEqual(t, m1, m0+20, "open files or mappings grew with the cycles")
}

// A producer writing to ever new topics keeps a small state for each
// partition it wrote to (its sequence numbers, the partitioner's), as
// Kafka's clients do (see producer.Producer); its goroutines, and the
// batch buffers they hold, end once the partition has been idle a
// second. Skipped under -short: it waits for that second.
func TestLeakProducerTopics(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the producer's partition goroutines to end")
	}
	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{})
	require.NoError(t, err)
	defer b.Close()
	base := runtime.NumGoroutine()
	p, err := producer.New(b, producer.RecordPartitioner(producer.ManualPartitioner()))
	require.NoError(t, err)
	defer p.Close()
	const parts = 4
	val := make([]byte, 1000)
	cycle := func(i int) {
		name := fmt.Sprint("t", i)
		require.NoError(t, b.CreateTopic(ctx, name, log.TopicConfig{Partitions: parts}))
		for k := range parts {
			require.NoError(t, p.ProduceSync(ctx, &record.Record{Topic: name, Partition: int32(k), Value: val}))
		}
		require.NoError(t, b.DeleteTopic(ctx, name))
	}
	idle := func() (int64, int) {
		var g int
		require.Eventually(t, func() bool {
			g = runtime.NumGoroutine()
			return g <= base+1 // +1: the runtime's finalizer goroutine, started on first use, counts
		}, 10*time.Second, 10*time.Millisecond, "the partitions' goroutines end when idle")
		return leakcheck.LiveHeap(), g
	}
	for i := range 5 {
		cycle(i)
	}
	h0, g0 := idle()
	n := leakcheck.Cycles(t, 400)
	for i := 5; i < 5+n; i++ {
		cycle(i)
	}
	h1, g1 := idle()
	perPart := float64(h1-h0) / float64(n*parts)
	t.Logf("%d topics of %d partitions: live heap %d -> %d (%.0f B a partition), goroutines %d -> %d", n, parts, h0, h1, perPart, g0, g1)
	require.Less(t, perPart, 2048.0, "more than the documented state a partition (up to about 1 KiB)")
}

// Config changes (each reopens the partitions' logs) and restarts (Close
// and Open on the same memory FS) leave nothing behind: no goroutine, no
// file (producer-state snapshots, checkpoints) piling up.
func TestLeakReopens(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewMem()
	files := func() int64 {
		var n int64
		for _, dir := range []string{"/runnel", "/runnel/r-0", "/runnel/r-1"} {
			names, err := fs.List(dir)
			require.NoError(t, err)
			n += int64(len(names))
		}
		return n
	}
	clock := &stepClock{}
	clock.ns.Store(time.Now().UnixNano())
	cfg := runnel.Config{FS: fs, Clock: clock, ProducerIDExpiration: 10 * time.Minute}
	b, err := runnel.Open(cfg)
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(ctx, "r", log.TopicConfig{Partitions: 2, Config: log.Config{SegmentBytes: 8 << 10, RetentionBytes: 32 << 10}}))
	defer func() { require.NoError(t, b.Close()) }()
	val := make([]byte, 500)
	// Filled to its retention first, so that what the cycles add to the
	// log only replaces what retention deletes.
	for range 100 {
		leakProduce(t, b, "r", 0, "", val)
		leakProduce(t, b, "r", 1, "", val)
	}
	require.NoError(t, b.Maintain(ctx))
	leakcheck.Bounded(t, leakcheck.Cycles(t, 200), 16<<10, true, func() int64 { return fs.Allocated() + files()<<10 }, func(i int) {
		p, err := producer.New(b)
		require.NoError(t, err)
		for range 10 {
			require.NoError(t, p.ProduceSync(ctx, &record.Record{Topic: "r", Value: val}))
		}
		require.NoError(t, p.Close())
		require.NoError(t, b.UpdateTopicConfig(ctx, "r", func(c *log.Config) { c.FlushMessages = int64(i + 1) }))
		clock.ns.Add(int64(time.Minute))
		require.NoError(t, b.Maintain(ctx))
		if i%5 == 0 {
			require.NoError(t, b.Close())
			b, err = runnel.Open(cfg)
			require.NoError(t, err)
		}
	})
}

// The steady state of a microservice's event log: a producer and a
// consumer (Poll, and a Records loop) running for long on topics whose
// retention deletes what they have read, compressed or not, keep the same
// memory and goroutines.
func TestLeakSteadyState(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewMem()
	b, err := runnel.Open(runnel.Config{FS: fs})
	require.NoError(t, err)
	defer b.Close()
	cfg := log.Config{SegmentBytes: 16 << 10, RetentionBytes: 32 << 10}
	require.NoError(t, b.CreateTopic(ctx, "events", log.TopicConfig{Partitions: 4, Config: cfg}))
	require.NoError(t, b.CreateTopic(ctx, "zstd", log.TopicConfig{Partitions: 1, Config: cfg}))
	p, err := producer.New(b, producer.Compression(compression.Zstd), producer.Linger(time.Millisecond))
	require.NoError(t, err)
	defer p.Close()
	poll, err := consumer.New(b)
	require.NoError(t, err)
	defer poll.Close()
	require.NoError(t, poll.AssignTopic(ctx, "events", consumer.Start()))
	loop, err := consumer.New(b)
	require.NoError(t, err)
	defer loop.Close()
	require.NoError(t, loop.AssignTopic(ctx, "zstd", consumer.Start()))
	next, stop := iter.Pull2(loop.Records(ctx))
	defer stop()
	val := func() []byte { // incompressible: retention is reached in the fill
		v := make([]byte, 200)
		crand.Read(v)
		return v
	}
	// Filled to its retention first, so that what the cycles add to the
	// log only replaces what retention deletes.
	fill := func(n int) {
		recs := make([]*record.Record, 0, n+1)
		for k := range n {
			recs = append(recs, &record.Record{Topic: "events", Key: []byte(fmt.Sprint(k)), Value: val()})
		}
		recs = append(recs, &record.Record{Topic: "zstd", Value: val()})
		require.NoError(t, p.ProduceSync(ctx, recs...))
		for got := 0; got < n; {
			f, err := poll.Poll(ctx)
			require.NoError(t, err)
			got += f.NumRecords()
		}
		r, err, ok := next()
		require.True(t, ok)
		require.NoError(t, err)
		require.Equal(t, "zstd", r.Topic)
		require.NoError(t, b.Maintain(ctx))
	}
	for range 20 {
		fill(100)
	}
	leakcheck.Bounded(t, leakcheck.Cycles(t, 400), 64<<10, true, fs.Allocated, func(int) { fill(20) })
}
