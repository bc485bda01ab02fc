package log

import (
	"bytes"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// FuzzClassify: what a name in a log's directory is (classify, IsLogFile,
// SystemFile, segment.ParseFileName). A name with a base offset is
// segment.FileName of that base and its suffix; a system file has none;
// IsLogFile takes a name with ".tmp" added as it takes the name; and a
// name the log writes is classified as what it is.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{
		"00000000000000000000.log", "00000000000000000042.index", "00000000000000000042.timeindex",
		"00000000000000000100.snapshot", "00000000000000000007.log.cleaned", "00000000000000000007.log.swap",
		"00000000000000000007.index.swap", "00000000000000000007.timeindex.cleaned",
		"00000000000000000007.log.rewrite", "00000000000000000007.log.rewrite.tmp", "09223372036854775807.log",
		"09223372036854775808.log", "-0000000000000000001.log", "+0000000000000000001.log", "0000000000000000000.log",
		"00000000000000000000.log.tmp", "00000000000000000000.log.tmp.tmp", "00000000000000000000.", "00000000000000000000",
		recoveryPointFile, logStartFile, leaderEpochFile, cleanerFile, oldCleanerFile, producerFile, cleanShutdownFile,
		recoveryPointFile + ".tmp", ".DS_Store", "._00000000000000000000.log", "Thumbs.db", "DESKTOP.INI", ".nfs0001",
		"partition.metadata", "x", "", ".tmp",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		kind, base := classify(name)
		b, suffix, ok := segment.ParseFileName(name)
		if ok {
			require.GreaterOrEqual(t, b, int64(0))
			require.Equal(t, name, segment.FileName(b, suffix))
		}
		switch kind {
		case segmentFile, keptFile, leftoverFile, logSwapFile, tailCopyFile:
			require.True(t, ok, "%q is %d without a base offset", name, kind)
			require.Equal(t, b, base)
		default:
			require.Zero(t, base)
		}
		if SystemFile(name) {
			require.False(t, ok, "%q: a system file with a base offset", name)
			require.True(t, kind == systemFile || kind == tmpFile, "%q", name)
		}
		if !strings.HasSuffix(name, tmpSuffix) {
			require.Equal(t, IsLogFile(name), IsLogFile(name+tmpSuffix), "%q", name)
			require.Equal(t, kind != foreignFile, IsLogFile(name), "%q", name)
		}
		if ok && b >= 0 {
			for _, s := range []string{segment.LogSuffix, segment.IndexSuffix, segment.TimeIndexSuffix, snapshotSuffix} {
				k, got := classify(segment.FileName(b, s))
				require.NotEqual(t, foreignFile, k)
				require.Equal(t, b, got)
			}
		}
	})
}

