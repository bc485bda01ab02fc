package consumer_test

import (
	"testing"
	"time"

	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestResetTakesTheNextPoll pins what Poll's doc says of a
// position out of range under ResetEarliest and ResetLatest: the Poll that
// meets it returns none of the partition's records and leaves the
// position to be looked up (Position false), and the next Poll reads from
// the log start or the high watermark. A first-time user expected one
// Poll to do both, as a Java consumer's poll does within its timeout.
func TestResetTakesTheNextPoll(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	runneltest.ProduceValues(t, b, "t", "a", "b", "c", "d")
	_, err := b.DeleteRecords(t.Context(), "t", 0, 2)
	require.NoError(t, err)
	for _, tc := range []struct {
		policy consumer.ResetPolicy
		first  int64 // -1: no record, the position at the high watermark
	}{{consumer.ResetEarliest, 2}, {consumer.ResetLatest, -1}} {
		c := runneltest.NewConsumer(t, b, consumer.ResetOffset(tc.policy), consumer.FetchMaxWait(time.Millisecond))
		require.NoError(t, c.Assign("t", 0, consumer.At(1)))
		fs, err := c.Poll(t.Context())
		require.NoError(t, err, tc.policy)
		require.NoError(t, fs.Err(), tc.policy)
		require.Zero(t, fs.NumRecords(), tc.policy)
		_, ok := c.Position("t", 0)
		require.False(t, ok, "%v: the reset position is looked up by the next Poll", tc.policy)

		fs, err = c.Poll(t.Context())
		require.NoError(t, err, tc.policy)
		var offsets []int64
		fs.EachRecord(func(r *record.Record) { offsets = append(offsets, r.Offset) })
		pos, ok := c.Position("t", 0)
		require.True(t, ok, tc.policy)
		if tc.first < 0 {
			require.Empty(t, offsets, tc.policy)
			require.Equal(t, int64(4), pos, tc.policy)
		} else {
			require.Equal(t, []int64{2, 3}, offsets, tc.policy)
		}
	}
}

// TestResetNoneYieldsAndGoesOn: under ResetNone a Records loop
// yields the out-of-range error and goes on with the other partition.
func TestResetNoneYieldsAndGoesOn(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 2))
	for i := range 10 {
		values(t, b, "t", 0, seq("v", i, 1)...)
	}
	c := newConsumer(t, b, consumer.ResetOffset(consumer.ResetNone))
	require.NoError(t, c.Assign("t", 0, consumer.At(2)))
	require.NoError(t, c.Assign("t", 1, consumer.Start()))
	_, err := b.DeleteRecords(testCtx(t), "t", 0, 5)
	require.NoError(t, err)
	values(t, b, "t", 1, "p1")
	var errs []error
	var recs []string
	for r, err := range c.Records(testCtx(t)) {
		if err != nil {
			errs = append(errs, err)
			if len(recs) == 1 {
				break
			}
			continue
		}
		recs = append(recs, string(r.Value))
		if len(recs) == 1 && len(errs) == 1 {
			break
		}
	}
	require.Len(t, errs, 1)
	require.ErrorIs(t, errs[0], log.ErrOffsetOutOfRange)
	require.Equal(t, []string{"p1"}, recs)
}

// TestPastEndResets: a position past the log end under each
// reset policy.
func TestPastEndResets(t *testing.T) {
	for _, reset := range []consumer.ResetPolicy{consumer.ResetEarliest, consumer.ResetLatest, consumer.ResetNone} {
		b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
		values(t, b, "t", 0, seq("v", 0, 5)...)
		c := newConsumer(t, b, consumer.ResetOffset(reset), consumer.FetchMaxWait(10*time.Millisecond))
		require.NoError(t, c.Assign("t", 0, consumer.At(9)))
		var errs []error
		for range 2 {
			fs, err := c.Poll(testCtx(t))
			require.NoError(t, err)
			require.Zero(t, fs.NumRecords())
			if err := fs.Err(); err != nil {
				errs = append(errs, err)
			}
			if reset != consumer.ResetNone {
				break
			}
		}
		if reset != consumer.ResetNone {
			_, ok := c.Position("t", 0)
			require.False(t, ok)
			fs, err := c.Poll(testCtx(t))
			require.NoError(t, err)
			_ = fs
		}
		p, ok := c.Position("t", 0)
		switch reset {
		case consumer.ResetEarliest:
			require.Equal(t, []any{int64(5), true}, []any{p, ok}) // read 0..4
		case consumer.ResetLatest:
			require.Equal(t, []any{int64(5), true}, []any{p, ok})
		case consumer.ResetNone:
			require.Equal(t, []any{int64(9), true}, []any{p, ok})
			require.Len(t, errs, 1)
			require.ErrorIs(t, errs[0], log.ErrOffsetOutOfRange)
		}
	}
}
