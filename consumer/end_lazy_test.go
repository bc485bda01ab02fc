package consumer_test

import (
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/stretchr/testify/require"
)

// End is looked up by the next Poll, not by Assign: a record produced in
// between is skipped, as End's doc says; At the high watermark taken
// before it is not.
func TestEndIsLookedUpByPoll(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	values(t, b, "t", 0, "before")

	lazy := newConsumer(t, b, consumer.FetchMaxWait(10*time.Millisecond))
	require.NoError(t, lazy.Assign("t", 0, consumer.End()))
	end, err := b.ListOffset(testCtx(t), "t", 0, api.Latest)
	require.NoError(t, err)
	exact := newConsumer(t, b, consumer.FetchMaxWait(10*time.Millisecond))
	require.NoError(t, exact.Assign("t", 0, consumer.At(end.Offset)))

	values(t, b, "t", 0, "between")

	fs, err := lazy.Poll(testCtx(t))
	require.NoError(t, err)
	require.Zero(t, fs.NumRecords(), "End resolved at this Poll: past \"between\"")
	pos, ok := lazy.Position("t", 0)
	require.True(t, ok)
	require.Equal(t, int64(2), pos)

	fs, err = exact.Poll(testCtx(t))
	require.NoError(t, err)
	var got []string
	for r, err := range fs.Records() {
		require.NoError(t, err)
		got = append(got, string(r.Value))
	}
	require.Equal(t, []string{"between"}, got)
}
