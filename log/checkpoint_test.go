package log

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

func TestCheckpointRoundTrip(t *testing.T) {
	fs := vfs.NewMem()
	require.NoError(t, fs.MkdirAll("/d", 0o755))
	rows := [][]int64{{0, 0}, {3, 1000}, {7, 1 << 40}}
	require.NoError(t, writeCheckpoint(fs, "/d", "cp", checkpointV0, rows))
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

// TestCheckpointV1: a checksummed checkpoint (version 1, the layout of
// producer-state snapshots) reads back, its lines are version 0's with
// the version 1 and a checksum line after them, and a version 0 file
// reads as before.
func TestCheckpointV1(t *testing.T) {
	fs := vfs.NewMem()
	require.NoError(t, fs.MkdirAll("/d", 0o755))
	rows := [][]int64{{-1, 7, 0, 0, 0, 0}, {3, 0, 1, 4, 5, 8}, {lastAppendRow, 3, 1 << 62, 0, 0, 0}}
	require.NoError(t, writeCheckpoint(fs, "/d", "cp", checkpointV1, rows))
	got, err := readCheckpoint(fs, "/d", "cp", 6)
	require.NoError(t, err)
	require.Equal(t, rows, got)

	v0 := string(appendCheckpoint(nil, checkpointV0, rows))
	v1 := string(appendCheckpoint(nil, checkpointV1, rows))
	body, sum, ok := strings.Cut(v1[2:], "\n-2 3 4611686018427387904 0 0 0\n")
	require.True(t, ok, "%q", v1)
	require.Equal(t, v0[2:], body+"\n-2 3 4611686018427387904 0 0 0\n", "version 0's lines")
	require.Regexp(t, `^[0-9]+\n$`, sum)
	got, err = parseCheckpoint([]byte(v0), 6, "cp")
	require.NoError(t, err)
	require.Equal(t, rows, got)

	empty := appendCheckpoint(nil, checkpointV1, nil)
	got, err = parseCheckpoint(empty, 6, "cp")
	require.NoError(t, err, "%q", empty)
	require.Empty(t, got)
}

// TestCheckpointV1DetectsEveryByteChanged: any one byte of a checksummed
// checkpoint changed to any other makes it malformed, whether or not the
// result would parse as a checkpoint: a digit of an entry, of the count,
// of the checksum, the version (a version 0 file then has a line too
// many), a space, a newline.
func TestCheckpointV1DetectsEveryByteChanged(t *testing.T) {
	rows := [][]int64{{-1, 6, 0, 0, 0, 0}, {1, 0, 1, 1, 1, 1}, {1, 0, 5, 5, 5, 5}, {lastAppendRow, 1, 1700000000000000000, 0, 0, 0}}
	good := appendCheckpoint(nil, checkpointV1, rows)
	for _, empty := range []bool{false, true} {
		if empty {
			good = appendCheckpoint(nil, checkpointV1, nil)
		}
		for i := range good {
			for _, c := range []byte("0123456789 -\n\r\tx\x00") {
				if c == good[i] {
					continue
				}
				data := append([]byte(nil), good...)
				data[i] = c
				_, err := parseCheckpoint(data, 6, "cp")
				require.ErrorIs(t, err, ErrBadCheckpoint, "byte %d of %q made %q", i, good, c)
			}
		}
		for n := range len(good) {
			_, err := parseCheckpoint(good[:n], 6, "cp")
			require.ErrorIs(t, err, ErrBadCheckpoint, "cut at %d of %q", n, good)
		}
	}
}

// FuzzParseCheckpoint: malformed checkpoint files of either version give
// ErrBadCheckpoint, never a panic, and what parses has the promised shape
// and is written back (in either version) as a file that reads the same.
// Its seeds are small: a line past the scanner's 64 KiB is
// TestCheckpointLongLineAfterTheEntries's. A 70 KB seed made each input
// grown from it that found new coverage cost the engine a whole
// -fuzzminimizetime (60 s) to minimize, as cutting bytes below 64 KiB
// loses that coverage: 7,432 execs in an 88 s run, 682,349 without it.
func FuzzParseCheckpoint(f *testing.F) {
	f.Add([]byte("0\n1\n42\n"), 1)
	f.Add([]byte("0\n2\n0 0\n3 1000\n"), 2)
	f.Add([]byte("0\n3\n"), 1)
	f.Add([]byte(strings.Repeat("9", 40)), 1)
	f.Add([]byte("0\r\n1\r\n-1 4 0 0 0 0\r\n"), 6)
	f.Add(appendCheckpoint(nil, checkpointV1, [][]int64{{-1, 6, 0, 0, 0, 0}, {1, 0, 5, 5, 5, 5}, {lastAppendRow, 1, 1700000000000000000, 0, 0, 0}}), 6)
	f.Add(appendCheckpoint(nil, checkpointV1, [][]int64{{42}}), 1)
	f.Add(appendCheckpoint(nil, checkpointV1, nil), 2)
	f.Add(appendMarker(nil, cleanMarker{end: 48, activeBase: 40, maxTimestamp: 1_700_000_000_023, maxTimestampOffset: 47, timeEntries: 3}), markerWidth)
	f.Add([]byte("1\n0\n"), 1)
	f.Add([]byte("1\n0\n4294967296\n"), 1)
	f.Fuzz(func(t *testing.T, data []byte, width int) {
		width = 1 + int(uint(width-1)%6) // 1 to 6: a seed's width is its own
		rows, err := parseCheckpoint(data, width, "cp")
		if err != nil {
			require.ErrorIs(t, err, ErrBadCheckpoint)
			return
		}
		for _, r := range rows {
			require.Len(t, r, width)
		}
		if data[0] == '0' {
			// Nothing but blank lines may follow the entries: a version
			// 0 file read whole, not up to a line the scan stopped at.
			_, err := parseCheckpoint(append(bytes.Clone(data), "\n7\n"...), width, "cp")
			require.ErrorIs(t, err, ErrBadCheckpoint, "an entry past the count")
		}
		for _, v := range []int{checkpointV0, checkpointV1} {
			again, err := parseCheckpoint(appendCheckpoint(nil, v, rows), width, "cp")
			require.NoError(t, err, "version %d", v)
			require.Equal(t, len(rows), len(again), "version %d", v)
			for i := range rows {
				require.Equal(t, rows[i], again[i], "version %d", v)
			}
		}
	})
}

// FuzzCheckpointChecksum: a checksummed checkpoint with one byte changed
// (at pos, by a non-zero xor mask) never parses, whatever its entries.
func FuzzCheckpointChecksum(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, uint16(20), byte(1))
	f.Add([]byte{0xff, 0, 0, 0, 0, 0, 0, 0x80}, uint16(3), byte(0x10))
	f.Add([]byte{}, uint16(0), byte(1))
	f.Fuzz(func(t *testing.T, raw []byte, pos uint16, mask byte) {
		if mask == 0 {
			return
		}
		var rows [][]int64
		for len(raw) >= 8 {
			v := int64(binary.LittleEndian.Uint64(raw))
			raw = raw[8:]
			rows = append(rows, []int64{v >> (uint64(v) & 63)}) // of every magnitude
		}
		good := appendCheckpoint(nil, checkpointV1, rows)
		got, err := parseCheckpoint(good, 1, "cp")
		require.NoError(t, err)
		require.Equal(t, len(rows), len(got))
		data := append([]byte(nil), good...)
		data[int(pos)%len(data)] ^= mask
		_, err = parseCheckpoint(data, 1, "cp")
		require.ErrorIs(t, err, ErrBadCheckpoint, "%q from %q", data, good)
	})
}

