package producer_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

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
	case <-time.After(20 * time.Second):
		t.Fatal(what)
	}
}

// TestReview33LoggerMayTryProduce: the Logger's handler runs on the
// goroutine that logs (a Produce's, a partition's), as a promise does,
// and may do what a promise may: TryProduce (a handler that ships the
// producer's own lines to a topic, say) and Close. On the old code the
// line of a changed partition count was logged under the topic's lock,
// which a TryProduce to that topic takes: the Produce that looked the
// count up deadlocked, and every later Produce to the topic with it.
func TestReview33LoggerMayTryProduce(t *testing.T) {
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

// TestReview33LoggerMayClose pins what Logger's doc says of a handler on
// a partition's goroutine: it may Close the producer (a handler that
// stops the application on a line it dreads, say), which returns without
// waiting for that goroutine, as from a promise; the record in flight
// fails with ErrClosed and a later Close waits for the goroutines.
func TestReview33LoggerMayClose(t *testing.T) {
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
	require.NoError(t, <-closed)
	require.ErrorIs(t, err, producer.ErrClosed)
	require.NoError(t, p.Close())
}
