package runnel_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
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
	"github.com/runnel/runnel/runneltest"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// More cycles of leak_test.go's kind (leakcheck.Bounded): the ones its
// tests leave out.

// leakAdminCycle is a cycle of admin calls on a broker holding the topic
// "base" (sealed segments: their indexes are mapped on disk): a config
// change, which reopens its logs; a topic created with one partition,
// grown to three (CreatePartitions), written and deleted; and, every
// fifth cycle, a restart (Close, then Open of the same directory). It
// returns the broker, a new one after a restart. With mem, it checks that
// the memory FS holds as much after the topic's deletion as before its
// creation.
func leakAdminCycle(t *testing.T, cfg runnel.Config, mem *vfs.MemFS, b *runnel.Broker, i int) *runnel.Broker {
	t.Helper()
	ctx := context.Background()
	nosync := log.Config{SegmentBytes: 8 << 10, Sync: log.SyncNever}
	require.NoError(t, b.UpdateTopicConfig(ctx, "base", func(c *log.Config) { c.FlushMessages = int64(i%7 + 1) }))
	var before int64
	if mem != nil {
		before = mem.Allocated()
	}
	name := fmt.Sprint("grow", i)
	require.NoError(t, b.CreateTopic(ctx, name, log.TopicConfig{Partitions: 1, Config: nosync}))
	require.NoError(t, b.CreatePartitions(ctx, name, 3))
	val := make([]byte, 1000)
	for k := range 30 {
		leakProduce(t, b, name, int32(k%3), "", val)
	}
	require.NoError(t, b.DeleteTopic(ctx, name))
	if mem != nil {
		require.Equal(t, before, mem.Allocated(), "a deleted topic's files are freed")
	}
	if i%5 == 0 {
		require.NoError(t, b.Close())
		var err error
		b, err = runnel.Open(cfg)
		require.NoError(t, err)
	}
	return b
}

// leakAdminBase opens a broker on cfg with the topic "base", 40 KiB in
// each of its two partitions (segments of 8 KiB).
func leakAdminBase(t *testing.T, cfg runnel.Config) *runnel.Broker {
	t.Helper()
	b, err := runnel.Open(cfg)
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(context.Background(), "base", log.TopicConfig{Partitions: 2, Config: log.Config{SegmentBytes: 8 << 10, Sync: log.SyncNever}}))
	val := make([]byte, 1000)
	for k := range 80 {
		leakProduce(t, b, "base", int32(k%2), "", val)
	}
	return b
}

// Config changes (each reopens a topic's logs), topics grown by
// CreatePartitions then deleted, and restarts leave nothing behind in an
// in-memory broker: its files' memory, the heap and goroutines stay
// bounded, and every deleted topic's memory is freed.
func TestLeakAdminCyclesMem(t *testing.T) {
	fs := vfs.NewMem()
	cfg := runnel.Config{FS: fs}
	b := leakAdminBase(t, cfg)
	defer func() { require.NoError(t, b.Close()) }()
	leakcheck.Bounded(t, leakcheck.Cycles(t, 200), 64<<10, true, fs.Allocated, func(i int) {
		b = leakAdminCycle(t, cfg, fs, b, i)
	})
}

// The same cycles on disk keep open the same descriptors and mappings of
// files under the broker's directory: those of the topic "base" (and of
// the broker's lock and metadata), not one more a cycle.
func TestLeakAdminCyclesDisk(t *testing.T) {
	skipWithoutProcFD(t)
	dir := testkit.FastTempDir(t)
	cfg := runnel.Config{Dir: dir}
	b := leakAdminBase(t, cfg)
	defer func() { require.NoError(t, b.Close()) }()
	handles := func() int64 {
		fds, maps := handlesUnder(t, dir)
		return int64(len(fds) + len(maps))
	}
	require.NotZero(t, handles())
	m0, m1 := leakcheck.Bounded(t, leakcheck.Cycles(t, 100), 0, true, handles, func(i int) {
		b = leakAdminCycle(t, cfg, nil, b, i)
	})
	require.Equal(t, m0, m1, "descriptors or mappings under the directory grew")
}

