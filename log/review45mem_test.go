package log

import (
	"bytes"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/vfs"
)

// ReadWithin is ReadInto for a fetch's partition after the first with
// records: a first batch larger than maxBytes is neither read nor
// returned (nil), and the read does not go on to the next segment's
// batches instead, which would skip offsets. On the OS's file system
// the batch it does not read costs no memory: the broker's fetch read
// such a batch whole with ReadInto and dropped it (see the root
// package's test of a fetch on disk within maxBytes).
func TestReadWithinSkipsNoOffsets(t *testing.T) {
	for _, onDisk := range []bool{false, true} {
		name := "memory"
		if onDisk {
			name = "disk"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			if onDisk {
				e.fs, e.dir = vfs.OS, t.TempDir()
			}
			// Each batch a segment of its own: a big one at 0, a small one at 1.
			l := e.open(Config{SegmentBytes: 1000, RetentionTime: -1})
			defer l.Close()
			big := valueBatch(t, e.clock.Now().UnixMilli(), strings.Repeat("v", 100_000))
			small := valueBatch(t, e.clock.Now().UnixMilli(), "s")
			appendOK(t, l, big)
			appendOK(t, l, small)
			require.Equal(t, 2, l.Segments()) // the small one rolled the big one's

			whole, err := l.ReadInto(nil, 0, 100, math.MaxInt64)
			require.NoError(t, err)
			require.Len(t, whole, len(big), "ReadInto returns a first batch past maxBytes whole (KIP-74)")

			got, err := l.ReadWithin(nil, 0, 100, math.MaxInt64)
			require.NoError(t, err)
			require.Nil(t, got, "ReadWithin returned a batch past maxBytes, or the next segment's")

			got, err = l.ReadWithin(nil, 0, len(big), math.MaxInt64)
			require.NoError(t, err)
			require.True(t, bytes.Equal(got, whole), "a first batch that fits: as ReadInto")

			got, err = l.ReadWithin(nil, 1, len(small), math.MaxInt64)
			require.NoError(t, err)
			require.Len(t, got, len(small))

			_, err = l.ReadWithin(nil, 5, 100, math.MaxInt64)
			require.ErrorIs(t, err, ErrOffsetOutOfRange)

			if onDisk {
				runtime.GC()
				var m0, m1 runtime.MemStats
				runtime.ReadMemStats(&m0)
				for range 10 {
					if _, err := l.ReadWithin(nil, 0, 100, math.MaxInt64); err != nil {
						t.Fatal(err)
					}
				}
				runtime.ReadMemStats(&m1)
				per := (m1.TotalAlloc - m0.TotalAlloc) / 10
				t.Logf("ReadWithin of a %d-byte batch with maxBytes 100: %d bytes allocated a read", len(big), per)
				require.Less(t, per, uint64(len(big)/4), "the batch that does not fit was read")
			}
		})
	}
}
