package log

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// The log FuzzOpenFile opens with one of its files replaced: several
// segments, an idempotent producer, two leader epochs, a compaction pass
// and a log start offset moved by DeleteRecordsBefore; closed cleanly, or
// cut off after a Flush (everything durable, no clean-shutdown marker).
const fuzzDir = "/d/t-0"

// fuzzStart is the fixture's log start offset.
const fuzzStart = 5

var fuzzLogCfg = Config{SegmentBytes: 400, CleanupPolicy: Compact | Delete, MinCleanableDirtyRatio: 0.01}

// fuzzOpenFixture is what the fixture holds.
type fuzzOpenFixture struct {
	clean, crashed *vfs.MemFS
	end            int64
	records        map[int64]string // offset → value, of every record the log holds
	retry          []byte           // the producer's last batch, to send again
	retryAt        int64            // its first offset
}

var fuzzOpen struct {
	once sync.Once
	fx   fuzzOpenFixture
	err  error
}

// fuzzOpenFiles are the files of a log directory whose bytes Open
// parses, or whose presence it reads: every checkpoint (by its name),
// the sync-failed checkpoint (added: the fixture has none), the oldest
// and newest producer-state snapshot, the clean-shutdown marker, an
// older runnel's snapshot and cleaner checkpoint.
func fuzzOpenFiles(fx *fuzzOpenFixture, fsys *vfs.MemFS) []string {
	names := []string{recoveryPointFile, logStartFile, leaderEpochFile, cleanerFile, oldCleanerFile, producerFile, cleanShutdownFile, syncFailedFile}
	list, _ := fsys.List(fuzzDir)
	offs := snapshotOffsets(list)
	if len(offs) > 0 {
		names = append(names, snapshotName(offs[0]), snapshotName(offs[len(offs)-1]))
	}
	return names
}

func buildFuzzOpenFixture(t testT) fuzzOpenFixture {
	ctx := context.Background()
	mem := vfs.NewMem()
	clock := newClock()
	l, err := Open(fuzzDir, fuzzLogCfg, Options{FS: mem, Clock: clock})
	require.NoError(t, err)
	fx := fuzzOpenFixture{records: map[int64]string{}}
	var b record.Builder
	seq := int32(0)
	for i := range 24 {
		b.Reset()
		if i%3 == 0 {
			b.SetProducer(9, 1, seq)
		}
		n := 1 + i%3
		for j := range n {
			b.Append(1_700_000_000_000+int64(i), []byte(fmt.Sprintf("k%d", (i+j)%5)), []byte(fmt.Sprintf("v%d.%d", i, j)), nil)
		}
		data, err := b.AppendTo(nil, []compression.Codec{compression.None, compression.Zstd}[i%2])
		require.NoError(t, err)
		sent := bytes.Clone(data)
		res, err := l.Append(ctx, data, AppendOptions{LeaderEpoch: int32(1 + i/12*2)})
		require.NoError(t, err)
		if i%3 == 0 {
			fx.retry, fx.retryAt = sent, res.FirstOffset
			seq += int32(n)
		}
	}
	_, err = l.Compact(ctx)
	require.NoError(t, err)
	_, err = l.DeleteRecordsBefore(context.Background(), fuzzStart)
	require.NoError(t, err)
	require.NoError(t, l.Flush(ctx))
	fx.end = l.LogEndOffset()
	for _, r := range readAll(t, l, l.LogStartOffset()) {
		fx.records[r.Offset] = string(r.Value)
	}
	fx.crashed = mem.CrashClone(vfs.CrashOptions{})
	require.NoError(t, l.Close())
	fx.clean = mem.CrashClone(vfs.CrashOptions{})
	return fx
}

func fuzzOpenFix(t testT) *fuzzOpenFixture {
	fuzzOpen.once.Do(func() {
		defer func() {
			if r := recover(); r != nil {
				fuzzOpen.err = fmt.Errorf("fixture: %v", r)
			}
		}()
		fuzzOpen.fx = buildFuzzOpenFixture(t)
	})
	require.NoError(t, fuzzOpen.err)
	return &fuzzOpen.fx
}

