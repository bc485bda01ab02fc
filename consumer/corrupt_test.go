package consumer_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// corruptFixture writes 8 batches of 3 records (codecs in turn) to t-0 of
// a broker on disk, in segments of 250 bytes (two batches each: four segments), closes
// the broker, and returns its directory, the .log files in order, and the
// values by offset.
func corruptFixture(t *testing.T) (dir string, logs []string, want []string) {
	t.Helper()
	dir = t.TempDir()
	b, err := runnel.Open(runnel.Config{Dir: dir})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(testCtx(t), "t", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 250}}))
	for i := range 8 {
		codec := allCodecs[i%len(allCodecs)]
		var recs []rec
		for j := range 3 {
			v := fmt.Sprintf("v%d.%d", i, j)
			recs = append(recs, rec{ts: 1_000_000 + int64(i), key: []byte("k"), value: v})
			want = append(want, v)
		}
		produce(t, b, "t", 0, codec, recs...)
	}
	require.NoError(t, b.Close())
	logs, err = filepath.Glob(filepath.Join(dir, "t-0", "*.log"))
	require.NoError(t, err)
	sort.Strings(logs)
	require.Len(t, logs, 4)
	return dir, logs, want
}

// flip xors one byte of a file.
func flip(t *testing.T, path string, pos int) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	data[pos] ^= 0x5a
	require.NoError(t, os.WriteFile(path, data, 0o644))
}

// batchStarts returns the positions of the batches of a .log file.
func batchStarts(t *testing.T, path string) []int {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []int
	for pos := 0; pos < len(data); {
		out = append(out, pos)
		n := record.BatchSize(data[pos:])
		require.Positive(t, n)
		pos += int(n)
	}
	return out
}

// What readCorrupt found wrong, besides the errors it returns as they come.
var (
	errStalled = errors.New("stalled below the high watermark without an error")
	errGarbage = errors.New("a record that was not produced at its offset")
)

// readCorrupt reopens dir and reads t-0 from its start, under ResetNone,
// until the high watermark or an error, which it returns with the values
// read. A record that was not produced at its offset ends it with an
// error matching errGarbage; a stall (polls that bring nothing while the
// position is below the high watermark) with errStalled.
func readCorrupt(t *testing.T, dir string, want []string, opts ...consumer.Opt) (got []string, err error) {
	t.Helper()
	b, err := runnel.Open(runnel.Config{Dir: dir})
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	defer func() {
		if cerr := b.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close: %w", cerr)
		}
	}()
	opts = append([]consumer.Opt{consumer.FetchMaxWait(time.Millisecond), consumer.ResetOffset(consumer.ResetNone), consumer.RetryBackoff(0)}, opts...)
	c, cerr := consumer.New(b, opts...)
	require.NoError(t, cerr)
	defer c.Close()
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	listed, herr := b.ListOffset(testCtx(t), "t", 0, api.Latest)
	require.NoError(t, herr)
	hw := listed.Offset
	if hw > int64(len(want)) {
		return nil, fmt.Errorf("%w: high watermark %d, %d records produced", errGarbage, hw, len(want))
	}
	for idle := 0; ; {
		fs, perr := c.Poll(testCtx(t))
		require.NoError(t, perr)
		if ferr := fs.Err(); ferr != nil {
			return got, ferr
		}
		n := 0
		for r, rerr := range fs.Records() {
			if rerr != nil {
				return got, rerr
			}
			if r.Offset >= int64(len(want)) || want[r.Offset] != string(r.Value) {
				return got, fmt.Errorf("%w: %q at offset %d", errGarbage, r.Value, r.Offset)
			}
			got = append(got, string(r.Value))
			n++
		}
		if pos, _ := c.Position("t", 0); pos >= hw {
			return got, nil
		}
		if n == 0 {
			if idle++; idle == 50 {
				return got, fmt.Errorf("%w: at %d of %d", errStalled, len(got), hw)
			}
		} else {
			idle = 0
		}
	}
}

