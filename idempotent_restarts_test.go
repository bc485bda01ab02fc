package runnel_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// restarter is a producer.AsyncClient in front of a
// runneltest.Faults over a broker on a directory, which it closes and
// opens again on the same directory (or, with crash, opens again on what
// a power cut left of a memory file system): right after a request whose
// answer a LoseResponse rule lost, when restartAfter says so, as a
// producer sees a broker restart that took the answer with its
// connection. Each broker it opens gets a Faults of its own, with the
// rules that rules adds. No request is inside a broker while it
// restarts (mu).
type restarter struct {
	t     *testing.T
	cfg   runnel.Config
	mem   *vfs.MemFS // with crash: the file system the broker is on
	crash bool
	// crashOpts draws the options of each power cut.
	crashOpts func() vfs.CrashOptions
	rules     func(f *runneltest.Faults)
	// before runs before a restart, on the broker about to go (a
	// DeleteRecords, say).
	before func(b *runnel.Broker)
	// restartAfter reports whether a request whose answer was lost
	// restarts the broker.
	restartAfter func() bool

	mu       sync.RWMutex
	b        *runnel.Broker
	f        *runneltest.Faults
	gen      int // the broker's generation: restarts so far
	lost     int // answers lost
	restarts int
}

func (c *restarter) open() {
	c.t.Helper()
	b, err := runnel.Open(c.cfg)
	require.NoError(c.t, err)
	c.b, c.f = b, runneltest.NewFaults(c.t, b)
	if c.rules != nil {
		c.rules(c.f)
	}
}

func (c *restarter) restart() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.before != nil {
		c.before(c.b)
	}
	if c.crash {
		c.mem = c.mem.CrashClone(c.crashOpts())
		c.cfg.FS = c.mem
		_ = c.b.Close() // its files are not the clone's
	} else if err := c.b.Close(); err != nil {
		return err
	}
	b, err := runnel.Open(c.cfg)
	if err != nil {
		return err
	}
	c.b, c.f = b, runneltest.NewFaults(c.t, b)
	if c.rules != nil {
		c.rules(c.f)
	}
	c.gen++
	c.restarts++
	return nil
}

func (c *restarter) broker() *runnel.Broker {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.b
}

func (c *restarter) Partitions(ctx context.Context, topic string) (int, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.f.Partitions(ctx, topic)
}

func (c *restarter) InitProducerID(ctx context.Context) (int64, int16, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.f.InitProducerID(ctx)
}

func (c *restarter) Produce(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	resp, ack, err := c.ProduceAsync(ctx, req)
	if err == nil && ack != nil {
		err = ack.Wait(ctx)
	}
	return resp, err
}

// crashAck is the acknowledgement of an append to the broker of
// generation gen: after a crash it fails, as a request whose answer the
// crash took.
type crashAck struct {
	c     *restarter
	inner api.Ack
	gen   int
}

func (a crashAck) Wait(ctx context.Context) error {
	a.c.mu.RLock()
	defer a.c.mu.RUnlock()
	if a.c.gen != a.gen {
		return fmt.Errorf("%w: the broker crashed before the acknowledgement", api.ErrRequestTimedOut)
	}
	return a.inner.Wait(ctx)
}

func (c *restarter) ProduceAsync(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, api.Ack, error) {
	c.mu.RLock()
	resp, ack, err := c.f.ProduceAsync(ctx, req)
	if ack != nil && c.crash {
		ack = crashAck{c: c, inner: ack, gen: c.gen}
	}
	c.mu.RUnlock()
	var inj *runneltest.InjectedError
	if errors.As(err, &inj) {
		c.mu.Lock()
		c.lost++
		c.mu.Unlock()
		if c.restartAfter() {
			if rerr := c.restart(); rerr != nil {
				return resp, nil, rerr
			}
		}
	}
	return resp, ack, err
}

