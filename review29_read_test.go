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

// TestReview29FetchMinBytesCountsAPartitionUpToItsLimit: a fetch's wait
// for MinBytes counts each partition's bytes up to its MaxBytes, those it
// returns included, as Kafka's delayed fetch does (at most the
// partition's max bytes from the fetch offset): a partition that returned
// one batch counts only its room left of the next, so a MinBytes above
// its MaxBytes is never reached and the fetch answers at MaxWait (mutant:
// the room counted whole, the returned batch left out, which answered at
// once).
func TestReview29FetchMinBytesCountsAPartitionUpToItsLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := open(t, Config{})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1}))
		for range 3 {
			produce(t, b, "t", 0, "aaaaaaaaaaaaaaaaaaaa")
		}
		one := len(batch(t, "aaaaaaaaaaaaaaaaaaaa"))
		limit := one * 3 / 2
		t0 := time.Now()
		resp, err := b.Fetch(t.Context(), &api.FetchRequest{MaxWait: time.Hour, MinBytes: limit + 1,
			Partitions: []api.FetchPartition{{Topic: "t", MaxBytes: limit}}})
		require.NoError(t, err)
		require.Equal(t, t0.Add(time.Hour), time.Now(), "the fetch did not wait for MaxWait")
		require.Len(t, values(t, resp.Partitions[0].Records), 1)
	})
}

// TestReview29FetchCtxEndAnswersWhatItFound: a fetch waiting for MinBytes
// whose ctx ends answers the records it found, not ctx's error (Fetch
// fails with ctx's error only when it found nothing): the caller gets
// them, and its position moves (mutant: ctx's error whatever was found).
func TestReview29FetchCtxEndAnswersWhatItFound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := open(t, Config{})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1}))
		produce(t, b, "t", 0, "a")
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		t0 := time.Now()
		resp, err := b.Fetch(ctx, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1 << 20,
			Partitions: []api.FetchPartition{{Topic: "t"}}})
		require.NoError(t, err)
		require.Equal(t, t0.Add(time.Minute), time.Now(), "the fetch did not wait until ctx ended")
		require.Equal(t, []string{"a"}, values(t, resp.Partitions[0].Records))

		// Nothing found: ctx's error.
		ctx, cancel = context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		_, err = b.Fetch(ctx, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1 << 20,
			Partitions: []api.FetchPartition{{Topic: "t", Offset: 1}}})
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

// TestReview29FetchWokenByAppend: a fetch waiting for MinBytes is woken
// by the append that brings them, not by MaxWait: on a topic that
// acknowledges without an fsync (SyncNever, SyncPeriodic), where the
// high watermark moves with the append itself (mutant: no wake-up there,
// only the fsync's, which such a topic may not run for long), and under
// SyncAlways after a config change reopened the partition's log, whose
// fsyncs move the high watermark (mutant: the new log's fsyncs wake no
// one).
func TestReview29FetchWokenByAppend(t *testing.T) {
	for _, c := range []struct {
		name   string
		cfg    log.Config
		reopen bool
	}{
		{"SyncNever", log.Config{Sync: log.SyncNever}, false},
		{"SyncPeriodic", log.Config{Sync: log.SyncPeriodic}, false},
		{"SyncAlways_reopened", log.Config{}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := open(t, Config{})
				require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1, Config: c.cfg}))
				if c.reopen {
					require.NoError(t, b.AlterTopicConfig(t.Context(), "t", log.Config{RetentionTime: 2 * time.Hour}))
				}
				t0 := time.Now()
				done := goFetch(t.Context(), b, &api.FetchRequest{MaxWait: time.Hour,
					Partitions: []api.FetchPartition{{Topic: "t"}}})
				synctest.Wait() // the fetch waits
				produce(t, b, "t", 0, "a")
				a := <-done
				require.NoError(t, a.err)
				require.Equal(t, t0, a.at, "the fetch waited for MaxWait")
				require.Equal(t, []string{"a"}, values(t, a.resp.Partitions[0].Records))
			})
		})
	}
}

// TestReview29FetchPartitionLimitWithinTheRequests: a partition's
// MaxBytes above what is left of the request's MaxBytes is cut to it, as
// Kafka's broker reads min(partition max bytes, request bytes left): the
// response stays within the request's MaxBytes (mutant: the partition's
// own limit alone, which returned all its batches).
func TestReview29FetchPartitionLimitWithinTheRequests(t *testing.T) {
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 2}))
	for range 3 {
		produce(t, b, "t", 0, "aaaaaaaaaaaaaaaaaaaa")
		produce(t, b, "t", 1, "bbbbbbbbbbbbbbbbbbbb")
	}
	one := len(batch(t, "aaaaaaaaaaaaaaaaaaaa"))
	resp, err := b.Fetch(t.Context(), &api.FetchRequest{MaxBytes: one * 3 / 2, Partitions: []api.FetchPartition{
		{Topic: "t", MaxBytes: 10 * one}, {Topic: "t", Partition: 1, MaxBytes: 10 * one}}})
	require.NoError(t, err)
	require.Len(t, values(t, resp.Partitions[0].Records), 1, "past the request's MaxBytes")
	require.Empty(t, resp.Partitions[1].Records, "past the request's MaxBytes")
}