// FuzzOpenFile replaces one file of a log's directory (a checkpoint of
// each kind, a producer-state snapshot, the clean-shutdown marker, an
// older runnel's file) with arbitrary bytes and opens the log, closed
// cleanly or not. Open either fails with a typed error (ErrBadCheckpoint,
// or record.ErrCorrupt when the file was the recovery point, past which
// nothing durable may be missing), or it opens a log that
// holds every record of the intact segments at or past its log start
// offset, ends where they end, has sound leader epochs, still answers the
// idempotent producer's retry as a duplicate (unless the file was a
// snapshot that parses: then it says what the state is), takes an append
// and opens again as it closed.
func FuzzOpenFile(f *testing.F) {
	fx := fuzzOpenFix(f)
	for i, name := range fuzzOpenFiles(fx, fx.clean) {
		for _, fsys := range []*vfs.MemFS{fx.clean, fx.crashed} {
			clean := fsys == fx.clean
			if data, err := readMemFile(fsys, filepath.Join(fuzzDir, name)); err == nil {
				f.Add(uint8(i), clean, data)
				if len(data) > 3 {
					changed := bytes.Clone(data)
					changed[len(changed)/2] ^= 0x01
					f.Add(uint8(i), clean, changed)
				}
			}
		}
		f.Add(uint8(i), false, []byte{})
		if name == cleanShutdownFile {
			// An older runnel's marker, which was empty, after its clean
			// close.
			f.Add(uint8(i), true, []byte{})
		}
		for _, data := range fuzzOldSnapshots(fx, name) {
			f.Add(uint8(i), true, data)
			f.Add(uint8(i), false, data)
		}
		f.Add(uint8(i), true, []byte("0\n1\n9223372036854775807\n"))
		f.Add(uint8(i), false, []byte("0\n2\n3 40\n1 7\n"))
		f.Add(uint8(i), true, []byte("0\n1\n-5\n"))
	}
	f.Fuzz(func(t *testing.T, which uint8, clean bool, data []byte) {
		fx := fuzzOpenFix(t)
		base := fx.crashed
		if clean {
			base = fx.clean
		}
		names := fuzzOpenFiles(fx, base)
		name := names[int(which)%len(names)]
		mem := base.CrashClone(vfs.CrashOptions{})
		writeMemFile(t, mem, filepath.Join(fuzzDir, name), data)

		l, err := Open(fuzzDir, fuzzLogCfg, Options{FS: mem, Clock: newClock()})
		if err != nil {
			if errors.Is(err, ErrBadCheckpoint) {
				return
			}
			if name == recoveryPointFile && errors.Is(err, record.ErrCorrupt) {
				// A recovery point past where the segments end says that
				// records below it, now missing, were durable: corruption.
				// (A marker the log never wrote, or a recovery point that
				// is not the log end a clean Close wrote, is no error: the
				// log is recovered as after a crash.) The segments are
				// untouched.
				return
			}
			t.Fatalf("Open with %s = %q: %v", name, data, err)
		}
		// Discarded, not closed, when done: the directory goes with the
		// exec, and the clean Close below is the one checked.
		defer func() { l.Discard() }()
		checkFuzzOpened(t, fx, l, name, data)

		// It takes an append, and opens again as it closed.
		next := l.LogEndOffset()
		appendOK(t, l, valueBatch(t, 1_700_000_000_100, "after"))
		start := l.LogStartOffset()
		require.NoError(t, l.Close())
		l, err = Open(fuzzDir, fuzzLogCfg, Options{FS: mem, Clock: newClock()})
		require.NoError(t, err, "reopen after a clean close")
		require.Equal(t, next+1, l.LogEndOffset())
		require.Equal(t, start, l.LogStartOffset())
		got := readAll(t, l, next)
		require.Len(t, got, 1)
		require.Equal(t, "after", string(got[0].Value))
	})
}

// fuzzOldSnapshots are the producer-state snapshots an older runnel wrote
// that could stand at name, made of the fixture's own snapshots: for a
// snapshot, itself in version 0 (before the checksum line); for the older
// runnel's single file (producerFile), each snapshot's rows in version 0.
func fuzzOldSnapshots(fx *fuzzOpenFixture, name string) [][]byte {
	list, _ := fx.clean.List(fuzzDir)
	var out [][]byte
	for _, off := range snapshotOffsets(list) {
		if name != producerFile && name != snapshotName(off) {
			continue
		}
		data, err := readMemFile(fx.clean, filepath.Join(fuzzDir, snapshotName(off)))
		if err != nil {
			continue
		}
		if rows, err := parseCheckpoint(data, 6, snapshotName(off)); err == nil {
			out = append(out, appendCheckpoint(nil, checkpointV0, rows))
		}
	}
	return out
}

