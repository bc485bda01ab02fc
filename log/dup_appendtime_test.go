package log

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDuplicateAppendTimeAfterReopen: a retry of an idempotent producer's
// batch that the log stamped with LogAppendTime is answered with that
// append time also once the log was closed and opened again (a restart,
// or a config change, which reopens each partition's log), when the
// producer's state comes from the snapshot the clean close wrote (which
// now keeps the append time, in rows -3; for an older runnel's, without
// them, see TestDuplicateAppendTimeFromOlderSnapshot). Before either, it
// was answered with -1, and the producer then told its caller the
// record's create time, as a CreateTime record, where consumers read the
// append time. The answer follows the batch's
// own timestamp type, not the log's config: a batch appended under
// CreateTime is answered -1 after a change to LogAppendTime, and one
// stamped under LogAppendTime keeps its time after a change back.
func TestDuplicateAppendTimeAfterReopen(t *testing.T) {
	e := newEnv(t)
	app := Config{TimestampType: LogAppendTime}
	l := e.open(app)
	first := appendOK(t, l, idemBatch(t, 1, 0, 0, 2))
	require.Equal(t, e.clock.Now().UnixMilli(), first.LogAppendTime)
	e.clock.Advance(time.Second)
	second := appendOK(t, l, idemBatch(t, 1, 0, 2, 2))
	require.Equal(t, e.clock.Now().UnixMilli(), second.LogAppendTime)
	require.NotEqual(t, first.LogAppendTime, second.LogAppendTime)

	check := func(l *Log, seq int32, want AppendResult, what string) {
		t.Helper()
		res := appendOK(t, l, idemBatch(t, 1, 0, seq, 2)) // a new copy: the log stamps the one it appends
		require.True(t, res.Duplicate, what)
		require.Equal(t, want.FirstOffset, res.FirstOffset, what)
		require.Equal(t, want.LogAppendTime, res.LogAppendTime, "%s: sequence %d", what, seq)
	}
	check(l, 0, first, "before the reopen")
	check(l, 2, second, "before the reopen")

	for _, c := range []struct {
		what string
		cfg  Config
	}{
		{"reopened with the same config", app},
		{"reopened as CreateTime", Config{}},
		{"reopened as LogAppendTime again", app},
	} {
		require.NoError(t, l.Close())
		e.clock.Advance(time.Minute)
		l = e.open(c.cfg)
		check(l, 0, first, c.what)
		check(l, 2, second, c.what)
	}

	// A batch appended under CreateTime is answered -1 on a LogAppendTime
	// log too, before and after a reopen.
	require.NoError(t, l.Close())
	l = e.open(Config{})
	created := appendOK(t, l, idemBatch(t, 1, 0, 4, 2))
	require.EqualValues(t, -1, created.LogAppendTime)
	require.NoError(t, l.Close())
	l = e.open(app)
	defer l.Close()
	check(l, 4, created, "a CreateTime batch on a LogAppendTime log")
	check(l, 0, first, "a LogAppendTime batch")
}

// TestDuplicateAppendTimeBelowLogStartAfterReopen: the append time of a
// batch that DeleteRecordsBefore passed is kept across a reopen, as
// Kafka's producer-state snapshot keeps each batch's timestamp: a retry
// of it is answered with the time of the first answer. The snapshot kept
// none, and the log read it from the batch, which was no longer there to
// read: the retry was answered with -1. Found by TestParityRandomized in
// benchmarks/peers (a restart of the broker).
func TestDuplicateAppendTimeBelowLogStartAfterReopen(t *testing.T) {
	e := newEnv(t)
	app := Config{TimestampType: LogAppendTime}
	l := e.open(app)
	first := appendOK(t, l, idemBatch(t, 1, 0, 0, 2))
	e.clock.Advance(time.Second)
	second := appendOK(t, l, idemBatch(t, 1, 0, 2, 2))
	created := appendOK(t, l, idemBatch(t, 2, 0, 0, 1))
	_, err := l.DeleteRecordsBefore(context.Background(), l.LogEndOffset())
	require.NoError(t, err)
	e.clock.Advance(time.Minute)
	require.NoError(t, l.Close())
	l = e.open(app)
	defer l.Close()
	for _, c := range []struct {
		pid  int64
		seq  int32
		n    int
		want AppendResult
	}{{1, 0, 2, first}, {1, 2, 2, second}, {2, 0, 1, created}} {
		res := appendOK(t, l, idemBatch(t, c.pid, 0, c.seq, c.n))
		require.True(t, res.Duplicate, "producer %d sequence %d", c.pid, c.seq)
		require.Equal(t, c.want.FirstOffset, res.FirstOffset)
		require.Equal(t, c.want.LogAppendTime, res.LogAppendTime, "producer %d sequence %d", c.pid, c.seq)
	}
}

// TestSnapshotAppendTimeRowsOnlyForLogAppendTime: a snapshot keeps the
// append time (rows -3) only of batches the log stamped with
// LogAppendTime, so that the snapshots of a log of CreateTime batches —
// most logs — have none of the rows an older runnel refuses as malformed,
// and stay readable after a downgrade; a CreateTime batch's duplicate is
// answered -1 without one, also once DeleteRecordsBefore passed it.
func TestSnapshotAppendTimeRowsOnlyForLogAppendTime(t *testing.T) {
	for _, typ := range []TimestampType{CreateTime, LogAppendTime} {
		t.Run(typ.String(), func(t *testing.T) {
			e := newEnv(t)
			cfg := Config{TimestampType: typ}
			l := e.open(cfg)
			first := appendOK(t, l, idemBatch(t, 1, 0, 0, 2))
			_, err := l.DeleteRecordsBefore(context.Background(), l.LogEndOffset())
			require.NoError(t, err)
			require.NoError(t, l.Close())
			offs, _ := e.snapshotFiles(t)
			require.NotEmpty(t, offs)
			rows, err := readCheckpoint(e.fs, e.dir, snapshotName(offs[len(offs)-1]), 6)
			require.NoError(t, err)
			timeRows := 0
			for _, r := range rows[1:] {
				if r[0] == appendTimeRow {
					timeRows++
					require.Equal(t, first.LogAppendTime, r[3])
				}
			}
			if typ == CreateTime {
				require.Zero(t, timeRows, "rows %v", rows)
				require.EqualValues(t, -1, first.LogAppendTime)
			} else {
				require.Equal(t, 1, timeRows, "rows %v", rows)
			}
			l = e.open(cfg)
			defer l.Close()
			res := appendOK(t, l, idemBatch(t, 1, 0, 0, 2))
			require.True(t, res.Duplicate)
			require.Equal(t, first.LogAppendTime, res.LogAppendTime)
		})
	}
}
