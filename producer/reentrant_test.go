package producer_test

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// A Flush called from a promise waits for that promise's own batch, which
// cannot be done until the promise returns: the Flush must end when Close
// begins (ErrClosed, as Flush documents), not hold the partition's
// goroutine, and with it Close, for ever.
func TestCloseEndsAFlushInAPromise(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	p, err := producer.New(b, producer.DefaultTopic("t"))
	require.NoError(t, err)
	ctx := testCtx(t)
	flushed := make(chan error, 1)
	p.Produce(ctx, value("v"), func(*record.Record, error) {
		flushed <- p.Flush(context.Background())
	})
	waitForGoroutine(t, ctx, "[select]", "producer.(*Producer).Flush")
	closed := make(chan struct{})
	go func() {
		p.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("Close waits for a promise that waits in Flush")
	}
	require.ErrorIs(t, testkit.Await(t, flushed, "the Flush in the promise"), producer.ErrClosed)
}

// A promise that calls Close itself: Close cannot wait for the goroutine
// that runs the promise, its own caller, so it closes the producer and
// returns; the goroutine ends once the promise has returned, and a later
// Close waits for it (TestMain's goleak). Before the fix, Close waited
// for that goroutine, that is for itself, for ever.
func TestCloseInAPromise(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	p, err := producer.New(b, producer.DefaultTopic("t"))
	require.NoError(t, err)
	ctx := testCtx(t)
	closed := make(chan error, 1)
	p.Produce(ctx, value("v"), func(_ *record.Record, err error) {
		if err != nil {
			t.Errorf("v: %v", err)
		}
		closed <- p.Close()
	})
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-ctx.Done():
		t.Fatal("a Close called from a promise does not return")
	}
	require.ErrorIs(t, p.ProduceSync(ctx, value("w")), producer.ErrClosed)
	require.ErrorIs(t, p.Flush(ctx), producer.ErrClosed)
	require.NoError(t, p.Close(), "a second Close waits for the goroutines")
	require.Equal(t, []string{"v"}, values(readRecords(t, b, "t", 0)))
}

// A promise that calls Close while Close runs (the application's
// shutdown, say, and a promise that closes the producer on an error):
// the first Close fails the request in flight, whose promise calls Close
// in turn. Before the fix the second Close waited, inside sync.Once, for
// the first, which waited for the promise's goroutine: both hung.
func TestCloseInAPromiseDuringClose(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c, g := gatedClient(b)
	p, err := producer.New(c, producer.DefaultTopic("t"))
	require.NoError(t, err)
	ctx := testCtx(t)
	inner := make(chan error, 2)
	p.Produce(ctx, value("v"), func(_ *record.Record, err error) {
		inner <- err
		inner <- p.Close()
	})
	select {
	case <-g.entered:
	case <-ctx.Done():
		t.Fatal("the request was not sent")
	}
	outer := make(chan error, 1)
	go func() { outer <- p.Close() }()
	next := func(ch chan error) error {
		t.Helper()
		select {
		case err := <-ch:
			return err
		case <-ctx.Done():
			t.Fatal("Close called from a promise during Close hangs")
			return nil
		}
	}
	require.ErrorIs(t, next(inner), producer.ErrClosed, "the promise of the record Close failed")
	require.NoError(t, next(inner), "the promise's Close")
	require.NoError(t, next(outer), "the first Close")
}

// A Client of the application's whose Produce closes the producer (on
// an error it deems fatal, say): as from a promise, Close cannot wait for
// the goroutine it runs on, so it closes and returns. Before the fix it
// waited for itself for ever.
func TestCloseInAClientMethod(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := &hookClient{b: b}
	p, err := producer.New(c, producer.DefaultTopic("t"))
	require.NoError(t, err)
	ctx := testCtx(t)
	closed := make(chan error, 1)
	c.setHook(func(_ context.Context, _ int, _ *api.ProduceRequest, next func() (api.ProduceResponse, error)) (api.ProduceResponse, error) {
		closed <- p.Close()
		return next()
	})
	promised := make(chan error, 1)
	p.Produce(ctx, value("v"), func(_ *record.Record, err error) { promised <- err })
	testkit.CloseFromCall(t, ctx, closed, promised, producer.ErrClosed, "a Close called from a Client's Produce")
	require.NoError(t, p.Close(), "a second Close waits for the goroutines")
}

