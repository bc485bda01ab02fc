package log

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/stretchr/testify/require"
)

// returnsWithin runs f on a goroutine of its own and fails the test if it
// has not returned after a generous while: a deadlock detector, not a
// speed check. A panic in f is reported as the test's failure.
func returnsWithin(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan any, 1)
	go func() {
		defer func() { done <- recover() }()
		f()
	}()
	select {
	case p := <-done:
		if p != nil {
			t.Fatalf("%s panicked: %v", what, p)
		}
	case <-time.After(testkit.HangGuard):
		t.Fatalf("%s did not return: it hangs", what)
	}
}

// logCalls calls each exported method of l, and reports the error each
// returned (nil for those that return none).
func logCalls(t *testing.T, l *Log) map[string]error {
	ctx := context.Background()
	data := valueBatch(t, 1, "v")
	errs := map[string]error{}
	call := func(name string, f func() error) {
		returnsWithin(t, name, func() { errs[name] = f() })
	}
	call("Append", func() error { _, err := l.Append(ctx, data, AppendOptions{}); return err })
	call("AppendAsync", func() error { _, _, err := l.AppendAsync(ctx, data, AppendOptions{}); return err })
	call("ApplyRetention", func() error { _, err := l.ApplyRetention(ctx); return err })
	call("Compact", func() error { _, err := l.Compact(ctx); return err })
	call("DeleteRecordsBefore", func() error { _, err := l.DeleteRecordsBefore(ctx, 0); return err })
	call("Flush", func() error { return l.Flush(ctx) })
	call("Maintain", func() error { return l.Maintain(ctx) })
	call("OffsetForTime", func() error { _, _, err := l.OffsetForTime(0); return err })
	call("OffsetOfMaxTimestamp", func() error { _, _, err := l.OffsetOfMaxTimestamp(ctx); return err })
	call("OffsetOfMaxTimestampBelow", func() error { _, _, err := l.OffsetOfMaxTimestampBelow(ctx, 1); return err })
	call("Read", func() error { _, err := l.Read(0, 1<<20, -1); return err })
	call("ReadInto", func() error { _, err := l.ReadInto(nil, 0, 1<<20, -1); return err })
	call("ReadWithin", func() error { _, err := l.ReadWithin(nil, 0, 1<<20, -1); return err })
	call("Roll", func() error { return l.Roll() })
	call("TruncateTo", func() error { _, err := l.TruncateTo(0); return err })
	// The getters: they answer, whatever they answer.
	call("getters", func() error {
		_ = l.Config()
		_ = l.Dir()
		_ = l.DirtyRatio()
		_ = l.DurableOffset()
		_, _ = l.EndOffsetForEpoch(0)
		l.HoldLines()()
		_ = l.LargestProducerID()
		_ = l.LeaderEpochs()
		_ = l.LogEndOffset()
		_ = l.LogStartOffset()
		_ = l.Offsets()
		l.OnCut(func() {})
		l.OnDurable(func() {})
		_ = l.Recovery()
		_ = l.Segments()
		_ = l.Size()
		return nil
	})
	call("Close", func() error { return l.Close() })
	call("Discard", func() error { return l.Discard() })
	return errs
}

// A zero Log, one not made by Open, is closed, as a zero runnel.Broker
// is: its methods answer ErrClosed, Close and Discard nil, and none hangs
// or panics. Its Close sent on the writer lock's nil channel (a hang), its
// reads and searches panicked on its nil segment list, and its Append
// answered a misleading "max.message.bytes (0)".
func TestZeroLogIsClosed(t *testing.T) {
	for _, tc := range []struct {
		name string
		log  func(t *testing.T) *Log
	}{
		{"zero", func(*testing.T) *Log { return &Log{} }},
		{"var", func(*testing.T) *Log { var l Log; return &l }},
		{"closed", func(t *testing.T) *Log {
			l := newEnv(t).open(Config{})
			appendOK(t, l, valueBatch(t, 1, "a"))
			require.NoError(t, l.Close())
			return l
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := tc.log(t)
			errs := logCalls(t, l)
			for name, err := range errs {
				switch name {
				case "Close", "Discard", "getters":
					require.NoError(t, err, name)
				default:
					require.ErrorIs(t, err, ErrClosed, name)
				}
			}
			if tc.name != "closed" {
				require.Empty(t, l.LeaderEpochs())
				require.Equal(t, Offsets{}, l.Offsets())
				require.Zero(t, l.Segments())
				require.Zero(t, l.Size())
				require.Equal(t, int64(-1), l.LargestProducerID())
				e, o := l.EndOffsetForEpoch(0)
				require.Equal(t, fmt.Sprint(int32(-1), int64(-1)), fmt.Sprint(e, o))
			}
		})
	}
}