// TestIdempotentRetriesAcrossRestarts: an idempotent producer
// (the producer package, up to 5 requests in flight) whose answers a
// runneltest LoseResponse rule loses now and then, some of them with a
// broker restart (Close, then Open of the same Dir; or a power cut
// under SyncAlways) right after the append, and some restarts preceded
// by a DeleteRecords of everything below the high watermark, which
// removes every batch of the producer (its state must outlive them, as
// Kafka's since KIP-360). Every record's promise must succeed, with the
// offset of its place in produce order (one partition, one producing
// goroutine): no record twice (the log end is the number of records),
// none lost, order kept, and the log holds each record not deleted at
// its offset. A power cut may take an acknowledgement still to come:
// that record fails with ErrMaybeWritten (the producer does not retry a
// failed acknowledgement, see its partition.complete), and is in the log
// once or not at all.
//
// Each case runs seeds 1 and 2 (1 in -short mode), two at a time;
// RUNNEL_IDEM_RESTART_SEEDS=N runs N from one picked from the clock
// (RUNNEL_IDEM_RESTART_SEEDS_BASE sets it; a failing seed logs its
// replay), and RUNNEL_IDEM_RESTART_LOG=1 logs the producer's debug log of
// a seed that fails.
func TestIdempotentRetriesAcrossRestarts(t *testing.T) {
	for _, tc := range []struct {
		name          string
		crash         bool
		deleteRecords bool
		policy        log.SyncPolicy
		compact       bool
	}{
		{"close", false, false, log.SyncAlways, false},
		{"close-syncnever", false, false, log.SyncNever, false},
		{"close-syncperiodic", false, false, log.SyncPeriodic, false},
		{"close-deleterecords", false, true, log.SyncAlways, false},
		{"close-deleterecords-syncnever", false, true, log.SyncNever, false},
		{"close-compact", false, true, log.SyncAlways, true},
		{"close-compact-syncnever", false, true, log.SyncNever, true},
		{"crash", true, false, log.SyncAlways, false},
		{"crash-deleterecords", true, true, log.SyncAlways, false},
		{"crash-compact", true, true, log.SyncAlways, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Two seeds at a time: a seed's time is mostly its
			// produces' pauses (to let batches of different sizes form).
			testkit.SeedsSideBySide(t, "RUNNEL_IDEM_RESTART_SEEDS", 2, 1, 2, func(t *testing.T, seed uint64) {
				retriesAcrossRestarts(t, seed, tc.crash, tc.deleteRecords, tc.policy, tc.compact)
			})
		})
	}
}

