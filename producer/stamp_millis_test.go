package producer_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
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

}

// TestOwnTimestampTruncated: a Timestamp of the caller's with a part below
// the millisecond is truncated to the millisecond when the record is
// buffered, as franz-go's kgo truncates every record's (Time.Truncate:
// the Location kept, the monotonic reading dropped), so that the delivered
// record's Timestamp is Equal to the one read back; on every produce path:
// Produce and ProduceSync, records without a key (the hot path, once a
// batch is open) and with one (placed under the topic's lock), and past
// 2262, where Unix nanoseconds end. One in whole milliseconds is left as
// it is, monotonic reading and all. A record that fails is left as it
// was: before it is buffered (a partition past the topic's count, after
// it was stamped; a time before 1970, ErrInvalidTimestamp). Until
// 2026-12-07 the caller's nanoseconds were kept, and the record delivered
// and the one read back were not Equal.
func TestOwnTimestampTruncated(t *testing.T) {
	ctx := context.Background()
	// No TimestampAfterMax: records of 2300.
	b := runneltest.NewBroker(t, runneltest.TopicConfig("t", log.TopicConfig{Partitions: 1, Config: log.Config{TimestampAfterMax: -1}}))
	p := runneltest.NewProducer(t, b, producer.Linger(time.Minute)) // batches stay open: the hot path takes the next record
	where := time.FixedZone("UTC+3", 3*60*60)
	base := time.Date(2026, 12, 7, 23, 30, 0, 123456789, where)
	mono := time.Now() // with a monotonic reading, which In would drop
	mono = mono.Add(time.Duration(123456 - mono.Nanosecond()%int(time.Millisecond)))
	require.NotEqual(t, mono, mono.Round(0), "mono has a monotonic reading")
	late := time.Date(2300, 1, 2, 3, 4, 5, 987654321, where)

	var sent, own []*record.Record
	errs := make(chan error, 20)
	var want []time.Time
	add := func(r *record.Record) *record.Record {
		sent, own, want = append(sent, r), append(own, r), append(want, r.Timestamp)
		return r
	}
	for i := range 40 {
		ts := base.Add(time.Duration(i) * 7777 * time.Microsecond)
		if i%2 == 1 {
			ts = mono.Add(time.Duration(i) * 7777 * time.Microsecond)
		}
		if i == 39 {
			ts = late
		}
		var key []byte
		if i%4 == 3 {
			key = []byte{byte(i)} // placed under the topic's lock
		}
		r := add(&record.Record{Topic: "t", Key: key, Value: []byte{byte(i)}, Timestamp: ts})
		if i < 20 {
			p.Produce(ctx, r, func(_ *record.Record, err error) { errs <- err })
			continue
		}
		require.NoError(t, p.ProduceSync(ctx, r))
	}
	require.NoError(t, p.Flush(ctx))
	for range 20 {
		require.NoError(t, <-errs)
	}
	batch := make([]*record.Record, 20)
	for i := range batch {
		batch[i] = add(&record.Record{Topic: "t", Value: []byte("b"), Timestamp: late.Add(time.Duration(i) * time.Microsecond)})
	}
	require.NoError(t, p.ProduceSync(ctx, batch...))
	whole := mono.Add(-123456) // whole milliseconds, with the monotonic reading
	kept := &record.Record{Topic: "t", Value: []byte("whole"), Timestamp: whole}
	require.NoError(t, p.ProduceSync(ctx, kept))
	sent = append(sent, kept)
	require.Equal(t, whole, kept.Timestamp, "whole milliseconds, left as they were")

	got := runneltest.ConsumeAll(t, b, "t")
	require.Len(t, got, len(sent))
	for i, r := range own {
		require.Equal(t, want[i].Truncate(time.Millisecond), r.Timestamp, "record %d: produced at %v", i, want[i])
		require.Same(t, want[i].Location(), r.Timestamp.Location(), "record %d", i)
		require.Equal(t, r.Timestamp.Round(0), r.Timestamp, "record %d: no monotonic reading", i)
	}
	for i, r := range sent {
		require.Equal(t, r.Value, got[i].Value, "record %d", i)
		require.True(t, r.Timestamp.Equal(got[i].Timestamp), "record %d: delivered %v, read back %v", i, r.Timestamp, got[i].Timestamp)
	}

	// Failed, before buffered: left as they were.
	for _, ts := range []time.Time{base, mono, late} {
		r := &record.Record{Topic: "t", Partition: 5, Timestamp: ts}
		mp := runneltest.NewProducer(t, b, producer.RecordPartitioner(producer.ManualPartitioner()))
		require.ErrorIs(t, mp.ProduceSync(ctx, r), producer.ErrInvalidPartition)
		require.Equal(t, ts, r.Timestamp)
	}
	early := time.Date(1969, 12, 31, 23, 59, 59, 999999999, where)
	r := &record.Record{Topic: "t", Timestamp: early}
	require.ErrorIs(t, p.ProduceSync(ctx, r), producer.ErrInvalidTimestamp)
	require.Equal(t, early, r.Timestamp)
}
