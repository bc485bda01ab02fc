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
