package producer

// With a codec, the batches being sent hold their compressed copy, not
// also their records encoded. The heap is measured after the
// collector (leakcheck.LiveHeap), never a time.

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
)

// With values that compress, a batch being sent holds its compressed
// copy only: its records' encoding goes back to the pool once the batch
// is compressed (it is not needed again: a retry sends the compressed
// bytes, and a batch sealed again is encoded again from its records).
// Before, a sending partition's record.Builder held both, so that
// a codec held more than no codec, whatever the values: 64 partitions
// held by a slow broker, a 64 KiB batch of text-like 4 KiB values each
// (go test -run TestCompressedBatchHoldsItsCompressedCopy -v
// ./producer).
func TestCompressedBatchHoldsItsCompressedCopy(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes 4 MiB five times")
	}
	const maxBytes = bufRunMaxBytes
	for _, codec := range []compression.Codec{compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd} {
		t.Run(codec.String(), func(t *testing.T) {
			c := newSlowBrokerClient(bufRunParts)
			p, grown, finish := bufferRun(t, c, codec, func() bool { return c.held.Load() == bufRunParts }, func(part int32, i int) []byte {
				v := make([]byte, 0, bufRunValSize)
				for len(v) < bufRunValSize {
					v = fmt.Appendf(v, `{"partition":%d,"record":%d,"len":%d,"status":"ok"}`+"\n", part, i, len(v))
				}
				return v[:bufRunValSize]
			})
			t.Logf("%v: %d records buffered, the heap grew by %.2f MB", codec, p.BufferedRecords(), float64(grown)/1e6)
			// No codec: the records encoded, up to MaxBufferedBytes. A
			// codec: their compressed copy alone, well under it (and the
			// growth of the codec's coders: zstd's second one, say, with
			// two batches compressed at once), but for snappy, which
			// reserves its worst case (a sixth more than the records
			// encoded) for each batch.
			var bound int64
			switch codec {
			case compression.None:
				bound = maxBytes + 1<<20
			case compression.Snappy:
				bound = maxBytes + maxBytes/4 + 1<<20
			default:
				bound = maxBytes / 2
			}
			if grown > bound {
				t.Errorf("the heap grew by %d bytes, more than the batches' %v encoding takes (%d, with slack)", grown, codec, bound)
			}
			close(c.release)
			finish(t)
		})
	}
}

// ackWaitClient is slowBrokerClient as an AsyncClient: ProduceAsync
// appends at once, and each Ack waits until release is closed (an fsync
// that hangs).
type ackWaitClient struct {
	*slowBrokerClient
	waiting atomic.Int64 // Ack.Wait calls
}

type waitedAck struct{ c *ackWaitClient }

func (c *ackWaitClient) ProduceAsync(context.Context, *api.ProduceRequest) (api.ProduceResponse, api.Ack, error) {
	return api.ProduceResponse{BaseOffset: 0, LogAppendTime: -1}, waitedAck{c}, nil
}

func (a waitedAck) Wait(ctx context.Context) error {
	a.c.waiting.Add(1)
	a.c.notify()
	select {
	case <-a.c.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// What a partition sending small batches costs, which the docs count as
// about 1 KiB (its state) and 5 KiB (its goroutine's) besides the
// records' encoding, with a Client and with an AsyncClient whose
// acknowledgements wait (the embedded broker's, for an fsync): there a
// second goroutine per partition, the acker, waits for them while the
// partition's goroutine goes on. 1000 partitions, three records each in
// batches of one (the third lingering), the heap and the goroutines'
// stacks after the collector, a partition: Client 2.8 KB of heap and
// 4.1 KB of stack, AsyncClient 4.1 KB and 7.9 KB: the acker and what it
// is handed take some 5 KB a partition that the docs did not count (go
// test -run TestMemoryPerSendingPartitionWithAcker -v ./producer).
func TestMemoryPerSendingPartitionWithAcker(t *testing.T) {
	const parts = 1000
	for _, async := range []bool{false, true} {
		t.Run(fmt.Sprintf("async=%v", async), func(t *testing.T) {
			base := newSlowBrokerClient(parts)
			var c Client = base
			ac := &ackWaitClient{slowBrokerClient: base}
			if async {
				c = ac
			}
			p, err := New(c, RecordPartitioner(ManualPartitioner()), BatchMaxBytes(200), Linger(time.Minute), MaxBufferedRecords(1<<20))
			if err != nil {
				t.Fatal(err)
			}
			v := make([]byte, 100) // one a batch
			var recs []*record.Record
			for part := range int32(parts) {
				for range 3 {
					recs = append(recs, &record.Record{Topic: "t", Partition: part, Value: v})
				}
			}
			heap0, stack0 := heapAndStacks()
			finish := produceAllHeld(context.Background(), p, recs)
			if async {
				base.waitFor(t, "every partition's first acknowledgement waited for", func() bool { return ac.waiting.Load() >= parts })
			} else {
				base.waitFor(t, "every partition's batch held", func() bool { return base.held.Load() == parts })
			}
			heap1, stack1 := heapAndStacks()
			heap, stack := (heap1-heap0)/parts, (stack1-stack0)/parts
			t.Logf("async %v: %d B of heap, %d B of stack a partition", async, heap, stack)
			if heap+stack > 24<<10 {
				t.Errorf("%d B a partition sending, more than 24 KiB", heap+stack)
			}
			close(base.release)
			finish(t)
		})
	}
}

// heapAndStacks returns the live heap and the goroutines' stacks after two
// collections.
func heapAndStacks() (heap, stack int64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc), int64(ms.StackInuse)
}
