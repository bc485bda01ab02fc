package log

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPartitionTimeSearchesHeedTheirCtx: a partition's searches by time
// wait for its lock (held exclusively here, as a Reopen holds it) until
// their ctx ends, and then return ctx's error, as their doc says.
func TestPartitionTimeSearchesHeedTheirCtx(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "a"))
	p := NewPartition("t", 0, l)
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	p.mu.Lock()
	_, _, err := p.OffsetForTime(ctx, 1_700_000_000_000)
	require.ErrorIs(t, err, context.Canceled)
	_, _, err = p.OffsetOfMaxTimestamp(ctx, 1)
	require.ErrorIs(t, err, context.Canceled)
	p.mu.Unlock()

	off, ok, err := p.OffsetForTime(ctx, 1_700_000_000_000) // a free lock is taken whatever the ctx
	require.NoError(t, err)
	require.True(t, ok)
	require.Zero(t, off)
}

// TestRetryReopenWaitsUntilItsCtxEnds: RetryReopen with a retry to make waits for
// the calls in flight (a reader holding the partition here) until its
// ctx ends, and then returns ctx's error, nothing tried; the retry stays
// due, and a later RetryReopen makes it.
func TestRetryReopenWaitsUntilItsCtxEnds(t *testing.T) {
	e := newEnv(t)
	cfg := Config{}
	l := e.open(cfg)
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "a"))
	p := NewPartition("t", 0, l)
	defer p.Close()
	failed := errors.New("open failed")
	fail := true
	err := p.Reopen(func() (*Log, error) {
		if fail {
			return nil, failed
		}
		return Open(e.dir, cfg, Options{FS: e.fs, Clock: e.clock})
	})
	require.ErrorIs(t, err, failed)
	fail = false

	require.NoError(t, p.mu.RLockContext(context.Background())) // a call in flight
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tried, err := p.RetryReopen(ctx)
	p.mu.RUnlock()
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, tried)

	tried, err = p.RetryReopen(context.Background())
	require.NoError(t, err)
	require.True(t, tried)
	off, ok, err := p.OffsetForTime(context.Background(), 1_700_000_000_000)
	require.NoError(t, err)
	require.True(t, ok)
	require.Zero(t, off)
}
