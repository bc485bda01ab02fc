package record

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/compression"
)

// TestMut46AppendToKeepsNoCompressedCopy: with a codec, AppendTo
// compresses into dst and the builder keeps no compressed copy of its
// own, as its doc says (the mutant that sent codecs through Finish and a
// copy wrote the same bytes but kept the copy, twice the memory a
// producer's pooled builder holds).
func TestMut46AppendToKeepsNoCompressedCopy(t *testing.T) {
	for _, codec := range []compression.Codec{compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd} {
		t.Run(codec.String(), func(t *testing.T) {
			var b Builder
			for i := range 20 {
				b.Append(int64(1000+i), nil, bytes.Repeat([]byte("value "), i), nil)
			}
			out, err := b.AppendTo([]byte("x"), codec)
			require.NoError(t, err)
			require.NoError(t, Batch(out[1:]).Validate(0))
			require.Zero(t, cap(b.comp), "the builder keeps no compressed copy")
		})
	}
}
