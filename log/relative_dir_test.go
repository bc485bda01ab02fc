package log

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestRelativeDirSurvivesChdir: a log opened on the OS file
// system with a relative dir keeps working in the directory it opened
// when the process changes its working directory afterwards: a roll, a
// checkpoint and Close land there (Kafka makes its log dirs absolute,
// getAbsoluteFile, for the same reason).
func TestRelativeDirSurvivesChdir(t *testing.T) {
	base := t.TempDir()
	t.Chdir(base)
	cfg := Config{SegmentBytes: 100}
	l, err := Open(filepath.Join("data", "t-0"), cfg, Options{FS: vfs.OS, Clock: newClock()})
	require.NoError(t, err)
	appendOK(t, l, valueBatch(t, 1, "before"))

	other := t.TempDir()
	require.NoError(t, os.Chdir(other))
	for range 5 {
		appendOK(t, l, valueBatch(t, 1, "after")) // rolls: SegmentBytes 100
	}
	require.NoError(t, l.Close())
	_, err = os.Stat(filepath.Join(other, "data"))
	require.ErrorIs(t, err, os.ErrNotExist, "nothing written under the new working directory")

	l, err = Open(filepath.Join(base, "data", "t-0"), cfg, Options{FS: vfs.OS, Clock: newClock()})
	require.NoError(t, err)
	defer l.Close()
	require.True(t, l.Recovery().Clean)
	require.EqualValues(t, 6, l.LogEndOffset())
}

// TestRelativeDirUnderAWrappedOSFS: Open makes a relative dir
// absolute on the OS file system under any vfs.Wrapper too (Open's doc),
// so Dir is absolute for a log opened through vfs.WithFaults(vfs.OS).
// Kills: the check made on the FS itself rather than vfs.Unwrap's.
func TestRelativeDirUnderAWrappedOSFS(t *testing.T) {
	base := t.TempDir()
	t.Chdir(base)
	fs := vfs.WithFaults(vfs.OS, vfs.InjectorFunc(func(vfs.Op, string) error { return nil }))
	l, err := Open(filepath.Join("data", "t-0"), Config{}, Options{FS: fs, Clock: newClock()})
	require.NoError(t, err)
	defer l.Close()
	require.True(t, filepath.IsAbs(l.Dir()), "Dir %q", l.Dir())
	abs, err := filepath.Abs(filepath.Join("data", "t-0"))
	require.NoError(t, err)
	require.Equal(t, abs, l.Dir())
}
