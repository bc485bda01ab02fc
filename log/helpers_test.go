package log

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// fakeClock is a Clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.UnixMilli(1_700_000_000_000)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testT is what the helpers need of a test: a *testing.T, or a *rapid.T.
type testT interface {
	require.TestingT
	Helper()
}

type kv struct {
	key, value []byte
	ts         int64
}

// batchOf encodes records into one batch.
func batchOf(t testT, codec compression.Codec, recs ...kv) []byte {
	t.Helper()
	var b record.Builder
	b.Reset()
	for _, r := range recs {
		b.Append(r.ts, r.key, r.value, nil)
	}
	out, err := b.AppendTo(nil, codec)
	require.NoError(t, err)
	return out
}

func valueBatch(t testing.TB, ts int64, values ...string) []byte {
	recs := make([]kv, len(values))
	for i, v := range values {
		recs[i] = kv{key: []byte(fmt.Sprintf("k%s", v)), value: []byte(v), ts: ts}
	}
	return batchOf(t, compression.None, recs...)
}

type env struct {
	t     testing.TB
	fs    vfs.FS
	dir   string
	clock *fakeClock
}

func newEnv(t testing.TB) *env {
	return &env{t: t, fs: vfs.NewMem(), dir: "/data/topic-0", clock: newClock()}
}

func (e *env) open(cfg Config) *Log {
	e.t.Helper()
	l, err := Open(e.dir, cfg, Options{FS: e.fs, Clock: e.clock})
	require.NoError(e.t, err)
	return l
}

// openOneKeyMap opens e's log with cfg and the smallest cleaner key map
// (MinCleanerMapBytes), which holds one key: for the tests of a pass
// whose key map fills.
func (e *env) openOneKeyMap(cfg Config) *Log {
	e.t.Helper()
	l, err := Open(e.dir, cfg, Options{FS: e.fs, Clock: e.clock, CleanerMapBytes: MinCleanerMapBytes})
	require.NoError(e.t, err)
	return l
}

// openIdem opens e's log for the idempotence tests whose producer ids
// expire: ProducerExpiration an hour by e's clock, no retention by time
// (their batches' 1 ms timestamps are old), logging to logger (nil:
// nowhere).
func (e *env) openIdem(logger *slog.Logger) *Log {
	e.t.Helper()
	l, err := Open(e.dir, Config{RetentionTime: -1}, Options{FS: e.fs, Clock: e.clock, Logger: logger, ProducerExpiration: time.Hour})
	require.NoError(e.t, err)
	return l
}

// crashReopen cuts the power under l: e.fs, a memory FS, becomes a copy
// of itself without what was not fsynced; l is closed on the old one and
// the log opened again on the copy.
func (e *env) crashReopen(l *Log, cfg Config) *Log {
	e.t.Helper()
	e.fs = e.fs.(*vfs.MemFS).CrashClone(vfs.CrashOptions{})
	l.Close()
	return e.open(cfg)
}

func appendOK(t testT, l *Log, data []byte) AppendResult {
	t.Helper()
	res, err := l.Append(context.Background(), data, AppendOptions{})
	require.NoError(t, err)
	return res
}

// appendEach appends to l, one after another, a batch for each of values
// (valueBatch, stamped ts), each acknowledged.
func appendEach(t testing.TB, l *Log, ts int64, values ...string) {
	t.Helper()
	for _, v := range values {
		appendOK(t, l, valueBatch(t, ts, v))
	}
}

// requireDuplicate appends data, a retry of a producer's batch, and
// requires the log to answer it as the duplicate of the batch at first.
func requireDuplicate(t testT, l *Log, data []byte, first int64) {
	t.Helper()
	res := appendOK(t, l, data)
	require.True(t, res.Duplicate)
	require.Equal(t, first, res.FirstOffset)
}

// readAll reads every record from offset from to the log end.
func readAll(t testT, l *Log, from int64) []*record.Record {
	t.Helper()
	var out []*record.Record
	off := from
	for off < l.LogEndOffset() {
		data, err := l.Read(off, 64<<10, math.MaxInt64)
		require.NoError(t, err)
		if len(data) == 0 {
			break
		}
		for p := 0; p < len(data); {
			b, err := record.Parse(data[p:], 0)
			require.NoError(t, err)
			for r, err := range b.Records() {
				// Checked before require, whose t.Helper call costs
				// more than the rest of the loop: fuzz targets read
				// every record of a log on each exec.
				if err != nil {
					require.NoError(t, err)
				}
				if r.Offset >= off {
					out = append(out, r)
				}
			}
			off = max(off, b.NextOffset())
			p += len(b)
		}
	}
	return out
}

// hookedLog opens a log of cfg on a MemFS whose every operation first
// calls *hook, when the test has set it (to act at a chosen moment, such
// as the cleaner's creating its .cleaned file), with a fake clock. The
// log closes with the test.
func hookedLog(t *testing.T, cfg Config, hook *func(op vfs.Op, name string)) (*Log, *fakeClock) {
	t.Helper()
	fs := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if *hook != nil {
			(*hook)(op, name)
		}
		return nil
	}))
	clock := newClock()
	l, err := Open("/d/t-0", cfg, Options{FS: fs, Clock: clock})
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return l, clock
}

// keyedProducerBatch is producer 1's (epoch 0) batch of one record at
// sequence seq with the key key and the value seq.
func keyedProducerBatch(t testing.TB, seq int32, key string) []byte {
	t.Helper()
	var b record.Builder
	b.Reset()
	b.SetProducer(1, 0, seq)
	b.Append(1_700_000_000_000, []byte(key), []byte(fmt.Sprint(seq)), nil)
	out, err := b.AppendTo(nil, compression.None)
	require.NoError(t, err)
	return out
}

// removeProducerSnapshots removes every producer-state snapshot file of
// the log in dir, so that Open rebuilds the state from the log alone.
func removeProducerSnapshots(t testing.TB, fsys vfs.FS, dir string) {
	t.Helper()
	names, err := fsys.List(dir)
	require.NoError(t, err)
	n := 0
	for _, name := range names {
		if name == producerFile || strings.HasSuffix(name, snapshotSuffix) {
			require.NoError(t, fsys.Remove(filepath.Join(dir, name)))
			n++
		}
	}
	require.Positive(t, n, "no producer-state snapshot in %s", dir)
}
