package runnel

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// Tests that close gaps a mutation-testing pass over the broker's fetch
// path (Fetch, ListOffset) found: each fails with a mutant of the code
// that the rest of the suite let through.

// TestFetchBatchFillingTheRoomLeftFits: a later partition's batch whose
// size is exactly the room left (of the request's MaxBytes, or of its own
// MaxBytes) fits, and is returned.
func TestFetchBatchFillingTheRoomLeftFits(t *testing.T) {
	b := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}))
	v := strings.Repeat("x", 100)
	produce(t, b, "t", 0, v)
	produce(t, b, "t", 1, v)
	one := len(batch(t, v))

	for _, req := range []*api.FetchRequest{
		{MaxBytes: 2 * one, Partitions: []api.FetchPartition{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1}}},
		{Partitions: []api.FetchPartition{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1, MaxBytes: one}}},
	} {
		resp, err := b.Fetch(ctx, req)
		require.NoError(t, err)
		for i, p := range resp.Partitions {
			require.NoError(t, p.Err)
			require.Equal(t, []string{v}, values(t, p.Records), "partition %d", i)
		}
	}
}

// TestFetchMinBytesCountsAnOversizedBatchAsTheRoomItFills: a batch past
// what a fetch returned that does not fit in its partition's room left
// counts toward MinBytes as that room, not as its size: a fetch that the
// room does not bring to MinBytes waits (here MaxWait, 1 ns, then reads
// again), rather than answer at once.
func TestFetchMinBytesCountsAnOversizedBatchAsTheRoomItFills(t *testing.T) {
	b := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	produce(t, b, "t", 0, "a")
	produce(t, b, "t", 0, strings.Repeat("x", 1000))
	small := len(batch(t, "a"))
	var reads atomic.Int32
	testHookFetchRead = func() { reads.Add(1) }
	defer func() { testHookFetchRead = nil }()
	resp, err := b.Fetch(ctx, &api.FetchRequest{
		MaxWait: time.Nanosecond, MinBytes: small + 500,
		Partitions: []api.FetchPartition{{Topic: "t", MaxBytes: small + 100}},
	})
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, values(t, resp.Partitions[0].Records))
	require.EqualValues(t, 2, reads.Load(), "the room left (100 bytes) is short of MinBytes: the fetch waited, and read again")
}

// TestTimestampAtCompactedOffset: ListOffset's timestamp read for an
// offset that compaction removed after the look-up found it answers -1
// (no record there any more), not the timestamp of the record after it
// in the cleaned batch (mutation B03, client.go's `r.Offset > off`).
func TestTimestampAtCompactedOffset(t *testing.T) {
	ctx := t.Context()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(ctx, "c", log.TopicConfig{Partitions: 1, Config: log.Config{CleanupPolicy: log.Compact}}))
	put := func(ts int64, kv ...string) {
		var bl record.Builder
		bl.Reset()
		for i := 0; i < len(kv); i += 2 {
			bl.Append(ts+int64(i/2), []byte(kv[i]), []byte(kv[i+1]), nil) // a time of its own each
		}
		data, err := bl.AppendTo(nil, compression.None)
		require.NoError(t, err)
		_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "c", Acks: api.AcksAll, Batches: data})
		require.NoError(t, err)
	}
	// One batch: offset 0 (k, superseded; 1000), offset 1 (other; 1001),
	// offset 2 (k; 1002).
	put(1_000, "k", "old", "other", "x", "k", "new")
	l := b.testLog(t, "c")
	require.NoError(t, l.Roll())
	res, err := l.Compact(ctx)
	require.NoError(t, err)
	require.NotZero(t, res, "the pass cleaned the sealed segment")

	p, err := b.partition(ctx, "c", 0, false)
	require.NoError(t, err)
	ts, err := timestampAt(context.Background(), p, 0, 3)
	require.NoError(t, err)
	require.EqualValues(t, -1, ts, "offset 0 was compacted away: no record, no timestamp")
	ts, err = timestampAt(context.Background(), p, 1, 3)
	require.NoError(t, err)
	require.EqualValues(t, 1_001, ts, "offset 1 is still there")
}