// A producer and a consumer that outlive the topic they use, deleted and
// created again under its name each cycle (with another partition count
// each time), keep a bounded state: the producer its state of the name's
// partitions (see producer.Producer), the consumer nothing for the
// partitions it unassigned.
func TestLeakRecreatedTopicClients(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewMem()
	b, err := runnel.Open(runnel.Config{FS: fs})
	require.NoError(t, err)
	defer b.Close()
	p, err := producer.New(b, producer.MetadataMaxAge(time.Millisecond))
	require.NoError(t, err)
	defer p.Close()
	c, err := consumer.New(b)
	require.NoError(t, err)
	defer c.Close()
	val := make([]byte, 500)
	// The broker's file of producer ids, written at the first: it stays.
	_, _, err = b.InitProducerID(ctx)
	require.NoError(t, err)
	leakcheck.Bounded(t, leakcheck.Cycles(t, 200), 64<<10, true, fs.Allocated, func(i int) {
		parts := i%4 + 1
		before := fs.Allocated()
		require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: parts}))
		// The producer may still think the topic gone, or its partitions
		// fewer, for a moment after the topic is created again: a refusal
		// is retried.
		for k := range parts {
			r := &record.Record{Topic: "t", Key: fmt.Append(nil, k), Value: val}
			for err := p.ProduceSync(ctx, r); err != nil; err = p.ProduceSync(ctx, r) {
				require.Truef(t, errors.Is(err, api.ErrUnknownTopicOrPartition),
					"cycle %d: %v", i, err)
			}
		}
		require.NoError(t, c.AssignTopic(ctx, "t", consumer.Start()))
		for got := 0; got < parts; {
			fs, err := c.Poll(ctx)
			require.NoError(t, err)
			got += fs.NumRecords()
		}
		for k := range parts {
			c.Unassign("t", int32(k))
		}
		require.Empty(t, c.Assigned())
		require.NoError(t, b.DeleteTopic(ctx, "t"))
		require.Equal(t, before, fs.Allocated(), "a deleted topic's files are freed")
	})
}

// Producers and consumers closed while busy — records buffered behind a
// long linger, whose ctx ends; a Poll waiting on an empty partition —
// leave no goroutine and no memory behind.
func TestLeakClientsClosedBusy(t *testing.T) {
	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{})
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, b.CreateTopic(ctx, "busy", log.TopicConfig{Partitions: 2}))
	val := make([]byte, 500)
	leakcheck.Bounded(t, leakcheck.Cycles(t, 200), 0, true, nil, func(i int) {
		p, err := producer.New(b, producer.Linger(time.Minute))
		require.NoError(t, err)
		rctx, cancel := context.WithCancel(ctx)
		promised := make(chan error, 20)
		for k := range 20 {
			p.Produce(rctx, &record.Record{Topic: "busy", Partition: int32(k % 2), Value: val}, func(_ *record.Record, err error) { promised <- err })
		}
		if i%2 == 0 {
			cancel()
		}
		require.NoError(t, p.Close())
		cancel()
		for range 20 {
			testkit.Await(t, promised, "a record's promise") // each record's promise is called, whatever its fate
		}

		c, err := consumer.New(b, consumer.FetchMaxWait(time.Hour))
		require.NoError(t, err)
		require.NoError(t, c.AssignTopic(ctx, "busy", consumer.End()))
		pctx, pcancel := context.WithCancel(ctx)
		polled := make(chan error)
		go func() {
			_, err := c.Poll(pctx)
			polled <- err
		}()
		if i%2 == 0 {
			pcancel()
		}
		require.NoError(t, c.Close())
		require.Error(t, testkit.Await(t, polled, "Poll's answer"))
		pcancel()
	})
}

