package producer

// Prod46mem: with a codec, the batches being sent hold their compressed
// copy, not also their records encoded. The heap is measured after the
// collector (leakcheck.LiveHeap), never a time.

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/leakcheck"
	"github.com/runnel/runnel/record"
)

// With values that compress, a batch being sent holds its compressed
// copy only: its records' encoding goes back to the pool once the batch
// is compressed (it is not needed again: a retry sends the compressed
// bytes, and a batch sealed again is encoded again from its records).
// Before prod46 a sending partition's record.Builder held both, so that
// a codec held more than no codec, whatever the values: 64 partitions
// held by a slow broker, a 64 KiB batch of text-like 4 KiB values each
// (go test -run TestProd46MemCompressedBatchHoldsItsCompressedCopy -v
// ./producer).
func TestProd46MemCompressedBatchHoldsItsCompressedCopy(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes 4 MiB five times")
	}
	const (
		parts    = 64
		maxBytes = 4 << 20
		batchMax = 64 << 10
		valSize  = 4 << 10
	)
	for _, codec := range []compression.Codec{compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd} {
		t.Run(codec.String(), func(t *testing.T) {
			// The codec's shared coders come before the baseline.
			if _, err := codec.AppendEncode(nil, make([]byte, batchMax)); err != nil {
				t.Fatal(err)
			}
			c := newReview45Client(parts)
			p, err := New(c, RecordPartitioner(ManualPartitioner()), MaxBufferedBytes(maxBytes),
				BatchMaxBytes(batchMax), Linger(time.Minute), Compression(codec), RetryBackoff(time.Millisecond),
				MaxBufferedRecords(1<<20))
			if err != nil {
				t.Fatal(err)
			}
			// A full batch for each partition and one record more, which
			// does not fit in the buffer: the last Produce calls wait for
			// space, and every partition's full batch goes.
			per := (batchMax-record.HeaderSize)/(valSize+16) + 1
			var recs []*record.Record
			for part := range int32(parts) {
				for i := range per {
					v := make([]byte, 0, valSize)
					for len(v) < valSize {
						v = fmt.Appendf(v, `{"partition":%d,"record":%d,"len":%d,"status":"ok"}`+"\n", part, i, len(v))
					}
					recs = append(recs, &record.Record{Topic: "t", Partition: part, Value: v[:valSize]})
				}
			}
			ctx := context.Background()
			base := leakcheck.LiveHeap()
			finish := review45ProduceAll(ctx, p, recs)
			c.waitFor(t, "every partition's batch held", func() bool { return c.held.Load() == parts })
			grown := leakcheck.LiveHeap() - base
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
