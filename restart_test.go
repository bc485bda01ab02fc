package runnel

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
)

// TestProducerStateSurvivesRestart: after a clean close and after a
// crash, a retried batch is still answered as a duplicate with its
// original offset, a gap is still out of order, and a stale epoch is still
// fenced.
func TestProducerStateSurvivesRestart(t *testing.T) {
	for _, clean := range []bool{true, false} {
		t.Run(fmt.Sprintf("clean=%v", clean), func(t *testing.T) {
			dir := t.TempDir()
			ctx := context.Background()
			b, err := Open(Config{Dir: dir})
			require.NoError(t, err)
			require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
			pid, epoch, err := b.InitProducerID(ctx)
			require.NoError(t, err)
			mk := func(epoch int16, seq int32) []byte {
				var bl record.Builder
				bl.Reset()
				bl.SetProducer(pid, epoch, seq)
				bl.Append(1, nil, []byte(fmt.Sprint(seq)), nil)
				bl.Append(1, nil, []byte(fmt.Sprint(seq+1)), nil)
				out, err := bl.AppendTo(nil, compression.None)
				require.NoError(t, err)
				return out
			}
			send := func(b *Broker, epoch int16, seq int32) (api.ProduceResponse, error) {
				return b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: mk(epoch, seq)})
			}
			for seq := int32(0); seq < 6; seq += 2 {
				_, err := send(b, epoch, seq)
				require.NoError(t, err)
			}
			_, err = send(b, epoch+1, 0) // a new epoch starts at 0 and fences the old one
			require.NoError(t, err)
			if clean {
				require.NoError(t, b.Close())
			} else {
				// What a crash leaves: the broker never closes; the lock
				// is dropped as the process's death would drop it.
				require.NoError(t, b.lock.Close())
				b.cancel()
				b.wg.Wait()
				t.Cleanup(func() { b.Close() })
			}

			b2, err := Open(Config{Dir: dir})
			require.NoError(t, err)
			defer b2.Close()
			r, err := send(b2, epoch+1, 0)
			require.NoError(t, err)
			require.True(t, r.Duplicate)
			require.EqualValues(t, 6, r.BaseOffset)
			_, err = send(b2, epoch+1, 4)
			require.ErrorIs(t, err, api.ErrOutOfOrderSequence)
			_, err = send(b2, epoch, 6)
			require.ErrorIs(t, err, api.ErrProducerFenced)
			r, err = send(b2, epoch+1, 2)
			require.NoError(t, err)
			require.False(t, r.Duplicate)
			require.EqualValues(t, 8, r.BaseOffset)
		})
	}
}

// TestCallsAfterCloseAndCancel: every call on a closed broker fails with
// ErrClosed; a cancelled context fails a produce without writing it.
func TestCallsAfterCloseAndCancel(t *testing.T) {
	ctx := context.Background()
	b, err := Open(Config{})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = b.Produce(cancelled, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(t, "x")})
	require.ErrorIs(t, err, context.Canceled)
	info, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.Zero(t, info.Partitions[0].LogEndOffset)

	require.NoError(t, b.Close())
	_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(t, "x")})
	require.ErrorIs(t, err, ErrClosed)
	_, err = b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t"}}})
	require.ErrorIs(t, err, ErrClosed)
	_, err = b.ListOffset(ctx, "t", 0, api.Latest)
	require.ErrorIs(t, err, ErrClosed)
	_, _, err = b.InitProducerID(ctx)
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, b.CreateTopic(ctx, "u", log.TopicConfig{Partitions: 1}), ErrClosed)
	require.ErrorIs(t, b.DeleteTopic(ctx, "t"), ErrClosed)
	_, err = b.DescribeTopic(ctx, "t")
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, b.Maintain(ctx), ErrClosed)
}

func TestDeleteRecords(t *testing.T) {
	b := open(t, Config{TopicDefaults: log.Config{SegmentBytes: 200}})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	for i := range 10 {
		produce(t, b, "t", 0, fmt.Sprint(i))
	}
	low, err := b.DeleteRecords(ctx, "t", 0, 4)
	require.NoError(t, err)
	require.EqualValues(t, 4, low)
	low, err = b.DeleteRecords(ctx, "t", 0, 2)
	require.NoError(t, err)
	require.EqualValues(t, 4, low, "never backwards")
	_, err = b.DeleteRecords(ctx, "t", 0, 11)
	require.ErrorIs(t, err, log.ErrOffsetOutOfRange)
	_, err = b.DeleteRecords(ctx, "t", 1, 0)
	require.ErrorIs(t, err, ErrUnknownTopic)

	resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", Offset: 3}}})
	require.NoError(t, err)
	require.ErrorIs(t, resp.Partitions[0].Err, log.ErrOffsetOutOfRange)
	resp, err = b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", Offset: 4}}})
	require.NoError(t, err)
	require.Equal(t, "4", values(t, resp.Partitions[0].Records)[0])

	low, err = b.DeleteRecords(ctx, "t", 0, api.Latest)
	require.NoError(t, err)
	require.EqualValues(t, 10, low)
	off, err := b.ListOffset(ctx, "t", 0, api.Earliest)
	require.NoError(t, err)
	require.EqualValues(t, 10, off.Offset)
}

// A partition's log closed under a call means its topic was deleted (if
// the broker is still open and the topic no longer has the partition): the
// call says ErrUnknownTopic, as the next one would; for a partition its
// topic still has, a config change could not reopen it (log.ErrLogFenced).
func TestPartitionGone(t *testing.T) {
	b := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 3}))
	p := b.topics["t"].Partitions[2]
	err := b.partitionGone(fmt.Errorf("append: %w", log.ErrClosed), p)
	require.ErrorIs(t, err, log.ErrLogFenced)
	require.NotErrorIs(t, err, ErrUnknownTopic)
	require.NoError(t, b.DeleteTopic(ctx, "t"))
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 3}))
	err = b.partitionGone(fmt.Errorf("append: %w", log.ErrClosed), p)
	require.ErrorIs(t, err, ErrUnknownTopic)
	require.Contains(t, err.Error(), "t-2 was deleted")
	other := fmt.Errorf("other")
	require.Equal(t, other, b.partitionGone(other, p))
	require.NoError(t, b.Close())
	require.ErrorIs(t, b.partitionGone(log.ErrClosed, p), ErrClosed)

	// A waiting fetch on a topic deleted meanwhile ends with ErrUnknownTopic.
	b2 := open(t, Config{})
	require.NoError(t, b2.CreateTopic(ctx, "gone", log.TopicConfig{Partitions: 1}))
	done := make(chan api.FetchResponse, 1)
	go func() {
		resp, err := b2.Fetch(ctx, &api.FetchRequest{MaxWait: time.Hour, Partitions: []api.FetchPartition{{Topic: "gone"}}})
		if err != nil {
			t.Error(err)
		}
		done <- resp
	}()
	require.NoError(t, b2.DeleteTopic(ctx, "gone"))
	resp := testkit.Await(t, done, "Fetch's answer")
	require.ErrorIs(t, resp.Partitions[0].Err, ErrUnknownTopic)
}

func TestDeleteRecordsNegative(t *testing.T) {
	b := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	_, err := b.DeleteRecords(ctx, "t", 0, -5)
	require.ErrorIs(t, err, log.ErrOffsetOutOfRange)
	require.ErrorContains(t, err, "negative")
}
