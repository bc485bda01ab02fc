package runneltest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// The helpers work inside a testing/synctest bubble, where t.Deadline
// panics: they wait on the bubble's fake clock, without the real
// clock's test deadline. A record produced in the background after a
// minute of fake time comes to Consume, which waits for it as it would
// outside, and nothing is left running when the bubble ends (the
// cleanups of NewBroker and NewProducer run inside it).
func TestHelpersInsideSynctestBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("t", 2))
		p := runneltest.NewProducer(t, b, producer.Linger(time.Second))
		runneltest.ProduceValues(t, b, "t", "a", "b")
		t0 := time.Now()
		go func() {
			time.Sleep(time.Minute)
			p.Produce(t.Context(), &record.Record{Topic: "t", Partition: 1, Value: []byte("c")}, nil)
		}()
		recs := runneltest.Consume(t, b, "t", 3, runneltest.Timeout(2*time.Minute))
		require.Len(t, recs, 3)
		// Linger counts on the fake clock too.
		require.Equal(t, t0.Add(time.Minute+time.Second), time.Now())
		require.Len(t, runneltest.ConsumeAll(t, b, "t"), 3)
		runneltest.Produce(t, b, "t", &record.Record{Value: []byte("d")})
		// Flushed by the cleanup: its ctx is not t.Context(), which ends
		// before the cleanups run (TestCleanupFlushDropsRecordsOfTheTestsContext).
		p.Produce(context.Background(), &record.Record{Topic: "t", Value: []byte("e")}, nil)
	})
}

// TestProduceHeldFailsAfterDefaultWait pins DefaultWait's and Produce's
// word: a request a Faults holds fails Produce's test once DefaultWait
// has passed (here on the bubble's fake clock), and nothing is written.
func TestProduceHeldFailsAfterDefaultWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
		f := runneltest.NewFaults(t, b)
		r := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.HoldRequest, Count: runneltest.Unlimited})
		t0 := time.Now()
		ft := fails(t, func(ft *fakeT) { runneltest.ProduceValues(ft, f, "t", "held") })
		require.True(t, ft.failed, "the test did not fail")
		require.Equal(t, t0.Add(runneltest.DefaultWait), time.Now(), "after DefaultWait")
		require.Equal(t, 1, r.Hits())
		r.Remove()
		require.Empty(t, runneltest.ConsumeAll(t, b, "t"))
	})
}

// cleanupT is a fakeT that keeps the cleanups registered on it, for the
// test to run when it likes.
type cleanupT struct {
	*fakeT
	cleanups []func()
}

func (c *cleanupT) Cleanup(f func()) { c.cleanups = append(c.cleanups, f) }

// TestNewProducerCleanupFlushBounded pins NewProducer's word on its
// cleanup: the flush waits DefaultWait at most, one that does not finish
// by then is reported with Errorf, and the producer is closed all the
// same (the held record's promise then fails with producer.ErrClosed).
func TestNewProducerCleanupFlushBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
		f := runneltest.NewFaults(t, b)
		r := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.HoldRequest, Count: runneltest.Unlimited})
		ct := &cleanupT{fakeT: &fakeT{TB: t}}
		p := runneltest.NewProducer(ct, f)
		promised := make(chan error, 1)
		p.Produce(t.Context(), &record.Record{Topic: "t", Value: []byte("held")}, func(_ *record.Record, err error) { promised <- err })
		require.NoError(t, r.Wait(t.Context(), 1))

		t0 := time.Now()
		require.Len(t, ct.cleanups, 1)
		ct.cleanups[0]()
		require.Equal(t, t0.Add(runneltest.DefaultWait), time.Now(), "the flush waited DefaultWait")
		require.True(t, ct.failed, "the unfinished flush was reported")
		require.Contains(t, ct.msg, "flush")
		require.ErrorIs(t, <-promised, producer.ErrClosed, "closed all the same")
		require.ErrorIs(t, p.Flush(t.Context()), producer.ErrClosed)
		r.Remove()
		require.Empty(t, runneltest.ConsumeAll(t, b, "t"))
	})
}

