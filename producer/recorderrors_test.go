package producer_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestRecordErrors: RecordErrors lists the RecordError of each record
// ProduceSync failed, and only those, through a wrap of the join; nil for
// nil, success, or an error that holds none.
func TestRecordErrors(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	p := runneltest.NewProducer(t, b)
	ctx := context.Background()

	require.Nil(t, producer.RecordErrors(nil))
	require.Nil(t, producer.RecordErrors(errors.New("other")))
	require.Nil(t, producer.RecordErrors(p.ProduceSync(ctx, &record.Record{Topic: "t", Value: []byte("ok")})))

	typo1 := &record.Record{Topic: "u1", Value: []byte("a")}
	typo2 := &record.Record{Topic: "u2", Value: []byte("b")}
	err := p.ProduceSync(ctx, typo1, &record.Record{Topic: "t", Value: []byte("ok")}, typo2)
	for _, e := range []error{err, fmt.Errorf("publish: %w", err)} {
		res := producer.RecordErrors(e)
		require.Len(t, res, 2, "%v", e)
		require.Same(t, typo1, res[0].Record)
		require.Same(t, typo2, res[1].Record)
		for _, re := range res {
			require.ErrorIs(t, re, runnel.ErrUnknownTopic)
			require.Equal(t, producer.UnknownPartition, re.Partition)
		}
	}
	one := &producer.RecordError{Record: typo1, Err: errors.New("boom")}
	require.Equal(t, []*producer.RecordError{one}, producer.RecordErrors(one))
}
