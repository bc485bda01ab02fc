package runnel

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
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
