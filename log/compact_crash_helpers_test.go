package log

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// compactedRec is a record a compaction crash test appended, as a reopened
// log must give it back: key, value (nil: a tombstone), timestamp, and
// the value of its one header ("" for none).
type compactedRec struct {
	key, value []byte
	ts         int64
	hdr        string
}

// compactionCrashes checks a compaction cut short by a crash. For up to
// 25 of the n file-system operations of the pass (crashPoints; 8 in the
// quick race run), it builds the log again (build: the records it
// appended by offset, and the idempotent producer's last batch through
// prodLast), runs the pass with
// the file system failing from that operation on, and opens what each
// crash tail mode leaves, with and without the producer-state snapshots,
// and with and without Reorder when reorder says so. Each opened log must
// hold: its old log end offset; each record left as appended at its
// offset; each key's latest record (a tombstone may be gone, and then
// every older record of its key); indexes that agree with the files; the
// producer's retry of its last batch answered as a duplicate of all its
// records, a sequence gap refused, and appends at the old end.
func compactionCrashes(t *testing.T, dir string, cfg Config, n int, reorder bool,
	build func(vfs.FS, *fakeClock) (*Log, map[int64]compactedRec), prodLast *[]byte) {
	t.Helper()
	reorders := []bool{false}
	if reorder {
		reorders = append(reorders, true)
	}
	for _, k := range crashPoints(n, 25) {
		mem := vfs.NewMem()
		var fail vfs.Injector = vfs.Count()
		clock := newClock()
		l, all := build(vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error { return fail.MaybeError(op, name) })), clock)
		end := l.LogEndOffset()
		fail = vfs.FailFrom(k)
		_, _ = l.Compact(context.Background())
		for _, mode := range crashTails {
			for _, reorder := range reorders {
				for _, snapshot := range []bool{true, false} {
					t.Run(fmt.Sprintf("k=%d/%s/snapshot=%v/reorder=%v", k, mode, snapshot, reorder), func(t *testing.T) {
						fs := mem.CrashClone(vfs.CrashOptions{Tail: mode, Reorder: reorder, Rand: rand.New(rand.NewPCG(uint64(k), uint64(mode)))})
						if !snapshot {
							removeProducerSnapshots(t, fs, dir)
						}
						l2, err := Open(dir, cfg, Options{FS: fs, Clock: clock})
						require.NoError(t, err)
						defer l2.Close()
						checkCompactionCrash(t, l2, fs, dir, all, end, *prodLast)
					})
				}
			}
		}
		l.Close()
	}
}

// checkCompactionCrash checks the log l2 opened after a compaction's
// crash, as compactionCrashes says.
func checkCompactionCrash(t *testing.T, l2 *Log, fs vfs.FS, dir string, all map[int64]compactedRec, end int64, prodLast []byte) {
	t.Helper()
	require.Equal(t, end, l2.LogEndOffset())
	batches, recs := readBatches(t, l2, l2.LogStartOffset())
	seen := map[string]int64{}
	for _, r := range recs {
		a, ok := all[r.Offset]
		require.True(t, ok, "offset %d was never appended", r.Offset)
		require.Equal(t, a.key, r.Key, "offset %d", r.Offset)
		require.Equal(t, a.value, r.Value, "offset %d", r.Offset)
		require.Equal(t, a.ts, r.Timestamp.UnixMilli(), "offset %d", r.Offset)
		if a.hdr != "" {
			require.Len(t, r.Headers, 1, "offset %d", r.Offset)
			require.Equal(t, a.hdr, string(r.Headers[0].Value), "offset %d", r.Offset)
		}
		seen[string(r.Key)] = r.Offset
	}
	latest := map[string]int64{}
	for o, a := range all {
		if cur, ok := latest[string(a.key)]; !ok || o > cur {
			latest[string(a.key)] = o
		}
	}
	for key, o := range latest {
		if all[o].value == nil {
			if _, ok := seen[key]; ok {
				require.Equal(t, o, seen[key], "key %s: an older record outlived its tombstone", key)
			}
			continue
		}
		require.Equal(t, o, seen[key], "key %s: its latest record is gone", key)
	}
	checkIndexes(t, l2, scanSegmentFiles(t, fs, dir), batches, recs, l2.LogStartOffset(), end)

	dup, err := l2.Append(context.Background(), append([]byte(nil), prodLast...), AppendOptions{})
	require.NoError(t, err)
	require.True(t, dup.Duplicate, "the producer's retry was appended again")
	require.Equal(t, record.Batch(prodLast).NumRecords(), int32(dup.LastOffset-dup.FirstOffset+1))
	_, err = l2.Append(context.Background(), idemBatch(t, 7, 0, 100, 1), AppendOptions{})
	require.ErrorIs(t, err, ErrOutOfOrderSequence)
	require.Equal(t, end, appendOK(t, l2, batchOf(t, compression.None, kv{key: []byte("x"), value: []byte("y")})).FirstOffset)
}
