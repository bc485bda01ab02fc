package log

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/internal/testkit"
)

// A zero Partition (one not made by NewPartition) is closed, as a
// partition whose log is closed: its calls answer ErrClosed, none panics
// or hangs. So is a partition made by NewPartition with a nil log, until
// a Reopen opens one. Both panicked on a nil pointer (the zero one at
// every call, NewPartition(nil) at once).
func TestZeroPartitionIsClosed(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		part func() *Partition
	}{
		{"zero", func() *Partition { return &Partition{} }},
		{"var", func() *Partition { var p Partition; return &p }},
		{"NewPartition(nil)", func() *Partition { return NewPartition("t", 0, nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.part()
			data := valueBatch(t, 1, "v")
			closedErr := func(name string, f func() error) {
				t.Helper()
				var err error
				returnsWithin(t, name, func() { err = f() })
				require.ErrorIs(t, err, ErrClosed, name)
			}
			closedErr("Append", func() error { _, err := p.Append(ctx, data, AppendOptions{}); return err })
			closedErr("AppendAsync", func() error { _, _, err := p.AppendAsync(ctx, data, AppendOptions{}); return err })
			closedErr("ReadInto", func() error { _, err := p.ReadInto(ctx, nil, 0, 1<<20, -1); return err })
			closedErr("ReadWithin", func() error { _, err := p.ReadWithin(ctx, nil, 0, 1<<20, -1); return err })
			closedErr("ListedOffsets", func() error { _, err := p.ListedOffsets(ctx); return err })
			closedErr("OffsetForTime", func() error { _, _, err := p.OffsetForTime(ctx, 0); return err })
			closedErr("OffsetOfMaxTimestamp", func() error { _, _, err := p.OffsetOfMaxTimestamp(ctx, 1); return err })
			closedErr("DeleteRecordsBefore", func() error { _, err := p.DeleteRecordsBefore(ctx, 0); return err })
			closedErr("State.Err", func() error {
				st, err := p.State(ctx)
				require.NoError(t, err)
				require.Equal(t, PartitionState{Err: st.Err}, st)
				return st.Err
			})
			returnsWithin(t, "getters", func() {
				require.Equal(t, PartitionOffsets{}, p.Offsets())
				require.Zero(t, p.HighWatermark())
				require.Zero(t, p.LogEndOffset())
				require.Zero(t, p.LogStartOffset())
				require.False(t, p.Busy())
				l, err := p.LogContext(ctx)
				require.NoError(t, err)
				_, err = l.Read(0, 1, -1)
				require.ErrorIs(t, err, ErrClosed)
				_, err = p.Log().Read(0, 1, -1)
				require.ErrorIs(t, err, ErrClosed)
				tried, err := p.RetryReopen(ctx)
				require.False(t, tried)
				require.NoError(t, err)
			})
			if tc.name != "NewPartition(nil)" {
				// Nothing to hold, nor to reopen: a zero Partition stays closed.
				closedErr("Lock", func() error { _, err := p.Lock(ctx); return err })
				closedErr("Reopen", func() error {
					return p.Reopen(func() (*Log, error) { t.Fatal("a zero Partition opened a log"); return nil, nil })
				})
				returnsWithin(t, "Changed", func() { <-p.Changed() }) // closed: nothing to wait for
			}
			returnsWithin(t, "Close", func() { require.NoError(t, p.Close()) })
			returnsWithin(t, "Discard", func() { require.NoError(t, p.Discard()) })
			returnsWithin(t, "Close again", func() { require.NoError(t, p.Close()) })
		})
	}
}

// A partition made with a nil log serves once a Reopen opens one.
func TestNewPartitionNilLogReopened(t *testing.T) {
	e := newEnv(t)
	p := NewPartition("t", 0, nil)
	changed := p.Changed()
	require.NoError(t, p.Reopen(func() (*Log, error) { return Open(e.dir, Config{}, Options{FS: e.fs, Clock: e.clock}) }))
	testkit.Await(t, changed, "the close of Changed's channel by the Reopen") // the reopen woke the readers
	res, err := p.Append(context.Background(), valueBatch(t, 1, "a"), AppendOptions{})
	require.NoError(t, err)
	require.Zero(t, res.FirstOffset)
	require.Equal(t, int64(1), p.HighWatermark())
	require.NoError(t, p.Close())
}
