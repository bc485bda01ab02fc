package runneltest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
	"weak"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestParallelSubtestsShareOneBroker: parallel subtests (t.Parallel)
// share one broker of the parent test, each with its own topic, producer
// and consumer made by the helpers on its own *testing.T, all writing to
// one shared topic too. Each reads exactly its own topic; the records a
// subtest produced without waiting are delivered by its producer's
// cleanup (the flush) before the group of subtests ends, so the parent
// then finds every one in the shared topic; a subtest that closes its
// producer and consumer itself fails nothing at cleanup; and the broker
// closes last, after every subtest's cleanup.
func TestParallelSubtestsShareOneBroker(t *testing.T) {
	const subtests, per = 6, 25
	b := runneltest.NewBroker(t, runneltest.Topic("shared", 4))
	var promised atomic.Int64
	t.Run("group", func(t *testing.T) {
		for i := range subtests {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				own := fmt.Sprintf("own%d", i)
				runneltest.CreateTopic(t, b, own, log.TopicConfig{Partitions: 2})
				p := runneltest.NewProducer(t, b)
				c := runneltest.NewConsumer(t, b)
				require.NoError(t, c.Assign(own, 0, consumer.Start()))
				var want []string
				for j := range per {
					v := fmt.Sprintf("%d-%d", i, j)
					want = append(want, v)
					// To the shared topic without waiting: the cleanup's
					// flush delivers them.
					p.Produce(context.Background(), &record.Record{Topic: "shared", Key: []byte(v), Value: []byte(v)},
						func(_ *record.Record, err error) {
							if err == nil {
								promised.Add(1)
							}
						})
					runneltest.Produce(t, b, own, &record.Record{Key: []byte(v), Value: []byte(v)})
				}
				require.ElementsMatch(t, want, values(runneltest.ConsumeAll(t, b, own)))
				require.ElementsMatch(t, want, values(runneltest.Consume(t, b, own, per)))
				if i%2 == 0 {
					// Closed by the test itself: the cleanups find them
					// closed, and report nothing.
					require.NoError(t, p.Flush(t.Context()))
					require.NoError(t, p.Close())
					require.NoError(t, c.Close())
				}
			})
		}
	})
	require.EqualValues(t, subtests*per, promised.Load(), "promises run by the subtests' cleanups")
	got := values(runneltest.ConsumeAll(t, b, "shared"))
	require.Len(t, got, subtests*per)
	var want []string
	for i := range subtests {
		for j := range per {
			want = append(want, fmt.Sprintf("%d-%d", i, j))
		}
	}
	require.ElementsMatch(t, want, got)
}

// TestHelperFailsOnAnotherGoroutine runs, in a subprocess, a test
// whose helper fails on a goroutine the test started: as the package doc
// says (and as t.Fatalf does), the helper ends only that goroutine — the
// code after it there does not run, its defers do — the test is marked
// failed with the helper's message, and goes on; nothing panics, and the
// producer that test made is still flushed and closed by its cleanup.
func TestHelperFailsOnAnotherGoroutine(t *testing.T) {
	if os.Getenv("RUNNEL_HELPER_GOROUTINE_CHILD") == "1" {
		t.Skip("run by TestHelperFailsOnAnotherGoroutine")
	}
	s := failingChild(t, "RUNNEL_HELPER_GOROUTINE_CHILD", "TestHelperFailsOnAnotherGoroutineChild")
	require.Contains(t, s, "--- FAIL: TestHelperFailsOnAnotherGoroutineChild", s)
	require.Contains(t, s, `runneltest: produce to "missing"`, s)
	require.Contains(t, s, "goroutine ended by the helper", s)
	require.Contains(t, s, "the test went on", s)
	require.Contains(t, s, "promise after cleanup: <nil>", s)
	require.NotContains(t, s, "after the helper", s)
	require.NotContains(t, s, "panic:", s)
}

