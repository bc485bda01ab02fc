package producer_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
)

// TestCompressionLevel produces records compressed at levels of each
// codec (and at none given) through a broker, and checks what it stored:
// every batch has the codec, and its records section is what the codec
// writes at that level (the default's bytes when no level is given, and,
// for a level that runs another coder, not the default's); a consumer
// reads the records back.
func TestCompressionLevel(t *testing.T) {
	const unset = 1 << 30 // no CompressionLevel option
	cases := []struct {
		codec compression.Codec
		level int
	}{
		{compression.None, unset}, {compression.Snappy, unset},
		{compression.Gzip, unset}, {compression.Gzip, -1}, {compression.Gzip, 1}, {compression.Gzip, 9},
		{compression.LZ4, unset}, {compression.LZ4, 9}, {compression.LZ4, 1}, {compression.LZ4, 17},
		{compression.Zstd, unset}, {compression.Zstd, 3}, {compression.Zstd, -7}, {compression.Zstd, 1}, {compression.Zstd, 19},
	}
	for _, tc := range cases {
		name := fmt.Sprintf("%v/level=%d", tc.codec, tc.level)
		if tc.level == unset {
			name = fmt.Sprintf("%v/level=unset", tc.codec)
		}
		t.Run(name, func(t *testing.T) {
			b := newBroker(t, runneltest.Topic("t", 1))
			opts := []producer.Opt{producer.Compression(tc.codec)}
			level := tc.codec.DefaultLevel()
			if tc.level != unset {
				opts = append(opts, producer.CompressionLevel(tc.level))
				level = tc.level
			}
			p := newProducer(t, b, opts...)
			rs := make([]*record.Record, 400)
			want := make([]string, len(rs))
			for i := range rs {
				want[i] = fmt.Sprintf(`{"id":%d,"customer":"c-%04d","items":["book","pen"],"amount":%d}`, i*7919, i%97, i*31%1000)
				rs[i] = &record.Record{Topic: "t", Key: fmt.Appendf(nil, "k%d", i%5), Value: []byte(want[i])}
			}
			require.NoError(t, p.ProduceSync(testCtx(t), rs...))

			differs := false
			for _, batch := range readBatches(t, b, "t", 0) {
				require.Equal(t, tc.codec, batch.Codec())
				stored := batch[record.HeaderSize:]
				plain, err := tc.codec.AppendDecode(nil, stored, 0)
				require.NoError(t, err)
				at, err := tc.codec.AppendEncodeLevel(nil, plain, level)
				require.NoError(t, err)
				require.True(t, bytes.Equal(at, stored), "the stored records are not what %v writes at level %d", tc.codec, level)
				def, err := tc.codec.AppendEncode(nil, plain)
				require.NoError(t, err)
				differs = differs || !bytes.Equal(def, stored)
			}
			if level == tc.codec.DefaultLevel() {
				require.False(t, differs, "the default level wrote other bytes than AppendEncode")
			} else {
				require.True(t, differs, "level %d wrote the default level's bytes", level)
			}

			got := runneltest.Consume(t, b, "t", len(rs))
			require.Equal(t, want, values(got))
		})
	}
}

// TestCompressionLevelInvalid: New refuses a level the codec does not
// have (ErrInvalidOption, and compression.ErrInvalidLevel naming the
// range), and any level with none or snappy, which have no levels; it
// takes each codec's extremes.
func TestCompressionLevelInvalid(t *testing.T) {
	b := newBroker(t)
	bad := []struct {
		codec compression.Codec
		level int
	}{
		{compression.Gzip, 0}, {compression.Gzip, -2}, {compression.Gzip, 10},
		{compression.LZ4, 0}, {compression.LZ4, -1}, {compression.LZ4, 18},
		{compression.Zstd, -131073}, {compression.Zstd, 23},
	}
	for _, tc := range bad {
		_, err := producer.New(b, producer.Compression(tc.codec), producer.CompressionLevel(tc.level))
		if !errors.Is(err, producer.ErrInvalidOption) || !errors.Is(err, compression.ErrInvalidLevel) {
			t.Errorf("%v level %d: %v, want ErrInvalidOption and compression.ErrInvalidLevel", tc.codec, tc.level, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("CompressionLevel(%d)", tc.level)) || !strings.Contains(msg, "want") {
			t.Errorf("%v level %d: %q names neither the option nor the range", tc.codec, tc.level, msg)
		}
	}
	for _, codec := range []compression.Codec{compression.None, compression.Snappy} {
		for _, level := range []int{0, 1, -1} {
			_, err := producer.New(b, producer.Compression(codec), producer.CompressionLevel(level))
			if !errors.Is(err, producer.ErrInvalidOption) || !strings.Contains(fmt.Sprint(err), "has no levels") {
				t.Errorf("%v level %d: %v, want ErrInvalidOption: no levels", codec, level, err)
			}
		}
	}
	// Without Compression the codec is none: a level alone is refused.
	_, err := producer.New(b, producer.CompressionLevel(3))
	require.ErrorIs(t, err, producer.ErrInvalidOption)

	good := []struct {
		codec compression.Codec
		level int
	}{
		{compression.Gzip, -1}, {compression.Gzip, 1}, {compression.Gzip, 9},
		{compression.LZ4, 1}, {compression.LZ4, 17},
		{compression.Zstd, -131072}, {compression.Zstd, 0}, {compression.Zstd, 22},
	}
	for _, tc := range good {
		p, err := producer.New(b, producer.Compression(tc.codec), producer.CompressionLevel(tc.level))
		require.NoError(t, err, "%v level %d", tc.codec, tc.level)
		require.NoError(t, p.Close())
	}
}
