package runnel

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// TestFairFetchNotHeldByAnotherPartitionsReopen: a fetch of several
// partitions, one of which a config change is reopening (its closing
// fsync slow, here hung), answers the others' records rather than wait
// for that one reopen: Kafka's broker answers each partition of a fetch
// on its own, and a consumer's Poll over many partitions should not stall
// on one of them. The fetch's ctx bounds the wait (a hang guard); the
// assertion is on what it answers.
func TestFairFetchNotHeldByAnotherPartitionsReopen(t *testing.T) {
	for _, order := range [][]api.FetchPartition{
		{{Topic: "u", Partition: 0}, {Topic: "t", Partition: 0}},
		{{Topic: "t", Partition: 0}, {Topic: "u", Partition: 0}},
	} {
		b, fs, _ := openStuck(t, 1)
		require.NoError(t, b.CreateTopic(context.Background(), "u", log.TopicConfig{Partitions: 1}))
		produce(t, b, "u", 0, "x")
		altered, release := stickReopen(t, b, fs, 0)
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: order})
		cancel()
		release()
		require.NoError(t, testkit.Await(t, altered, "the stuck config change's answer"))
		require.NoError(t, err, "the fetch waited for t-0's reopen (order %v)", order)
		for _, p := range resp.Partitions {
			if p.Topic == "u" {
				require.Equal(t, []string{"x"}, values(t, p.Records))
			}
		}
	}
}

// TestFairPollNotHeldByAnotherPartitionsReopen is the same seen from
// a consumer: a Poll over u-0 and t-0, t's config change hung in t-0's
// reopen, returns nothing of u-0 until its ctx ends, and a Records loop
// with a ctx that does not end reads nothing of u-0 until the reopen
// does.
func TestFairPollNotHeldByAnotherPartitionsReopen(t *testing.T) {
	b, fs, _ := openStuck(t, 1)
	require.NoError(t, b.CreateTopic(context.Background(), "u", log.TopicConfig{Partitions: 1}))
	c, err := consumer.New(b)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Assign("u", 0, consumer.Start()))
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	fs0, err := c.Poll(context.Background()) // resolves both positions
	require.NoError(t, err)
	require.Zero(t, fs0.NumRecords())
	produce(t, b, "u", 0, "x")
	got := 0
	altered, release := stickReopen(t, b, fs, 0)
	for range 2 { // whichever partition heads the fetch
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs1, err := c.Poll(ctx)
		cancel()
		if err == nil {
			got += fs1.NumRecords()
		}
	}
	release()
	require.NoError(t, testkit.Await(t, altered, "the stuck config change's answer"))
	require.Equal(t, 1, got, "u-0's record was held back by t-0's reopen")
}

// TestFairFetchWokenWhenAReopenEnds: a long poll that went past a
// partition held exclusively (a reopen's lock, Partition.Lock), with
// nothing to answer, is woken when the lock is released, and answers that
// partition's records at once, not at its MaxWait (an hour). A Reopen
// wakes the long polls as it ends, but under the lock, which a config
// change releases after: a poll woken then finds the partition held
// still, and waits again.
func TestFairFetchWokenWhenAReopenEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := open(t, Config{MaintenanceInterval: 10000 * time.Hour})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1}))
		require.NoError(t, b.CreateTopic(t.Context(), "u", log.TopicConfig{Partitions: 1}))
		produce(t, b, "t", 0, "x")
		_, p, err := b.topicPartition(t.Context(), "t", 0, false)
		require.NoError(t, err)
		k, err := p.Lock(t.Context()) // as a config change holds it
		require.NoError(t, err)
		t0 := time.Now()
		done := goFetch(t.Context(), b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1,
			Partitions: []api.FetchPartition{{Topic: "u", Partition: 0}, {Topic: "t", Partition: 0}}})
		synctest.Wait() // it went past t-0, and waits
		k.Unlock()
		a := <-done
		require.NoError(t, a.err)
		require.Equal(t, []string{"x"}, values(t, a.resp.Partitions[1].Records))
		require.Equal(t, t0, a.at, "answered at MaxWait, not when the lock was released")
	})
}

// TestFairWakeNotHeldByAReopenBegunBeforeIt: a long poll that read
// nothing, woken by an append to a partition whose reopen begins before
// the wake reads it again (here in the hook, hung in the old log's
// closing fsync), reads the others that changed and answers theirs
// rather than wait for that reopen, as its first read does (fetchChanged
// reads as fetchOnce, skipBusy; mutant: the wake's reads wait for a
// partition held exclusively, and the fetch waited for the reopen).
func TestFairWakeNotHeldByAReopenBegunBeforeIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, fs, _ := openStuck(t, 2)
		var (
			reads   int
			altered <-chan error
			release func()
		)
		setFetchReadHook(func() {
			reads++         // the fetch's goroutine only
			if reads == 3 { // the wake's read of t-1, before its look at Busy
				altered, release = stickReopen(t, b, fs, 1) // t-0 reopened
				produce(t, b, "t", 0, "a")
			}
		})
		defer func() { setFetchReadHook(nil) }()
		done := goFetch(t.Context(), b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1,
			Partitions: []api.FetchPartition{{Topic: "t", Partition: 1}, {Topic: "t", Partition: 0}}})
		synctest.Wait() // it read both, and waits
		produce(t, b, "t", 1, "b")
		synctest.Wait()
		var a fetchAnswer
		select {
		case a = <-done:
		default:
			t.Error("the fetch waits for t-1's reopen")
		}
		release()
		require.NoError(t, <-altered)
		if t.Failed() {
			a = <-done
		}
		require.NoError(t, a.err)
		require.Empty(t, a.resp.Partitions[0].Records, "t-1, held by its reopen")
		require.Equal(t, []string{"a"}, values(t, a.resp.Partitions[1].Records))
	})
}

// TestFairFetchAtCtxEndPastAPartitionHeld: a fetch of several partitions
// waiting for MinBytes, at the end of u-0 and of t-0 (held exclusively,
// as a reopen holds it), answers at ctx's end the records appended to u-0
// during its wait, which did not bring MinBytes: the read at ctx's end
// goes past the partition held, as the reads of a fetch whose answer
// holds no records do (skipBusy), rather than wait in it for the lock,
// fail with ctx's error, and drop what u-0 holds. Before 2026-12-07 the
// append woke the fetch, which read it. Mutant: the read at ctx's end
// waiting for the lock (it answered ctx's error).
func TestFairFetchAtCtxEndPastAPartitionHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := open(t, Config{MaintenanceInterval: 10000 * time.Hour})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1}))
		require.NoError(t, b.CreateTopic(t.Context(), "u", log.TopicConfig{Partitions: 1}))
		_, p, err := b.topicPartition(t.Context(), "t", 0, false)
		require.NoError(t, err)
		k, err := p.Lock(t.Context()) // as a config change holds it
		require.NoError(t, err)
		defer k.Unlock()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := goFetch(ctx, b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1 << 20,
			Partitions: []api.FetchPartition{{Topic: "u", Partition: 0}, {Topic: "t", Partition: 0}}})
		synctest.Wait() // it went past t-0, and waits
		produce(t, b, "u", 0, "x")
		synctest.Wait()
		cancel()
		a := <-done
		require.NoError(t, a.err)
		require.Equal(t, []string{"x"}, values(t, a.resp.Partitions[0].Records))
		require.Empty(t, a.resp.Partitions[1].Records)
	})
}