// A promise that never returns (it sends on a channel that nobody reads
// any more, as a test that failed early leaves it) holds producer.Close,
// which waits for every promise. NewProducer's cleanup bounds that wait
// as it does its flush, and says why, rather than hold the test binary
// until go test's -timeout. Before the fix the cleanup waited for ever
// (here: synctest's deadlock panic, every goroutine of the bubble
// blocked).
func TestNewProducerCleanupCloseBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
		ct := &cleanupT{fakeT: &fakeT{TB: t}}
		p := runneltest.NewProducer(ct, b)
		results := make(chan error) // unbuffered, and never read by the "test"
		p.Produce(t.Context(), &record.Record{Topic: "t", Value: []byte("v")}, func(_ *record.Record, err error) { results <- err })
		synctest.Wait() // the promise blocks in its send

		t0 := time.Now()
		require.Len(t, ct.cleanups, 1)
		cleaned := make(chan struct{})
		go func() {
			ct.cleanups[0]()
			close(cleaned)
		}()
		select {
		case <-cleaned:
		case <-time.After(3 * runneltest.DefaultWait):
			<-results // the promise returns, and with it Close
			<-cleaned
			t.Fatal("NewProducer's cleanup waits for ever for a promise that does not return")
		}
		require.Equal(t, t0.Add(2*runneltest.DefaultWait), time.Now(), "the flush and the close each waited DefaultWait")
		require.True(t, ct.failed)
		require.Contains(t, ct.msg, "close producer")
		require.Contains(t, ct.msg, "promise")
		require.NoError(t, <-results, "the promise ends once its send is taken")
		require.ErrorIs(t, p.Flush(t.Context()), producer.ErrClosed)
		require.NoError(t, p.Close(), "the producer's goroutines end")
	})
}

// runCleanups runs c's cleanups (see cleanupT in synctest_test.go) as
// testing does: last registered first.
func (c *cleanupT) runCleanups() {
	for i := len(c.cleanups) - 1; i >= 0; i-- {
		c.cleanups[i]()
	}
	c.cleanups = nil
}

// TestEventSourcingProjectionInSynctestBubble: an event-sourcing test in a
// testing/synctest bubble, in memory and on disk: a projection reads the
// events in a goroutine of its own, and after each command's ProduceSync,
// synctest.Wait is enough for the test to see the projection hold the
// event (read-your-writes: a record acknowledged is below the high
// watermark, and a consumer waiting in a fetch is woken). The broker is
// made in the bubble: the package doc now says that one made outside a
// bubble cannot be used inside it (the runtime stops the binary, or the
// bubble's clock stops: which one, the scheduling decides), which it did
// not say; a parent test that shares one broker with synctest subtests
// is a pattern that meets it.
func TestEventSourcingProjectionInSynctestBubble(t *testing.T) {
	for _, disk := range []bool{false, true} {
		t.Run(fmt.Sprintf("disk=%v", disk), func(t *testing.T) {
			dir := t.TempDir() // t.TempDir's cleanup is not the bubble's
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				cfg := runnel.Config{}
				if disk {
					cfg.Dir = dir
				}
				b := runneltest.NewBroker(t, runneltest.Config(cfg), runneltest.Topic("orders", 3))
				p := runneltest.NewProducer(t, b)
				c := runneltest.NewConsumer(t, b)
				require.NoError(t, c.AssignTopic(ctx, "orders", consumer.Start()))
				events := map[string]int{} // the projection: events per order
				var positions int64
				ctx, cancel := context.WithCancel(ctx)
				done := make(chan error, 1)
				go func() {
					for r, err := range c.Records(ctx) {
						if err != nil {
							if ctx.Err() != nil {
								err = nil
							}
							done <- err
							return
						}
						events[string(r.Key)]++
						positions++
					}
					done <- nil
				}()
				for i := range 20 {
					require.NoError(t, p.ProduceSync(ctx, &record.Record{Topic: "orders", Key: fmt.Appendf(nil, "order-%d", i%4), Value: []byte("e")}))
					synctest.Wait() // the projection has taken the event, and waits for the next
					require.EqualValues(t, i+1, positions)
				}
				cancel()
				require.NoError(t, <-done)
				require.Equal(t, map[string]int{"order-0": 5, "order-1": 5, "order-2": 5, "order-3": 5}, events)
			})
		})
	}
	src, err := os.ReadFile("runneltest.go")
	require.NoError(t, err)
	_, doc, ok := strings.Cut(string(src), "// # Fake time")
	require.True(t, ok)
	doc, _, _ = strings.Cut(doc, "// # Coming from kfake")
	doc = strings.Join(strings.Fields(strings.ReplaceAll(doc, "//", "")), " ")
	require.Contains(t, doc, "made outside a bubble", "the package doc's Fake time")
	require.Contains(t, doc, "fatal error: select on synctest channel from outside bubble", "the package doc's Fake time")
}

