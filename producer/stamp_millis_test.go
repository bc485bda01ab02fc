package producer_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
)

// TestStampedTimestampIsTheOneStored: a record produced without a
// Timestamp is stamped in whole milliseconds, the precision its batch
// carries (record.Record's Timestamp doc), so that the delivered record
// and the record consumed have Equal timestamps, as with franz-go's kgo,
// which truncates its stamp to the millisecond. Until 2026-12-07 the
// stamp kept its nanoseconds, and a test comparing what it produced with
// what it read back failed 999 times in 1,000.
func TestStampedTimestampIsTheOneStored(t *testing.T) {
	ctx := context.Background()
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	p := runneltest.NewProducer(t, b)
	var sent []*record.Record
	for i := range 50 {
		r := &record.Record{Topic: "t", Value: []byte{byte(i)}}
		sent = append(sent, r)
		if i%2 == 0 {
			require.NoError(t, p.ProduceSync(ctx, r)) // one at a time: the path of a lone record
		} else {
			done := make(chan error, 1)
			p.Produce(ctx, r, func(_ *record.Record, err error) { done <- err })
			require.NoError(t, p.Flush(ctx))
			require.NoError(t, <-done)
		}
	}
	// Many at once, in batches of several records.
	batch := make([]*record.Record, 200)
	for i := range batch {
		batch[i] = &record.Record{Topic: "t", Value: []byte("b")}
	}
	require.NoError(t, p.ProduceSync(ctx, batch...))
	sent = append(sent, batch...)

	got := runneltest.ConsumeAll(t, b, "t")
	require.Len(t, got, len(sent))
	for i, r := range sent {
		require.Zero(t, r.Timestamp.Nanosecond()%int(time.Millisecond), "record %d stamped %v", i, r.Timestamp)
		require.True(t, r.Timestamp.Equal(got[i].Timestamp), "record %d: delivered %v, stored %v", i, r.Timestamp, got[i].Timestamp)
	}

	// A Timestamp of the caller's own is left as it was: the batch carries
	// its UnixMilli.
	own := time.Date(2026, 12, 7, 20, 30, 0, 123456789, time.UTC)
	r := &record.Record{Topic: "t", Value: []byte("own"), Timestamp: own}
	require.NoError(t, p.ProduceSync(ctx, r))
	require.Equal(t, own, r.Timestamp)
	all := runneltest.ConsumeAll(t, b, "t")
	require.True(t, all[len(all)-1].Timestamp.Equal(own.Truncate(time.Millisecond)))
}
