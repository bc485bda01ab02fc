package log

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/runnel/runnel/index"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestCorruptIndexEntryEndToEnd: a middle entry of a sealed segment's
// .index and one of its .timeindex are changed while the log is closed, so
// that Open finds nothing wrong. Reads through the partition and searches
// by time still answer as the log says; the segment reports its indexes
// distrusted; and after a reopen they are rebuilt as they were.
func TestCorruptIndexEntryEndToEnd(t *testing.T) {
	for _, fsName := range []string{"mem", "os"} {
		t.Run(fsName, func(t *testing.T) {
			var fsys vfs.FS = vfs.NewMem()
			dir := "/data/topic-0"
			if fsName == "os" {
				fsys, dir = vfs.OS, t.TempDir()
			}
			cfg := Config{SegmentBytes: 8 << 10, IndexIntervalBytes: 300, Sync: SyncNever}
			open := func() (*Log, error) { return Open(dir, cfg, Options{FS: fsys, Clock: newClock()}) }
			l, err := open()
			require.NoError(t, err)

			// Batches of three records; batch i's max timestamp, its middle
			// record's, is above every earlier batch's.
			type batch struct {
				base, last int64
				ts         []int64
			}
			var batches []batch
			ts := func(i, j int) int64 { return 1_700_000_000_000 + 10*int64(i) + []int64{0, 5, 3}[j] }
			for i := range 200 {
				recs := make([]kv, 3)
				for j := range recs {
					recs[j] = kv{key: fmt.Appendf(nil, "k%d-%d", i, j), value: bytes.Repeat([]byte{'v'}, 20+i%7), ts: ts(i, j)}
				}
				res, err := l.Append(context.Background(), batchOf(t, 0, recs...), AppendOptions{})
				require.NoError(t, err)
				batches = append(batches, batch{res.FirstOffset, res.LastOffset, []int64{ts(i, 0), ts(i, 1), ts(i, 2)}})
			}
			require.GreaterOrEqual(t, l.Segments(), 3)
			victim := (*l.segs.Load())[1] // sealed
			base := victim.Base()
			require.NoError(t, l.Close())

			idxName := filepath.Join(dir, segment.FileName(base, segment.IndexSuffix))
			timName := filepath.Join(dir, segment.FileName(base, segment.TimeIndexSuffix))
			idx, tim := readWhole(t, fsys, idxName), readWhole(t, fsys, timName)
			oents, err := index.DecodeOffsetEntries(idx, base)
			require.NoError(t, err)
			tents, err := index.DecodeTimeEntries(tim, base)
			require.NoError(t, err)
			require.GreaterOrEqual(t, len(oents), 4)
			require.GreaterOrEqual(t, len(tents), 4)
			// The batch boundaries of the victim's .log.
			var bounds []int64
			var lasts []int64
			logBytes := readWhole(t, fsys, filepath.Join(dir, segment.FileName(base, segment.LogSuffix)))
			pos := int64(0)
			for b, err := range record.Batches(logBytes) {
				require.NoError(t, err)
				bounds = append(bounds, pos)
				lasts = append(lasts, b.LastOffset())
				pos += int64(len(b))
			}
			// Offset index: a middle entry's position moves to the next batch
			// (reads of its offset would skip that batch). Time index: a
			// middle entry's offset moves to the next batch's last offset (a
			// search for its timestamp would skip the batch that has it).
			k := len(oents) / 2
			for i, p := range bounds {
				if p == oents[k].Position {
					overwrite(t, fsys, idxName, k*index.OffsetEntrySize+4, binary.BigEndian.AppendUint32(nil, uint32(bounds[i+1])))
				}
			}
			k = len(tents) / 2
			for i, last := range lasts {
				if last == tents[k].Offset {
					overwrite(t, fsys, timName, k*index.TimeEntrySize+8, binary.BigEndian.AppendUint32(nil, uint32(lasts[i+1]-base)))
				}
			}

			l, err = open()
			require.NoError(t, err)
			require.Zero(t, l.Recovery().SegmentsScanned, "Open noticed the corruption: the test shows nothing")
			p := NewPartition("topic", 0, l)
			defer p.Close()
			buf := make([]byte, 0, 64<<10)
			for _, b := range batches {
				for off := b.base; off <= b.last; off++ {
					data, err := p.ReadInto(context.Background(), buf, off, 1, math.MaxInt64)
					require.NoError(t, err, "read of offset %d", off)
					require.GreaterOrEqual(t, len(data), record.HeaderSize, "read of offset %d", off)
					got := record.Batch(data)
					require.Equal(t, b.base, got.BaseOffset(), "read of offset %d starts with batch [%d, %d]", off, got.BaseOffset(), got.LastOffset())
				}
			}
			for _, b := range batches {
				for j, x := range b.ts {
					got, ok, err := l.OffsetForTime(x)
					require.NoError(t, err)
					require.True(t, ok)
					// The first record at or after x: this one, unless an
					// earlier record of its batch reached x (the max is the
					// middle record).
					want := b.base + int64(j)
					if j == 2 {
						want = b.base + 1
					}
					require.Equal(t, want, got, "OffsetForTime(%d)", x)
				}
			}
			require.Equal(t, segment.IndexDistrust{Offset: true, Time: true}, (*p.Log().segs.Load())[1].IndexDistrusted())

			// The next open rebuilds the indexes of the segment.
			require.NoError(t, p.Reopen(open))
			require.Equal(t, 1, p.Log().Recovery().SegmentsScanned)
			require.NoError(t, p.Reopen(open))
			require.Zero(t, p.Log().Recovery().SegmentsScanned)
			require.NoError(t, p.Close())
			require.Equal(t, idx, readWhole(t, fsys, idxName), "rebuilt .index")
			require.Equal(t, tim, readWhole(t, fsys, timName), "rebuilt .timeindex")
		})
	}
}

func readWhole(t testing.TB, fsys vfs.FS, name string) []byte {
	t.Helper()
	f, err := fsys.Open(name)
	require.NoError(t, err)
	defer f.Close()
	n, err := f.Size()
	require.NoError(t, err)
	b := make([]byte, n)
	if n > 0 {
		_, err = f.ReadAt(b, 0)
		require.NoError(t, err)
	}
	return b
}

func overwrite(t testing.TB, fsys vfs.FS, name string, at int, b []byte) {
	t.Helper()
	f, err := fsys.Open(name)
	require.NoError(t, err)
	_, err = f.WriteAt(b, int64(at))
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())
}