// FuzzOpenFileName adds a file of any name and content to the directory
// of FuzzOpenFile's log, closed cleanly or not, and opens it. A name that
// is no log's (classify) makes Open fail with ErrNotLogDir and changes
// nothing; a name of the log's either opens, or fails with a typed error
// (ErrBadCheckpoint, record.ErrCorrupt). Where the name is not a .log or
// a .log.swap (which stand for records: an added one replaces or adds
// segments, as Open completes a compaction's swap), the log opens with
// every record of the intact segments, and opens again as it closed.
func FuzzOpenFileName(f *testing.F) {
	fx := fuzzOpenFix(f)
	names, err := fx.clean.List(fuzzDir)
	require.NoError(f, err)
	for _, n := range names {
		data, err := readMemFile(fx.clean, filepath.Join(fuzzDir, n))
		require.NoError(f, err)
		f.Add(n, true, data)
		f.Add(n+".tmp", false, data)
		f.Add(strings.Replace(n, "0", "9", 1), false, data)
		if strings.HasSuffix(n, segment.LogSuffix) {
			// A compaction's swap that kept every batch of the segment.
			f.Add(n+swapSuffix, false, data)
			f.Add(n+swapSuffix, true, data[:len(data)/2])
			// A rewrite's tail copy: of the segment's bytes, of part
			// of them, and of other bytes.
			f.Add(n+tailCopySuffix, false, appendTailCopy(0, data))
			f.Add(n+tailCopySuffix, true, appendTailCopy(int64(len(data)/2), data[len(data)/2:]))
			f.Add(n+tailCopySuffix, false, appendTailCopy(int64(len(data)/2), []byte("not a batch")))
		}
	}
	for _, n := range []string{"00000000000000000003.log.swap", "00000000000000000100.log", "00000000000000000011.log.cleaned", "00000000000000000011.snapshot",
		"00000000000000000011.index", ".DS_Store", "x", "Thumbs.db", "00000000000000000002.timeindex.swap", "00000000000000000000.log.rewrite",
		// Base offsets past the largest a segment can have.
		"09223372034707292161.log", "09223372036854775807.log", "09223372036854775807.index", "09223372036854775807.log.swap"} {
		f.Add(n, true, []byte{})
		f.Add(n, false, []byte("0\n1\n7\n"))
	}
	f.Fuzz(func(t *testing.T, name string, clean bool, data []byte) {
		if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") || len(name) > vfs.MaxNameLen {
			return // not a file name
		}
		fx := fuzzOpenFix(t)
		base := fx.crashed
		if clean {
			base = fx.clean
		}
		mem := base.CrashClone(vfs.CrashOptions{})
		writeMemFile(t, mem, filepath.Join(fuzzDir, name), data)
		kind, segmentBase := classify(name)
		var before map[string]string
		if kind == tailCopyFile {
			before = memSnapshot(t, mem, fuzzDir) // what a refused one must leave
		}
		l, err := Open(fuzzDir, fuzzLogCfg, Options{FS: mem, Clock: newClock()})
		if kind == foreignFile {
			require.ErrorIs(t, err, ErrNotLogDir, "%q", name)
			got, err := mem.List(fuzzDir)
			require.NoError(t, err)
			want, err := base.List(fuzzDir)
			require.NoError(t, err)
			require.ElementsMatch(t, append(want, name), got, "a refused Open changed the directory")
			return
		}
		// A .log, a .log.swap and a tail copy (put back into its
		// segment) stand for records.
		records := kind != segmentFile && kind != logSwapFile && kind != tailCopyFile
		if kind == logSwapFile {
			// A swap that holds the segment of its base as it is: what
			// compaction writes when it removes nothing.
			orig, err := readMemFile(base, filepath.Join(fuzzDir, strings.TrimSuffix(name, swapSuffix)))
			records = err == nil && bytes.Equal(orig, data)
		}
		if kind == tailCopyFile && errors.Is(err, ErrBadTailCopy) {
			require.Equal(t, before, memSnapshot(t, mem, fuzzDir), "%q: a refused tail copy changed the directory", name)
			return
		}
		if err != nil {
			require.True(t, errors.Is(err, ErrBadCheckpoint) || errors.Is(err, record.ErrCorrupt), "%q: %v", name, err)
			require.False(t, records && !errors.Is(err, ErrBadCheckpoint) && kind != markerFile && kind != checkpointFile, "%q: %v", name, err)
			return
		}
		// Discarded, not closed, when done: the directory goes with the
		// exec, and the clean Close below is the one checked.
		defer func() { l.Discard() }()
		if records {
			checkFuzzOpened(t, fx, l, name, data)
		} else {
			// A .log, a .log.swap or a tail copy stands for the records
			// from its base on: those below it are the other files', and
			// stay.
			checkFuzzBelow(t, fx, l, segmentBase)
		}
		end, start := l.LogEndOffset(), l.LogStartOffset()
		require.NoError(t, l.Close())
		l, err = Open(fuzzDir, fuzzLogCfg, Options{FS: mem, Clock: newClock()})
		require.NoError(t, err, "reopen after a clean close")
		require.Equal(t, end, l.LogEndOffset())
		require.Equal(t, start, l.LogStartOffset())
		if records {
			readAll(t, l, start)
			return
		}
		// A .log changed under a clean shutdown is not scanned at Open
		// (as in Kafka): its batches are checked as they are read.
		for off := start; off < end; {
			data, err := l.Read(off, 1<<16, math.MaxInt64)
			if err != nil {
				require.ErrorIs(t, err, record.ErrCorrupt, "%q", name)
				return
			}
			if len(data) == 0 {
				break
			}
			for b, err := range record.Batches(data) {
				require.NoError(t, err)
				require.NoError(t, b.Validate(0))
				require.Greater(t, b.NextOffset(), off)
				off = b.NextOffset()
			}
		}
	})
}

// checkFuzzBelow checks that l holds the fixture's records from its log
// start offset up to below.
func checkFuzzBelow(t *testing.T, fx *fuzzOpenFixture, l *Log, below int64) {
	start := l.LogStartOffset()
	got := map[int64]string{}
	for off := start; off < below; {
		data, err := l.Read(off, 1<<16, below)
		require.NoError(t, err, "reading below %d", below)
		if len(data) == 0 {
			break
		}
		for b, err := range record.Batches(data) {
			require.NoError(t, err)
			for r, err := range b.Records() {
				require.NoError(t, err)
				got[r.Offset] = string(r.Value)
			}
			off = b.NextOffset()
		}
	}
	for o, v := range fx.records {
		if o >= start && o < below {
			require.Equal(t, v, got[o], "offset %d, below %d", o, below)
		}
	}
}
