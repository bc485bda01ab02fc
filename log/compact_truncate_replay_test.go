package log

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTruncationAfterCompactionSkipsOlderSnapshot: a truncation does not
// rebuild the producer state from a snapshot older than what compaction
// cleaned since Open (uncleanedFrom): replayed over cleaned segments, it
// misses a producer's batch that compaction removed while the producer
// had later ones, which the truncation then removed too. Here producer
// 1's batch at sequence 1 (key k, superseded at offset 2) is cleaned
// away, and the truncation to 2 takes its five later batches; the
// snapshot at offset 1 knows only sequence 0, and a replay finds nothing
// after it, so the rebuilt state would refuse the producer's resend of
// sequence 2 as out of order. Without a snapshot to trust, the state
// keeps what it remembered below the new end: nothing (sequence 1 was
// pushed out of the last five), and the resend is taken as from a
// producer the log does not know. (The swap's raise of uncleanedFrom
// survived the mutation pass's compaction tests: C72.)
func TestTruncationAfterCompactionSkipsOlderSnapshot(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{CleanupPolicy: Compact})
	defer l.Close()
	appendOK(t, l, keyedProducerBatch(t, 0, "p0")) // 0
	require.NoError(t, l.Roll())                   // a snapshot at 1: sequence 0
	appendOK(t, l, keyedProducerBatch(t, 1, "k"))  // 1
	appendOK(t, l, keyedBatch(t, "k"))             // 2: supersedes 1
	require.NoError(t, l.Roll())
	for seq := int32(2); seq <= 6; seq++ {
		appendOK(t, l, keyedProducerBatch(t, seq, "x")) // 3..7
	}
	res, err := l.Compact(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, res.RecordsRemoved, "offset 1 cleaned away")
	require.Contains(t, l.snapshots, int64(1))

	end, err := l.TruncateTo(2)
	require.NoError(t, err)
	require.EqualValues(t, 1, end, "the log ends after offset 0: 1 was cleaned, 2 and on truncated")
	got, err := l.Append(context.Background(), keyedProducerBatch(t, 2, "x"), AppendOptions{})
	require.NoError(t, err, "the resend of sequence 2 refused: the state was rebuilt from the snapshot at 1 over the cleaned segment")
	require.False(t, got.Duplicate)
	require.EqualValues(t, 1, got.FirstOffset)
}
