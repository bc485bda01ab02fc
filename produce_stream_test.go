package runnel_test

// The broker checks a produced compressed batch's records as
// they decompress, holding the codec's window or block and a small
// buffer, not the decompressed records (Kafka's LogValidator streams the
// check too). Figures are bytes allocated (runtime.MemStats.TotalAlloc),
// never times.

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
)

// produceStreamBound is what one Produce of a small compressed batch holding
// 16 MiB of records may allocate: the codec's window or block (zstd's
// 1 MiB window plus two blocks, lz4's 64 KiB block, gzip's 32 KiB
// window), a buffer for records, pooled decoders built on first use,
// and slack; a quarter of the records.
const produceStreamBound = 4 << 20

// A gzip, lz4 or zstd batch of a few KiB holding one 16 MiB record: one
// Produce allocates far less than the record, on a topic that deletes
// and on a compacted one (which reads every record's key), and the batch
// is stored (go test -run TestProduceStreams -v .).
func TestProduceStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("decompresses 16 MiB per case")
	}
	const size = 16 << 20
	b, err := runnel.Open(runnel.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	if err := b.CreateTopic(ctx, "delete", log.TopicConfig{Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateTopic(ctx, "compact", log.TopicConfig{Partitions: 1,
		Config: log.Config{CleanupPolicy: log.Compact}}); err != nil {
		t.Fatal(err)
	}
	val := make([]byte, size)
	for _, c := range []compression.Codec{compression.Gzip, compression.LZ4, compression.Zstd} {
		batch := memBatch(t, 1, []byte("k"), val, c)
		for _, topic := range []string{"delete", "compact"} {
			var perr error
			alloc := testkit.Allocated(func() {
				_, perr = b.Produce(ctx, &api.ProduceRequest{Topic: topic, Acks: api.AcksLeader, Batches: bytes.Clone(batch)})
			})
			if perr != nil {
				t.Fatalf("%v, %s: %v", c, topic, perr)
			}
			t.Logf("%v, %s: a batch of %d bytes holding %d MiB: the Produce allocated %.2f MB", c, topic, len(batch), size>>20, float64(alloc)/1e6)
			if alloc > produceStreamBound {
				t.Errorf("%v, %s: the Produce allocated %d bytes, more than %d: it holds the records, not the codec's window", c, topic, alloc, produceStreamBound)
			}
		}
	}
}

// Over the decode limit (64 MiB + 1 of records), a gzip, lz4 or zstd
// batch is refused with ErrRecordTooLarge, as before, without holding
// the records; on a compacted topic a key-less record does not change
// that verdict (decompression is judged first, as when the batch was
// decompressed whole).
func TestProduceTooLargeStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("decompresses 64 MiB per case")
	}
	b, err := runnel.Open(runnel.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	if err := b.CreateTopic(ctx, "compact", log.TopicConfig{Partitions: 1,
		Config: log.Config{CleanupPolicy: log.Compact}}); err != nil {
		t.Fatal(err)
	}
	val := make([]byte, compression.DefaultDecodeLimit+1)
	for _, c := range []compression.Codec{compression.Gzip, compression.LZ4, compression.Zstd} {
		batch := memBatch(t, 1, nil, val, c)
		var perr error
		alloc := testkit.Allocated(func() {
			_, perr = b.Produce(ctx, &api.ProduceRequest{Topic: "compact", Acks: api.AcksLeader, Batches: batch})
		})
		if !errors.Is(perr, log.ErrRecordTooLarge) {
			t.Fatalf("%v: a key-less batch over the decode limit: %v, want ErrRecordTooLarge", c, perr)
		}
		t.Logf("%v: a batch of %d bytes holding 64 MiB + 1: refused, %.2f MB allocated", c, len(batch), float64(alloc)/1e6)
		if alloc > produceStreamBound {
			t.Errorf("%v: refusing a batch over the limit allocated %d bytes, more than %d", c, alloc, produceStreamBound)
		}
	}
}
