package log

import (
	"errors"
	"strconv"
	"testing"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// The checkpoint files at their boundaries: readFile's limit,
// writeFileAtomic's failures, and the checkpoint format's versions,
// counts, checksums and blank lines.

// TestReadFileLimit: readFile reads a file of exactly its limit, and
// refuses one a byte larger (mutant: the bound off by one).
func TestReadFileLimit(t *testing.T) {
	fs := vfs.NewMem()
	f, err := fs.Create("f")
	require.NoError(t, err)
	_, err = f.Write([]byte("0\n1\n7\n"))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	data, err := readFile(fs, "f", 6)
	require.NoError(t, err)
	require.Equal(t, "0\n1\n7\n", string(data))
	_, err = readFile(fs, "f", 5)
	require.ErrorIs(t, err, ErrBadCheckpoint)
}

// TestCheckpointV1ChecksumSpelling: a checksum line is the checksum in
// decimal as written, without a leading zero (mutant: any spelling that
// parses to it taken).
func TestCheckpointV1ChecksumSpelling(t *testing.T) {
	good := appendCheckpoint(nil, checkpointV1, [][]int64{{1, 2}})
	_, err := parseCheckpoint(good, 2, "cp")
	require.NoError(t, err)
	body, sum, ok := splitChecksum(good)
	require.True(t, ok)
	_, err = strconv.ParseUint(string(sum), 10, 32)
	require.NoError(t, err)
	padded := append(append(append([]byte(nil), body...), '0'), sum...)
	padded = append(padded, '\n')
	_, err = parseCheckpoint(padded, 2, "cp")
	require.ErrorIs(t, err, ErrBadCheckpoint, "%q", padded)
}

// TestCheckpointHugeCount: an entry count larger than the file could hold
// is malformed, not an allocation of that many entries (mutant: the bound
// removed, and the allocation panics).
func TestCheckpointHugeCount(t *testing.T) {
	for _, in := range []string{"0\n4611686018427387904\n", "0\n7\n1\n"} {
		require.NotPanics(t, func() {
			_, err := parseCheckpoint([]byte(in), 1, "cp")
			require.ErrorIs(t, err, ErrBadCheckpoint, "%q", in)
		}, "%q", in)
	}
}

// TestWriteFileAtomicFailures: a failure before the rename leaves the file
// as it was, no temporary file, and a *notWrittenError; a failure of the
// directory's sync after it leaves the new content and an *inPlaceError
// (mutants: the close's error dropped, the temporary file left, the
// errors of the wrong kind).
func TestWriteFileAtomicFailures(t *testing.T) {
	for _, tc := range []struct {
		op      vfs.Op
		written bool // the new content is in place
	}{
		{vfs.OpCreate, false},
		{vfs.OpWrite, false},
		{vfs.OpSync, false},
		{vfs.OpClose, false},
		{vfs.OpSyncDir, true},
	} {
		t.Run(tc.op.String(), func(t *testing.T) {
			mem := vfs.NewMem()
			require.NoError(t, mem.MkdirAll("/d", 0o755))
			require.NoError(t, writeFileAtomic(mem, "/d", "cp", []byte("old")))
			fsys := vfs.WithFaults(mem, vfs.FailNth(1, tc.op))
			err := writeFileAtomic(fsys, "/d", "cp", []byte("new"))
			require.ErrorIs(t, err, vfs.ErrInjected)
			require.Equal(t, !tc.written, errors.As(err, new(*notWrittenError)), "%v", err)
			require.Equal(t, tc.written, errors.As(err, new(*inPlaceError)), "%v", err)
			data, err := readFile(mem, "/d/cp", 100)
			require.NoError(t, err)
			want := "old"
			if tc.written {
				want = "new"
			}
			require.Equal(t, want, string(data))
			names, err := mem.List("/d")
			require.NoError(t, err)
			require.Equal(t, []string{"cp"}, names, "no temporary file is left")
		})
	}
}

// TestCheckpointUnknownVersion: a checkpoint whose version line is neither
// 0 nor 1 is malformed, as in Kafka's CheckpointFile, whatever its entries
// (mutant: any one-character version read as version 0).
func TestCheckpointUnknownVersion(t *testing.T) {
	for _, in := range []string{"2\n1\n5\n", "9\n0\n", "x\n1\n5\n"} {
		_, err := parseCheckpoint([]byte(in), 1, "cp")
		require.ErrorIs(t, err, ErrBadCheckpoint, "%q", in)
	}
}

// TestCheckpointNothingAfterBlankLine: blank lines may follow a
// checkpoint's entries, but no further entry, after them either (a bug
// found by mutation testing: a line after a blank one was not read, so
// that "0\n1\n5\n\n6\n" read as the one entry 5, where Kafka's
// CheckpointFile refuses it).
func TestCheckpointNothingAfterBlankLine(t *testing.T) {
	for _, in := range []string{"0\n1\n5\n\n6\n", "0\n1\n5\n\n\n6\n", "0\n0\n\nx\n"} {
		_, err := parseCheckpoint([]byte(in), 1, "cp")
		require.ErrorIs(t, err, ErrBadCheckpoint, "%q", in)
	}
	for _, in := range []string{"0\n1\n5\n\n", "0\n1\n5\n\n \n"} {
		got, err := parseCheckpoint([]byte(in), 1, "cp")
		require.NoError(t, err, "%q", in)
		require.Equal(t, [][]int64{{5}}, got, "%q", in)
	}
}
