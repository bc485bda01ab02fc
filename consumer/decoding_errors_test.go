package consumer_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestFetchFramingError: a Fetch whose Batches hold a good batch
// and then bytes that are no batch (a length field below the header
// size: record.Parse refuses it, and nothing after it can be framed)
// reports the bad bytes, as it reports a batch whose records do not
// decode. Records yields the good batch's records and then (nil, err);
// EachRecord calls fn with them and keeps err for Fetches.Err. Poll's
// fetches are framed already (Poll cuts what does not frame), so only a
// Fetch made otherwise, as a test of a consumer loop makes one, has such
// bytes: its iterators ended there without a word, as if the fetch held
// nothing more.
func TestFetchFramingError(t *testing.T) {
	var bld record.Builder
	for i := range 3 {
		bld.Append(1_700_000_000_000, nil, []byte{byte('a' + i)}, nil)
	}
	good, err := bld.AppendTo(nil, compression.None)
	require.NoError(t, err)
	bad := make([]byte, record.HeaderSize)
	binary.BigEndian.PutUint64(bad, 3)                   // base offset
	binary.BigEndian.PutUint32(bad[8:], 1)               // batch length: below the header
	data := append(append([]byte(nil), good...), bad...) // offsets 0..2, then the bad bytes

	requireFramingError := func(t *testing.T, err error) {
		t.Helper()
		require.ErrorIs(t, err, record.ErrCorrupt)
		var pe *consumer.PartitionError
		require.ErrorAs(t, err, &pe)
		require.Equal(t, "t", pe.Topic)
		require.Equal(t, int32(2), pe.Partition)
		require.Equal(t, int64(3), pe.Offset, "the first offset not returned")
	}

	t.Run("Records", func(t *testing.T) {
		f := consumer.Fetch{Topic: "t", Partition: 2, Batches: data}
		var offsets []int64
		var errs []error
		for r, err := range f.Records() {
			if err != nil {
				errs = append(errs, err)
				continue
			}
			offsets = append(offsets, r.Offset)
		}
		require.Equal(t, []int64{0, 1, 2}, offsets)
		require.Len(t, errs, 1, "the bytes after the good batch")
		requireFramingError(t, errs[0])
	})
	t.Run("Fetches.Records", func(t *testing.T) {
		fs := consumer.Fetches{{Topic: "t", Partition: 2, Batches: data}, {Topic: "u", Batches: good}}
		var n int
		var errs []error
		for _, err := range fs.Records() {
			if err != nil {
				errs = append(errs, err)
				continue
			}
			n++
		}
		require.Equal(t, 6, n, "the next Fetch is read after the error")
		require.Len(t, errs, 1)
		requireFramingError(t, errs[0])
	})
	t.Run("EachRecord", func(t *testing.T) {
		fs := consumer.Fetches{{Topic: "t", Partition: 2, Batches: data}}
		var offsets []int64
		fs.EachRecord(func(r *record.Record) { offsets = append(offsets, r.Offset) })
		require.Equal(t, []int64{0, 1, 2}, offsets)
		err := fs.Err()
		require.Error(t, err, "Fetches.Err after EachRecord")
		requireFramingError(t, err)
	})
	t.Run("stop at the error", func(t *testing.T) {
		fs := consumer.Fetches{{Topic: "t", Partition: 2, Batches: data}, {Topic: "u", Batches: good}}
		var n int
		var got error
		for _, err := range fs.Records() {
			if err != nil {
				got = err
				break
			}
			n++
		}
		require.Equal(t, 3, n)
		requireFramingError(t, got)
	})
}

// TestUndecodableBatchAfterGapNamesItsBase: a batch whose records cannot
// be decompressed, after a gap in the offsets (compaction), is reported at
// its own base offset, not at the offset after the previous record.
func TestUndecodableBatchAfterGapNamesItsBase(t *testing.T) {
	bad := batchAt(t, 5, "x", "y")
	binary.BigEndian.PutUint16(bad[21:], uint16(record.Batch(bad).Attributes())|uint16(compression.Gzip))
	record.Batch(bad).UpdateCRC()
	var n atomic.Int32
	c := newConsumer(t, serve(t, 7, cat(batchAt(t, 0, "a"), bad), &n))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	g := &got{}
	g.add(fs)
	require.Equal(t, []string{"a"}, g.values("t", 0))
	require.Len(t, g.errs, 1)
	require.ErrorIs(t, g.errs[0], record.ErrCorrupt)
	var pe *consumer.PartitionError
	require.ErrorAs(t, g.errs[0], &pe)
	require.EqualValues(t, 5, pe.Offset)
}

// TestEachRecordKeepsTheFirstDecodingError: of several batches of a
// partition whose records do not decode, EachRecord keeps the first error
// for Fetches.Err (the later ones Records yields).
func TestEachRecordKeepsTheFirstDecodingError(t *testing.T) {
	undecodable := func(base int64) []byte {
		b := batchAt(t, base, "x", "y")
		b[len(b)-1] = 2 // the second record announces a header that is not there
		record.Batch(b).UpdateCRC()
		return b
	}
	var n atomic.Int32
	c := newConsumer(t, serve(t, 6, cat(undecodable(0), batchAt(t, 2, "c"), undecodable(3)), &n))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	var each []string
	fs.EachRecord(func(r *record.Record) { each = append(each, string(r.Value)) })
	require.Equal(t, []string{"x", "c", "x"}, each)
	var pe *consumer.PartitionError
	require.ErrorAs(t, fs.Err(), &pe)
	require.EqualValues(t, 1, pe.Offset, "the first batch's error")
}

