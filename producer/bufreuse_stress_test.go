package producer_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// heldClient checks that the bytes of a produce request stay the
// producer's own for the whole call: it copies req.Batches as the call
// begins, lets the other goroutines run for a while (a request in
// flight), fails some requests before the append (retriable: the same
// bytes are sent again) and loses the answer of others after it (the
// retry is a duplicate), and reports any byte of the records that
// changed meanwhile — a builder or batch handed back to the producer's
// pools, and to another partition, while its request was in flight.
type heldClient struct {
	faultyBroker
	*dice
	changed atomic.Int64
	calls   atomic.Int64
}

func newHeldClient(b *runnel.Broker, d *dice) *heldClient {
	c := &heldClient{dice: d}
	c.faultyBroker = faultyBroker{Broker: b, fault: c.fault, watch: c.hold}
	return c
}

// hold copies the request's records (the broker rewrites only the
// header: offsets, timestamps, CRC) and yields; what it returns yields
// again and compares them.
func (c *heldClient) hold(req *api.ProduceRequest) func() {
	c.calls.Add(1)
	kept := bytes.Clone(req.Batches[record.HeaderSize:])
	for range 1 + c.roll(8) {
		runtime.Gosched()
	}
	return func() {
		for range c.roll(4) {
			runtime.Gosched()
		}
		if !bytes.Equal(req.Batches[record.HeaderSize:], kept) {
			c.changed.Add(1)
		}
	}
}

// fault is the injected error, and whether it comes after the append.
func (c *heldClient) fault() (error, bool) {
	switch c.roll(12) {
	case 0:
		return api.ErrNotEnoughReplicas, false
	case 1:
		return api.ErrRequestTimedOut, true
	}
	return nil, false
}

// TestBuffersNotReusedInFlight produces to many partitions at once (so
// that the builders and batches the partitions hand back to the shared
// pools while they wait — for records, a linger, their requests in
// flight — go to other partitions at once) through heldClient, with one
// request and five in flight, with and without compression, batches
// split after ErrRecordTooLarge (a small max.message.bytes), retries of
// the same bytes and lingers. It checks that no request's bytes changed
// during its call, that every promise ran once, and that each record
// acknowledged is in its partition's log, at its offset, intact (its
// value names its partition and index and is filled with a byte of its
// own). With -race a buffer written by one partition while another's
// request reads it is a race too.
func TestBuffersNotReusedInFlight(t *testing.T) {
	const parts = 32
	perPart := 120
	if testing.Short() {
		perPart = 40
	}
	for _, tc := range []struct {
		inFlight int
		codec    compression.Codec
		linger   time.Duration
	}{
		{1, compression.None, 0},
		{5, compression.None, 0},
		{5, compression.Snappy, 200 * time.Microsecond},
		{1, compression.Snappy, 200 * time.Microsecond},
	} {
		t.Run(fmt.Sprintf("MaxInFlight=%d/%v/linger=%v", tc.inFlight, tc.codec, tc.linger), func(t *testing.T) {
			b := runneltest.NewBroker(t, runneltest.TopicConfig("t", log.TopicConfig{Partitions: parts,
				Config: log.Config{MaxMessageBytes: 3000, Sync: log.SyncNever}}))
			c := newHeldClient(b, newDice(7, uint64(tc.inFlight)))
			p, err := producer.New(c, producer.DefaultTopic("t"), producer.RecordPartitioner(producer.ManualPartitioner()), producer.MaxInFlight(tc.inFlight),
				producer.Compression(tc.codec), producer.Linger(tc.linger),
				producer.RetryBackoff(50*time.Microsecond), producer.BatchMaxBytes(6000))
			require.NoError(t, err)
			defer p.Close()

			type out struct {
				calls atomic.Int32
				err   error
				part  int32
				off   int64
			}
			outs := make([][]out, parts)
			var wg sync.WaitGroup
			for part := range int32(parts) {
				outs[part] = make([]out, perPart)
				rnd := newDice(7, uint64(1000+part))
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range perPart {
						o := &outs[part][i]
						fill := byte('a' + (int(part)+i)%26)
						v := append([]byte(fmt.Sprintf("%d-%d|", part, i)), bytes.Repeat([]byte{fill}, 30+rnd.roll(400))...)
						r := &record.Record{Partition: part, Value: v}
						p.Produce(context.Background(), r, func(r *record.Record, err error) {
							if o.calls.Add(1) != 1 {
								return
							}
							o.err, o.part, o.off = err, r.Partition, r.Offset
						})
						if rnd.roll(16) == 0 {
							runtime.Gosched()
						}
					}
				}()
			}
			wg.Wait()
			require.NoError(t, p.Flush(testCtx(t)))
			require.Zero(t, c.changed.Load(), "requests whose bytes changed during the call, of %d", c.calls.Load())

			for part := range int32(parts) {
				inLog := map[int64]*record.Record{}
				for _, r := range readRecords(t, b, "t", part) {
					inLog[r.Offset] = r
				}
				for i := range perPart {
					o := &outs[part][i]
					require.EqualValues(t, 1, o.calls.Load(), "promise of %d-%d", part, i)
					require.NoError(t, o.err, "%d-%d", part, i)
					require.Equal(t, part, o.part, "%d-%d", part, i)
					r := inLog[o.off]
					require.NotNil(t, r, "%d-%d acknowledged at %d, not in the log", part, i, o.off)
					id, rest, _ := bytes.Cut(r.Value, []byte("|"))
					require.Equal(t, fmt.Sprintf("%d-%d", part, i), string(id), "partition %d offset %d", part, o.off)
					fill := byte('a' + (int(part)+i)%26)
					require.Equal(t, len(rest), bytes.Count(rest, []byte{fill}), "%d-%d's value damaged", part, i)
				}
			}
		})
	}
}