// A promise that calls ProduceSync, which Producer forbids: its record
// goes to the partition whose goroutine runs the promise, and nobody
// sends it while ProduceSync waits. Before the fix it waited for ever,
// deaf to its ctx, and Close, which waits for that goroutine, hung too.
// Now the end of the ctx, or Close, ends it with an error that matches
// ErrMaybeWritten (with ErrClosed for Close), never the ctx's error,
// which would say that its records were not written: the stack does not
// tell which producer's promise it is called from, and another's records
// may be in flight.
func TestProduceSyncInAPromise(t *testing.T) {
	for _, byClose := range []bool{false, true} {
		t.Run(map[bool]string{false: "ctx ends", true: "Close"}[byClose], func(t *testing.T) {
			b := newBroker(t, runneltest.Topic("t", 1))
			p, err := producer.New(b, producer.DefaultTopic("t"))
			require.NoError(t, err)
			ctx := testCtx(t)
			sctx, cancel := context.WithCancel(ctx)
			defer cancel()
			synced := make(chan error, 1)
			p.Produce(ctx, value("v"), func(*record.Record, error) {
				synced <- p.ProduceSync(sctx, value("w"))
			})
			// In its wait ([select]), its record buffered: a match earlier,
			// during produce, let the Close or the ctx fail the record before
			// it was buffered, a definite "not sent" (1 run in 90 failed).
			waitForGoroutine(t, ctx, "[select]", "producer.(*Producer).ProduceSync", "producer.(*partition).succeed")
			closed := make(chan struct{})
			if byClose {
				go func() {
					require.NoError(t, p.Close())
					close(closed)
				}()
			} else {
				cancel()
			}
			select {
			case err := <-synced:
				require.ErrorIs(t, err, producer.ErrMaybeWritten)
				require.NotErrorIs(t, err, context.Canceled)
				if byClose {
					require.ErrorIs(t, err, producer.ErrClosed)
				} else {
					require.NotErrorIs(t, err, producer.ErrClosed)
				}
			case <-ctx.Done():
				t.Fatal("a ProduceSync called from a promise hangs")
			}
			if byClose {
				select {
				case <-closed:
				case <-ctx.Done():
					t.Fatal("Close hangs")
				}
			} else {
				require.NoError(t, p.Flush(ctx), "the producer goes on")
				require.NoError(t, p.Close())
				// w's ctx ended before its batch was sent: it was
				// dropped, never written.
				require.Equal(t, []string{"v"}, values(readRecords(t, b, "t", 0)))
			}
		})
	}
}

// waitForGoroutine waits until a goroutine's stack, its header line
// included, holds every one of parts (it waits at that point), failing
// the test if ctx ends first.
func waitForGoroutine(t *testing.T, ctx context.Context, parts ...string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
	next:
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			for _, part := range parts {
				if !strings.Contains(g, part) {
					continue next
				}
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no goroutine waits in %q", parts)
		case <-time.After(time.Millisecond):
		}
	}
}

// A promise's Close, the only one the producer ever gets (a service that
// shuts down on a fatal error, say): it returns without waiting for the
// goroutines, and they end on their own all the same — the one running
// the promise once it returns, the others' requests failed or answered
// — without a later Close to wait for them (goleak waits for them to
// end, and fails if one stays).
func TestCloseOnlyInAPromiseLeavesNoGoroutine(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 4))
	ignore := goleak.IgnoreCurrent()
	p, err := producer.New(b, producer.DefaultTopic("t"), producer.RecordPartitioner(producer.ManualPartitioner()))
	require.NoError(t, err)
	ctx := testCtx(t)
	closed := make(chan error, 1)
	var promised sync.WaitGroup
	for part := range int32(4) {
		for i := range 20 {
			promised.Add(1)
			r := value(fmt.Sprint(part, "-", i))
			r.Partition = part
			p.Produce(ctx, r, func(_ *record.Record, err error) {
				defer promised.Done()
				if part == 1 && i == 0 {
					closed <- p.Close()
				}
			})
		}
	}
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-ctx.Done():
		t.Fatal("a Close called from a promise does not return")
	}
	promised.Wait() // every promise runs, the goroutines then end
	goleak.VerifyNone(t, ignore)
}