// TestBrokersInBubblesAndOut pins the package doc's Fake time on what
// brokers of several bubbles, and of none, share: the state runnel keeps
// for the whole process (the codecs' coders, package vfs's table of the
// directories locked, package log's memory of the logs whose fsync and
// sync-failed checkpoint failed) and what a test hands each of them (a
// vfs.MemFS made outside any bubble, one made in a bubble, a vfs.WithFaults
// over it, a directory, one Logger). Brokers made in a bubble, then outside,
// then in another bubble, then outside again, open those file systems
// again, produce and fetch with every codec, compact, wait in a fetch,
// leave an fsync to the broker and fail another with its checkpoint: none
// meets a channel, timer or WaitGroup of another bubble, which would stop
// the binary. Run in a child process, so that its first bubble's calls
// are the binary's first.
func TestBrokersInBubblesAndOut(t *testing.T) {
	testkit.InChild(t, "RUNNEL_BROKER_BUBBLES_CHILD", brokersInBubblesAndOut)
}

// brokersInBubblesAndOut runs bubbleWorkload on each shared file system,
// in a bubble, outside, in another bubble and outside again.
func brokersInBubblesAndOut(t *testing.T) {
	memOut := vfs.NewMem()
	var memIn *vfs.MemFS // made in the first bubble
	dir := t.TempDir()   // t.TempDir's cleanup is not the bubble's
	logger := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var failing atomic.Bool
	inject := vfs.InjectorFunc(func(op vfs.Op, name string) error {
		// Every fsync: the log's, then its sync-failed checkpoint's.
		if failing.Load() && op == vfs.OpSync {
			return errors.New("injected")
		}
		return nil
	})
	round := 0
	phase := func(t *testing.T) {
		round++
		if memIn == nil {
			memIn = vfs.NewMem()
		}
		for _, cfg := range []runnel.Config{
			{FS: memOut, Dir: "d"},
			{FS: memIn, Dir: "d"},
			{FS: vfs.WithFaults(memIn, inject), Dir: "f"},
			{Dir: dir},
		} {
			cfg.Logger = logger
			bubbleWorkload(t, cfg, round, &failing)
		}
	}
	synctest.Test(t, phase)
	phase(t)
	synctest.Test(t, phase)
	phase(t)
}

