package consumer_test

import (
	"testing"
	"time"

	"github.com/runnel/runnel/consumer"
	"github.com/stretchr/testify/require"
)

// A Close that lands while a Poll looks up a position (here: from inside
// the Client's ListOffset, once the broker answered, where Close returns
// without waiting for the Poll) makes that Poll return ErrClosed, as
// Close's and Poll's docs say, whichever of the Poll's checks sees it
// first. Many rounds: the Poll's ctx ends on a goroutine of its own
// (context.AfterFunc), and the bug showed when the Poll went on before it
// had.
func TestReview37CloseDuringAPollsLookUp(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	ctx := testCtx(t)
	for range 200 {
		h := &listHookClient{Broker: b}
		c := newConsumer(t, h, consumer.FetchMaxWait(time.Hour))
		require.NoError(t, c.AssignTopic(ctx, "t", consumer.End()))
		h.afterNext(func() { require.NoError(t, c.Close()) })
		fs, err := c.Poll(ctx)
		require.ErrorIs(t, err, consumer.ErrClosed, "Poll's answer when Close interrupted its look-up: %v", fs)
	}
}
