package consumer_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// A fetch that begins near the end of a large batch (a Records loop that
// broke there, At, AtTime, DeleteRecords) allocates records for what it
// returns, not for the whole batch: the records of one batch are
// allocated together, and one kept record keeps them all alive. Before,
// the slab was sized by the batch's record count, so resuming a loop one
// record at a time in a batch of n records allocated n records per
// record read.
func TestFetchNearBatchEndAllocatesWhatItReturns(t *testing.T) {
	const n = 1000
	b := openBroker(t, map[string]int{"t": 1})
	recs := make([]rec, n)
	for i := range recs {
		recs[i] = rec{value: fmt.Sprint("v", i)}
	}
	for _, codec := range []compression.Codec{compression.None, compression.Zstd} {
		t.Run(codec.String(), func(t *testing.T) {
			base := produce(t, b, "t", 0, codec, recs...)
			c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond))
			require.NoError(t, c.Assign("t", 0, consumer.At(base+n-2)))
			fs, err := c.Poll(testCtx(t))
			require.NoError(t, err)
			require.NoError(t, fs.Err())
			require.Len(t, fs, 1)

			const rounds = 20
			var kept []*record.Record
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for range rounds {
				for r, err := range fs.Records() {
					require.NoError(t, err)
					kept = append(kept, r)
				}
			}
			runtime.ReadMemStats(&after)
			require.Len(t, kept, 2*rounds)
			require.Equal(t, fmt.Sprint("v", n-1), string(kept[len(kept)-1].Value))
			// The records returned, and room for the decompressed batch:
			// far less than a slab of n records per round.
			records := uint64(unsafe.Sizeof(record.Record{})) * n
			got := after.TotalAlloc - before.TotalAlloc
			limit := rounds * (records/10 + 2*uint64(len(fs[0].Batches)))
			if codec != compression.None {
				limit += rounds * 64 << 10 // decompression buffers
			}
			require.Less(t, got, limit, "bytes allocated over %d rounds of 2 records (a slab of %d records is %d bytes)", rounds, n, records)
		})
	}
}
