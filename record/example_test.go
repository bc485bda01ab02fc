package record_test

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
)

// A batch as a producer builds it: records with keys, values, headers and
// timestamps (Unix milliseconds), compressed as one block. The batch's
// header says what it holds before a record is decoded; Records decodes
// them, with the offsets a broker assigns by rewriting the base offset.
func ExampleBuilder() {
	const t0 = 1_700_000_000_000 // 2023-11-14T22:13:20Z
	var b record.Builder
	b.Append(t0, []byte("user-1"), []byte("login"), []record.Header{{Key: "trace", Value: []byte("a1")}})
	b.Append(t0+250, []byte("user-2"), []byte("login"), nil)
	b.Append(t0+100, []byte("user-1"), nil, nil) // a null value: a tombstone
	batch, err := b.Finish(compression.Zstd)
	if err != nil {
		panic(err)
	}
	fmt.Println(batch.Codec(), batch.NumRecords(), "records, max timestamp", batch.MaxTimestamp()-t0, "ms after the first")

	batch.SetBaseOffset(100) // what a broker does on append: the CRC does not cover it
	for r, err := range batch.Records() {
		if err != nil {
			panic(err)
		}
		fmt.Printf("%d %s %s key=%s value=%q null=%t headers=%v\n", r.Offset,
			r.Timestamp.UTC().Format(time.RFC3339Nano), r.TimestampType, r.Key, r.Value, r.Value == nil, r.Headers)
	}
	// Output:
	// zstd 3 records, max timestamp 250 ms after the first
	// 100 2023-11-14T22:13:20Z CreateTime key=user-1 value="login" null=false headers=[{trace [97 49]}]
	// 101 2023-11-14T22:13:20.25Z CreateTime key=user-2 value="login" null=false headers=[]
	// 102 2023-11-14T22:13:20.1Z CreateTime key=user-1 value="" null=true headers=[]
}

// A batch read from bytes that cannot be trusted (a file, the network):
// Parse checks its framing, Validate its CRC. Both report bad bytes as a
// *record.CorruptError that says where and what, matching ErrCorrupt, and
// ErrTruncated too when the bytes end inside the batch.
func ExampleBatch_Validate() {
	var b record.Builder
	b.Append(1_700_000_000_000, []byte("k"), []byte("v"), nil)
	data, err := b.AppendTo(nil, compression.None)
	if err != nil {
		panic(err)
	}

	batch, err := record.Parse(data, 0)
	fmt.Println(len(batch), err, batch.Validate(0))

	data[len(data)-1] ^= 0xff // a bit flipped in the last record
	err = batch.Validate(0)
	var corrupt *record.CorruptError
	if errors.As(err, &corrupt) {
		fmt.Printf("at %d: %s (ErrCorrupt %t)\n", corrupt.Position, corrupt.Reason, errors.Is(err, record.ErrCorrupt))
	}

	_, err = record.Parse(data[:40], 4096) // a torn write: the batch at 4096 of its file ends early
	fmt.Println(err)
	fmt.Println(errors.Is(err, record.ErrCorrupt), errors.Is(err, record.ErrTruncated))
	// Output:
	// 70 <nil> <nil>
	// at 0: CRC mismatch (ErrCorrupt true)
	// runnel/record: corrupt batch at position 4096: batch extends past the end of the data: runnel/record: truncated batch
	// true true
}