// A runneltest.Faults that lives as long as its broker keeps no rule
// that is spent or removed: rules added and used up (or removed) each
// cycle leave the memory where it was.
func TestLeakFaultsRules(t *testing.T) {
	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{})
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, b.CreateTopic(ctx, "f", log.TopicConfig{Partitions: 1}))
	f := runneltest.NewFaults(t, b)
	boom := errors.New("boom")
	leakcheck.Bounded(t, leakcheck.Cycles(t, 2000), 0, true, nil, func(i int) {
		spent := f.Add(runneltest.Fault{Op: runneltest.OpPartitions, Topic: "f", Err: boom, Count: 1})
		removed := f.Add(runneltest.Fault{Op: runneltest.OpListOffset, Topic: "f", Err: boom, Count: runneltest.Unlimited})
		_, err := f.Partitions(ctx, "f")
		require.ErrorIs(t, err, boom)
		_, err = f.ListOffset(ctx, "f", 0, -1)
		require.ErrorIs(t, err, boom)
		removed.Remove()
		require.Equal(t, 1, spent.Hits())
		n, err := f.Partitions(ctx, "f")
		require.NoError(t, err)
		require.Equal(t, 1, n)
	})
}

// A long-lived consumer and producer whose calls are cut short, over and
// over — a Poll waiting on an idle partition whose ctx ends, a Records
// loop left after one record, Pause and Resume, a Flush whose ctx ends
// with records lingering, whose own ctx ends then — keep no goroutine and no memory for the calls
// that ended.
func TestLeakCutShortCalls(t *testing.T) {
	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{})
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, b.CreateTopic(ctx, "idle", log.TopicConfig{Partitions: 2}))
	require.NoError(t, b.CreateTopic(ctx, "busy", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 16 << 10, RetentionBytes: 32 << 10}}))
	c, err := consumer.New(b, consumer.FetchMaxWait(time.Hour))
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.AssignTopic(ctx, "idle", consumer.End()))
	r, err := consumer.New(b, consumer.FetchMaxWait(time.Hour))
	require.NoError(t, err)
	defer r.Close()
	require.NoError(t, r.AssignTopic(ctx, "busy", consumer.Start()))
	p, err := producer.New(b, producer.Linger(time.Minute))
	require.NoError(t, err)
	defer p.Close()
	val := make([]byte, 500)
	leakcheck.Bounded(t, leakcheck.Cycles(t, 400), 0, true, nil, func(i int) {
		// A Poll whose ctx is cancelled at once (it may not have begun),
		// or ends after a millisecond (it most likely waits by then: the
		// broker's long poll, the consumer's wake-up).
		pctx, cancel := context.WithCancel(ctx)
		if i%2 == 1 {
			pctx, cancel = context.WithTimeout(ctx, time.Millisecond)
		}
		polled := make(chan error)
		go func() {
			_, err := c.Poll(pctx)
			polled <- err
		}()
		if i%2 == 0 {
			cancel()
		}
		require.ErrorIs(t, testkit.Await(t, polled, "Poll's answer"), pctx.Err())
		cancel()
		c.Pause(api.TopicPartition{Topic: "idle"})
		c.Resume(api.TopicPartition{Topic: "idle"})

		// Lingering records, a Flush cut short, then the records' own
		// ctx ends: they fail, or are delivered by the Flush that
		// follows.
		rctx, rcancel := context.WithCancel(ctx)
		for range 5 {
			p.Produce(rctx, &record.Record{Topic: "busy", Value: val}, nil)
		}
		fctx, fcancel := context.WithCancel(ctx)
		fcancel()
		if err := p.Flush(fctx); err != nil { // nil if the records went already
			require.ErrorIs(t, err, context.Canceled)
		}
		rcancel()
		// One more record, flushed: ProduceSync would wait out its linger.
		sent := make(chan error, 1)
		p.Produce(ctx, &record.Record{Topic: "busy", Value: val}, func(_ *record.Record, err error) { sent <- err })
		require.NoError(t, p.Flush(ctx))
		require.NoError(t, testkit.Await(t, sent, "the record's promise"))
		for rec, err := range r.Records(ctx) {
			require.NoError(t, err)
			require.Equal(t, "busy", rec.Topic)
			break
		}
		if i%10 == 0 {
			require.NoError(t, b.Maintain(ctx))
		}
	})
}

