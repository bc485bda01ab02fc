package producer_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// TryProduce's doc: a TryProduce that finds the buffer full does not cut
// short the linger of the batches that fill it (a Produce waiting for
// space does): its record fails with ErrMaxBuffered, and the batch still
// leaves at its linger's end, or at once on Flush.
func TestSynctestTryProduceDoesNotCutLinger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := bubbleBroker(t)
		const linger = time.Minute
		p, err := producer.New(c, producer.Linger(linger), producer.MaxBufferedRecords(1))
		require.NoError(t, err)
		defer p.Close()
		t0 := time.Now()
		first := produceAt(t, p, "a")
		tried := make(chan error, 1)
		p.TryProduce(t.Context(), &record.Record{Topic: "t", Value: []byte("b")}, func(_ *record.Record, err error) { tried <- err })
		require.ErrorIs(t, <-tried, producer.ErrMaxBuffered)
		time.Sleep(linger / 2)
		synctest.Wait()
		require.Empty(t, c.sent(), "the full buffer cut the linger short")
		o := <-first
		require.NoError(t, o.err)
		require.Equal(t, t0.Add(linger), o.at)

		// Flush sends a lingering batch at once.
		t1 := time.Now()
		second := produceAt(t, p, "c")
		p.TryProduce(t.Context(), &record.Record{Topic: "t", Value: []byte("d")}, func(_ *record.Record, err error) { tried <- err })
		require.ErrorIs(t, <-tried, producer.ErrMaxBuffered)
		require.NoError(t, p.Flush(t.Context()))
		o = <-second
		require.NoError(t, o.err)
		require.Equal(t, t1, o.at)
	})
}
