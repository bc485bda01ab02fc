package log

import (
	"bytes"
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// readCounter is a vfs.FS that counts the bytes read from segments' .log
// files. Its files have none of the optional abilities (views, mappings),
// so every read is a ReadAt and is counted, as on a file system without
// them; a count of operations would say little, since a view of a memory
// file or a read of a whole MiB is one operation as much as a header's.
type readCounter struct {
	vfs.FS
	bytes atomic.Int64
}

func (c *readCounter) Open(name string) (vfs.File, error) { return c.wrap(c.FS.Open(name)) }

func (c *readCounter) Create(name string) (vfs.File, error) { return c.wrap(c.FS.Create(name)) }

func (c *readCounter) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &countedFile{File: f, c: c, log: strings.HasSuffix(f.Name(), ".log")}, nil
}

type countedFile struct {
	vfs.File
	c   *readCounter
	log bool
}

func (f *countedFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	if f.log {
		f.c.bytes.Add(int64(n))
	}
	return n, err
}

// TestOffsetOfMaxTimestampBelowReadsLittle: when the largest timestamp of
// the segment that holds the bound lies in a record at or past it, the
// search reads a few KiB of that segment (the headers from the last index
// entry below the bound, and the batch it answers with), however large
// the segment is, where it read every batch of it: here over 3 MiB, as
// the whole-segment search still does. Two logs: timestamps that grow
// with the offsets, whose largest below the bound is just below it, and
// timestamps whose largest below the bound comes early, after which they
// stay lower; each also after a reopen.
func TestOffsetOfMaxTimestampBelowReadsLittle(t *testing.T) {
	const n = 20_000 // one-record batches of about 230 bytes: 4.6 MB
	for _, tc := range []struct {
		name string
		ts   func(i int64) int64
		want int64
	}{
		{"growing", func(i int64) int64 { return 1000 + i }, n - 1},
		{"early", func(i int64) int64 {
			if i == 10 {
				return 1 << 30
			}
			return 1000 + i%500
		}, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := &readCounter{FS: vfs.NewMem()}
			// One segment: segment.ms counts by the records' timestamps,
			// which span more than its week here.
			cfg := Config{SegmentBytes: 64 << 20, IndexIntervalBytes: 4096, SegmentTime: -1}
			l, err := Open("/data/topic-0", cfg, Options{FS: fsys, Clock: newClock()})
			require.NoError(t, err)
			defer func() { require.NoError(t, l.Close()) }()
			value := bytes.Repeat([]byte("v"), 150)
			for i := range int64(n) {
				appendOK(t, l, batchOf(t, compression.None, kv{[]byte("k"), value, tc.ts(i)}))
			}
			appendOK(t, l, batchOf(t, compression.None, kv{[]byte("k"), value, 1 << 40})) // at n, past the bound
			require.Equal(t, 1, l.Segments())
			ctx := context.Background()
			for _, reopen := range []bool{false, true} {
				if reopen {
					require.NoError(t, l.Close())
					l, err = Open("/data/topic-0", cfg, Options{FS: fsys, Clock: newClock()})
					require.NoError(t, err)
				}
				fsys.bytes.Store(0)
				got, ok, err := l.OffsetOfMaxTimestampBelow(ctx, n)
				require.NoError(t, err)
				require.True(t, ok)
				require.EqualValues(t, tc.want, got, "reopen %v", reopen)
				read := fsys.bytes.Load()
				require.Less(t, read, int64(64<<10), "reopen %v: bytes read", reopen)

				fsys.bytes.Store(0)
				full, ok, err := offsetOfMaxTimestampBelowUnbounded(ctx, l, n)
				require.NoError(t, err)
				require.True(t, ok)
				require.EqualValues(t, tc.want, full, "reopen %v", reopen)
				require.Greater(t, fsys.bytes.Load(), int64(3<<20), "reopen %v: the whole segment's search read it", reopen)
				t.Logf("reopen %v: %d bytes read, %d by the whole segment's search", reopen, read, fsys.bytes.Load())
			}
		})
	}
}

// TestMaxTimestampTieAcrossSegments: OffsetOfMaxTimestamp reads
// the records of the segments whose max timestamp could hold the
// largest, the largest bound first; a later segment whose bound is a
// batch compaction emptied (kept, as the last of its segment, with its
// max timestamp) is read before an earlier one, and the largest
// timestamp it finds there ties a record of the earlier segment: the
// answer is the earlier record, the first with the largest timestamp
// (mutant: the tie not taken, which answered the later segment's record).
func TestMaxTimestampTieAcrossSegments(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{CleanupPolicy: Compact, SegmentBytes: 150})
	defer l.Close()
	rec := func(key string, ts int64) []byte {
		return batchOf(t, compression.None, kv{key: []byte(key), value: []byte("v"), ts: ts})
	}
	appendOK(t, l, rec("a", 50)) // offset 0, segment 0
	require.NoError(t, l.Roll())
	appendOK(t, l, rec("b", 50))  // offset 1, segment 1
	appendOK(t, l, rec("c", 100)) // offset 2, segment 1's last batch
	require.NoError(t, l.Roll())
	appendOK(t, l, rec("c", 10)) // offset 3: c@100 goes
	require.NoError(t, l.Roll())
	require.Equal(t, 4, l.Segments())
	res, err := l.Compact(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, res.RecordsRemoved)
	require.Equal(t, 4, l.Segments(), "the segments were merged")
	off, ok, err := l.OffsetOfMaxTimestamp(t.Context())
	require.NoError(t, err)
	require.True(t, ok)
	require.EqualValues(t, 0, off, "a@50, the first record stamped 50")
}
