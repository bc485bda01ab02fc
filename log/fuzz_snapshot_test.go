package log

import (
	"testing"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// FuzzSnapshot: a producer-state snapshot file, as readSnapshot reads it
// for Open and truncations. Either it is malformed (ErrBadCheckpoint), or
// the state it decodes to is written back (rows, as
// snapshotProducersLocked writes them) as a snapshot that decodes to the
// same state: whatever a snapshot says survives a write and a read.
func FuzzSnapshot(f *testing.F) {
	const now = 1_700_000_000_000_000_000
	ps := producers{
		3: {epoch: 1, batches: []producerBatch{{0, 4, 10, 14, -1}, {5, 5, 20, 20, -1}}, last: now - 5},
		9: {epoch: 0, batches: []producerBatch{{2147483647, 1, 30, 32, -1}}, last: now},
	}
	for _, rows := range [][][]int64{
		append([][]int64{{-1, 40, 0, 0, 0, 0}}, ps.rows()...),
		{{-1, 40, 0, 0, 0, 0}},
		{{-1, 40, 0, 0, 0, 0}, {3, 1, 0, 4, 10, 14}},
		{{-1, 40, 0, 0, 0, 0}, {lastAppendRow, 3, now, 0, 0, 0}},
		{{-1, 40, 0, 0, 0, 0}, {3, 1, 0, 4, 10, 14}, {appendTimeRow, 3, 10, now / 1e6, 0, 0}},
		{{-1, 40, 0, 0, 0, 0}, {3, 1, 0, 4, 10, 14}, {appendTimeRow, 3, 11, -1, 0, 0}},
		{{-1, 40, 0, 0, 0, 0}, {3, 1, 0, 0, 1, 1}, {3, 1, 1, 1, 2, 2}, {3, 1, 2, 2, 3, 3}, {3, 1, 3, 3, 4, 4}, {3, 1, 4, 4, 5, 5}, {3, 1, 5, 5, 6, 6}},
		{{-1, 40, 0, 0, 0, 0}, {3, 70000, 0, 4, 10, 14}},
		{{-1, 40, 0, 0, 0, 0}, {-7, 1, 0, 4, 10, 14}},
		{{-1, 40, 0, 0, 0, 0}, {3, 1, 1 << 40, 4, 10, 14}},
		{{-1, 41, 0, 0, 0, 0}},
	} {
		f.Add(appendCheckpoint(nil, checkpointV1, rows))
		f.Add(appendCheckpoint(nil, checkpointV0, rows))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fs := vfs.NewMem()
		require.NoError(t, fs.MkdirAll("/d", 0o755))
		writeMemFile(t, fs, "/d/"+snapshotName(40), data)
		l := &Log{fs: fs, dir: "/d"}
		file := snapshotFile{off: 40, name: snapshotName(40)}
		got, err := l.readSnapshot(file, now)
		if err != nil {
			require.ErrorIs(t, err, ErrBadCheckpoint)
			return
		}
		// Every value of every row is the state's, not cut to its type.
		in, err := parseCheckpoint(data, 6, "snapshot")
		require.NoError(t, err)
		for _, r := range in[1:] {
			if r[0] == lastAppendRow || r[0] == appendTimeRow {
				continue
			}
			st := got[r[0]]
			require.NotNil(t, st, "row %v", r)
			require.Equal(t, r[1], int64(st.epoch), "row %v", r)
			kept := false
			for _, b := range st.batches {
				kept = kept || b.firstSeq == int32(r[2]) && b.lastSeq == int32(r[3]) && b.firstOffset == r[4] && b.lastOffs == r[5]
				require.True(t, int64(b.firstSeq) >= 0 && int64(b.lastSeq) >= 0 && b.firstOffset <= b.lastOffs, "batch %+v", b)
			}
			require.True(t, kept || len(st.batches) == maxProducerBatches, "row %v lost", r)
			require.Equal(t, r[2], int64(int32(r[2])), "row %v", r)
			require.Equal(t, r[3], int64(int32(r[3])), "row %v", r)
		}
		rows := append([][]int64{{-1, 40, 0, 0, 0, 0}}, got.rows()...)
		for _, v := range []int{checkpointV0, checkpointV1} {
			writeMemFile(t, fs, "/d/"+snapshotName(40), appendCheckpoint(nil, v, rows))
			again, err := l.readSnapshot(file, now)
			require.NoError(t, err)
			require.Equal(t, got, again, "version %d", v)
		}
		for id, st := range got {
			require.GreaterOrEqual(t, id, int64(0), "a producer id")
			require.LessOrEqual(t, len(st.batches), maxProducerBatches)
			require.LessOrEqual(t, st.last, int64(now))
		}
	})
}
