package consumer_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// Tests that close gaps of session 39's mutation pass.

// TestReview39LoggerMayCallTheConsumerAtEveryLine: the Logger's doc says
// its handler holds none of the consumer's locks, so it may call the
// consumer's methods; TestReview33LoggerMayCallTheConsumer checks it for
// an offset reset's line. Here for each other line a Poll logs under the
// consumer's lock: a partition gone (reset once it is back), a partition's
// retriable error, its error that is not, a failed fetch. The handler
// asks for a Position at each line; a call that blocks (bounded) fails
// the test. And a Poll that reports a partition's error has handed on
// the line it logged for it before it returns (a line queued under the
// lock waited for the next call's unlock).
func TestReview39LoggerMayCallTheConsumerAtEveryLine(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault runneltest.Fault
		line  string
	}{
		{"partition gone", runneltest.Fault{Op: runneltest.OpFetch, Action: runneltest.FailPartitions,
			Err: api.ErrUnknownTopicOrPartition, Count: 1}, "partition gone"},
		{"partition retriable", runneltest.Fault{Op: runneltest.OpFetch, Action: runneltest.FailPartitions,
			Err: api.ErrNotLeader, Count: 1}, "partition error: retrying"},
		{"partition error", runneltest.Fault{Op: runneltest.OpFetch, Action: runneltest.FailPartitions,
			Err: api.ErrPolicyViolation, Count: 1}, "partition error"},
		{"fetch failed", runneltest.Fault{Op: runneltest.OpFetch, Err: api.ErrNotLeader, Count: 1}, "fetch failed"},
		{"look-up failed", runneltest.Fault{Op: runneltest.OpListOffset, Err: api.ErrPolicyViolation, Count: 1}, "partition error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
			values(t, b, "t", 0, "a", "b")
			f := runneltest.NewFaults(t, b)
			f.Add(tc.fault)
			h := &reentrantHandler{call: func(c *consumer.Consumer) { c.Position("t", 0) }}
			var mu sync.Mutex
			var msgs []string
			line := func(r slog.Record) {
				h.line(r)
				mu.Lock()
				msgs = append(msgs, r.Message)
				mu.Unlock()
			}
			logged := func() bool {
				mu.Lock()
				defer mu.Unlock()
				return slicesHasPrefix(msgs, tc.line)
			}
			c := newConsumer(t, f, consumer.Logger(slog.New(testkit.LineFunc(line))),
				consumer.FetchMaxWait(time.Millisecond), consumer.RetryBackoff(time.Millisecond))
			h.c.Store(c)
			require.NoError(t, c.Assign("t", 0, consumer.Start()))
			for i := 0; !logged(); i++ {
				require.Less(t, i, 100, "no %q line after 100 Polls", tc.line)
				fs, err := c.Poll(testCtx(t))
				require.NoError(t, err)
				require.False(t, h.blocked.Load(), "the handler's Position call blocked: the consumer logs holding its lock")
				if fs.Err() != nil {
					require.True(t, logged(), "the Poll that reported %v returned before its %q line was handed on", fs.Err(), tc.line)
				}
			}
		})
	}
}

// slicesHasPrefix reports whether one of msgs begins with prefix.
func slicesHasPrefix(msgs []string, prefix string) bool {
	for _, m := range msgs {
		if strings.HasPrefix(m, prefix) {
			return true
		}
	}
	return false
}

