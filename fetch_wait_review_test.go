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

// The tests of this file review the wait of a fetch for MinBytes that
// holds records (firstMoved, by the partitions' marks since 3d7f2b69:
// a partition whose marks say not compacted is no longer looked up at
// each wake) against the changes other than an append that come while
// it waits: the topic deleted, or deleted and created again; a config
// change that makes the log compacted, or no longer compacted, after a
// compaction; a reopen after a compaction (the new log counts its
// compactions from 0 again); a fetch of more than 256 partitions
// (byteWait's needs past its array).

// TestFetchWaitReviewTopicGone: a fetch that waits for MinBytes holding
// records of a topic that is not compacted answers at once when the
// topic is deleted (its partition's error: by name ErrUnknownTopic, by
// ID ErrUnknownTopicID), and when it is deleted and created again: by
// ID, ErrUnknownTopicID; by name, either ErrUnknownTopic (the fetch
// looked between the deletion and the creation) or, made again, the new
// topic's records only, once they make MinBytes. None answers the
// records of the topic deleted.
func TestFetchWaitReviewTopicGone(t *testing.T) {
	for _, c := range []struct {
		name           string
		byID, recreate bool
	}{{"deleted/name", false, false}, {"deleted/id", true, false}, {"recreated/name", false, true}, {"recreated/id", true, true}} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := open(t, Config{MaintenanceInterval: 10000 * time.Hour})
				require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1}))
				produce(t, b, "t", 0, "a")
				one := len(batch(t, "a"))
				fp := api.FetchPartition{Topic: "t"}
				if c.byID {
					resp, err := b.Fetch(t.Context(), &api.FetchRequest{Partitions: []api.FetchPartition{fp}})
					require.NoError(t, err)
					fp.TopicID = resp.Partitions[0].TopicID
					require.False(t, fp.TopicID.IsZero())
				}
				done := goFetch(context.Background(), b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 2 * one,
					Partitions: []api.FetchPartition{fp}})
				synctest.Wait()
				select {
				case <-done:
					t.Fatal("answered below MinBytes")
				default:
				}
				require.NoError(t, b.DeleteTopic(t.Context(), "t"))
				if c.recreate {
					require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1}))
				}
				synctest.Wait()
				if c.recreate && !c.byID {
					select {
					case a := <-done:
						require.NoError(t, a.err)
						require.ErrorIs(t, a.resp.Partitions[0].Err, ErrUnknownTopic)
						require.Empty(t, a.resp.Partitions[0].Records)
						return
					default: // made again on the new topic, and waits
					}
					produce(t, b, "t", 0, "b")
					synctest.Wait()
					select {
					case a := <-done:
						t.Fatalf("answered %q at one batch of the new topic", values(t, a.resp.Partitions[0].Records))
					default:
					}
					produce(t, b, "t", 0, "c")
					synctest.Wait()
					a := answeredNow(t, done, "the new topic holds MinBytes, and the fetch waits on")
					require.NoError(t, a.err)
					require.NoError(t, a.resp.Partitions[0].Err)
					require.Equal(t, []string{"b", "c"}, values(t, a.resp.Partitions[0].Records))
					return
				}
				a := answeredNow(t, done, "the topic is gone, and the fetch waits on (until MaxWait)")
				require.NoError(t, a.err)
				want := ErrUnknownTopic
				if c.byID {
					want = ErrUnknownTopicID
				}
				require.ErrorIs(t, a.resp.Partitions[0].Err, want)
				require.Empty(t, a.resp.Partitions[0].Records)
			})
		})
	}
}

// grownFetch starts, in the test's synctest bubble, a fetch of parts (t-0
// among them) that waits for MinBytes holding t-0's first batch (a,x at
// 0), counts 80 tombstones (1-80) appended at a wake and a batch (z,v)
// that rolls them into a sealed segment; it wants 3 batches more than
// that. It returns the fetch's answer channel, and grow, which compacts
// t-0 (its first compaction: the tombstones' batch takes a delete
// horizon and grows past what the fetch lacks) and checks that t-0 holds
// MinBytes from offset 0 then.
func grownFetch(t *testing.T, b *Broker, put func(kv ...string), parts []api.FetchPartition) (done <-chan fetchAnswer, grow func()) {
	t.Helper()
	read := func() []byte { // what a fetch of t-0 from 0 holds
		resp, err := b.Fetch(t.Context(), &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t"}}})
		require.NoError(t, err)
		require.NoError(t, resp.Partitions[0].Err)
		return resp.Partitions[0].Records
	}
	tombstones := tombstonesOf(t, 80)
	put("a", "x") // 0: the fetch's first batch
	first := len(read())
	one := len(keyed(t, "z", "v"))
	want := first + len(tombstones) + 3*one
	done = goFetch(context.Background(), b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: want, Partitions: parts})
	synctest.Wait()
	_, err := b.Produce(t.Context(), &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: tombstones})
	require.NoError(t, err)
	synctest.Wait()
	put("z", "v") // rolls: 0-80 are in a sealed segment
	synctest.Wait()
	require.Len(t, read(), first+len(tombstones))
	select {
	case a := <-done:
		t.Fatalf("answered %d records below MinBytes", len(values(t, a.resp.Partitions[0].Records)))
	default:
	}
	return done, func() {
		t.Helper()
		require.NoError(t, b.Maintain(t.Context()))
		require.GreaterOrEqual(t, len(read()), want, "the compaction did not make the tombstones' batch larger by 3 batches")
	}
}

