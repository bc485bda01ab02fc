package runnel

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// produceSeeds are produce requests' batches: of each codec, several
// batches, an idempotent producer's, and broken ones (cut, a bad CRC, a
// record that does not decode, a control batch, a base offset set, bytes
// after).
func produceSeeds(t testing.TB) [][]byte {
	build := func(codec compression.Codec, setup func(*record.Builder), vs ...string) []byte {
		var b record.Builder
		b.Reset()
		if setup != nil {
			setup(&b)
		}
		for i, v := range vs {
			var hs []record.Header
			if i%2 == 1 {
				hs = []record.Header{{Key: "h", Value: []byte(v)}}
			}
			b.Append(1_700_000_000_000+int64(i), []byte("k-"+v), []byte(v), hs)
		}
		out, err := b.AppendTo(nil, codec)
		require.NoError(t, err)
		return out
	}
	var seeds [][]byte
	for _, c := range []compression.Codec{compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd} {
		seeds = append(seeds, build(c, nil, "a", "b", "c"))
	}
	one := build(compression.None, nil, "x")
	badCRC := bytes.Clone(one)
	badCRC[len(badCRC)-1] ^= 1
	ctl := bytes.Clone(one)
	ctl[22] |= byte(record.AttrControl)
	record.Batch(ctl).UpdateCRC()
	off := bytes.Clone(one)
	record.Batch(off).SetBaseOffset(3)
	seeds = append(seeds,
		append(bytes.Clone(one), build(compression.Zstd, nil, "y", "z")...),
		build(compression.None, func(b *record.Builder) { b.SetProducer(5, 0, 0) }, "p", "q"),
		one[:len(one)-2], append(bytes.Clone(one), 0, 0, 0, 9), badCRC, ctl, off,
		malformedRecordBatch(t), nil,
	)
	return seeds
}

// produceErrors are the errors Produce documents for batches it refuses.
var produceErrors = []error{log.ErrRecordTooLarge, log.ErrInvalidRecord, record.ErrCorrupt, log.ErrOutOfOrderSequence, log.ErrProducerFenced}

// FuzzProduce: a producer's batches, any bytes, produced to a topic
// (delete or compact policy, CreateTime or LogAppendTime). Produce either
// refuses them with one of its documented errors, which has a Kafka error
// code (not UNKNOWN_SERVER_ERROR: a client can tell what was wrong), and
// the partition stays empty; or takes them whole, and a fetch returns the
// records sent, offsets from 0 on, key, value and headers as sent.
func FuzzProduce(f *testing.F) {
	for _, s := range produceSeeds(f) {
		f.Add(s, uint8(0))
		f.Add(s, uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		ctx := context.Background()
		cfg := log.Config{MaxMessageBytes: 1 << 16}
		if mode&1 != 0 {
			cfg.CleanupPolicy = log.Compact
		}
		if mode&2 != 0 {
			cfg.TimestampType = log.LogAppendTime
		}
		b, err := Open(Config{})
		require.NoError(t, err)
		defer func() { b.Close() }()
		require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: cfg}))
		sent := bytes.Clone(data)
		resp, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: data})
		fetch := func() api.FetchedPartition {
			out, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: 1 << 20, Partitions: []api.FetchPartition{{Topic: "t", MaxBytes: 1 << 20}}})
			require.NoError(t, err)
			require.NoError(t, out.Partitions[0].Err)
			return out.Partitions[0]
		}
		if err != nil {
			matched := false
			for _, want := range produceErrors {
				matched = matched || errors.Is(err, want)
			}
			require.True(t, matched, "undocumented error %v", err)
			require.NotEqual(t, int16(-1), api.Code(err), "%v has no Kafka error code", err)
			require.Equal(t, int64(-1), resp.BaseOffset)
			fp := fetch()
			require.Zero(t, fp.HighWatermark, "a refused produce appended")
			require.Empty(t, fp.Records)
			return
		}
		require.Equal(t, int64(0), resp.BaseOffset)
		var want []*record.Record
		for bt, err := range record.Batches(sent) {
			require.NoError(t, err)
			for r, err := range bt.Records() {
				require.NoError(t, err)
				want = append(want, r)
			}
		}
		fp := fetch()
		require.Equal(t, int64(len(want)), fp.HighWatermark)
		var got []*record.Record
		for bt, err := range record.Batches(fp.Records) {
			require.NoError(t, err)
			for r, err := range bt.Records() {
				require.NoError(t, err)
				got = append(got, r)
			}
		}
		require.Len(t, got, len(want))
		for i, r := range got {
			w := want[i]
			require.Equal(t, int64(i), r.Offset)
			require.Equal(t, w.Key, r.Key, "offset %d", i)
			require.Equal(t, w.Key == nil, r.Key == nil, "offset %d", i)
			require.Equal(t, w.Value, r.Value, "offset %d", i)
			require.Equal(t, w.Value == nil, r.Value == nil, "offset %d", i)
			require.Equal(t, len(w.Headers), len(r.Headers), "offset %d", i)
			for j := range w.Headers {
				require.Equal(t, w.Headers[j].Key, r.Headers[j].Key, "offset %d", i)
				require.Equal(t, w.Headers[j].Value, r.Headers[j].Value, "offset %d", i)
			}
		}
	})
}
