package producer_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// Linger's doc: "A batch that reaches BatchMaxBytes ... is sent without
// waiting", as Kafka's Java producer sends a batch that is full
// (RecordAccumulator.ready: batch.isFull(), its bytes at batch.size) at
// once, whatever linger.ms. A batch exactly BatchMaxBytes long, or one
// with less room left than the smallest record takes (which no record can
// join), was not sent until its whole Linger passed, or until a record
// that did not fit came to close it.
func TestSynctestFullBatchDoesNotLinger(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra int // bytes of room past the three records
	}{
		{"exactly BatchMaxBytes", 0},
		// 3 bytes short of the next record's room: no record is that small
		// (the smallest, with a nil key and value, takes 7 bytes here).
		{"no room for the smallest record", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := bubbleBroker(t)
				ts := time.Now()
				mk := func() *record.Record {
					return &record.Record{Topic: "t", Value: []byte("0123456789"), Timestamp: ts}
				}
				max := encodedSize(t, mk(), mk(), mk()) + tc.extra
				p, err := producer.New(c, producer.Linger(time.Hour),
					producer.DeliveryTimeout(2*time.Hour), producer.BatchMaxBytes(max))
				require.NoError(t, err)
				defer p.Close()
				done := make(chan timedOutcome, 3)
				for range 3 {
					p.Produce(t.Context(), mk(), func(r *record.Record, err error) {
						done <- timedOutcome{time.Now(), err, r}
					})
				}
				for i := range 3 {
					o := <-done
					require.NoError(t, o.err)
					require.Equal(t, ts, o.at, "record %d: its full batch (BatchMaxBytes %d) lingered", i, max)
				}
				require.Equal(t, []time.Time{ts}, c.sent(), "one request, at once")
			})
		})
	}
}

// A batch that leaves because it is full says more records are coming:
// it is handed to the acker, as a batch with a successor is, and the next
// full batch goes without waiting for its acknowledgement (an fsync, here
// 100 ms). Sent at once on filling, nothing behind it yet, the partition's
// goroutine waited for that acknowledgement itself, and the next batches
// went only once it came: 0, 100, 100 ms where MaxInFlight(3) allows 0,
// 10, 20.
func TestSynctestFullBatchesPipelined(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ackAfter = 100 * time.Millisecond
		c := &ackLater{clockedClient: bubbleBroker(t), d: ackAfter}
		value := make([]byte, 20)
		p, err := producer.New(c, producer.Linger(time.Second), producer.MaxInFlight(3),
			// One record a batch, exactly: each batch is full at once.
			producer.BatchMaxBytes(record.HeaderSize+record.RecordSize(1<<20, 63, nil, value, nil)))
		require.NoError(t, err)
		defer p.Close()
		t0 := time.Now()
		outs := produceSpaced(t, p, value, 3, 10*time.Millisecond)
		for i, ch := range outs {
			o := <-ch
			require.NoError(t, o.err)
			require.Equal(t, t0.Add(time.Duration(10*i)*time.Millisecond+requestTime(ackAfter, int64(i))), o.at, "record %d", i)
		}
		require.Equal(t, []time.Time{t0, t0.Add(10 * time.Millisecond), t0.Add(20 * time.Millisecond)}, c.sent())
	})
}

// A batch is full when not even the smallest record fits in the room
// left at the batch's next offset delta. full answers that from the
// room alone when the room holds the smallest record at any offset delta
// (the hot path, one comparison a record); it must answer as sizing the
// record does at every room and offset delta, across each varint length
// of the delta.
func TestBatchFullAtEveryRoom(t *testing.T) {
	const max = 1 << 20
	smallest := record.BodySize(nil, nil, nil)
	for _, live := range []int{1, 2, 63, 64, 65, 8191, 8192, 1<<20 - 1, 1 << 20} {
		for room := range 40 {
			want := record.SizeWithDeltas(smallest, 0, int64(live)) > room
			if got := producer.BatchFull(max-room, live, max); got != want {
				t.Errorf("%d records, %d bytes of room: full %v, want %v", live, room, got, want)
			}
		}
	}
}