// TestFetchesRecordsBreakAtDecodingError: a loop over Fetches.Records
// that breaks at a decoding error ends there: the next Fetch is not
// iterated (which would call the loop body after it broke, a panic).
func TestFetchesRecordsBreakAtDecodingError(t *testing.T) {
	bad := batchAt(t, 0, "x", "y")
	bad[len(bad)-1] = 2 // the second record announces a header that is not there
	record.Batch(bad).UpdateCRC()
	var n atomic.Int32
	c := newConsumer(t, serve(t, 2, bad, &n))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	require.NoError(t, c.Assign("t", 1, consumer.At(0)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.Len(t, fs, 2)
	var vals []string
	require.NotPanics(t, func() {
		for r, err := range fs.Records() {
			if err != nil {
				break
			}
			vals = append(vals, string(r.Value))
		}
	})
	require.Equal(t, []string{"x"}, vals)
}

// undecodable returns a batch of vs, compressed with zstd, at base
// offset base, whose CRC holds but whose compressed records do not
// decompress.
func undecodable(t *testing.T, base int64, vs ...string) []byte {
	t.Helper()
	recs := make([]rec, len(vs))
	for i, v := range vs {
		recs[i] = rec{ts: 1, value: v}
	}
	data := encode(t, compression.Zstd, recs...)
	for i := record.HeaderSize; i < len(data); i++ {
		data[i] = 0xff
	}
	record.Batch(data).SetBaseOffset(base)
	record.Batch(data).UpdateCRC()
	return data
}

// TestUndecompressableBatchSkipped: a batch whose CRC holds but
// whose compressed records do not decompress (a Client's, or a broker's
// that stored what a producer sent) costs only its own records: Records
// reports a *PartitionError at its base offset, and the next batch is
// returned. NumRecords counts a whole batch from its header; for a fetch
// that begins inside such a batch it must decode it, cannot, and stops
// counting there (as its doc says); and a Fetch whose bytes are no batch
// counts none.
func TestUndecompressableBatchSkipped(t *testing.T) {
	data := cat(undecodable(t, 0, "a", "b"), batchAt(t, 2, "c", "d"))
	var n atomic.Int32
	client := serve(t, 4, data, &n)

	c := newConsumer(t, client)
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	g := &got{}
	g.add(fs)
	require.Equal(t, []string{"c", "d"}, g.values("t", 0))
	require.Len(t, g.errs, 1)
	var pe *consumer.PartitionError
	require.ErrorAs(t, g.errs[0], &pe)
	require.EqualValues(t, 0, pe.Offset, "the first offset not returned")
	require.Equal(t, 4, fs.NumRecords(), "counted from the batch headers")
	var before []string
	for r, err := range fs.Records() {
		if err != nil {
			break // a loop that stops at the error ends there
		}
		before = append(before, string(r.Value))
	}
	require.Empty(t, before, "the batch that does not decode comes first")

	c2 := newConsumer(t, client)
	require.NoError(t, c2.Assign("t", 0, consumer.At(1)))
	fs, err = c2.Poll(testCtx(t))
	require.NoError(t, err)
	require.Zero(t, fs.NumRecords(), "the fetch begins inside the batch that does not decode")
	g = &got{}
	g.add(fs)
	require.Equal(t, []string{"c", "d"}, g.values("t", 0))
	require.Len(t, g.errs, 1)
	require.ErrorAs(t, g.errs[0], &pe)
	require.EqualValues(t, 1, pe.Offset, "the first offset not returned")

	f := consumer.Fetch{Topic: "t", Batches: []byte("not a batch at all, not even its header")}
	require.Zero(t, f.NumRecords())
}

// backwardBatchClient is a broker whose fetches answer the first
// batch of each partition with its last offset delta set to -1 (a last
// offset below its base), the CRC left as it was.
type backwardBatchClient struct{ *runnel.Broker }

func (c backwardBatchClient) Fetch(ctx context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
	resp, err := c.Broker.Fetch(ctx, req)
	for i := range resp.Partitions {
		if data := resp.Partitions[i].Records; len(data) >= record.HeaderSize {
			data = bytes.Clone(data) // not the broker's own bytes
			binary.BigEndian.PutUint32(data[23:], math.MaxUint32)
			resp.Partitions[i].Records = data
		}
	}
	return resp, err
}

// TestUncheckedBackwardBatchIsRefused: CheckCRCs' doc says that
// unchecked, a batch whose last offset lies below its base is still
// refused (record.ErrCorrupt), so that a position never moves back: Poll
// reports it as the partition's error, the position where it was, rather
// than pass over the batch without a word.
func TestUncheckedBackwardBatchIsRefused(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	values(t, b, "t", 0, "a", "b")
	c := newConsumer(t, backwardBatchClient{b}, consumer.CheckCRCs(false), consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.ErrorIs(t, fs.Err(), record.ErrCorrupt)
	pos, ok := c.Position("t", 0)
	require.True(t, ok)
	require.Zero(t, pos)
}
