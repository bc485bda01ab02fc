package runnel

import (
	"context"
	"strings"
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// TestFetchMaxBytesOversizedBatchOnlyFirst: as in Kafka (KIP-74), a
// batch larger than the bytes left is returned only when no partition
// before it in the response had data, so that a consumer makes progress;
// a later partition whose first batch does not fit in what is left of
// the request's MaxBytes (or its own MaxBytes) returns nothing, and the
// response stays within MaxBytes.
func TestFetchMaxBytesOversizedBatchOnlyFirst(t *testing.T) {
	b := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 3}))
	big := strings.Repeat("x", 1000)
	produce(t, b, "t", 0, big)
	produce(t, b, "t", 1, big)
	produce(t, b, "t", 2, big)
	one := len(batch(t, big))

	// The first partition with data gets its batch, though larger than
	// MaxBytes; the others nothing.
	resp, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: 10, Partitions: []api.FetchPartition{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1}}})
	require.NoError(t, err)
	require.Equal(t, []string{big}, values(t, resp.Partitions[0].Records))
	require.Empty(t, resp.Partitions[1].Records, "a second oversized batch")
	require.NoError(t, resp.Partitions[1].Err)

	// Room left, but less than the next batch: the response stays within
	// MaxBytes.
	resp, err = b.Fetch(ctx, &api.FetchRequest{MaxBytes: one + one/2, Partitions: []api.FetchPartition{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1}, {Topic: "t", Partition: 2}}})
	require.NoError(t, err)
	total := 0
	for _, p := range resp.Partitions {
		require.NoError(t, p.Err)
		total += len(p.Records)
	}
	require.LessOrEqual(t, total, one+one/2, "past the request's MaxBytes")
	require.Equal(t, []string{big}, values(t, resp.Partitions[0].Records))

	// A partition's own MaxBytes too, once an earlier partition had data.
	resp, err = b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1, MaxBytes: 10}}})
	require.NoError(t, err)
	require.Equal(t, []string{big}, values(t, resp.Partitions[0].Records))
	require.Empty(t, resp.Partitions[1].Records)

	// An empty partition first does not count as data: the next one's
	// oversized batch comes.
	require.NoError(t, b.CreateTopic(ctx, "e", log.TopicConfig{Partitions: 1}))
	resp, err = b.Fetch(ctx, &api.FetchRequest{MaxBytes: 10, Partitions: []api.FetchPartition{{Topic: "e"}, {Topic: "t", Partition: 2, MaxBytes: 10}}})
	require.NoError(t, err)
	require.Empty(t, resp.Partitions[0].Records)
	require.Equal(t, []string{big}, values(t, resp.Partitions[1].Records))
}