// TestReview39CloseFromTheLoggerLosesNothing: a Logger's handler that
// closes the consumer at a line of a Poll that has its answer by then
// (one partition's records, and another's reset, logged once the
// positions moved) gets that answer from the Poll, as Close's doc says:
// the records it holds are returned, not lost behind an ErrClosed with
// the position moved past them. Whatever the Poll returns, the records
// it returns end where the position stands.
func TestReview39CloseFromTheLoggerLosesNothing(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 2))
	values(t, b, "t", 0, "a", "b")
	h := &closingHandler{closed: make(chan error, 1)}
	c := newConsumer(t, b, consumer.Logger(slog.New(testkit.LineFunc(h.line))), consumer.FetchMaxWait(time.Millisecond))
	h.c.Store(c)
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	require.NoError(t, c.Assign("t", 1, consumer.At(9))) // past the end: a reset, logged
	var got []string
	for {
		fs, err := c.Poll(testCtx(t))
		if err != nil {
			require.ErrorIs(t, err, consumer.ErrClosed)
			break
		}
		for r := range fs.Records() {
			got = append(got, string(r.Value))
		}
	}
	require.NoError(t, recv(t, h.closed))
	pos, _ := c.Position("t", 0)
	require.Equal(t, []string{"a", "b"}[:pos], got, "the records before the position, once each")
	require.EqualValues(t, 2, pos, "the Poll that logged the reset read partition 0")
}

// review39BackwardClient is a broker whose fetches answer the first
// batch of each partition with its last offset delta set to -1 (a last
// offset below its base), the CRC left as it was.
type review39BackwardClient struct{ *runnel.Broker }

func (c review39BackwardClient) Fetch(ctx context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
	resp, err := c.Broker.Fetch(ctx, req)
	for i := range resp.Partitions {
		if data := resp.Partitions[i].Records; len(data) >= record.HeaderSize {
			data = bytes.Clone(data) // not the broker's own bytes
			binary.BigEndian.PutUint32(data[23:], math.MaxUint32)
			resp.Partitions[i].Records = data
		}
	}
	return resp, err
}

// TestReview39UncheckedBackwardBatchIsRefused: CheckCRCs' doc says that
// unchecked, a batch whose last offset lies below its base is still
// refused (record.ErrCorrupt), so that a position never moves back: Poll
// reports it as the partition's error, the position where it was, rather
// than pass over the batch without a word.
func TestReview39UncheckedBackwardBatchIsRefused(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	values(t, b, "t", 0, "a", "b")
	c := newConsumer(t, review39BackwardClient{b}, consumer.CheckCRCs(false), consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.ErrorIs(t, fs.Err(), record.ErrCorrupt)
	pos, ok := c.Position("t", 0)
	require.True(t, ok)
	require.Zero(t, pos)
}

// TestReview39LoggerMayCallTheConsumerWhenTheTopicWasReplaced: as
// TestReview39LoggerMayCallTheConsumerAtEveryLine, for the line of a
// position resolved in a topic created again while it was reset
// (TestRecreatedBeforeListOffsetThenOutOfRange's first steps): the
// handler's Position call does not block, and the line is out by the
// time the Poll reports api.ErrUnknownTopicID.
func TestReview39LoggerMayCallTheConsumerWhenTheTopicWasReplaced(t *testing.T) {
	h := &reentrantHandler{call: func(c *consumer.Consumer) { c.Position("t", 0) }}
	var replaced atomic.Bool
	line := func(r slog.Record) {
		h.line(r)
		if strings.HasPrefix(r.Message, "topic created again") {
			replaced.Store(true)
		}
	}
	b, hook, c := readThenOutOfRange(t, consumer.ResetOffset(consumer.ResetEarliest),
		consumer.Logger(slog.New(testkit.LineFunc(line))))
	h.c.Store(c)
	fs, err := c.Poll(testCtx(t)) // out of range: reset
	require.NoError(t, err)
	require.Empty(t, fs)
	hook.beforeNext(func() { recreate(t, b, 4) })
	for i := 0; ; i++ {
		require.Less(t, i, 10, "no ErrUnknownTopicID after 10 Polls")
		fs, err := c.Poll(testCtx(t))
		require.NoError(t, err)
		if err := fs.Err(); err != nil {
			require.ErrorIs(t, err, api.ErrUnknownTopicID)
			break
		}
	}
	require.True(t, replaced.Load(), "the line of the replaced topic, before the Poll returned")
	require.False(t, h.blocked.Load(), "the handler's Position call blocked: the consumer logs holding its lock")
}