// TestFetchWaitReviewCompactedByConfigChange: a fetch that waits for
// MinBytes holding records of a topic that is not compacted, which a
// config change makes compacted while it waits (the marks its read took
// say not compacted), answers at the first append after a compaction
// that made a batch it counted larger, where the partition then holds
// MinBytes. Mutant: firstMoved taking the compact policy only from the
// marks of the fetch's read (pr.compact not set from the marks of the
// looks): it counted the batch at its size before, and slept on until
// MaxWait.
func TestFetchWaitReviewCompactedByConfigChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := open(t, Config{MaintenanceInterval: 10000 * time.Hour})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 1000}}))
		put := func(kv ...string) {
			_, err := b.Produce(t.Context(), &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: keyed(t, kv...)})
			require.NoError(t, err)
		}
		done, grow := grownFetch(t, b, put, []api.FetchPartition{{Topic: "t"}})
		require.NoError(t, b.UpdateTopicConfig(t.Context(), "t", func(c *log.Config) {
			c.CleanupPolicy, c.MinCleanableDirtyRatio = log.Compact, 0.01
		}))
		synctest.Wait()
		grow()
		put("z", "w") // fewer bytes than the fetch lacks by the count before
		synctest.Wait()
		a := answeredNow(t, done, "the partition holds MinBytes at an append, and the fetch waits on (until MaxWait)")
		require.NoError(t, a.err)
		require.Len(t, values(t, a.resp.Partitions[0].Records), 81)
	})
}

// TestFetchWaitReviewCompactedThenNotCompacted: a fetch that waits for
// MinBytes holding records of a compacted partition, after a compaction
// made a batch it counted larger (which wakes no one) and then a config
// change made the topic not compacted (a reopen, which wakes it),
// answers at that wake: the partition holds MinBytes. Mutants: firstMoved
// taking the compact policy from the marks of its look alone (not
// sticky), or not from those of the fetch's read: the look's marks say
// not compacted, and the fetch counted the batch at its size before and
// slept on.
func TestFetchWaitReviewCompactedThenNotCompacted(t *testing.T) {
	answeredAtReopenAfterGrowth(t, func(c *log.Config) { c.CleanupPolicy = log.Delete })
}

// answeredAtReopenAfterGrowth runs a fetch that waits for MinBytes
// holding records of a compacted partition, grows a batch it counted by
// a compaction, then reopens the partition with change, and requires the
// fetch to have answered, all of the partition's records, at the
// reopen's wake.
func answeredAtReopenAfterGrowth(t *testing.T, change func(c *log.Config)) {
	synctest.Test(t, func(t *testing.T) {
		b, put := compactedFetchTopic(t)
		done, grow := grownFetch(t, b, put, []api.FetchPartition{{Topic: "t"}})
		grow()
		synctest.Wait()
		require.NoError(t, b.UpdateTopicConfig(t.Context(), "t", change))
		synctest.Wait()
		a := answeredNow(t, done, "the partition holds MinBytes at the reopen's wake, and the fetch waits on (until MaxWait)")
		require.NoError(t, a.err)
		require.Len(t, values(t, a.resp.Partitions[0].Records), 81)
	})
}

// TestFetchWaitReviewReopenAfterCompaction: as
// TestFetchWaitReviewCompactedThenNotCompacted, the reopen's config
// change keeping the topic compacted (segment.bytes). The new log counts
// its compactions from 0, as the old one did when the fetch read it: the
// partition's epoch alone tells the marks apart. Mutant: Mark.Rewritten
// not comparing the epochs (the fetch slept on).
func TestFetchWaitReviewReopenAfterCompaction(t *testing.T) {
	answeredAtReopenAfterGrowth(t, func(c *log.Config) { c.SegmentBytes = 2000 })
}

// TestFetchWaitReviewCompactedBatchGrownPast256: TestFetchWaitCompactedBatchGrown
// in a fetch of 257 partitions (byteWait's needs on the heap, past its
// array of 256), the compacted one last (u-0 to u-255, then t-0), woken
// by an append to t-0 of fewer bytes than the fetch lacks by the count
// before the compaction. Mutant: the needs past the 256th a share of
// what the fetch lacks (t-0 the one partition that counts, its share
// more than the append): the fetch slept on.
func TestFetchWaitReviewCompactedBatchGrownPast256(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, put := compactedFetchTopic(t)
		require.NoError(t, b.CreateTopic(t.Context(), "u", log.TopicConfig{Partitions: 256}))
		var parts []api.FetchPartition
		for i := range int32(256) {
			parts = append(parts, api.FetchPartition{Topic: "u", Partition: i})
		}
		parts = append(parts, api.FetchPartition{Topic: "t"})
		done, grow := grownFetch(t, b, put, parts)
		grow()
		put("z", "w")
		synctest.Wait()
		a := answeredNow(t, done, "the partitions hold MinBytes at an append, and the fetch waits on (until MaxWait)")
		require.NoError(t, a.err)
		require.Len(t, values(t, a.resp.Partitions[256].Records), 81)
	})
}

