package consumer_test

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Many consumers long-poll different partitions (and some the same): an
// append to each wakes every consumer waiting on it, at once.
func TestFairWakeManyConsumers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const parts, per = 8, 3
		b, err := runnel.Open(runnel.Config{})
		require.NoError(t, err)
		defer b.Close()
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: parts}))
		var wg sync.WaitGroup
		woke := make([]time.Time, parts*per)
		for i := range parts * per {
			c, err := consumer.New(b, consumer.FetchMaxWait(time.Hour))
			require.NoError(t, err)
			defer c.Close()
			// each consumer has its own partition and an idle one
			require.NoError(t, c.Assign("t", int32(i%parts), consumer.Start()))
			require.NoError(t, c.Assign("t", int32((i+1)%parts), consumer.End()))
			wg.Go(func() {
				for {
					fs, err := c.Poll(t.Context())
					if !assert.NoError(t, err) {
						return
					}
					for _, f := range fs {
						if f.Partition == int32(i%parts) && f.NumRecords() > 0 {
							woke[i] = time.Now()
							return
						}
					}
				}
			})
		}
		synctest.Wait()
		t0 := time.Now()
		for p := range parts {
			_, err := b.Produce(t.Context(), &api.ProduceRequest{Topic: "t", Partition: int32(p), Acks: api.AcksAll, Batches: oneRecord(t, "x")})
			require.NoError(t, err)
		}
		wg.Wait()
		for i, w := range woke {
			require.Equal(t, t0, w, "consumer %d", i)
		}
	})
}

// A consumer whose first partition is idle is woken by an append to its
// last one.
func TestFairWakeOtherPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := runnel.Open(runnel.Config{})
		require.NoError(t, err)
		defer b.Close()
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 3}))
		c, err := consumer.New(b, consumer.FetchMaxWait(time.Hour), consumer.FetchMinBytes(1))
		require.NoError(t, err)
		defer c.Close()
		for p := range int32(3) {
			require.NoError(t, c.Assign("t", p, consumer.Start()))
		}
		for round := range 6 {
			p := int32(round % 3)
			done := make(chan struct{})
			go func() {
				defer close(done)
				fs, err := c.Poll(t.Context())
				assert.NoError(t, err)
				assert.Equal(t, 1, fs.NumRecords(), "round %d", round)
			}()
			synctest.Wait()
			t0 := time.Now()
			_, err := b.Produce(t.Context(), &api.ProduceRequest{Topic: "t", Partition: p, Acks: api.AcksAll, Batches: oneRecord(t, "x")})
			require.NoError(t, err)
			<-done
			require.Equal(t, t0, time.Now())
		}
	})
}

// A fetch waiting for FetchMinBytes counts the bytes of every partition:
// appends to two partitions, neither enough alone, end the wait at the
// second, whichever partition comes first in the request.
func TestFairMinBytesAcrossPartitions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := runnel.Open(runnel.Config{})
		require.NoError(t, err)
		defer b.Close()
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 3}))
		c, err := consumer.New(b, consumer.FetchMaxWait(time.Hour), consumer.FetchMinBytes(1000))
		require.NoError(t, err)
		defer c.Close()
		for p := range int32(3) {
			require.NoError(t, c.Assign("t", p, consumer.Start()))
		}
		v := string(make([]byte, 600))
		for round := range 6 {
			done := make(chan int)
			go func() {
				fs, err := c.Poll(t.Context())
				assert.NoError(t, err)
				done <- fs.NumRecords()
			}()
			synctest.Wait()
			for i, p := range []int32{int32(round % 3), int32((round + 1) % 3)} {
				_, err := b.Produce(t.Context(), &api.ProduceRequest{Topic: "t", Partition: p, Acks: api.AcksAll, Batches: oneRecord(t, v)})
				require.NoError(t, err)
				synctest.Wait()
				if i == 0 {
					select {
					case n := <-done:
						t.Fatalf("round %d: returned %d records before MinBytes", round, n)
					default:
					}
				}
			}
			t0 := time.Now()
			require.Equal(t, 2, <-done, "round %d", round)
			require.Equal(t, t0, time.Now())
		}
	})
}
