package log

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestOpenLoadsASnapshotLargerThan64MiB: nothing bounds the
// number of idempotent producer ids a log remembers (a service that makes
// a producer for each request; ProducerExpiration negative, never), and so
// the size of a producer-state snapshot: about 55 bytes an id with one
// batch, 145 with five at everyday numbers (docs/details.md), more at
// large ones. One larger than 64 MiB, the bound of the other checkpoints,
// was unreadable, skipped as a bad one: every Open replayed the state
// from the log start (from an older snapshot, as large) and forgot the
// producers whose batches retention or DeleteRecordsBefore had removed, so
// that a retry of such a batch after a restart was appended a second time.
// Here 140,000 ids with five batches each, of large sequence numbers
// and offsets, make a snapshot past 64 MiB.
func TestOpenLoadsASnapshotLargerThan64MiB(t *testing.T) {
	if testing.Short() {
		t.Skip("a snapshot past 64 MiB: seconds, and 500 MB")
	}
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways}
	l := e.open(cfg)
	for seq := range int32(5) {
		appendOK(t, l, idemBatch(t, 1, 0, seq, 1)) // 0-4
	}
	_, err := l.DeleteRecordsBefore(context.Background(), 5) // the producer's batches gone, its state kept
	require.NoError(t, err)
	// The other producers' state as the log would hold it, set directly:
	// 140,000 appends would take long, and their offsets could not be as
	// large.
	now := e.clock.Now().UnixNano()
	l.mu.Lock()
	const others = 140_000
	for id := int64(math.MaxInt64 - others); id < math.MaxInt64; id++ {
		st := &producerState{epoch: math.MaxInt16, last: now}
		for i := range int64(maxProducerBatches) {
			seq, off := int32(math.MaxInt32-10+i), int64(math.MaxInt64/2+i)
			st.batches = append(st.batches, producerBatch{firstSeq: seq, lastSeq: seq, firstOffset: off, lastOffs: off, appendTime: -1})
		}
		l.producers[id] = st
	}
	l.mu.Unlock()
	require.NoError(t, l.Close()) // the snapshot at 5
	fi, err := e.fs.Stat(filepath.Join(e.dir, snapshotName(5)))
	require.NoError(t, err)
	require.Greater(t, fi.Size(), int64(64<<20))

	l = e.open(cfg)
	defer l.Close()
	require.EqualValues(t, 5, l.Recovery().ProducerSnapshot, "%+v", l.Recovery())
	requireDuplicate(t, l, idemBatch(t, 1, 0, 4, 1), 4)
}