// The batches of a segment's .log file (Kafka's or runnel's) lie end to
// end: Batches walks them, checking each one's framing, and a reader that
// cannot trust the file checks each CRC with Validate at the batch's
// position, the sum of the sizes before it. A torn tail, a batch cut short
// by a crash, ends the walk with an error matching ErrTruncated.
func ExampleBatches() {
	var b record.Builder
	var file []byte
	for i, codec := range []compression.Codec{compression.None, compression.LZ4, compression.Zstd} {
		b.Reset()
		b.Append(1_700_000_000_000, fmt.Appendf(nil, "k%d", i), []byte("first"), nil)
		b.Append(1_700_000_000_000, fmt.Appendf(nil, "k%d", i), []byte("second"), nil)
		var err error
		start := len(file)
		if file, err = b.AppendTo(file, codec); err != nil {
			panic(err)
		}
		record.Batch(file[start:]).SetBaseOffset(int64(2 * i)) // as a log assigns them
	}
	file = file[:len(file)-5] // a crash tore the last write

	pos := int64(0)
	for batch, err := range record.Batches(file) {
		if err != nil {
			// The error's position is where the torn batch starts (pos,
			// whatever size the compressed batches before it came to).
			var corrupt *record.CorruptError
			if errors.As(err, &corrupt) {
				fmt.Println("stop:", errors.Is(err, record.ErrTruncated), corrupt.Position == pos, corrupt.Reason)
			}
			break
		}
		if err := batch.Validate(pos); err != nil {
			panic(err)
		}
		for r, err := range batch.Records() {
			if err != nil {
				panic(err)
			}
			fmt.Printf("position %d offset %d: %s=%s\n", pos, r.Offset, r.Key, r.Value)
		}
		pos += int64(batch.Size())
	}
	// Output:
	// position 0 offset 0: k0=first
	// position 0 offset 1: k0=second
	// position 90 offset 2: k1=first
	// position 90 offset 3: k1=second
	// stop: true true batch extends past the end of the data
}

// RecordIter decodes into one Record the caller reuses, for scans that
// allocate nothing per record. Err tells the end of the batch from a
// record that does not decode.
func ExampleBatch_Iter() {
	var b record.Builder
	for i := range 3 {
		b.Append(1_700_000_000_000+int64(i), []byte("sensor-7"), fmt.Appendf(nil, "%d", 20+i), nil)
	}
	batch, err := b.Finish(compression.Snappy)
	if err != nil {
		panic(err)
	}

	it, err := batch.Iter(0, 1<<20) // decompress at most 1 MiB of records
	if err != nil {
		panic(err)
	}
	it.SkipHeaders()
	var r record.Record
	sum := 0
	for it.Next(&r) {
		v, err := strconv.Atoi(string(r.Value))
		if err != nil {
			panic(err)
		}
		sum += v
	}
	if err := it.Err(); err != nil {
		panic(err)
	}
	fmt.Println("sum", sum, "of", batch.NumRecords(), "readings; last at offset", r.Offset)
	// Output:
	// sum 63 of 3 readings; last at offset 2
}

// A segment written by Apache Kafka (the KRaft metadata partition of a
// broker, from the repository's testdata): its .log file is batches end to
// end, read as runnel reads its own.
func Example_kafkaSegment() {
	data, err := os.ReadFile("../testdata/kafka-segments/a/__cluster_metadata-0/00000000000000000000.log")
	if err != nil {
		panic(err)
	}
	pos := int64(0)
	for batch, err := range record.Batches(data) {
		if err != nil {
			panic(err)
		}
		fmt.Printf("position %d: offsets %d to %d, leader epoch %d, CRC check %v\n",
			pos, batch.BaseOffset(), batch.LastOffset(), batch.LeaderEpoch(), batch.Validate(pos))
		for r, err := range batch.Records() {
			if err != nil {
				panic(err)
			}
			fmt.Printf("  %d %s null key %t, %d bytes of value\n", r.Offset, r.Timestamp.UTC().Format(time.RFC3339Nano), r.Key == nil, len(r.Value))
		}
		pos += int64(batch.Size())
	}
	// Output:
	// position 0: offsets 0 to 0, leader epoch 1, CRC check <nil>
	//   0 2024-09-11T09:12:23.832Z null key true, 23 bytes of value
	// position 91: offsets 1 to 3, leader epoch 1, CRC check <nil>
	//   1 2024-09-11T09:12:37.397Z null key true, 24 bytes of value
	//   2 2024-09-11T09:12:37.397Z null key true, 65 bytes of value
	//   3 2024-09-11T09:12:37.397Z null key true, 65 bytes of value
}