// TestFetchWaitReviewHeldThenNotCompacted is
// TestFetchWaitReviewCompactedThenNotCompacted where the fetch holds the
// tombstones (appended, and rolled into a sealed segment, before it
// began), so that no wake comes between its read and the config change:
// only the marks of its read say the log was compacted. Mutant:
// newFetchProbe not taking the compact policy from them (firstMoved took
// it from the look's marks, which say not compacted: the fetch counted
// the batch held at its size before, and slept on).
func TestFetchWaitReviewHeldThenNotCompacted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, put := compactedFetchTopic(t)
		tombstones := tombstonesOf(t, 80)
		put("a", "x") // 0
		_, err := b.Produce(t.Context(), &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: tombstones})
		require.NoError(t, err)
		put("z", "v") // rolls: 0-80 are in a sealed segment
		read := func() []byte {
			resp, err := b.Fetch(t.Context(), &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t"}}})
			require.NoError(t, err)
			require.NoError(t, resp.Partitions[0].Err)
			return resp.Partitions[0].Records
		}
		held := len(read())
		require.Greater(t, held, len(tombstones))
		want := held + 3*len(keyed(t, "z", "v"))
		done := goFetch(context.Background(), b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: want,
			Partitions: []api.FetchPartition{{Topic: "t"}}})
		synctest.Wait()
		require.NoError(t, b.Maintain(t.Context()))
		require.GreaterOrEqual(t, len(read()), want, "the compaction did not make the tombstones' batch larger by 3 batches")
		require.NoError(t, b.UpdateTopicConfig(t.Context(), "t", func(c *log.Config) { c.CleanupPolicy = log.Delete }))
		synctest.Wait()
		a := answeredNow(t, done, "the partition holds MinBytes at the reopen's wake, and the fetch waits on (until MaxWait)")
		require.NoError(t, a.err)
		require.Len(t, values(t, a.resp.Partitions[0].Records), 81)
	})
}

// TestFetchWaitReviewCountedOnlyBatchGrown is
// TestFetchWaitCompactedBatchGrown where the fetch holds records of
// another partition only (u-0, first), and none of the compacted t-0,
// whose tombstones it counted at a wake: the batch grown is one the fetch
// counted of a partition it holds nothing of, after the first batch it
// counted there (b, at its offset, which the compaction keeps as it
// was). Mutant: firstMoved making the fetch again after a compaction
// only for a partition it holds records of (it slept on, until
// MaxWait).
func TestFetchWaitReviewCountedOnlyBatchGrown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, put := compactedFetchTopic(t)
		require.NoError(t, b.CreateTopic(t.Context(), "u", log.TopicConfig{Partitions: 1}))
		produce(t, b, "u", 0, "v")
		tombstones := tombstonesOf(t, 80)
		one := len(keyed(t, "z", "v"))
		want := len(batch(t, "v")) + len(keyed(t, "b", "y")) + len(tombstones) + 3*one
		done := goFetch(context.Background(), b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: want,
			Partitions: []api.FetchPartition{{Topic: "t"}, {Topic: "u"}}})
		synctest.Wait()
		put("b", "y") // 0: t-0's first batch from the fetch's offset, counted at a wake
		synctest.Wait()
		_, err := b.Produce(t.Context(), &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: tombstones})
		require.NoError(t, err)
		synctest.Wait()
		put("z", "v") // rolls: 0-80 are in a sealed segment
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("answered below MinBytes")
		default:
		}
		require.NoError(t, b.Maintain(t.Context()))
		from := func(offset int64) []byte { // t-0's first segment from offset
			resp, err := b.Fetch(t.Context(), &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", Offset: offset}}})
			require.NoError(t, err)
			require.NoError(t, resp.Partitions[0].Err)
			return resp.Partitions[0].Records
		}
		require.Equal(t, "y", values(t, from(0))[0], "the compaction changed the first batch (firstMoved's case)")
		require.GreaterOrEqual(t, len(from(1)), len(tombstones)+3*one, "the compaction did not make the tombstones' batch larger by 3 batches")
		put("z", "w") // fewer bytes than the fetch lacks by the count before
		synctest.Wait()
		a := answeredNow(t, done, "the partitions hold MinBytes at an append, and the fetch waits on (until MaxWait)")
		require.NoError(t, a.err)
		require.Equal(t, "y", values(t, a.resp.Partitions[0].Records)[0])
		require.Equal(t, []string{"v"}, values(t, a.resp.Partitions[1].Records))
	})
}
