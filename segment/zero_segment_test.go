package segment

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// A zero Segment, one not made by Create, CreateTemp or Open, is closed:
// every method answers ErrClosed (Close, Discard and Delete nil), none
// panics, and none reports success. Its reads answered nothing with no
// error (an empty segment, as it were), its TruncateTo and Unseal
// succeeded, and its Append, Close, Sync, Seal and more panicked on a nil
// file or index.
func TestZeroSegmentIsClosed(t *testing.T) {
	s := &Segment{}
	b := mkBatch(t, 0, []int64{1}, 10, 0)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"Append", func() error { return s.Append(b) }},
		{"Find", func() error { _, err := s.Find(0); return err }},
		{"FindTime", func() error { _, _, err := s.FindTime(0, 0); return err }},
		{"Read", func() error { _, err := s.Read(0, 100); return err }},
		{"ReadInto", func() error { _, err := s.ReadInto(nil, 0, 100); return err }},
		{"ReadOffset", func() error { _, err := s.ReadOffset(nil, 0, 100, -1); return err }},
		{"ReadOffsetWithin", func() error { _, _, err := s.ReadOffsetWithin(nil, 0, 100, -1); return err }},
		{"PositionOf", func() error { _, err := s.PositionOf(0); return err }},
		{"MaxTimestampBelow", func() error { _, err := s.MaxTimestampBelow(1); return err }},
		{"WriteTo", func() error { _, err := s.WriteTo(io.Discard, 0, 10); return err }},
		{"Sync", func() error { return s.Sync() }},
		{"SyncIndexes", func() error { return s.SyncIndexes() }},
		{"Seal", func() error { return s.Seal(true) }},
		{"Unseal", func() error { return s.Unseal() }},
		{"TruncateTo", func() error { _, err := s.TruncateTo(0); return err }},
		{"Recover", func() error { _, err := s.Recover(0); return err }},
		{"RecoverContext", func() error { _, err := s.RecoverContext(ctx, 0); return err }},
		{"RecoverFunc", func() error {
			_, err := s.RecoverFunc(ctx, 0, func(record.Batch) error { return nil })
			return err
		}},
		{"Rewrite", func() error {
			_, err := s.Rewrite(0, func(int64, io.Reader) (io.ReadCloser, error) {
				return io.NopCloser(bytes.NewReader(nil)), nil
			})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorIs(t, returns(t, tc.call), ErrClosed)
		})
	}
	require.True(t, s.Closed())
	require.True(t, s.IndexFull(), "a zero Segment takes no entries")
	_ = returns(t, func() error {
		_ = fmt.Sprint(s.Base(), s.Dir(), s.FirstBatchTimestamp(), s.Fits(1, 0), s.IndexDistrusted(),
			s.MaxTimestamp(), s.MaxTimestampOffset(), s.NextOffset(), s.Size(), s.String(), s.TimeIndexEntries())
		return nil
	})
	require.NoError(t, returns(t, s.Close))
	require.NoError(t, returns(t, s.Discard))
	require.NoError(t, returns(t, s.Delete))
}

// returns runs f on a goroutine of its own and returns its error,
// failing the test if f panics or has not returned after a generous
// while (a deadlock detector, not a speed check).
func returns(t *testing.T, f func() error) error {
	t.Helper()
	type result struct {
		err error
		p   any
	}
	done := make(chan result, 1)
	go func() {
		var r result
		defer func() { r.p = recover(); done <- r }()
		r.err = f()
	}()
	select {
	case r := <-done:
		if r.p != nil {
			t.Fatalf("panicked: %v", r.p)
		}
		return r.err
	case <-time.After(testkit.HangGuard):
		t.Fatal("did not return: it hangs")
		return nil
	}
}