// checkFuzzOpened checks the state of l, opened with name holding data.
func checkFuzzOpened(t *testing.T, fx *fuzzOpenFixture, l *Log, name string, data []byte) {
	end, start := l.LogEndOffset(), l.LogStartOffset()
	if name == logStartFile {
		if e, err := parseCheckpoint(data, 1, name); err == nil && len(e) > 0 && e[0][0] > fx.end {
			// A log start offset past the end of the segments: the log is
			// emptied and starts there, as Kafka's (see Open).
			require.Equal(t, e[0][0], start, "the log start offset past the end stays")
			require.Equal(t, start, end, "the log end offset of a log emptied at its start")
			require.Empty(t, readAll(t, l, start))
			require.Empty(t, l.LeaderEpochs())
			require.Equal(t, 1, l.Segments())
			return
		}
	}
	require.Equal(t, fx.end, end, "the log end offset of intact segments")
	require.LessOrEqual(t, start, end)
	// Every record at or past the start, and no other: one comparison,
	// not one per record (a fuzzer runs this some thousand times a
	// second).
	got, want := map[int64]string{}, map[int64]string{}
	for _, r := range readAll(t, l, start) {
		got[r.Offset] = string(r.Value)
	}
	for off, v := range fx.records {
		if off >= start {
			want[off] = v
		}
	}
	require.Equal(t, want, got, "the records from the log start offset %d (offset → value)", start)
	epochs := l.LeaderEpochs()
	for i, e := range epochs {
		require.LessOrEqual(t, e.StartOffset, end, "epoch %+v past the log end", e)
		if i > 0 {
			require.Greater(t, e.Epoch, epochs[i-1].Epoch, "epochs %v", epochs)
			require.GreaterOrEqual(t, e.StartOffset, epochs[i-1].StartOffset, "epochs %v", epochs)
		}
	}
	snapshot := name == producerFile || filepath.Ext(name) == snapshotSuffix
	if _, err := parseCheckpoint(data, 6, name); snapshot && err == nil {
		return // the fuzzer wrote a snapshot: the state is what it says
	}
	if name == logStartFile && start > fuzzStart {
		// A log start the log never had: the snapshots below it, all
		// of them in the crashed fixture, are not loaded (the state is
		// replayed from the start), as after DeleteRecordsBefore.
		return
	}
	res, err := l.Append(context.Background(), bytes.Clone(fx.retry), AppendOptions{})
	require.NoError(t, err, "the producer's retry")
	require.True(t, res.Duplicate, "the producer's retry appended again at %d", res.FirstOffset)
	require.Equal(t, fx.retryAt, res.FirstOffset)
}

func readMemFile(fsys vfs.FS, path string) ([]byte, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := f.Size()
	if err != nil {
		return nil, err
	}
	data := make([]byte, n)
	if _, err := f.ReadAt(data, 0); err != nil && n > 0 {
		return nil, err
	}
	return data, nil
}

func writeMemFile(t testT, fsys vfs.FS, path string, data []byte) {
	f, err := fsys.Create(path)
	require.NoError(t, err)
	_, err = f.Write(data)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())
}

// TestFuzzOpenFixture: the fixture has the files FuzzOpenFile changes:
// every checkpoint, two snapshots, the marker of the clean close, and
// both leader epochs; and it opens as it is.
func TestFuzzOpenFixture(t *testing.T) {
	fx := fuzzOpenFix(t)
	names, err := fx.clean.List(fuzzDir)
	require.NoError(t, err)
	for _, want := range []string{recoveryPointFile, logStartFile, leaderEpochFile, cleanerFile, cleanShutdownFile} {
		require.Contains(t, names, want)
	}
	require.GreaterOrEqual(t, len(snapshotOffsets(names)), 2, "%v", names)
	require.Len(t, fuzzOldSnapshots(fx, producerFile), len(snapshotOffsets(names)), "a version 0 seed of each snapshot")
	crashed, err := fx.crashed.List(fuzzDir)
	require.NoError(t, err)
	require.NotContains(t, crashed, cleanShutdownFile)
	require.True(t, slices.Contains(crashed, recoveryPointFile))
	for _, fsys := range []*vfs.MemFS{fx.clean, fx.crashed} {
		l, err := Open(fuzzDir, fuzzLogCfg, Options{FS: fsys.CrashClone(vfs.CrashOptions{}), Clock: newClock()})
		require.NoError(t, err)
		require.Len(t, l.LeaderEpochs(), 2)
		require.Equal(t, int64(fuzzStart), l.LogStartOffset())
		checkFuzzOpened(t, fx, l, "", nil)
		require.NoError(t, l.Close())
	}
}