// TestConcurrentClosesWaitForARunningPromise: while a promise runs
// (blocked) on a producer's goroutine, Close called from two goroutines at
// once returns in neither before the promise has returned (Close waits for
// the goroutines, and a second Close waits too), both return nil, and a
// Flush waiting meanwhile returns ErrClosed as Close begins.
func TestConcurrentClosesWaitForARunningPromise(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	p, err := producer.New(b, producer.DefaultTopic("t"))
	require.NoError(t, err)
	ctx := testCtx(t)
	inPromise, release := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	p.Produce(ctx, &record.Record{Value: []byte("a")}, func(_ *record.Record, err error) {
		close(inPromise)
		<-release
		finished.Store(true)
	})
	recvWithin(t, inPromise, "the promise")
	flushed := make(chan error, 1)
	go func() { flushed <- p.Flush(ctx) }()
	closed := make(chan bool, 2)
	for range 2 {
		go func() {
			err := p.Close()
			closed <- err == nil && finished.Load()
		}()
	}
	require.ErrorIs(t, recvWithin(t, flushed, "Flush"), producer.ErrClosed)
	select {
	case ok := <-closed:
		t.Fatalf("Close returned while the promise ran (nil error and promise finished: %v)", ok)
	default:
	}
	close(release)
	for range 2 {
		require.True(t, recvWithin(t, closed, "Close"), "a Close returned an error, or before the promise had returned")
	}
}

// The broker's Logger handler runs on the goroutine that logs (see
// runnel.Config.Logger): for a line of a producer's request (the roll its
// append made), that is the producer's partition goroutine, inside its
// Client's Produce, where what Producer says of promises holds. A handler
// that ships the broker's lines to a topic through that producer with
// TryProduce ships them and holds nothing up. One that calls
// ProduceSync, whose record goes to the partition whose goroutine runs
// the handler, waits until its ctx ends, then fails with ErrMaybeWritten
// and not ctx's error, and the producer goes on; the record, its ctx
// ended before its batch was sent, is dropped.
func TestBrokerLoggerShipsThroughTheProducer(t *testing.T) {
	for _, sync := range []bool{false, true} {
		t.Run(map[bool]string{false: "TryProduce", true: "ProduceSync"}[sync], func(t *testing.T) {
			ctx := testCtx(t)
			sctx, cancel := context.WithCancel(ctx)
			defer cancel()
			var p atomic.Pointer[producer.Producer]
			var lines atomic.Int32
			const ship = 3 // lines shipped: each may roll a segment, and log a line, in turn
			shipped := make(chan error, ship)
			handler := testkit.LineFunc(func(r slog.Record) {
				pp := p.Load()
				if pp == nil || r.Message != "rolled segment" || lines.Add(1) > map[bool]int32{false: ship, true: 1}[sync] {
					return
				}
				rec := &record.Record{Value: []byte("line: " + r.Message)}
				if sync {
					shipped <- pp.ProduceSync(sctx, rec)
					return
				}
				pp.TryProduce(ctx, rec, func(_ *record.Record, err error) { shipped <- err })
			})
			b := newBroker(t, runneltest.Config(runnel.Config{Logger: slog.New(handler), TopicDefaults: log.Config{Sync: log.SyncNever}}),
				runneltest.TopicConfig("logs", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 200}}))
			pr := newProducer(t, b, producer.DefaultTopic("logs"))
			p.Store(pr)
			big := func(v string) *record.Record { return &record.Record{Value: []byte(v + strings.Repeat(".", 150))} }
			require.NoError(t, pr.ProduceSync(ctx, big("a")))
			produced := make(chan error, 1)
			go func() { produced <- pr.ProduceSync(ctx, big("b")) }() // rolls
			if sync {
				waitForGoroutine(t, ctx, "[select]", "producer.(*Producer).ProduceSync", "runnel.(*Broker).Produce")
				cancel()
				select {
				case err := <-shipped:
					require.ErrorIs(t, err, producer.ErrMaybeWritten)
					require.NotErrorIs(t, err, context.Canceled)
				case <-ctx.Done():
					t.Fatal("a ProduceSync called from the broker's handler on the producer's goroutine hangs")
				}
			}
			select {
			case err := <-produced:
				require.NoError(t, err)
			case <-ctx.Done():
				t.Fatal("the handler holds the producer up")
			}
			for _, v := range []string{"c", "d"} {
				require.NoError(t, pr.ProduceSync(ctx, big(v)))
			}
			require.NoError(t, pr.Flush(ctx))
			p.Store(nil)
			var got []string
			for _, r := range readRecords(t, b, "logs", 0) {
				got = append(got, strings.TrimRight(string(r.Value), "."))
			}
			if sync {
				require.Equal(t, []string{"a", "b", "c", "d"}, got)
				return
			}
			for range ship {
				require.NoError(t, testkit.Await(t, shipped, "the shipped line's promise"))
			}
			require.Len(t, got, 4+ship)
			require.Equal(t, ship, strings.Count(strings.Join(got, ","), "line: rolled segment"))
		})
	}
}
