package log

import (
	"strings"
	"testing"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

func TestCheckpointRoundTrip(t *testing.T) {
	fs := vfs.NewMem()
	require.NoError(t, fs.MkdirAll("/d", 0o755))
	rows := [][]int64{{0, 0}, {3, 1000}, {7, 1 << 40}}
	require.NoError(t, writeCheckpoint(fs, "/d", "cp", rows))
	got, err := readCheckpoint(fs, "/d", "cp", 2)
	require.NoError(t, err)
	require.Equal(t, rows, got)
	missing, err := readCheckpoint(fs, "/d", "none", 1)
	require.NoError(t, err)
	require.Nil(t, missing)
	names, err := fs.List("/d")
	require.NoError(t, err)
	require.Equal(t, []string{"cp"}, names, "no temporary file is left behind")
}

func TestCheckpointMalformed(t *testing.T) {
	for _, in := range []string{"", "1\n0\n", "0\n", "0\n2\n5\n", "0\n1\n5 6\n", "0\n1\nx\n", "0\n-1\n", "0\n1\n5\n6\n"} {
		_, err := parseCheckpoint([]byte(in), 1, "cp")
		require.ErrorIs(t, err, ErrBadCheckpoint, "%q", in)
	}
	got, err := parseCheckpoint([]byte("0\n1\n42\n"), 1, "cp")
	require.NoError(t, err)
	require.Equal(t, [][]int64{{42}}, got)
}

// FuzzParseCheckpoint: malformed checkpoint files give ErrBadCheckpoint,
// never a panic, and what parses has the promised shape.
func FuzzParseCheckpoint(f *testing.F) {
	f.Add([]byte("0\n1\n42\n"), 1)
	f.Add([]byte("0\n2\n0 0\n3 1000\n"), 2)
	f.Add([]byte("0\n3\n"), 1)
	f.Add([]byte(strings.Repeat("9", 40)), 1)
	f.Fuzz(func(t *testing.T, data []byte, width int) {
		width = 1 + (width&3)%2
		rows, err := parseCheckpoint(data, width, "cp")
		if err != nil {
			require.ErrorIs(t, err, ErrBadCheckpoint)
			return
		}
		for _, r := range rows {
			require.Len(t, r, width)
		}
	})
}
