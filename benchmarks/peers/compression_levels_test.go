package peers

import (
	"context"
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestKgoReadsCompressionLevels: batches runnel's producer compressed at
// levels other than the codec's default (producer.CompressionLevel), as
// the broker stores them, are read by franz-go: kmsg parses each batch
// (its CRC-32C checked here), and kgo's DefaultDecompressor, through
// kfake.BatchRecords, decompresses its records, which are the ones
// produced. The zstd cases of thousands of records make frames of more
// than one block (runnel's zstd encoders stream them block by block,
// stating a window, since 2026-12-06).
func TestKgoReadsCompressionLevels(t *testing.T) {
	for _, tc := range []struct {
		codec   compression.Codec
		level   int
		records int
	}{
		{compression.Gzip, 1, 300}, {compression.Gzip, 9, 300},
		{compression.LZ4, 1, 300}, {compression.LZ4, 17, 300},
		{compression.Zstd, -7, 300}, {compression.Zstd, 1, 300}, {compression.Zstd, 19, 300},
		{compression.Zstd, 1, 4000}, {compression.Zstd, 3, 8000},
	} {
		t.Run(fmt.Sprintf("%v/level=%d/records=%d", tc.codec, tc.level, tc.records), func(t *testing.T) {
			b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
			p := runneltest.NewProducer(t, b, producer.Compression(tc.codec), producer.CompressionLevel(tc.level))
			var want []string
			var rs []*record.Record
			for i := range tc.records {
				v := fmt.Sprintf(`{"id":%d,"customer":"c-%03d","items":["book","pen"]}`, i*7919, i%97)
				want = append(want, v)
				rs = append(rs, &record.Record{Topic: "t", Value: []byte(v)})
			}
			if err := p.ProduceSync(context.Background(), rs...); err != nil {
				t.Fatal(err)
			}
			var got []string
			largest := 0 // the most value bytes in one batch
			// The producer may have made several batches, and a fetch
			// gives as many as fit: fetch from the next offset until all
			// are read.
			for len(got) < len(want) {
				resp, err := b.Fetch(context.Background(), &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", Offset: int64(len(got))}}})
				if err != nil || resp.Partitions[0].Err != nil {
					t.Fatalf("fetch: %v, %v", err, resp.Partitions[0].Err)
				}
				before := len(got)
				for batch, err := range record.Batches(resp.Partitions[0].Records) {
					if err != nil {
						t.Fatal(err)
					}
					var kb kmsg.RecordBatch
					if err := kb.ReadFrom(batch); err != nil {
						t.Fatalf("kmsg: %v", err)
					}
					if c := compression.Codec(kb.Attributes & 0x07); c != tc.codec {
						t.Fatalf("batch codec %v, want %v", c, tc.codec)
					}
					if crc := crc32.Checksum(batch[21:], crc32.MakeTable(crc32.Castagnoli)); uint32(kb.CRC) != crc {
						t.Fatalf("CRC %#x, kmsg read %#x", crc, uint32(kb.CRC))
					}
					recs, err := kfake.BatchRecords(kb)
					if err != nil {
						t.Fatalf("kgo's decompressor: %v", err)
					}
					values := 0
					for _, r := range recs {
						got = append(got, string(r.Value))
						values += len(r.Value)
					}
					largest = max(largest, values)
				}
				if len(got) == before {
					t.Fatalf("a fetch from offset %d gave no record", before)
				}
			}
			if tc.records > 300 && largest <= 128<<10 {
				t.Fatalf("no batch holds more than one zstd block: %d value bytes at most", largest)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("kgo read %d records, not the %d produced", len(got), len(want))
			}
		})
	}
}
