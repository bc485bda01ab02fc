package log

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestProducerForgottenOnOpenAtExactlyItsExpiration: a producer id that
// a snapshot holds, its last append exactly ProducerExpiration before the
// Open that loads it, is forgotten by that Open (forgetExpiredProducers:
// expire's age >= exp), as Maintain forgets it, not one nanosecond later.
func TestProducerForgottenOnOpenAtExactlyItsExpiration(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	open := func() *Log {
		l, err := Open(e.dir, Config{RetentionTime: -1}, Options{FS: e.fs, Clock: e.clock, ProducerExpiration: time.Hour})
		require.NoError(t, err)
		return l
	}
	l := open()
	r, err := l.Append(ctx, idemBatch(t, 1, 0, 0, 1), AppendOptions{})
	require.NoError(t, err)
	require.False(t, r.Duplicate)
	require.NoError(t, l.Close()) // its snapshot holds producer 1
	e.clock.Advance(time.Hour)
	l = open()
	defer l.Close()
	r, err = l.Append(ctx, idemBatch(t, 1, 0, 0, 1), AppendOptions{})
	require.NoError(t, err)
	require.False(t, r.Duplicate, "a producer idle exactly ProducerExpiration was remembered by Open")
}
