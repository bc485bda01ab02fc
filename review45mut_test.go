package runnel

// Review45mut: a mutation pass over the library code changed by the
// review rounds of 2026-12-04 (review44*, review45*): Broker.Fetch's wait
// (readable, fetchProbe, firstMoved, waitAny), Open's checks, CreateTopic's
// undo. Each test names the mutant it kills.

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// TestReview45MutFetchCtxEndDuringAWakesLookAnswersRecords: a fetch that
// answered with records, fewer than MinBytes, and waits, whose ctx ends
// while a wake's look at its partitions waits for a partition held
// exclusively (a reopen's lock, Partition.Lock), answers the records it
// holds, as Fetch's doc says (it fails with ctx's error when "ctx ends
// before anything was found"), and as it does when ctx ends during the
// wait itself. Kills: the error of the wake's look returned in place of
// the answer held (c10: it was ctx's error, the records dropped).
func TestReview45MutFetchCtxEndDuringAWakesLookAnswersRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := open(t, Config{MaintenanceInterval: 10000 * time.Hour})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 2}))
		produce(t, b, "t", 0, "a")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan fetchAnswer, 1)
		go func() {
			resp, err := b.Fetch(ctx, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1 << 20,
				Partitions: []api.FetchPartition{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1}}})
			done <- fetchAnswer{resp, err, time.Now()}
		}()
		synctest.Wait() // it read "a" and waits
		_, p, err := b.topicPartition(t.Context(), "t", 0, false)
		require.NoError(t, err)
		k, err := p.Lock(t.Context()) // as a reopen holds it
		require.NoError(t, err)
		produce(t, b, "t", 1, "b") // a wake: its look waits for partition 0
		synctest.Wait()
		cancel()
		synctest.Wait()
		k.Unlock()
		a := <-done
		require.NoError(t, a.err, "the fetch found records")
		require.NoError(t, a.resp.Partitions[0].Err)
		require.Equal(t, []string{"a"}, values(t, a.resp.Partitions[0].Records))
	})
}