// requireCorruptNamed checks that err is a *record.CorruptError naming
// a file.
func requireCorruptNamed(t *testing.T, err error) {
	t.Helper()
	require.ErrorIs(t, err, record.ErrCorrupt)
	var ce *record.CorruptError
	require.True(t, errors.As(err, &ce), "%v", err)
	require.NotEmpty(t, ce.Path, "%v", err)
}

// A byte changed in a batch's records, covered by its CRC, in a sealed
// segment or the active one: the records before it come, then a
// *record.CorruptError naming the file — whether the consumer checks
// CRCs itself or relies on the broker's check (consumer.CRCChecker).
func TestCorruptRecordsOnDiskReported(t *testing.T) {
	for _, check := range []bool{false, true} {
		for i := range 4 {
			t.Run(fmt.Sprintf("segment%d/check=%v", i, check), func(t *testing.T) {
				dir, logs, want := corruptFixture(t)
				second := batchStarts(t, logs[i])[1]
				flip(t, logs[i], second+record.HeaderSize+2)
				got, err := readCorrupt(t, dir, want, consumer.CheckCRCs(check))
				requireCorruptNamed(t, err)
				require.Equal(t, want[:6*i+3], got, "everything before the bad batch")
			})
		}
	}
}

// A batch header's offset fields changed on disk — the base offset,
// which no CRC covers, or the last offset delta, which the CRC covers —
// in a sealed segment or the active one: the records before it, then a
// *record.CorruptError naming the file (or Open fails with one: where
// the header says where a segment or the log ends, Open checks it).
// Before the segment checked batch offsets (against the batch before, the
// segment's base and the next segment's, and the log end recorded at a
// clean shutdown) and the CRC of a batch whose last offset stops a read,
// reads stopped at such a batch without an error, so that a consumer
// waited there forever, and the log end was taken from a changed header
// of the active segment, so that records were served at offsets never
// written.
func TestCorruptBatchOffsetsOnDiskReported(t *testing.T) {
	for _, field := range []struct {
		name string
		at   int // in the batch
	}{{"base offset", 4}, {"last offset delta", 23}} {
		for i := range 4 {
			t.Run(fmt.Sprintf("%s/segment%d", field.name, i), func(t *testing.T) {
				dir, logs, want := corruptFixture(t)
				second := batchStarts(t, logs[i])[1]
				flip(t, logs[i], second+field.at)
				got, err := readCorrupt(t, dir, want)
				requireCorruptNamed(t, err)
				if !strings.HasPrefix(err.Error(), "open: ") { // Open may refuse a corrupt active segment
					require.Equal(t, want[:6*i+3], got, "everything before the bad batch")
				}
			})
		}
	}
}

// Every byte of every .log file changed in turn (the others intact): a
// consumer gets only records that were produced, at their offsets, and
// what it cannot get is a *record.CorruptError naming the file (or an
// error out of Open, or an offset out of range when a checkpoint read
// wrong); never garbage, never a silent stall, and the broker closes
// cleanly. TestCorruptBatchOffsetsOnDiskReported shows the failures it
// found (plus, once in this sweep's history, a Close failing with
// "runnel/index: entry out of order or out of range" after the max
// timestamp of the active segment's first batch changed: Open now checks
// the max timestamps of the batches it scans against the time index).
func TestCorruptLogOnDiskSweep(t *testing.T) {
	if testing.Short() {
		t.Skip("a broker opened per byte")
	}
	dir, logs, want := corruptFixture(t)
	for _, p := range logs {
		pristine, err := os.ReadFile(p)
		require.NoError(t, err)
		for pos := range pristine {
			flip(t, p, pos)
			_, err := readCorrupt(t, dir, want)
			require.NoError(t, os.WriteFile(p, pristine, 0o644))
			if err == nil || errors.Is(err, log.ErrOffsetOutOfRange) {
				continue
			}
			if !isCorruptNamed(err) || strings.HasPrefix(err.Error(), "close: ") {
				t.Errorf("%s@%d: %v", filepath.Base(p), pos, err)
			}
		}
	}
}

func isCorruptNamed(err error) bool {
	var ce *record.CorruptError
	return errors.As(err, &ce) && ce.Path != ""
}
