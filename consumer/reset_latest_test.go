package consumer_test

import (
	"testing"
	"time"

	"github.com/runnel/runnel/consumer"
	"github.com/stretchr/testify/require"
)

// TestResetLatestBelowLogStartAfterConsuming pins ResetPolicy's doc: under
// ResetLatest a partition that fell below the log start while consuming
// skips to the high watermark, as the Java consumer's "latest" does, and
// not to the log start, where kgo (v1.22) resumes whatever its policy.
func TestResetLatestBelowLogStartAfterConsuming(t *testing.T) {
	ctx := testCtx(t)
	b := openBroker(t, map[string]int{"t": 1})
	for i := range 10 {
		values(t, b, "t", 0, seq("v", i, 1)...)
	}
	c := newConsumer(t, b, consumer.ResetOffset(consumer.ResetLatest), consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	require.Equal(t, []string{"v0", "v1"}, vals(readN(t, c, 2)))
	pos, ok := c.Position("t", 0)
	require.True(t, ok)
	require.EqualValues(t, 2, pos)

	start, err := b.DeleteRecords(ctx, "t", 0, 5)
	require.NoError(t, err)
	require.EqualValues(t, 5, start)
	// The next fetch finds offset 2 out of range and resets the position
	// to End, which a Poll after it looks up.
	for {
		fs, err := c.Poll(ctx)
		require.NoError(t, err)
		require.NoError(t, fs.Err())
		require.Zero(t, fs.NumRecords(), "nothing is read between the reset and the end")
		if pos, ok = c.Position("t", 0); ok && pos != 2 {
			break
		}
	}
	require.EqualValues(t, 10, pos, "the high watermark, not the log start (5)")
	values(t, b, "t", 0, "v10")
	r := readN(t, c, 1)
	require.EqualValues(t, 10, r[0].Offset)
}
