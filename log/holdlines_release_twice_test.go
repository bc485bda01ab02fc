package log

import (
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/internal/testkit"
)

// TestHoldLinesReleaseTwiceCountsOnce: a HoldLines's release called
// again does nothing: it does not count out another HoldLines under way,
// whose release alone hands the lines held on; once both are released,
// no hold is left counted (holders) and a roll hands its line on itself.
func TestHoldLinesReleaseTwiceCountsOnce(t *testing.T) {
	var rolled atomic.Int32
	logger := slog.New(testkit.LineFunc(func(r slog.Record) {
		if r.Message == "rolled segment" {
			rolled.Add(1)
		}
	}))
	e := newEnv(t)
	l, err := Open(e.dir, Config{}, Options{FS: e.fs, Clock: e.clock, Logger: logger})
	require.NoError(t, err)
	defer l.Close()
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "a"))
	first, second := l.HoldLines(), l.HoldLines()
	require.NoError(t, l.Roll())
	first()
	first()
	require.Zero(t, rolled.Load(), "the second HoldLines holds the line")
	second()
	require.EqualValues(t, 1, rolled.Load())
	appendOK(t, l, valueBatch(t, 1_700_000_000_001, "b"))
	require.NoError(t, l.Roll())
	require.EqualValues(t, 2, rolled.Load(), "no HoldLines under way: the roll hands its line on")
}
