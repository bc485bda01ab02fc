package runneltest_test

import (
	"testing"

	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/callstack"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// A Fault's Match runs for the producer's or consumer's request, as the
// Client's method it is part of: a Match that closes the producer (or
// the consumer) that sent the request returns, as a Close from a
// Client's method does (see producer.Producer.Close and
// consumer.Consumer.Close), and the call in flight then ends. Match runs
// on a goroutine of its own, which the Close did not tell from the
// application's: it waited for the request, which waited for Match —
// both hung for ever (the test fails on the old code at its ctx).
func TestFaultsMatchCloses(t *testing.T) {
	t.Run("producer", func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
		f := runneltest.NewFaults(t, b)
		var p *producer.Producer
		closed := make(chan error, 1)
		f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.Observe, Count: 1,
			Match: func(runneltest.Request) bool { closed <- p.Close(); return true }})
		p = runneltest.NewProducer(t, f, producer.DefaultTopic("orders"))
		ctx := waitCtx(t)
		promised := make(chan error, 1)
		p.Produce(ctx, &record.Record{Value: []byte("v")}, func(_ *record.Record, err error) { promised <- err })
		testkit.CloseFromCall(t, ctx, closed, promised, producer.ErrClosed, "a Close called from a Fault's Match of the producer's request")
		require.NoError(t, p.Close(), "a second Close waits for the goroutines")
	})
	t.Run("consumer", func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
		runneltest.ProduceValues(t, b, "orders", "a")
		f := runneltest.NewFaults(t, b)
		var c *consumer.Consumer
		closed := make(chan error, 1)
		f.Add(runneltest.Fault{Op: runneltest.OpFetch, Action: runneltest.Observe, Count: 1,
			Match: func(runneltest.Request) bool { closed <- c.Close(); return true }})
		c = runneltest.NewConsumer(t, f)
		require.NoError(t, c.Assign("orders", 0, consumer.Start()))
		ctx := waitCtx(t)
		polled := make(chan error, 1)
		go func() {
			_, err := c.Poll(ctx)
			polled <- err
		}()
		testkit.CloseFromCall(t, ctx, closed, polled, consumer.ErrClosed, "a Close called from a Fault's Match of the consumer's fetch")
		require.NoError(t, c.Close())
	})
}

// TestFaultsMatchNamedForTheClients: callstack.FaultsMatch, the name by
// which the clients tell a Match's goroutine (a string, since the clients
// sit below runneltest), is the function a Match runs under: renaming
// callMatch's closure fails this test at once, rather than leaving a
// Close from a Match to hang.
func TestFaultsMatchNamedForTheClients(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
	f := runneltest.NewFaults(t, b)
	within := make(chan bool, 1)
	f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.Observe, Count: 1,
		Match: func(runneltest.Request) bool { within <- callstack.Within(callstack.FaultsMatch); return true }})
	runneltest.Produce(t, f, "orders", &record.Record{Value: []byte("v")})
	require.True(t, testkit.Await(t, within, "the Match's call"), "callstack.FaultsMatch does not name the function a Match runs under")
	require.False(t, callstack.Within(callstack.FaultsMatch), "nor the test's own goroutine")
}
