package consumer_test

import (
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
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

// Many consumers long-poll the partitions of one broker while producers
// write to them, one record per ProduceSync: every consumer sees every
// record of its partitions exactly once, in offset order, the values
// the producers' acknowledgements put there, and never a high watermark
// lower than one seen before. Half the consumers read partition 0 alone
// (the fetch waits on one partition), half both partitions. In fake time
// a lost wake-up shows: a consumer waiting while an append lands, left
// asleep, answers only at its FetchMaxWait (an hour), once everything
// else is done, where every Poll answers at once, at the fake instant of
// the append it waits for (mutants: no wake-up at an fsync that moves
// the high watermark, or at an append that does). The topic acknowledges
// after an fsync (the fsync wakes the consumers) or without one (the
// append does). Run it with -race; -short runs fewer clients.
func TestManyConsumersManyProducersSeeEveryRecord(t *testing.T) {
	consumers, producers, each := 200, 8, 25
	if testing.Short() {
		consumers, producers, each = 40, 4, 15
	}
	for _, sync := range []log.SyncPolicy{log.SyncAlways, log.SyncNever} {
		t.Run(sync.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				manyClients(t, log.Config{Sync: sync}, consumers, producers, each)
			})
		})
	}
}

// manyClients is TestManyConsumersManyProducersSeeEveryRecord's run on
// a topic of config cfg.
func manyClients(t *testing.T, cfg log.Config, consumers, producers, each int) {
	const parts = 2
	b, err := runnel.Open(runnel.Config{})
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: parts, Config: cfg}))
	var want [parts]int // the records each partition gets
	for i := range producers {
		for seq := range each {
			want[(i+seq)%parts]++
		}
	}

	type seen struct {
		values [parts][]string
	}
	got := make([]seen, consumers)
	var wg sync.WaitGroup
	for i := range consumers {
		c, err := consumer.New(b, consumer.FetchMaxWait(time.Hour))
		require.NoError(t, err)
		defer c.Close()
		mine := []int32{0}
		if i%2 == 1 {
			mine = append(mine, 1)
		}
		for _, p := range mine {
			require.NoError(t, c.Assign("t", p, consumer.Start()))
		}
		wg.Go(func() {
			hw := [parts]int64{}
			left := 0
			for _, p := range mine {
				left += want[p]
			}
			for left > 0 {
				t0 := time.Now()
				fs, err := c.Poll(t.Context())
				if !assert.NoError(t, err, "consumer %d", i) {
					return
				}
				if time.Since(t0) >= time.Hour {
					t.Errorf("consumer %d: a Poll waited out FetchMaxWait, %d records short: an append did not wake it", i, left)
					return
				}
				for _, f := range fs {
					p := f.Partition
					if !assert.NoError(t, f.Err, "consumer %d", i) {
						return
					}
					assert.GreaterOrEqual(t, f.HighWatermark, hw[p], "consumer %d partition %d: the high watermark went back", i, p)
					hw[p] = f.HighWatermark
					for r, err := range f.Records() {
						if !assert.NoError(t, err) {
							return
						}
						vs := &got[i].values[p]
						if !assert.EqualValues(t, len(*vs), r.Offset, "consumer %d partition %d: offsets in order, each once", i, p) {
							return
						}
						assert.Less(t, r.Offset, f.HighWatermark)
						*vs = append(*vs, string(r.Value))
						left--
					}
				}
			}
		})
	}
	synctest.Wait() // every consumer waits

	var mu sync.Mutex
	var acked [parts]map[int64]string // offset -> value, as acknowledged
	for p := range acked {
		acked[p] = map[int64]string{}
	}
	var pwg sync.WaitGroup
	for i := range producers {
		pr, err := producer.New(b, producer.RecordPartitioner(producer.ManualPartitioner()))
		require.NoError(t, err)
		defer pr.Close()
		pwg.Go(func() {
			for seq := range each {
				r := &record.Record{Topic: "t", Partition: int32((i + seq) % parts), Value: fmt.Appendf(nil, "%d-%d", i, seq)}
				if !assert.NoError(t, pr.ProduceSync(t.Context(), r)) {
					return
				}
				mu.Lock()
				acked[r.Partition][r.Offset] = string(r.Value)
				mu.Unlock()
			}
		})
	}
	pwg.Wait()
	wg.Wait()
	for p := range parts {
		require.Len(t, acked[p], want[p])
		order := make([]string, want[p])
		for off, v := range acked[p] {
			require.Less(t, off, int64(want[p]), "partition %d: offsets 0 to %d", p, want[p]-1)
			order[off] = v
		}
		for i := range got {
			if p == 1 && i%2 == 0 {
				require.Empty(t, got[i].values[p])
				continue
			}
			require.Equal(t, order, got[i].values[p], "consumer %d partition %d", i, p)
		}
	}
}
