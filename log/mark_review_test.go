package log

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMarkRewrittenAcrossReopen: a Mark taken before a reopen is
// Rewritten by a Mark taken after it, also where the new log has counted
// as many compactions since it opened as the old one had when the first
// Mark was taken (each Log counts from 0: the compaction counts alone
// compare equal, an ABA that the partition's epoch tells apart), and
// Compacted tells the policy of each Mark's log. Mutant: Rewritten not
// comparing the epochs (a fetch that counted batches of the old log slept
// with MinBytes readable: the root package's
// TestFetchWaitReviewReopenAfterCompaction).
func TestMarkRewrittenAcrossReopen(t *testing.T) {
	e := newEnv(t)
	cfg := Config{CleanupPolicy: Compact, DeleteRetentionTime: time.Hour}
	compactOnce := func(l *Log, key string) {
		t.Helper()
		appendOK(t, l, keyedBatch(t, key))
		appendOK(t, l, keyedBatch(t, key)) // supersedes the one before
		require.NoError(t, l.Roll())
		res, err := l.Compact(t.Context())
		require.NoError(t, err)
		require.Positive(t, res.SegmentsRewritten)
	}
	l := e.open(cfg)
	p := NewPartition("t", 0, l)
	t.Cleanup(func() { p.Close() })
	compactOnce(l, "a")
	m := p.Mark()
	require.True(t, m.Compacted())
	require.EqualValues(t, 1, m.gen>>1)

	require.NoError(t, p.Reopen(func() (*Log, error) { return Open(e.dir, cfg, Options{FS: e.fs, Clock: e.clock}) }))
	require.NotSame(t, l, p.Log())
	now := p.Mark()
	require.Zero(t, now.gen>>1, "the new log counts its compactions from 0")
	require.True(t, m.Rewritten(now), "a reopen")
	compactOnce(p.Log(), "b")
	now = p.Mark()
	require.Equal(t, m.gen, now.gen, "the premise: the counts (and policies) compare equal")
	require.True(t, m.Rewritten(now), "a reopen, the new log having compacted as often as the old")
	require.False(t, now.Rewritten(p.Mark()), "nothing since")

	// A reopen under another policy: Compacted is the new log's.
	require.NoError(t, p.Reopen(func() (*Log, error) {
		return Open(e.dir, Config{CleanupPolicy: Delete, RetentionTime: -1}, Options{FS: e.fs, Clock: e.clock})
	}))
	after := p.Mark()
	require.False(t, after.Compacted())
	require.True(t, now.Rewritten(after))
}

// TestMarkRewrittenByAReopenUnderTheLock: a PartitionLock's Reopen counts
// its change (notify) as it makes it, under the lock, not only when the
// lock is released (whose Unlock notifies again, for the readers that
// found the partition Busy meanwhile: the root package's
// TestFairFetchWokenWhenAReopenEnds). Mark takes no lock: one taken
// between the Reopen and the Unlock (a fetch's look at a wake that
// another partition's append brought) shows the reopen to a Mark taken
// before it (Rewritten), also where both logs counted as many
// compactions, and a wait from that earlier Mark answers at once.
// Mutant: PartitionLock.Reopen without its notify (then only Unlock's
// showed the reopen, and a fetch that looked in between kept what it had
// read of the old log).
func TestMarkRewrittenByAReopenUnderTheLock(t *testing.T) {
	e := newEnv(t)
	cfg := Config{CleanupPolicy: Compact, DeleteRetentionTime: time.Hour}
	p := NewPartition("t", 0, e.open(cfg))
	t.Cleanup(func() { p.Close() })
	appendOK(t, p.Log(), keyedBatch(t, "a"))
	before := p.Mark()

	k, err := p.Lock(t.Context())
	require.NoError(t, err)
	defer k.Unlock()
	require.NoError(t, k.Reopen(func() (*Log, error) { return Open(e.dir, cfg, Options{FS: e.fs, Clock: e.clock}) }))
	under := p.Mark()
	require.Equal(t, before.gen, under.gen, "the premise: the counts (and policies) compare equal")
	require.True(t, before.Rewritten(under), "a Mark taken after the Reopen, the lock still held")
	ch, stop := before.ChangedPast(1 << 40)
	defer stop()
	require.True(t, closed(ch), "a wait from a Mark taken before the Reopen, the lock still held")
}
