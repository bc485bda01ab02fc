package consumer_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/stretchr/testify/require"
)

// TestBatchAtHighWatermarkCut: a batch that begins exactly at the high
// watermark is past it, and is not in Fetch.Batches (a Client may send
// it; its records are not readable yet).
func TestBatchAtHighWatermarkCut(t *testing.T) {
	below := batchAt(t, 0, "a", "b", "c")
	var n atomic.Int32
	c := newConsumer(t, serve(t, 3, cat(below, batchAt(t, 3, "d")), &n))
	require.NoError(t, c.Assign("t", 0, consumer.At(1)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.Len(t, fs, 1)
	require.Equal(t, below, fs[0].Batches)
	pos, _ := c.Position("t", 0)
	require.EqualValues(t, 3, pos)
}

// TestBatchEndingAtPositionSkipped: a batch whose last record is just
// below the position (its next offset is the position) holds nothing to
// return, and Fetch.Batches begins after it.
func TestBatchEndingAtPositionSkipped(t *testing.T) {
	first := batchAt(t, 0, "a", "b")
	rest := batchAt(t, 2, "c")
	var n atomic.Int32
	c := newConsumer(t, serve(t, 3, cat(first, rest), &n))
	require.NoError(t, c.Assign("t", 0, consumer.At(2)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.Len(t, fs, 1)
	require.Equal(t, rest, fs[0].Batches)
	require.Equal(t, 1, fs.NumRecords())
}

// TestPositionAtHighWatermarkReturnsNothing: from a position at the high
// watermark nothing is readable, whatever the Client sends (here a batch
// that straddles it): Poll returns no Fetch for the partition.
func TestPositionAtHighWatermarkReturnsNothing(t *testing.T) {
	var n atomic.Int32
	c := newConsumer(t, serve(t, 2, batchAt(t, 0, "a", "b", "c", "d"), &n))
	require.NoError(t, c.Assign("t", 0, consumer.At(2)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.Empty(t, fs)
	pos, _ := c.Position("t", 0)
	require.EqualValues(t, 2, pos)
}

// TestFetchAnswerMissingAPartition: a fetch answer that leaves
// out a partition asked for (a Client's) is no error: that partition is
// fetched again next time, and its records come then, none lost.
func TestFetchAnswerMissingAPartition(t *testing.T) {
	var fetches atomic.Int32
	client := &fakeClient{t: t, fetch: func(ctx context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
		first := fetches.Add(1) == 1
		var resp api.FetchResponse
		for _, p := range req.Partitions {
			if first && p.Partition == 0 {
				continue
			}
			if p.Offset > 0 {
				continue // read already
			}
			resp.Partitions = append(resp.Partitions, api.FetchedPartition{
				Topic: p.Topic, Partition: p.Partition, HighWatermark: 1,
				Records: batchAt(t, 0, []string{"p0", "p1"}[p.Partition]),
			})
		}
		return resp, nil
	}}
	c := newConsumer(t, client)
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	require.NoError(t, c.Assign("t", 1, consumer.At(0)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.NoError(t, fs.Err())
	g := &got{}
	g.add(fs)
	require.Equal(t, []string{"p1"}, g.values("t", 1))
	require.Empty(t, g.values("t", 0), "not answered")
	require.Empty(t, g.errs)
	g = pollUntil(t, c, 1)
	require.Equal(t, []string{"p0"}, g.values("t", 0), "fetched again")
	pos, ok := c.Position("t", 0)
	require.True(t, ok)
	require.EqualValues(t, 1, pos)
}