// TestCheckpointLongLineAfterTheEntries: a line longer than the line
// scanner takes (64 KiB) after a checkpoint's entries makes the file
// malformed, as any other line there does. The scan stopped at it
// without a word, and the file read as its entries, whatever followed
// (more entries, garbage), also with a good checksum.
func TestCheckpointLongLineAfterTheEntries(t *testing.T) {
	long := strings.Repeat("x", 70_000)
	for _, in := range []string{
		"0\n1\n42\n" + long,
		"0\n1\n42\n\n" + long + "\n",
		"0\n1\n42\n" + strings.Repeat("9", 70_000) + " garbage\n7 8\n",
	} {
		_, err := parseCheckpoint([]byte(in), 1, "cp")
		require.ErrorIs(t, err, ErrBadCheckpoint, "%d bytes", len(in))
	}
	v1 := appendCheckpoint(nil, checkpointV1, [][]int64{{42}})
	body, _, ok := splitChecksum(v1)
	require.True(t, ok)
	withLong := append(append([]byte(nil), body...), long+"\n"...)
	withLong = strconv.AppendUint(withLong, uint64(crc32.Checksum(withLong, castagnoli)), 10)
	withLong = append(withLong, '\n')
	_, err := parseCheckpoint(withLong, 1, "cp")
	require.ErrorIs(t, err, ErrBadCheckpoint, "version 1, its checksum good")
}

// TestCheckpointCountBeyondTheFile: an entry count the file cannot hold
// (an entry takes at least two bytes a number) is refused before room is
// made for it: a 4 MiB file that counted 4 Mi entries made the parser
// reserve 24 bytes an entry, 100 MB, before it failed.
func TestCheckpointCountBeyondTheFile(t *testing.T) {
	const size = 4 << 20
	data := append([]byte("0\n"+strconv.Itoa(size)+"\n"), make([]byte, size)...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := parseCheckpoint(data, 1, "cp")
	runtime.ReadMemStats(&after)
	require.ErrorIs(t, err, ErrBadCheckpoint)
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20), "allocated for a count the file cannot hold")

	// The bound takes every file a count can describe: one digit and a
	// newline an entry, the last newline missing too.
	got, err := parseCheckpoint([]byte("0\n3\n1\n2\n3"), 1, "cp")
	require.NoError(t, err)
	require.Equal(t, [][]int64{{1}, {2}, {3}}, got)
	got, err = parseCheckpoint([]byte("0\n2\n1 2\n3 4\n"), 2, "cp")
	require.NoError(t, err)
	require.Equal(t, [][]int64{{1, 2}, {3, 4}}, got)
}