func TestHelperFailsOnAnotherGoroutineChild(t *testing.T) {
	if os.Getenv("RUNNEL_HELPER_GOROUTINE_CHILD") != "1" {
		t.Skip("run by TestHelperFailsOnAnotherGoroutine")
	}
	// Registered first, so run last: after NewProducer's cleanup has
	// flushed and closed the producer (Close waits for the promises).
	perr := errors.New("promise not run")
	t.Cleanup(func() { t.Logf("promise after cleanup: %v", perr) })
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	p := runneltest.NewProducer(t, b)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer t.Log("goroutine ended by the helper")
		runneltest.Produce(t, b, "missing", &record.Record{Value: []byte("x")})
		t.Log("after the helper")
	}()
	testkit.Await(t, done, "the goroutine's end")
	t.Log("the test went on")
	p.Produce(context.Background(), &record.Record{Topic: "t", Value: []byte("v")}, func(_ *record.Record, err error) { perr = err })
}

// TestBrokerClosedFirstByTheTest: a test that closes the broker
// itself, before the clients the helpers made (the wrong order, which the
// package doc says is no disaster), with records still on their way:
// the clients' cleanups report nothing (the producer's records fail with
// the broker's ErrClosed, their promises run, and its flush returns), and
// NewBroker's second Close returns nil.
func TestBrokerClosedFirstByTheTest(t *testing.T) {
	var failed atomic.Int32
	t.Cleanup(func() {
		// Registered first, so run last: after the producer's cleanup.
		if n := failed.Load(); n != 10 {
			t.Errorf("%d of 10 promises got the closed broker's error after the cleanups", n)
		}
	})
	b := runneltest.NewBroker(t, runneltest.Topic("t", 2))
	p := runneltest.NewProducer(t, b, producer.Linger(time.Minute)) // buffered until the cleanup's flush
	c := runneltest.NewConsumer(t, b)
	require.NoError(t, c.AssignTopic(t.Context(), "t", consumer.Start()))
	require.NoError(t, p.ProduceSync(t.Context(), &record.Record{Topic: "t", Value: []byte("a")}))
	fs, err := c.Poll(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, fs.NumRecords())
	for i := range 10 {
		p.Produce(context.Background(), &record.Record{Topic: "t", Value: fmt.Appendf(nil, "%d", i)}, func(_ *record.Record, err error) {
			if errors.Is(err, runnel.ErrClosed) {
				failed.Add(1)
			}
		})
	}
	require.NoError(t, b.Close())
}

// TestLeakCheckRegisteredBeforeNewBroker pins the package doc's word on
// goroutine leak checks: one registered with t.Cleanup before NewBroker
// runs after every helper's cleanup and finds nothing, where one run by
// defer (goleak.VerifyNone's usual place) runs while the broker is open
// and finds its maintenance goroutine.
func TestLeakCheckRegisteredBeforeNewBroker(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	var deferred error
	t.Run("test", func(t *testing.T) {
		t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // the doc's recipe
		defer func() { deferred = goleak.Find(ignore) }()  // the usual defer
		b := runneltest.NewBroker(t, runneltest.Topic("t", 2))
		p := runneltest.NewProducer(t, b)
		c := runneltest.NewConsumer(t, b)
		require.NoError(t, c.AssignTopic(t.Context(), "t", consumer.Start()))
		require.NoError(t, p.ProduceSync(t.Context(), &record.Record{Topic: "t", Value: []byte("v")}))
		require.Len(t, runneltest.ConsumeAll(t, b, "t"), 1)
	})
	require.ErrorContains(t, deferred, "(*Broker).maintain")
}

// TestCleanupFlushDropsRecordsOfTheTestsContext pins NewProducer's word on
// t.Context(): testing cancels it before the cleanups run, so a record
// produced with it and still lingering when the test function returns
// fails with context.Canceled at the cleanup's flush, unwritten, while
// one produced with context.Background() is delivered.
func TestCleanupFlushDropsRecordsOfTheTestsContext(t *testing.T) {
	var withT, withBackground error
	var b *runnel.Broker
	t.Run("test", func(t *testing.T) {
		b = runneltest.NewBroker(t, runneltest.Topic("t", 1))
		t.Cleanup(func() { // registered before NewProducer: runs after its flush
			require.Len(t, runneltest.ConsumeAll(t, b, "t"), 1)
		})
		p := runneltest.NewProducer(t, b, producer.Linger(time.Minute))
		p.Produce(t.Context(), &record.Record{Topic: "t", Value: []byte("t")}, func(_ *record.Record, err error) { withT = err })
		p.Produce(context.Background(), &record.Record{Topic: "t", Value: []byte("b")}, func(_ *record.Record, err error) { withBackground = err })
	})
	require.ErrorIs(t, withT, context.Canceled)
	require.NoError(t, withBackground)
}