// bubbleWorkload opens a broker on cfg, whose file system earlier rounds
// used, and exercises what runnel shares beyond one broker.
func bubbleWorkload(t *testing.T, cfg runnel.Config, round int, failing *atomic.Bool) {
	ctx := context.Background()
	b, err := runnel.Open(cfg)
	require.NoError(t, err)
	defer b.Close() // after a failed fsync, Close reports it
	if !slices.Contains(b.Topics(), "t") {
		// Unlimited retention: a bubble's clock starts in 2000, and
		// outside one its records are older than any retention.ms.
		runneltest.CreateTopic(t, b, "t", log.TopicConfig{Partitions: 2, Config: log.Config{RetentionTime: -1}})
		runneltest.CreateTopic(t, b, "c", log.TopicConfig{Partitions: 1, Config: log.Config{RetentionTime: -1,
			CleanupPolicy: log.Compact, SegmentBytes: 2 << 10, MinCleanableDirtyRatio: 0.01}})
		runneltest.CreateTopic(t, b, "s", log.TopicConfig{Partitions: 1, Config: log.Config{RetentionTime: -1, Sync: log.SyncAlways}})
		runneltest.CreateTopic(t, b, "r", log.TopicConfig{Partitions: 1, Config: log.Config{RetentionTime: 7 * 24 * time.Hour}})
	}
	// Retention goes by the records' timestamps: the one the first
	// bubble stamped (in 2000) is past retention.ms outside it.
	if round == 2 {
		require.NoError(t, b.Maintain(ctx))
		info, err := b.DescribeTopic(ctx, "r")
		require.NoError(t, err)
		require.EqualValues(t, 1, info.Partitions[0].LogStartOffset)
	}
	runneltest.Produce(t, b, "r", &record.Record{Value: []byte("r")})
	codecs := []compression.Codec{compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd}
	for _, c := range codecs {
		p, err := producer.New(b, producer.Compression(c))
		require.NoError(t, err)
		for _, topic := range []string{"t", "c"} {
			recs := make([]*record.Record, 20)
			for i := range recs {
				v := strings.Repeat(fmt.Sprintf("%v record %d of round %d; ", c, i, round), 40)
				recs[i] = &record.Record{Topic: topic, Key: []byte(strconv.Itoa(i % 5)), Value: []byte(v)}
			}
			require.NoError(t, p.ProduceSync(ctx, recs...))
		}
		require.NoError(t, p.Close())
	}
	require.Len(t, runneltest.ConsumeAll(t, b, "t"), round*len(codecs)*20)
	require.NoError(t, b.Maintain(ctx)) // compacts c, whose segments rolled
	require.NotEmpty(t, runneltest.ConsumeAll(t, b, "c"))
	// A fetch that waits its MaxWait for more than there is.
	resp, err := b.Fetch(ctx, &api.FetchRequest{MaxWait: 10 * time.Millisecond, MinBytes: 1 << 30,
		Partitions: []api.FetchPartition{{Topic: "t"}, {Topic: "t", Partition: 1}}})
	require.NoError(t, err)
	require.NotEmpty(t, append(resp.Partitions[0].Records, resp.Partitions[1].Records...))

	// An fsync left to the broker (its waiter gone), then, on the file
	// system that fails them, an fsync that fails with its sync-failed
	// checkpoint: the log's failure is kept for the process (package
	// log's failedLogs) until the next Open writes its tail anew.
	batch := func() []byte {
		var bl record.Builder
		bl.Reset()
		bl.Append(time.Now().UnixMilli(), nil, []byte("s"), nil)
		data, err := bl.AppendTo(nil, compression.LZ4)
		require.NoError(t, err)
		return data
	}
	_, ack, err := b.ProduceAsync(ctx, &api.ProduceRequest{Topic: "s", Acks: api.AcksAll, Batches: batch()})
	require.NoError(t, err)
	gone, cancel := context.WithCancel(ctx)
	cancel()
	_ = ack.Wait(gone) // ctx's error, or nil if the fsync was done already
	if _, faulty := cfg.FS.(vfs.Wrapper); faulty {
		failing.Store(true)
		_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "s", Acks: api.AcksAll, Batches: batch()})
		failing.Store(false)
		require.Error(t, err)
	}
}

// TestOuterContextInBubble pins the package doc's Fake time on contexts:
// a producer in a bubble handed the parent test's t.Context() makes that
// context's Done channel the bubble's, and the parent's end, which
// cancels it outside the bubble, stops the binary. Run in a child
// process, which it stops.
func TestOuterContextInBubble(t *testing.T) {
	if os.Getenv("RUNNEL_OUTER_CTX_CHILD") == "1" {
		ctx := t.Context() // the parent test's
		synctest.Test(t, func(t *testing.T) {
			b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
			p := runneltest.NewProducer(t, b)
			require.NoError(t, p.ProduceSync(ctx, &record.Record{Topic: "t", Value: []byte("v")}))
		})
		return
	}
	out, err := testkit.RunChild(t, "TestOuterContextInBubble", "RUNNEL_OUTER_CTX_CHILD")
	require.Error(t, err, "the child passed:\n%s", out)
	require.Contains(t, out, "fatal error: close of synctest channel from outside bubble", "%s", out)

	src, err := os.ReadFile("runneltest.go")
	require.NoError(t, err)
	doc := strings.Join(strings.Fields(strings.ReplaceAll(string(src), "//", "")), " ")
	require.Contains(t, doc, "fatal error: close of synctest channel from outside bubble", "the package doc's Fake time")
}
