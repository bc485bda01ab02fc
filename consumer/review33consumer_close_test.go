package consumer_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestReview33CloseRacingLoops: a Close at any point of a Poll loop or
// a Records loop leaves Position at the offset after the last record the
// loop got, and the loop got every record before it once, in order.
func TestReview33CloseRacingLoops(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	for i := range 20 {
		values(t, b, "t", 0, seq("v", i*10, 10)...)
	}
	iters := 300
	if testing.Short() {
		iters = 50
	}
	for iter := range iters {
		c, err := consumer.New(b, consumer.FetchMaxPartitionBytes(300), consumer.FetchMaxWait(time.Millisecond))
		require.NoError(t, err)
		require.NoError(t, c.Assign("t", 0, consumer.Start()))
		usePoll := iter%2 == 1
		done := make(chan []*record.Record)
		go func() {
			var out []*record.Record
			if usePoll {
				for {
					fs, err := c.Poll(testCtx(t))
					if err != nil {
						break
					}
					for r := range fs.Records() {
						out = append(out, r)
					}
				}
			} else {
				for r, err := range c.Records(testCtx(t)) {
					if err == nil {
						out = append(out, r)
					}
				}
			}
			done <- out
		}()
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond) // where Close lands; not a sync
		require.NoError(t, c.Close())
		out := <-done
		for i, r := range out {
			require.EqualValues(t, i, r.Offset)
		}
		p, ok := c.Position("t", 0)
		if !ok {
			require.Empty(t, out)
			continue
		}
		require.EqualValues(t, len(out), p, "iter %d poll %v", iter, usePoll)
	}
}
