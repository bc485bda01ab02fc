package record_test

import (
	"bytes"
	"testing"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// TestAppendToCompressesIntoDst: with a codec, AppendTo writes the
// batch Finish would (the same bytes, after dst's), compressing straight
// into dst, so that a producer can keep the batch and pool the builder;
// an empty builder leaves dst as it was.
func TestAppendToCompressesIntoDst(t *testing.T) {
	for _, codec := range []compression.Codec{compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd} {
		t.Run(codec.String(), func(t *testing.T) {
			var bl record.Builder
			bl.SetProducer(7, 2, 40)
			for i := range 50 {
				bl.Append(int64(1000+i), []byte{byte(i)}, bytes.Repeat([]byte("value "), i), []record.Header{{Key: "h", Value: []byte{byte(i)}}})
			}
			dst := []byte("earlier batches")
			out, err := bl.AppendTo(dst, codec)
			require.NoError(t, err)
			want, err := bl.Finish(codec)
			require.NoError(t, err)
			require.Equal(t, "earlier batches", string(out[:len(dst)]))
			got := record.Batch(out[len(dst):])
			require.Equal(t, []byte(want), []byte(got))
			require.NoError(t, got.Validate(0))
			require.Equal(t, codec, got.Codec())
			require.EqualValues(t, 50, got.NumRecords())

			var empty record.Builder
			out, err = empty.AppendTo(dst, codec)
			require.NoError(t, err)
			require.Equal(t, "earlier batches", string(out))
		})
	}
}
