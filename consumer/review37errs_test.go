package consumer_test

import (
	"encoding/binary"
	"testing"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// TestReview37FetchFramingError: a Fetch whose Batches hold a good batch
// and then bytes that are no batch (a length field below the header
// size: record.Parse refuses it, and nothing after it can be framed)
// reports the bad bytes, as it reports a batch whose records do not
// decode. Records yields the good batch's records and then (nil, err);
// EachRecord calls fn with them and keeps err for Fetches.Err. Poll's
// fetches are framed already (Poll cuts what does not frame), so only a
// Fetch made otherwise, as a test of a consumer loop makes one, has such
// bytes: its iterators ended there without a word, as if the fetch held
// nothing more.
func TestReview37FetchFramingError(t *testing.T) {
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
