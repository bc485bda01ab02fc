package producer_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// hangGuard fails the test if done is not closed within a generous bound:
// what it guards deadlocks rather than slows down.
func hangGuard(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(testkit.HangGuard):
		t.Fatal(what)
	}
}

// TestLoggerMayTryProduce: the Logger's handler runs on the
// goroutine that logs (a Produce's, a partition's), as a promise does,
// and may do what a promise may: TryProduce (a handler that ships the
// producer's own lines to a topic, say) and Close. On the old code the
// line of a changed partition count was logged under the topic's lock,
// which a TryProduce to that topic takes: the Produce that looked the
// count up deadlocked, and every later Produce to the topic with it.
func TestLoggerMayTryProduce(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	ctx := testCtx(t)
	var p *producer.Producer
	var mu sync.Mutex
	var shipped []error
	var wg sync.WaitGroup
	h := testkit.LineFunc(func(r slog.Record) {
		msg := r.Message
		if msg != "topic's partition count changed" {
			return
		}
		wg.Add(1)
		p.TryProduce(context.Background(), &record.Record{Topic: "t", Partition: 0, Value: []byte(msg)}, func(_ *record.Record, err error) {
			mu.Lock()
			shipped = append(shipped, err)
			mu.Unlock()
			wg.Done()
		})
	})
	p = newProducer(t, b, producer.DefaultTopic("t"), producer.RecordPartitioner(producer.ManualPartitioner()), producer.Logger(slog.New(h)))
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Partition: 0, Value: []byte("a")}))
	require.NoError(t, b.CreatePartitions(ctx, "t", 2))
	done := make(chan struct{})
	var err error
	go func() {
		defer close(done)
		// Partition 1 is past the count the producer knows: it looks the
		// count up again, and logs that it changed.
		err = p.ProduceSync(ctx, &record.Record{Partition: 1, Value: []byte("b")})
	}()
	hangGuard(t, done, "a Logger handler's TryProduce deadlocks the Produce that logged")
	require.NoError(t, err)
	wg.Wait()
	require.Equal(t, []error{nil}, shipped)
	require.Equal(t, []string{"a", "topic's partition count changed"}, values(readRecords(t, b, "t", 0)))
}

// TestLoggerMayClose pins what Logger's doc says of a handler on
// a partition's goroutine: it may Close the producer (a handler that
// stops the application on a line it dreads, say), which returns without
// waiting for that goroutine, as from a promise; the record in flight
// fails with ErrClosed and a later Close waits for the goroutines.
func TestLoggerMayClose(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	ctx := testCtx(t)
	var p *producer.Producer
	closed := make(chan error, 1)
	h := testkit.LineFunc(func(r slog.Record) {
		if r.Message == "producer id" {
			closed <- p.Close()
		}
	})
	p = newProducer(t, b, producer.DefaultTopic("t"), producer.Logger(slog.New(h)))
	done := make(chan struct{})
	var err error
	go func() {
		defer close(done)
		err = p.ProduceSync(ctx, value("a"))
	}()
	hangGuard(t, done, "a Close from the Logger's handler deadlocks the producer")
	require.NoError(t, testkit.Await(t, closed, "Close's answer"))
	require.ErrorIs(t, err, producer.ErrClosed)
	require.NoError(t, p.Close())
}

// TestLineKeysHaveNoSpaces: the keys of the producer's lines
// are single words, as the consumer's and the broker's are
// ("log_start_offset", "producer_id"): a key with a space
// ("buffered batches", of "partition's records failed") is quoted by
// slog's TextHandler and split by logfmt parsers that do not expect it.
func TestLineKeysHaveNoSpaces(t *testing.T) {
	c := bubbleBroker(t)
	f := runneltest.NewFaults(t, c.Broker)
	var mu sync.Mutex
	keys := map[string]string{}
	p, err := producer.New(f, producer.Logger(slog.New(testkit.LineFunc(func(r slog.Record) {
		r.Attrs(func(a slog.Attr) bool {
			mu.Lock()
			keys[a.Key] = r.Message
			mu.Unlock()
			return true
		})
	}))))
	require.NoError(t, err)
	defer p.Close()
	f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: api.ErrProducerFenced, Count: 1})
	err = p.ProduceSync(t.Context(), &record.Record{Topic: "t", Value: []byte("x")})
	require.ErrorIs(t, err, producer.ErrProducerFenced)
	mu.Lock()
	defer mu.Unlock()
	require.Contains(t, keys, "records")
	for k, msg := range keys {
		require.False(t, strings.ContainsAny(k, " \t="), "key %q of line %q", k, msg)
	}
}

// TestProducerIDLineKeys: the lines about the producer id
// name it producer_id, as "sequence numbers refused" does, and give the
// error that dropped it as err, as every other line does (they said id=
// and reason=).
func TestProducerIDLineKeys(t *testing.T) {
	c := bubbleBroker(t)
	f := runneltest.NewFaults(t, c.Broker)
	var mu sync.Mutex
	lines := map[string]map[string]bool{}
	p, err := producer.New(f, producer.Logger(slog.New(testkit.LineFunc(func(r slog.Record) {
		mu.Lock()
		defer mu.Unlock()
		if lines[r.Message] == nil {
			lines[r.Message] = map[string]bool{}
		}
		r.Attrs(func(a slog.Attr) bool { lines[r.Message][a.Key] = true; return true })
	}))))
	require.NoError(t, err)
	defer p.Close()
	require.NoError(t, p.ProduceSync(t.Context(), &record.Record{Topic: "t", Value: []byte("x")}))
	f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: api.ErrOutOfOrderSequence, Count: 1})
	require.NoError(t, p.ProduceSync(t.Context(), &record.Record{Topic: "t", Value: []byte("y")}))
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, map[string]bool{"producer_id": true, "producer_epoch": true}, lines["producer id"])
	require.Equal(t, map[string]bool{"producer_id": true, "err": true}, lines["dropping producer id"])
}
