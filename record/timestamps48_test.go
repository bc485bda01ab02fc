package record

import (
	"math"
	"testing"

	"github.com/runnel/runnel/compression"
	"github.com/stretchr/testify/require"
)

// TestCheckFramingTimes: the Timestamps of a batch's check are its
// records' largest timestamp (CheckFramingStream's) and the least and
// largest of those that carry one (all but -1), for every codec, as a
// naive walk over the decoded records finds them; and all NoTimestamp
// when the check fails.
func TestCheckFramingTimes(t *testing.T) {
	for _, tc := range []struct {
		name string
		ts   []int64
		want Timestamps
	}{
		{"one", []int64{1000}, Timestamps{Max: 1000, Earliest: 1000, Latest: 1000}},
		{"unordered", []int64{5000, 1000, 9000, 3000}, Timestamps{Max: 9000, Earliest: 1000, Latest: 9000}},
		{"-1 skipped for the range", []int64{-1, 7000, -1, 2000}, Timestamps{Max: 7000, Earliest: 2000, Latest: 7000}},
		{"only -1", []int64{-1, -1}, Timestamps{Max: -1, Earliest: -1, Latest: -1}},
		{"below -1", []int64{-1, -5, -7}, Timestamps{Max: -1, Earliest: -7, Latest: -5}},
		{"the ends of an int64", []int64{math.MaxInt64, math.MinInt64, 0}, Timestamps{Max: math.MaxInt64, Earliest: math.MinInt64, Latest: math.MaxInt64}},
	} {
		for _, codec := range []compression.Codec{compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd} {
			var bl Builder
			bl.Reset()
			for _, ts := range tc.ts {
				bl.Append(ts, []byte("k"), []byte("v"), nil)
			}
			data, err := bl.AppendTo(nil, codec)
			require.NoError(t, err)
			b := Batch(data)
			_, got, err := b.CheckFramingTimes(0, 0, nil)
			require.NoError(t, err, "%s %v", tc.name, codec)
			require.Equal(t, tc.want, got, "%s %v", tc.name, codec)
			_, maxTs, err := b.CheckFramingStream(0, 0, nil)
			require.NoError(t, err)
			require.Equal(t, got.Max, maxTs, "%s %v: CheckFramingStream's", tc.name, codec)

			// The naive walk.
			naive := Timestamps{Max: NoTimestamp, Earliest: math.MaxInt64, Latest: math.MinInt64}
			first, timed := true, false
			for r, err := range b.Records() {
				require.NoError(t, err)
				ms := r.Timestamp.UnixMilli()
				if first || ms > naive.Max {
					naive.Max, first = ms, false
				}
				if ms != NoTimestamp {
					naive.Earliest, naive.Latest, timed = min(naive.Earliest, ms), max(naive.Latest, ms), true
				}
			}
			if !timed {
				naive.Earliest, naive.Latest = NoTimestamp, NoTimestamp
			}
			require.Equal(t, naive, got, "%s %v: as the decoded records say", tc.name, codec)
		}
	}

	// A check that fails gives no timestamps.
	var bl Builder
	bl.Reset()
	bl.Append(1000, []byte("k"), []byte("v"), nil)
	data, err := bl.AppendTo(nil, compression.None)
	require.NoError(t, err)
	data[HeaderSize] = 0x7f // the first record's length, past the batch
	_, got, err := Batch(data).CheckFramingTimes(0, 0, nil)
	require.ErrorIs(t, err, ErrCorrupt)
	require.Equal(t, Timestamps{Max: NoTimestamp, Earliest: NoTimestamp, Latest: NoTimestamp}, got)
}
