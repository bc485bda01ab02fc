package log

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/vfs"
)

// producerOneView is what the log remembers of producer 1: its epoch
// and, per batch, its sequence and offset ranges (not the append time,
// which a snapshot of a CreateTime batch does not keep).
func producerOneView(l *Log) []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.producers[1]
	if st == nil {
		return nil
	}
	out := []int64{int64(st.epoch)}
	for _, b := range st.batches {
		out = append(out, int64(b.firstSeq), int64(b.lastSeq), b.firstOffset, b.lastOffs)
	}
	return out
}

// TestProducerStateOfCompactedBatchSnapshotsMerged: the producer-state
// window after a crash that lost the producer's last batch, when
// compaction had removed one of its remembered batches below the new end.
//
// Producer 1 (epoch 0) appends sequences 0-6 at offsets 0-3 and 5-7 (a
// plain record at 4 supersedes the key of sequence 3); the log, under
// SyncNever, rolls at 3, 6 (each with its snapshot), is synced to 7 and
// compacted (sequence 3's batch, not the producer's last, goes), and rolls
// at 8 with sequence 6 unsynced: the snapshot at 8, past the end a crash
// leaves (7), holds sequences 2-6, of which 2-5 lie below 7, 3 in no
// batch of the log any more.
//
// Three ways to end at 7 give the same state, the latest five batches
// below 7 (sequences 1-5): a truncation to 7 (the state rebuilt from the
// snapshot at 6 and merged with the one remembered); a crash, Open loading
// the snapshot at 6 and merging the one at 8; and a crash with the
// snapshot at 6 unreadable (damaged: its checksum fails), where Open
// replays from the one at 3 and misses sequence 3, and the union of the
// replayed window (sequences 0-2, 4, 5) and the snapshot at 8's (2-5)
// holds six batches, the oldest of which mergeBatches drops. (With every
// snapshot readable that branch is not reached: each roll snapshots the
// state before compaction may clean the segment, so the newest snapshot
// at or below the end holds every batch compaction removed above it that
// the one past the end holds; and a truncation replays only from a
// snapshot at or past what compaction cleaned.)
// In each, a retry of sequences 1-5 is a duplicate with its original
// offsets (3 included, answered from the state), one of sequence 0 is
// refused as out of order (Kafka: OUT_OF_ORDER_SEQUENCE_NUMBER, no longer
// in the producer's last five), the state is the same after a crash and
// after a clean Close, and the lost sequence 6 is appended at 7.
func TestProducerStateOfCompactedBatchSnapshotsMerged(t *testing.T) {
	ctx := context.Background()
	cfg := Config{Sync: SyncNever, CleanupPolicy: Compact, RetentionTime: -1}
	offsets := map[int32]int64{0: 0, 1: 1, 2: 2, 3: 3, 4: 5, 5: 6, 6: 7}
	want := []int64{0}
	for seq := int32(1); seq <= 5; seq++ {
		want = append(want, int64(seq), int64(seq), offsets[seq], offsets[seq])
	}
	for _, tc := range []struct {
		name string
		// end takes the log l, whose end is 8, to 7 and returns it.
		end      func(t *testing.T, e *env, l *Log) *Log
		snapshot int64 // the snapshot Open loads, -1 for no Open
		replayed int   // the batches it replays
	}{
		{"truncation", func(t *testing.T, e *env, l *Log) *Log {
			end, err := l.TruncateTo(7)
			require.NoError(t, err)
			require.EqualValues(t, 7, end)
			return l
		}, -1, 0},
		{"crash", func(t *testing.T, e *env, l *Log) *Log {
			return e.crashReopen(l, cfg)
		}, 6, 1},
		{"crash, snapshot at 6 damaged", func(t *testing.T, e *env, l *Log) *Log {
			mem := e.fs.(*vfs.MemFS).CrashClone(vfs.CrashOptions{})
			l.Close()
			name := filepath.Join(e.dir, snapshotName(6))
			good := readWhole(t, mem, name)
			// Sequence 3's row (id, epoch, sequences, offsets): its last
			// offset changed, the checksum no longer matches.
			bad := bytes.Replace(good, []byte("\n1 0 3 3 3 3\n"), []byte("\n1 0 3 3 3 4\n"), 1)
			require.NotEqual(t, good, bad)
			replaceMemFile(t, mem, name, bad)
			e.fs = mem
			return e.open(cfg)
		}, 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			l := e.open(cfg)
			appendOK(t, l, keyedProducerBatch(t, 0, "a"))
			appendOK(t, l, keyedProducerBatch(t, 1, "b"))
			appendOK(t, l, keyedProducerBatch(t, 2, "c"))
			require.NoError(t, l.Roll()) // a snapshot at 3: sequences 0-2
			require.NoError(t, l.Flush(ctx))
			appendOK(t, l, keyedProducerBatch(t, 3, "x"))
			appendOK(t, l, batchOf(t, compression.None, kv{[]byte("x"), []byte("newer"), 1}))
			appendOK(t, l, keyedProducerBatch(t, 4, "e"))
			require.NoError(t, l.Roll()) // a snapshot at 6: sequences 0-4
			require.NoError(t, l.Flush(ctx))
			res, err := l.Compact(ctx)
			require.NoError(t, err)
			require.Equal(t, 1, res.RecordsRemoved, "sequence 3's batch goes: %+v", res)
			require.EqualValues(t, 6, res.CleanedTo)
			appendOK(t, l, keyedProducerBatch(t, 5, "f"))
			require.NoError(t, l.Flush(ctx)) // durable to 7
			appendOK(t, l, keyedProducerBatch(t, 6, "g"))
			require.NoError(t, l.Roll()) // a snapshot at 8: sequences 2-6
			l.mu.Lock()
			snapshots := slices.Clone(l.snapshots)
			l.mu.Unlock()
			require.Equal(t, []int64{3, 6, 8}, snapshots)

			l = tc.end(t, e, l)
			require.EqualValues(t, 7, l.LogEndOffset())
			if tc.snapshot >= 0 {
				info := l.Recovery()
				require.False(t, info.Clean)
				require.EqualValues(t, tc.snapshot, info.ProducerSnapshot, "%+v", info)
				require.Equal(t, tc.replayed, info.ProducerBatchesReplayed, "%+v", info)
			}
			check := func(what string) {
				t.Helper()
				require.Equal(t, want, producerOneView(l), what)
				for seq := int32(1); seq <= 5; seq++ {
					res, err := l.Append(ctx, keyedProducerBatch(t, seq, "retry"), AppendOptions{})
					require.NoError(t, err, "%s: retry of sequence %d", what, seq)
					require.True(t, res.Duplicate, "%s: retry of sequence %d", what, seq)
					require.Equal(t, offsets[seq], res.FirstOffset, "%s: retry of sequence %d", what, seq)
				}
				_, err := l.Append(ctx, keyedProducerBatch(t, 0, "retry"), AppendOptions{})
				require.ErrorIs(t, err, ErrOutOfOrderSequence, "%s: retry of sequence 0", what)
				require.EqualValues(t, 7, l.LogEndOffset(), what)
				require.Equal(t, want, producerOneView(l), what)
			}
			check("at 7")
			l = e.crashReopen(l, cfg)
			check("crash")
			require.NoError(t, l.Close())
			l = e.open(cfg)
			defer l.Close()
			require.True(t, l.Recovery().Clean)
			check("clean Close")
			next := appendOK(t, l, keyedProducerBatch(t, 6, "g"))
			require.False(t, next.Duplicate)
			require.EqualValues(t, 7, next.FirstOffset)
		})
	}
}
