package log

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/record"
)

// TestOpenOldLogWithNegativeEpoch opens logs that commit 90ef3ed wrote
// (testdata/compat, see its README.md) with three appends of LeaderEpoch
// -1, closed cleanly and left without a Close: their leader-epoch
// checkpoint holds the entry "-1 0", which Open refused as malformed
// before 47bb5d7 stopped writing it and still refused after. The log
// opens with no epoch, every record read, and takes appends of a real
// epoch, across a reopen.
func TestOpenOldLogWithNegativeEpoch(t *testing.T) {
	for _, mode := range []string{"clean", "kill"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.CopyFS(dir, os.DirFS(filepath.Join("testdata", "compat", "90ef3ed-negative-epoch-"+mode))))
			cfg := Config{SegmentBytes: 200, SegmentIndexBytes: 240}
			l, err := Open(dir, cfg, Options{})
			require.NoError(t, err)
			require.Empty(t, l.LeaderEpochs())
			require.Len(t, readAll(t, l, 0), 3)
			var b record.Builder
			b.Append(1796083200003, []byte("k"), []byte("v"), nil)
			batch, err := b.Finish(0)
			require.NoError(t, err)
			res, err := l.Append(context.Background(), batch, AppendOptions{LeaderEpoch: 2})
			require.NoError(t, err)
			require.Equal(t, int64(3), res.FirstOffset)
			require.NoError(t, l.Close())
			l, err = Open(dir, cfg, Options{})
			require.NoError(t, err)
			require.Equal(t, []EpochEntry{{Epoch: 2, StartOffset: 3}}, l.LeaderEpochs())
			require.Len(t, readAll(t, l, 0), 4)
			require.NoError(t, l.Close())
		})
	}
}

// TestOpenOldLogSyncFailed opens a log that commit 90ef3ed left after a
// failed fsync (testdata/compat/90ef3ed-sync-failed: three appends
// synced, a fourth whose fsync failed, its sync-failed-checkpoint at 3,
// then a Close): today's Open writes the bytes past 3 anew, keeps every
// record, and goes on.
func TestOpenOldLogSyncFailed(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, os.DirFS(filepath.Join("testdata", "compat", "90ef3ed-sync-failed"))))
	cfg := Config{SegmentBytes: 200, SegmentIndexBytes: 240}
	l, err := Open(dir, cfg, Options{})
	require.NoError(t, err)
	require.Positive(t, l.Recovery().RewrittenBytes)
	require.Len(t, readAll(t, l, 0), 4)
	require.Equal(t, []EpochEntry{{Epoch: 1, StartOffset: 0}}, l.LeaderEpochs())
	_, err = os.Stat(filepath.Join(dir, syncFailedFile))
	require.ErrorIs(t, err, os.ErrNotExist)
	var b record.Builder
	b.Append(1796083200004, []byte("k"), []byte("v4"), nil)
	batch, err := b.Finish(0)
	require.NoError(t, err)
	res, err := l.Append(context.Background(), batch, AppendOptions{LeaderEpoch: 1})
	require.NoError(t, err)
	require.Equal(t, int64(4), res.FirstOffset)
	require.NoError(t, l.Close())
	l, err = Open(dir, cfg, Options{})
	require.NoError(t, err)
	require.Len(t, readAll(t, l, 0), 5)
	require.NoError(t, l.Close())
}
