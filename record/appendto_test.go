package record

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/compression"
)

// TestAppendToLevel: a batch compressed at a level other than the
// codec's default is a valid batch whose records read back, with other
// bytes than the default's (the level is used); at the default level it
// is AppendTo's batch byte for byte; a level the codec does not have
// fails with compression.ErrInvalidLevel and leaves dst as it was.
func TestAppendToLevel(t *testing.T) {
	build := func() *Builder {
		b := new(Builder)
		for i := range 500 {
			b.Append(int64(1000+i), fmt.Appendf(nil, "key-%d", i%7),
				fmt.Appendf(nil, `{"id":%d,"name":"customer-%d","tags":["a","b"]}`, i, i%13), nil)
		}
		return b
	}
	levels := map[compression.Codec][]int{
		compression.None:   {0},
		compression.Snappy: {0},
		compression.Gzip:   {-1, 1, 9},
		compression.LZ4:    {1, 9, 17},
		compression.Zstd:   {-5, 1, 3, 19},
	}
	for codec, ls := range levels {
		def, err := build().AppendTo(nil, codec)
		require.NoError(t, err)
		for _, level := range ls {
			t.Run(fmt.Sprintf("%v/%d", codec, level), func(t *testing.T) {
				out, err := build().AppendToLevel([]byte("x"), codec, level)
				require.NoError(t, err)
				batch := Batch(out[1:])
				require.NoError(t, batch.Validate(0))
				require.Equal(t, codec, batch.Codec())
				n := 0
				for r, err := range batch.Records() {
					require.NoError(t, err)
					require.Equal(t, fmt.Sprintf("key-%d", n%7), string(r.Key))
					n++
				}
				require.Equal(t, 500, n)
				if level == codec.DefaultLevel() {
					require.True(t, bytes.Equal(def, batch), "the default level writes AppendTo's batch")
				} else {
					require.False(t, bytes.Equal(def, batch), "level %d writes the default's batch", level)
				}
			})
		}
	}
	for codec, level := range map[compression.Codec]int{
		compression.None: 1, compression.Snappy: 3, compression.Gzip: 0, compression.LZ4: 18, compression.Zstd: 23,
	} {
		out, err := build().AppendToLevel([]byte("x"), codec, level)
		if !errors.Is(err, compression.ErrInvalidLevel) {
			t.Errorf("%v level %d: %v, want compression.ErrInvalidLevel", codec, level, err)
		}
		if string(out) != "x" {
			t.Errorf("%v level %d: returned %q, want dst unchanged", codec, level, out)
		}
	}
}

// TestAppendToKeepsNoCompressedCopy: with a codec, AppendTo
// compresses into dst and the builder keeps no compressed copy of its
// own, as its doc says (the mutant that sent codecs through Finish and a
// copy wrote the same bytes but kept the copy, twice the memory a
// producer's pooled builder holds).
func TestAppendToKeepsNoCompressedCopy(t *testing.T) {
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

// TestEmptyBuilderLevel: AppendToLevel's doc promises ErrInvalidLevel
// for a level the codec does not have; an empty builder returns nil for a
// compressed codec (prepare() short-circuits before the check), but the
// error for compression.None (CheckLevel runs first).
func TestEmptyBuilderLevel(t *testing.T) {
	for _, c := range []compression.Codec{compression.None, compression.Gzip} {
		var b Builder
		b.Reset()
		_, err := b.AppendToLevel(nil, c, 1000)
		if !errors.Is(err, compression.ErrInvalidLevel) {
			t.Errorf("%v: empty builder, level 1000: err %v, want ErrInvalidLevel", c, err)
		}
	}
}
