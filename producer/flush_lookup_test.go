package producer_test

import (
	"context"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lookupClient is a broker whose Partitions reports each call and waits
// until the test releases it.
type lookupClient struct {
	*runnel.Broker
	looking chan struct{}
	release chan struct{}
}

func (c *lookupClient) Partitions(ctx context.Context, topic string) (int, error) {
	c.looking <- struct{}{}
	select {
	case <-c.release:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return c.Broker.Partitions(ctx, topic)
}

// TestFlushWaitsForPartitionCountLookup: a record whose Produce is asking
// the broker for its topic's partition count is not in a batch yet, but
// it was produced: Flush waits for it, as for every record produced before
// it (kgo's Flush counts such a record as buffered).
func TestFlushWaitsForPartitionCountLookup(t *testing.T) {
	ctx := testCtx(t)
	b := newBroker(t, runneltest.Topic("t", 2))
	c := &lookupClient{Broker: b, looking: make(chan struct{}, 10), release: make(chan struct{})}
	p := newProducer(t, c)

	var delivered atomic.Bool
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		p.Produce(ctx, &record.Record{Topic: "t", Value: []byte("v")}, func(_ *record.Record, err error) {
			assert.NoError(t, err) // on the producer's goroutine: no FailNow
			delivered.Store(true)
		})
	}()
	testkit.AwaitHold(t, c.looking, produced, "the Produce") // it waits for the partition count

	flushed := make(chan bool, 1)
	go func() {
		// assert, not require: a FailNow here would end the goroutine
		// before its send, and the test would wait for it for good.
		assert.NoError(t, p.Flush(ctx))
		flushed <- delivered.Load()
	}()
	// Flush returns at once (too early) or waits: whichever comes first.
	waitFlushing(t, ctx, flushed)
	close(c.release)
	require.True(t, testkit.Await(t, flushed, "Flush's answer"), "Flush returned once the record was delivered")
	testkit.Await(t, produced, "Produce's return")
	require.Equal(t, []string{"v"}, values(append(readRecords(t, b, "t", 0), readRecords(t, b, "t", 1)...)))
}

// A record whose partition-count look-up fails is done once its promise
// has run: a Flush waiting for it returns after the promise, not between
// the release of its buffer space and the promise.
func TestFlushWaitsForThePromiseOfAFailedLookup(t *testing.T) {
	ctx := testCtx(t)
	b := newBroker(t)
	c := &lookupClient{Broker: b, looking: make(chan struct{}, 10), release: make(chan struct{})}
	p := newProducer(t, c)

	entered, gate := make(chan struct{}), make(chan struct{})
	var promised atomic.Bool
	var perr error
	go p.Produce(ctx, &record.Record{Topic: "missing", Value: []byte("v")}, func(_ *record.Record, err error) {
		perr = err
		close(entered)
		<-gate
		promised.Store(true)
	})
	testkit.Await(t, c.looking, "the Produce's look-up")
	flushed := make(chan bool, 1)
	go func() {
		assert.NoError(t, p.Flush(ctx)) // not require: see above
		flushed <- promised.Load()
	}()
	waitFlushing(t, ctx, flushed)
	close(c.release) // the look-up fails: unknown topic
	testkit.Await(t, entered, "the failed look-up's promise")
	require.ErrorIs(t, perr, runnel.ErrUnknownTopic)
	// The promise runs: Flush must still be waiting (in its select, not
	// woken), whichever comes first.
	waitFlushing(t, ctx, flushed)
	close(gate)
	require.True(t, testkit.Await(t, flushed, "Flush's answer"), "Flush returned after the promise")
}

// waitFlushing waits until a goroutine waits in Flush's select, failing
// the test if Flush returns first.
func waitFlushing(t *testing.T, ctx context.Context, flushed <-chan bool) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if strings.Contains(g, "[select") && strings.Contains(g, "producer.(*Producer).Flush") {
				return
			}
		}
		select {
		case ok := <-flushed:
			t.Fatalf("Flush returned before the record was done (its promise run: %v)", ok)
		case <-ctx.Done():
			t.Fatal("Flush neither returns nor waits")
		case <-time.After(time.Millisecond):
		}
	}
}
