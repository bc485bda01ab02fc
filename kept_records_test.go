package runnel_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestKeptRecordsOutliveTheirLog checks package consumer's promise that
// a record's Key, Value and header values stay valid, unchanged, for as
// long as the record is referenced, whatever happens to the log it was
// read from, on both file systems: on the in-memory FS they are views of
// the log's memory, on the OS's a read into fresh memory. Records kept
// from a consumer must read the same after the log under them was
// compacted (its segments swapped for cleaned ones), lost its segments
// to DeleteRecords and retention, was closed and opened again by a config
// change, and after the topic was deleted and created again under its
// name, each step followed by appends of records of the same sizes, which
// on the in-memory FS may take the very positions the kept ones had, and
// a garbage collection; and after the broker closed. At each step the
// records read anew are those of the log as it is: no bytes of another
// record, or of the old topic.
func TestKeptRecordsOutliveTheirLog(t *testing.T) {
	for _, fs := range []string{"mem", "os"} {
		t.Run(fs, func(t *testing.T) {
			dir := ""
			if fs == "os" {
				dir = t.TempDir()
			}
			keptRecordsOutliveTheirLog(t, dir)
		})
	}
}

// keptRecord is a record kept from a consumer, and what it read then.
type keptRecord struct {
	r                 *record.Record
	key, value, hdval []byte
	offset            int64
}

func keptRecordsOutliveTheirLog(t *testing.T, dir string) {
	ctx := context.Background()
	const topic = "kept"
	cfg := log.TopicConfig{Partitions: 1, Config: log.Config{
		SegmentBytes:           1 << 10,
		CleanupPolicy:          log.Compact | log.Delete,
		MinCleanableDirtyRatio: -1, // clean whatever is dirty
	}}
	b := runneltest.NewBroker(t, runneltest.Config(runnel.Config{Dir: dir}), runneltest.TopicConfig(topic, cfg))

	const keys = 24
	// round produces a record per key, tagged with round r: the same sizes
	// in every round, half of them in snappy batches.
	round := func(r int) {
		t.Helper()
		for _, codec := range []compression.Codec{compression.None, compression.Snappy} {
			p := runneltest.NewProducer(t, b, producer.Compression(codec), producer.Linger(0))
			var recs []*record.Record
			for k := range keys / 2 {
				if codec != compression.None {
					k += keys / 2
				}
				recs = append(recs, &record.Record{
					Topic:   topic,
					Key:     fmt.Appendf(nil, "key-%02d", k),
					Value:   fmt.Appendf(nil, "round-%02d-key-%02d-%s", r, k, strings.Repeat("v", 40)),
					Headers: []record.Header{{Key: "h", Value: fmt.Appendf(nil, "header-%02d-%02d", r, k)}},
				})
			}
			require.NoError(t, p.ProduceSync(ctx, recs...))
			require.NoError(t, p.Close())
		}
	}
	// read reads the whole topic and checks that each record is one that
	// round of the records' key produced: of the latest round, for every
	// key, when latest is not 0.
	read := func(latest int) []*record.Record {
		t.Helper()
		recs := runneltest.ConsumeAll(t, b, topic)
		for _, r := range recs {
			var rd, k int
			_, err := fmt.Sscanf(string(r.Value), "round-%02d-key-%02d-", &rd, &k)
			require.NoError(t, err, "offset %d: value %q", r.Offset, r.Value)
			require.Equal(t, fmt.Sprintf("key-%02d", k), string(r.Key), "offset %d: the key of another record", r.Offset)
			require.Len(t, r.Headers, 1)
			require.Equal(t, fmt.Sprintf("header-%02d-%02d", rd, k), string(r.Headers[0].Value), "offset %d", r.Offset)
			if latest > 0 {
				require.Equal(t, latest, rd, "offset %d: a record of an older round, or of the old topic", r.Offset)
			}
		}
		return recs
	}
	var kept []keptRecord
	keep := func(recs []*record.Record) {
		for _, r := range recs {
			kept = append(kept, keptRecord{r: r, key: bytes.Clone(r.Key), value: bytes.Clone(r.Value),
				hdval: bytes.Clone(r.Headers[0].Value), offset: r.Offset})
		}
	}
	check := func(step string) {
		t.Helper()
		runtime.GC()
		for _, k := range kept {
			require.Equal(t, k.offset, k.r.Offset, "%s: a kept record's offset changed", step)
			require.Equal(t, string(k.key), string(k.r.Key), "%s: the key of a record kept from offset %d changed", step, k.offset)
			require.Equal(t, string(k.value), string(k.r.Value), "%s: the value of a record kept from offset %d changed", step, k.offset)
			require.Equal(t, string(k.hdval), string(k.r.Headers[0].Value), "%s: a header of a record kept from offset %d changed", step, k.offset)
		}
	}

	round(1)
	round(2)
	keep(read(0))
	require.Len(t, kept, 2*keys)

	// Compaction: round 2 supersedes round 1, whose segments are swapped
	// for cleaned ones.
	require.NoError(t, b.Maintain(ctx))
	round(3)
	require.NoError(t, b.Maintain(ctx))
	check("compaction")
	recs := read(0)
	require.Less(t, len(recs), 3*keys, "compaction removed superseded records")
	keep(recs)

	// DeleteRecords, and retention removing the segments below the start.
	_, err := b.DeleteRecords(ctx, topic, 0, api.Latest)
	require.NoError(t, err)
	require.NoError(t, b.Maintain(ctx))
	info, err := b.DescribeTopic(ctx, topic)
	require.NoError(t, err)
	require.EqualValues(t, 3*keys, info.Partitions[0].LogStartOffset)
	require.Less(t, info.Partitions[0].Size, int64(1<<10), "the segments below the log start went")
	round(4)
	check("delete records")
	keep(read(4))

	// A config change: the log closed and opened again.
	require.NoError(t, b.UpdateTopicConfig(ctx, topic, func(c *log.Config) { c.SegmentBytes = 2 << 10 }))
	round(5)
	check("reopen")
	keep(read(0))

	// The topic deleted and created again, and filled with records of the
	// same sizes.
	require.NoError(t, b.DeleteTopic(ctx, topic))
	runneltest.CreateTopic(t, b, topic, cfg)
	round(6)
	check("topic created again")
	read(6)
	round(7)
	require.NoError(t, b.Maintain(ctx))
	check("compaction of the new topic")
	recs = read(0)
	require.Less(t, len(recs), 2*keys, "compaction removed superseded records")
	keep(recs)

	// The broker closed: its logs' files closed (on disk) and their
	// memory let go (in memory).
	require.NoError(t, b.Close())
	check("broker closed")
}
