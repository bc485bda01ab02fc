package consumer_test

import (
	"context"
	"testing"

	"github.com/runnel/runnel/consumer"
	"github.com/stretchr/testify/require"
)

// A zero Consumer is closed (Consumer's doc), and a closed consumer's
// Records loop ends without an error, whether or not its ctx has ended
// too (Records' doc, TestReview41RecordsYieldsCtxErrorLast): a zero
// Consumer's loop yields nothing either, also with an ended ctx, as a
// consumer closed by Close yields nothing.
func TestReview41ZeroConsumerRecordsCtxEnded(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := openBroker(t, map[string]int{"t": 1})
	closed := newConsumer(t, b)
	require.NoError(t, closed.Close())
	for name, c := range map[string]*consumer.Consumer{"closed by Close": closed, "zero": {}} {
		var got []error
		for r, err := range c.Records(ctx) {
			require.Nil(t, r)
			got = append(got, err)
		}
		require.Empty(t, got, "%s: a closed consumer's loop ends without an error", name)
	}
}
