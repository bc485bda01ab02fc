package consumer_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/stretchr/testify/require"
)

// While another goroutine pauses, resumes and reads positions, the
// Records loop sees every offset exactly once, in order.
func TestConcurrentPauseResumeNoLossNoDuplicates(t *testing.T) {
	const total = 2000
	b := openBroker(t, map[string]int{"t": 2})
	for i := 0; i < total; i += 10 {
		values(t, b, "t", 0, seq("v", i, 10)...)
		values(t, b, "t", 1, seq("v", i, 10)...)
	}
	c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond), consumer.FetchMaxPartitionBytes(256))
	require.NoError(t, c.AssignTopic(testCtx(t), "t", consumer.Start()))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tp := api.TopicPartition{Topic: "t", Partition: 0}
		for i := 0; ; i++ {
			select {
			case <-stop:
				c.Resume(tp)
				return
			default:
			}
			if i%2 == 0 {
				c.Pause(tp)
			} else {
				c.Resume(tp)
			}
			c.Position("t", 0)
			time.Sleep(50 * time.Microsecond)
		}
	}()

	next := map[int32]int64{}
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	n := 0
	for r, err := range c.Records(ctx) {
		require.NoError(t, err)
		require.Equal(t, next[r.Partition], r.Offset, "partition %d", r.Partition)
		next[r.Partition]++
		if n++; n == 2*total {
			break
		}
		if n == total {
			close(stop)
			wg.Wait()
		}
	}
	require.Equal(t, 2*total, n)
}

// Concurrent Polls never return a record twice.
func TestConcurrentPollsNoDuplicates(t *testing.T) {
	const total = 500
	b := openBroker(t, map[string]int{"t": 1})
	for i := 0; i < total; i += 5 {
		values(t, b, "t", 0, seq("v", i, 5)...)
	}
	c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond), consumer.FetchMaxPartitionBytes(1))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	ctx := testCtx(t)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if pos, _ := c.Position("t", 0); pos >= total || ctx.Err() != nil {
					return
				}
				fs, err := c.Poll(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for r, err := range fs.Records() {
					if err != nil {
						t.Error(err)
						continue
					}
					seen[r.Offset]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Len(t, seen, total)
	for off, k := range seen {
		require.Equal(t, 1, k, "offset %d", off)
	}
}