// countdownCtx is a context that ends (context.Canceled) at its n-th
// look (Err), as a ctx cancelled at some point of a long call would: a
// test reaches each point of the call by its n, without timing.
type countdownCtx struct {
	context.Context
	n    atomic.Int64
	once sync.Once
	done chan struct{}
}

func newCountdownCtx(n int) *countdownCtx {
	c := &countdownCtx{Context: context.Background(), done: make(chan struct{})}
	c.n.Store(int64(n))
	return c
}

func (c *countdownCtx) Err() error {
	if c.n.Add(-1) < 0 {
		c.once.Do(func() { close(c.done) })
		return context.Canceled
	}
	return nil
}

func (c *countdownCtx) Done() <-chan struct{} { return c.done }

// Maintenance cut short by its ctx at every point in turn — in the
// middle of a compaction pass, of retention — and then run in full leaves
// no file behind (a compaction's unfinished copy), and keeps the memory
// bounded. (Cut short every time, a compaction pass would never end: it
// starts over, from the key map, at each call. The broker's own
// maintenance runs under a ctx that only Close ends.)
func TestLeakMaintainCutShort(t *testing.T) {
	for _, where := range []string{"mem", "disk"} {
		t.Run(where, func(t *testing.T) {
			ctx := context.Background()
			var (
				cfg     runnel.Config
				measure func() int64 // open files and mappings on disk, bytes in memory
				list    func(dir string) ([]string, error)
			)
			switch where {
			case "mem":
				fs := vfs.NewMem()
				cfg, measure, list = runnel.Config{FS: fs}, fs.Allocated, fs.List
			default:
				skipWithoutProcFD(t)
				dir := testkit.FastTempDir(t)
				cfg = runnel.Config{Dir: dir}
				measure = func() int64 {
					fds, maps := handlesUnder(t, dir)
					return int64(len(fds)+len(maps)) << 10
				}
				list = func(name string) ([]string, error) { return vfs.OS.List(filepath.Join(dir, name)) }
			}
			b, err := runnel.Open(cfg)
			require.NoError(t, err)
			defer b.Close()
			seg := int64(8 << 10)
			nosync := log.Config{SegmentBytes: seg, Sync: log.SyncNever}
			compacted, retention := nosync, nosync
			compacted.CleanupPolicy, compacted.MinCleanableDirtyRatio = log.Compact, -1
			retention.RetentionBytes = 4 * seg
			require.NoError(t, b.CreateTopic(ctx, "compacted", log.TopicConfig{Partitions: 1, Config: compacted}))
			require.NoError(t, b.CreateTopic(ctx, "retention", log.TopicConfig{Partitions: 1, Config: retention}))
			files := func() int64 {
				var n int64
				for _, dir := range []string{"compacted-0", "retention-0"} {
					if cfg.Dir == "" {
						dir = "/runnel/" + dir
					}
					names, err := list(dir)
					require.NoError(t, err)
					n += int64(len(names))
				}
				return n
			}
			val := make([]byte, 1000)
			cut := 0
			leakcheck.Bounded(t, leakcheck.Cycles(t, 400), 64<<10, true, func() int64 { return measure() + files()<<10 }, func(i int) {
				for k := range 20 {
					leakProduce(t, b, "compacted", 0, fmt.Sprint(k), val)
					leakProduce(t, b, "retention", 0, "", val)
				}
				if err := b.Maintain(newCountdownCtx(i % 60)); err != nil {
					require.ErrorIs(t, err, context.Canceled)
					cut++
				}
				require.NoError(t, b.Maintain(ctx))
			})
			t.Logf("%d of the passes cut short; %d files", cut, files())
			require.NotZero(t, cut)
		})
	}
}
