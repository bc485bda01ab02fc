package runnel

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// TestFetchWokenWhenAQueuedLockGivesUp: a long poll of several
// partitions goes past t-0 while t-0 is Busy only because a
// Partition.Lock waits for it (queued behind a Produce stuck in its
// write, which holds t-0 shared), and waits for a change. The Lock's ctx
// then ends: it gives up, having changed nothing, and t-0 is no longer
// Busy. The long poll must be woken then and answer the record t-0 held
// all along, not at its MaxWait (an hour). Before the fix nothing woke
// it: a lock that gave up called no notify.
func TestFetchWokenWhenAQueuedLockGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, fs, _ := openStuck(t, 1)
		require.NoError(t, b.CreateTopic(t.Context(), "u", log.TopicConfig{Partitions: 1}))
		produce(t, b, "t", 0, "x")
		stuck, release := stickAppend(t, b, fs, 0, "y") // holds t-0 shared
		_, p, err := b.topicPartition(t.Context(), "t", 0, false)
		require.NoError(t, err)
		lockCtx, giveUp := context.WithCancel(t.Context())
		defer giveUp()
		locked := make(chan error, 1)
		go func() {
			k, err := p.Lock(lockCtx) // queued behind the stuck Produce
			if err == nil {
				k.Unlock()
			}
			locked <- err
		}()
		synctest.Wait()
		require.True(t, p.Busy(), "t-0 is not Busy with a Lock queued on it")
		done := goFetch(t.Context(), b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1,
			Partitions: []api.FetchPartition{{Topic: "u", Partition: 0}, {Topic: "t", Partition: 0}}})
		synctest.Wait() // it went past t-0, and waits
		select {
		case a := <-done:
			t.Fatalf("the fetch answered before the Lock gave up (it did not go past t-0): %+v", a)
		default:
		}
		giveUp()
		synctest.Wait()
		require.ErrorIs(t, <-locked, context.Canceled)
		require.False(t, p.Busy())
		a := answeredNow(t, done, "the fetch waits, past t-0, though the Lock that made t-0 Busy gave up")
		release()
		require.NoError(t, <-stuck)
		require.NoError(t, a.err)
		require.Empty(t, a.resp.Partitions[0].Records)
		require.Equal(t, []string{"x"}, values(t, a.resp.Partitions[1].Records))
	})
}