func retriesAcrossRestarts(t *testing.T, seed uint64, crash, deleteRecords bool, policy log.SyncPolicy, compact bool) {
	rng := rand.New(rand.NewPCG(seed, 33))
	var rngMu sync.Mutex
	roll := func(n int) int {
		rngMu.Lock()
		defer rngMu.Unlock()
		return rng.IntN(n)
	}
	c := &restarter{t: t, crash: crash}
	c.crashOpts = func() vfs.CrashOptions {
		rngMu.Lock()
		defer rngMu.Unlock()
		return vfs.CrashOptions{Tail: vfs.TailMode(rng.IntN(4)), Reorder: rng.IntN(2) == 0,
			Rand: rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))}
	}
	c.cfg = runnel.Config{Dir: testkit.FastTempDir(t), TopicDefaults: log.Config{Sync: policy, SegmentBytes: 4 << 10, FlushMessages: 7}}
	if compact {
		// Maintain compacts whatever is dirty: the producer's earlier
		// batches go, each key's latest record and the producer's last
		// batch stay.
		c.cfg.TopicDefaults.CleanupPolicy = log.Compact | log.Delete
		c.cfg.TopicDefaults.MinCleanableDirtyRatio = -1
	}
	if crash {
		c.mem = vfs.NewMem()
		c.cfg.Dir, c.cfg.FS = "data", c.mem
	}
	c.rules = func(f *runneltest.Faults) {
		f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.LoseResponse, Err: api.ErrRequestTimedOut,
			Count: runneltest.Unlimited, Match: func(runneltest.Request) bool { return roll(4) == 0 }})
	}
	c.restartAfter = func() bool { return roll(2) == 0 }
	deleted := int64(0) // the log start the DeleteRecords calls left
	if deleteRecords {
		c.before = func(b *runnel.Broker) {
			if compact && roll(2) == 0 {
				if err := b.Maintain(context.Background()); err != nil {
					t.Errorf("Maintain: %v", err)
				}
			}
			if roll(2) != 0 {
				return
			}
			lo, err := b.ListOffset(context.Background(), "t", 0, api.Latest)
			if err != nil {
				t.Errorf("ListOffset: %v", err)
				return
			}
			start, err := b.DeleteRecords(context.Background(), "t", 0, lo.Offset)
			if err != nil {
				t.Errorf("DeleteRecords before %d: %v", lo.Offset, err)
				return
			}
			deleted = start
		}
	}
	c.open()
	t.Cleanup(func() { c.broker().Close() })
	require.NoError(t, c.b.CreateTopic(context.Background(), "t", log.TopicConfig{Partitions: 1}))

	var logOpt []producer.Opt
	if os.Getenv("RUNNEL_IDEM_RESTART_LOG") != "" {
		var buf syncBuffer
		logOpt = append(logOpt, producer.Logger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))))
		t.Cleanup(func() {
			if t.Failed() {
				t.Log(buf.String())
			}
		})
	}
	p, err := producer.New(c, append(logOpt, producer.DefaultTopic("t"), producer.MaxInFlight(5), producer.RecordPartitioner(producer.ManualPartitioner()),
		producer.Linger(time.Millisecond), producer.RetryBackoff(time.Millisecond), producer.DeliveryTimeout(time.Minute))...)
	require.NoError(t, err)
	const n = 600
	type result struct {
		off int64
		err error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	ctx := context.Background()
	for i := range n {
		wg.Add(1)
		p.Produce(ctx, &record.Record{Key: fmt.Appendf(nil, "k%d", i%10), Value: fmt.Appendf(nil, "v%04d", i)}, func(r *record.Record, err error) {
			results[i] = result{r.Offset, err}
			wg.Done()
		})
		if i%7 == 0 {
			time.Sleep(time.Duration(roll(3)) * time.Millisecond) // let batches of different sizes form
		}
	}
	require.NoError(t, p.Flush(ctx))
	wg.Wait()
	require.NoError(t, p.Close())
	c.mu.RLock()
	t.Logf("answers lost: %d, restarts: %d, log start: %d", c.lost, c.restarts, deleted)
	c.mu.RUnlock()

	// Each record succeeded, at an offset past the last one's; only a
	// power cut that took an acknowledgement may fail a record, with
	// ErrMaybeWritten (see producer's partition.complete): it is in the
	// log once, or not at all. Between two records that succeeded, the
	// log holds at most the maybe-written records produced between them:
	// a record appended twice would push the next one's offset further.
	next, maybe := int64(0), int64(0) // the next offset; maybe-written since
	failed := map[int]bool{}
	for i, r := range results {
		if r.err != nil {
			require.True(t, crash && producer.MayBeWritten(r.err), "record %d: %v", i, r.err)
			failed[i] = true
			maybe++
			continue
		}
		require.GreaterOrEqual(t, r.off, next, "record %d: offset", i)
		require.LessOrEqual(t, r.off-next, maybe, "record %d: offset %d, %d maybe-written records since offset %d", i, r.off, maybe, next)
		next, maybe = r.off+1, 0
	}
	if !crash {
		require.Empty(t, failed)
		require.EqualValues(t, n, next, "log end: each record once")
	}
	b := c.broker()
	lo, err := b.ListOffset(ctx, "t", 0, api.Latest)
	require.NoError(t, err)
	require.GreaterOrEqual(t, lo.Offset, next, "log end")
	require.LessOrEqual(t, lo.Offset-next, maybe, "log end: past the last record that succeeded, at most those that failed since")
	start, err := b.ListOffset(ctx, "t", 0, api.Earliest)
	require.NoError(t, err)
	got := runneltest.ConsumeAll(t, b, "t")
	if !compact {
		require.Len(t, got, int(lo.Offset-start.Offset))
	}
	// Each record in the log is there once, in produce order, and one that
	// succeeded at the offset its promise was given.
	prev := -1
	for _, r := range got {
		var idx int
		_, err := fmt.Sscanf(string(r.Value), "v%04d", &idx)
		require.NoError(t, err)
		require.Greater(t, idx, prev, "offset %d holds record %d after record %d", r.Offset, idx, prev)
		prev = idx
		if !failed[idx] {
			require.Equal(t, results[idx].off, r.Offset, "record %d", idx)
		}
	}
	if compact {
		// Each key's latest record stays, unless DeleteRecords took it.
		for i := n - 10; i < n; i++ {
			if !failed[i] && results[i].off >= start.Offset {
				require.True(t, slices.ContainsFunc(got, func(r *record.Record) bool { return r.Offset == results[i].off }), "record %d, key k%d's latest", i, i%10)
			}
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
