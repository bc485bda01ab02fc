package log

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestNegativeProducerIDIsNoProducer: a batch whose producer id is below
// -1 has none, as in Kafka (RecordBatch.hasProducerId: producerId >
// NO_PRODUCER_ID): no sequence check, no producer state. It was taken for
// an idempotent producer's, so that a second batch of the same sequence
// was answered as a duplicate and its records never written; and the
// snapshot rows of a producer id -2 read as last-append rows (whose mark
// is -2). Producer 5's state, whose id the batch's epoch named, stays.
func TestNegativeProducerIDIsNoProducer(t *testing.T) {
	e := newEnv(t)
	cfg := Config{}
	l := e.open(cfg)
	ctx := context.Background()
	appendOK(t, l, idemBatch(t, 5, 0, 0, 1)) // 0
	for range 2 {
		res := appendOK(t, l, idemBatch(t, -2, 5, 0, 1)) // 1, 2
		require.False(t, res.Duplicate, "no producer id: nothing to deduplicate")
	}
	require.EqualValues(t, 3, l.LogEndOffset())
	require.NoError(t, l.Close())
	l = e.open(cfg)
	defer l.Close()
	require.NoError(t, l.Maintain(ctx))
	res, err := l.Append(ctx, idemBatch(t, 5, 0, 0, 1), AppendOptions{})
	require.NoError(t, err)
	require.True(t, res.Duplicate, "producer 5 appended a moment ago: not expired")
	require.EqualValues(t, 0, res.FirstOffset)
}
