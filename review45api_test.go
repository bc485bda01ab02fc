package runnel_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// Review 45api: the exported API read as a reviewer freezing it for v1.0,
// each godoc claim held against what the code does, and each value the
// API hands out mutated to see whether the broker changes with it.

// TestReview45APIFetchBytesAreTheLog: api.FetchedPartition said "The
// bytes are the caller's: they never change", which reads as leave to
// modify them. On the memory FS they are the log's own memory (zero
// copy): a caller's write to them is a write to the log, served to every
// later reader, past the CRC check made at the append. The docs now say
// not to modify them (api.FetchedPartition, Broker.Fetch, log.Log.Read,
// segment.Segment.Read, runneltest.Consume), as package consumer and
// record.Record already did; this test pins why.
func TestReview45APIFetchBytesAreTheLog(t *testing.T) {
	ctx := context.Background()
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	runneltest.Produce(t, b, "t", &record.Record{Partition: 0, Value: []byte("hello")})
	resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t"}}})
	require.NoError(t, err)
	got := resp.Partitions[0].Records
	i := bytes.Index(got, []byte("hello"))
	require.Positive(t, i)
	copy(got[i:], "HELLO") // what the docs now forbid

	recs := runneltest.ConsumeAll(t, b, "t")
	require.Len(t, recs, 1)
	require.Equal(t, "HELLO", string(recs[0].Value), "on the memory FS a fetch's bytes are the log itself")
	recs[0].Value[0] = 'J' // a consumed record's Value is the log too
	require.Equal(t, "JELLO", string(runneltest.ConsumeAll(t, b, "t")[0].Value))
}