// TestCleanupKeepsNoRecords: package testing keeps a test's cleanup
// functions as long as the test's *testing.T, which a parallel test's
// parent holds until it ends (every top-level parallel test, until the
// package's last test has run); NewBroker's, NewProducer's and
// NewConsumer's reference the broker and the clients. So the broker that
// their cleanups closed must hold none of its records: each parallel test
// of a package kept its broker's until the package's tests ended (40
// parallel tests of 2 MB each: 89 MB live as the last began; 0.4 MB since
// runnel.Broker.Close lets go of its topics and memory FS). The test
// keeps the subtest's *testing.T, and the clients, as its parent would;
// the record's bytes ConsumeAll returned are the log's own memory, and a
// weak pointer to them is cleared once nothing reaches it.
func TestCleanupKeepsNoRecords(t *testing.T) {
	var (
		kept *testing.T
		p    *producer.Producer
		c    *consumer.Consumer
		w    weak.Pointer[byte]
	)
	t.Run("test", func(t *testing.T) {
		kept = t
		b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
		p = runneltest.NewProducer(t, b)
		c = runneltest.NewConsumer(t, b)
		require.NoError(t, p.ProduceSync(t.Context(), &record.Record{Topic: "t", Value: make([]byte, 1000)}))
		recs := runneltest.ConsumeAll(t, b, "t")
		require.Len(t, recs, 1)
		w = weak.Make(&recs[0].Value[0])
		runtime.GC()
		require.NotNil(t, w.Value(), "the record's bytes are no view of the open broker's log")
	})
	runtime.GC()
	require.Nil(t, w.Value(), "the closed broker, reachable from the test's cleanups and its closed clients, holds its records")
	runtime.KeepAlive(kept)
	runtime.KeepAlive(p)
	runtime.KeepAlive(c)
}

// TestCleanupKeepsNoClosedClients: the cleanups of NewBroker,
// NewProducer and NewConsumer, which package testing keeps as long as
// the test (a parallel test's until its parent ends), do not keep the
// clients they closed: a consumer closed holds its assignments' state
// (tens of KB for 64 partitions: Position and Lag still answer from
// it), a producer and a broker a little, which a test that no longer
// references them must not keep (mutant: a cleanup that still
// references its client).
func TestCleanupKeepsNoClosedClients(t *testing.T) {
	var (
		kept *testing.T
		wb   weak.Pointer[runnel.Broker]
		wp   weak.Pointer[producer.Producer]
		wc   weak.Pointer[consumer.Consumer]
	)
	t.Run("test", func(t *testing.T) {
		kept = t
		b := runneltest.NewBroker(t, runneltest.Topic("t", 4))
		p := runneltest.NewProducer(t, b)
		c := runneltest.NewConsumer(t, b)
		require.NoError(t, p.ProduceSync(t.Context(), &record.Record{Topic: "t", Value: []byte("v")}))
		require.NoError(t, c.Assign("t", 0, consumer.Start()))
		wb, wp, wc = weak.Make(b), weak.Make(p), weak.Make(c)
	})
	// Two collections: the producer's sync.Pools, fields of it, are on
	// the runtime's list of pools until the second after their last use.
	runtime.GC()
	runtime.GC()
	require.Nil(t, wp.Value(), "the producer's cleanup keeps it")
	require.Nil(t, wc.Value(), "the consumer's cleanup keeps it")
	require.Nil(t, wb.Value(), "the broker's cleanup keeps it")
	runtime.KeepAlive(kept)
}
