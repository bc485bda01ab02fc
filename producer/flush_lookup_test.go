package producer_test

import (
	"context"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
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
			require.NoError(t, err)
			delivered.Store(true)
		})
	}()
	<-c.looking // Produce waits for the partition count

	flushed := make(chan bool, 1)
	go func() {
		err := p.Flush(ctx)
		require.NoError(t, err)
		flushed <- delivered.Load()
	}()
	// Flush returns at once (too early) or waits: whichever comes first.
	buf := make([]byte, 1<<20)
	for waiting := false; !waiting; {
		select {
		case ok := <-flushed:
			t.Fatalf("Flush returned while a record's partition count was being looked up (delivered: %v)", ok)
		case <-ctx.Done():
			t.Fatal("Flush neither returns nor waits")
		case <-time.After(time.Millisecond):
		}
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if strings.Contains(g, "[select") && strings.Contains(g, "producer.(*Producer).Flush") {
				waiting = true
			}
		}
	}
	close(c.release)
	require.True(t, <-flushed, "Flush returned once the record was delivered")
	<-produced
	require.Equal(t, []string{"v"}, values(append(readRecords(t, b, "t", 0), readRecords(t, b, "t", 1)...)))
}
