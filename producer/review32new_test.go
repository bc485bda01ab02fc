package producer_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
)

// MayBeWritten reads the errors of real failures as ProduceSync's doc
// says: a refusal of the broker's, a done ctx and a failure before the
// record was partitioned mean not written; an answer lost after the
// append, an error the producer does not know, and ErrMaybeWritten mean
// it may have been.
func TestReview32MayBeWritten(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault runneltest.Fault
		want  bool
	}{
		{"refused", runneltest.Fault{Op: runneltest.OpProduce, Err: api.ErrPolicyViolation, Count: 1}, false},
		{"record too large", runneltest.Fault{Op: runneltest.OpProduce, Err: producer.ErrRecordTooLarge, Count: 1}, false},
		{"appended, answer lost", runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.LoseResponse, Err: api.ErrBrokerClosed, Count: 1}, true},
		{"appended, ack failed", runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.FailAck, Err: errors.New("fsync failed"), Count: 1}, true},
		{"unknown error", runneltest.Fault{Op: runneltest.OpProduce, Err: errors.New("connection reset"), Count: 1}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBroker(t, runneltest.Topic("t", 1))
			f := runneltest.NewFaults(t, b)
			f.Add(tc.fault)
			p := runneltest.NewProducer(t, f)
			err := p.ProduceSync(t.Context(), &record.Record{Topic: "t", Value: []byte("v")})
			require.Error(t, err)
			require.Equal(t, tc.want, producer.MayBeWritten(err), "%v", err)
			require.Equal(t, tc.want, producer.MayBeWritten(fmt.Errorf("wrapped: %w", err)), "%v", err)
			recs := runneltest.ConsumeAll(t, b, "t")
			if !tc.want {
				require.Empty(t, recs, "not written, as MayBeWritten said")
			}
		})
	}
	t.Run("ctx done", func(t *testing.T) {
		b := newBroker(t, runneltest.Topic("t", 1))
		p := runneltest.NewProducer(t, b)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := p.ProduceSync(ctx, &record.Record{Topic: "t", Value: []byte("v")})
		require.ErrorIs(t, err, context.Canceled)
		require.False(t, producer.MayBeWritten(err))
	})
	t.Run("partition count not learned", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newBroker(t, runneltest.Topic("t", 1))
			f := runneltest.NewFaults(t, b)
			f.Add(runneltest.Fault{Op: runneltest.OpPartitions, Err: api.ErrRequestTimedOut, Count: runneltest.Unlimited})
			p := runneltest.NewProducer(t, f, producer.DeliveryTimeout(time.Second))
			err := p.ProduceSync(t.Context(), &record.Record{Topic: "t", Value: []byte("v")})
			require.ErrorIs(t, err, producer.ErrDeliveryTimeout)
			require.False(t, producer.MayBeWritten(err), "%v", err)
		})
	})
	require.False(t, producer.MayBeWritten(nil))
	require.True(t, producer.MayBeWritten(producer.ErrMaybeWritten))
	require.True(t, producer.MayBeWritten(fmt.Errorf("%w (%w)", api.ErrPolicyViolation, producer.ErrMaybeWritten)),
		"a refusal after an earlier attempt that may have been appended")
	require.True(t, producer.MayBeWritten(errors.Join(
		&producer.RecordError{Partition: producer.UnknownPartition, Err: producer.ErrMaxBuffered},
		&producer.RecordError{Partition: 0, Err: producer.ErrDeliveryTimeout})), "one of two records")
}
