package producer_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// Without idempotence a retry of a batch the broker appended, its answer
// lost, appends it again (see DisableIdempotence): a record whose promise
// gets nil is in the log once for each attempt appended, and told the
// offset of the last copy; one that fails after attempts that may have
// been appended may be there more than once too (ErrMaybeWritten).
// Order holds all the same: the next batch goes once this one is done.
// An acknowledgement that fails is retried or not as MaxInFlight says.
func TestNoIdempotenceRetryAppendsAgain(t *testing.T) {
	modes := []struct {
		name string
		opts []producer.Opt
	}{
		{"acks=1", []producer.Opt{producer.Acks(producer.AcksLeader)}},
		{"acks=all/DisableIdempotence", []producer.Opt{producer.DisableIdempotence()}},
	}
	for _, mode := range modes {
		for _, inFlight := range []int{1, 5} {
			t.Run(fmt.Sprintf("%s/MaxInFlight=%d", mode.name, inFlight), func(t *testing.T) {
				b := newBroker(t, runneltest.Topic("t", 1))
				f := runneltest.NewFaults(t, b)
				p := newProducer(t, f, append(mode.opts, producer.DefaultTopic("t"), producer.MaxInFlight(inFlight),
					producer.RetryBackoff(time.Millisecond))...)
				ctx := testCtx(t)

				lost := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.LoseResponse, Err: api.ErrRequestTimedOut, Count: 1})
				first := &record.Record{Value: []byte("first")}
				require.NoError(t, p.ProduceSync(ctx, first))
				require.Equal(t, 1, lost.Hits())
				require.Equal(t, int64(1), first.Offset, "the offset of the last copy")
				require.Equal(t, int64(record.NoProducerID), first.ProducerID)

				lost = f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.LoseResponse, Err: api.ErrRequestTimedOut, Count: 2})
				refused := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: api.ErrPolicyViolation, Count: 1})
				err := p.ProduceSync(ctx, &record.Record{Value: []byte("second")})
				require.ErrorIs(t, err, api.ErrPolicyViolation)
				require.ErrorIs(t, err, producer.ErrMaybeWritten)
				require.Equal(t, 2, lost.Hits())
				require.Equal(t, 1, refused.Hits())

				require.NoError(t, p.ProduceSync(ctx, &record.Record{Value: []byte("third")}))
				want := []string{"first", "first", "second", "second", "third"}
				require.Equal(t, want, values(runneltest.ConsumeAll(t, b, "t")))

				// An acknowledgement that times out: with MaxInFlight 1
				// the Client's Produce returns its error, retriable, and
				// the batch goes again; above 1 the producer waits for it
				// itself (AsyncClient), and fails the batch without a
				// retry (see MaxInFlight).
				failed := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.FailAck, Err: api.ErrRequestTimedOut, Count: 1})
				err = p.ProduceSync(ctx, &record.Record{Value: []byte("fourth")})
				require.Equal(t, 1, failed.Hits())
				if inFlight == 1 {
					require.NoError(t, err)
					want = append(want, "fourth", "fourth")
				} else {
					require.ErrorIs(t, err, api.ErrRequestTimedOut)
					require.ErrorIs(t, err, producer.ErrMaybeWritten)
					want = append(want, "fourth")
				}
				require.Equal(t, want, values(runneltest.ConsumeAll(t, b, "t")))
			})
		}
	}
}

// outOfOrderOnce is a Client that answers its first produce request with
// ErrOutOfOrderSequence, as no broker does for a batch without a
// producer id; the others go to the broker.
type outOfOrderOnce struct {
	*runnel.Broker
	produces atomic.Int32
}

func (c *outOfOrderOnce) Produce(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	if c.produces.Add(1) == 1 {
		return api.ProduceResponse{}, producer.ErrOutOfOrderSequence
	}
	return c.Broker.Produce(ctx, req)
}

func (c *outOfOrderOnce) ProduceAsync(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, api.Ack, error) {
	if c.produces.Add(1) == 1 {
		return api.ProduceResponse{}, nil, producer.ErrOutOfOrderSequence
	}
	return c.Broker.ProduceAsync(ctx, req)
}

// TestNonIdempotentOutOfOrderFailsBatchOnly: a producer without
// idempotence whose Client answers ErrOutOfOrderSequence (which it cannot
// retry under a new producer id: it has none) fails that batch's records
// with it, not retried, and stays usable: the next record is delivered.
func TestNonIdempotentOutOfOrderFailsBatchOnly(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	for _, tc := range []struct {
		name string
		opts []producer.Opt
	}{
		{"one in flight", []producer.Opt{producer.DisableIdempotence(), producer.MaxInFlight(1)}},
		{"default", []producer.Opt{producer.DisableIdempotence()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &outOfOrderOnce{Broker: b}
			p := newProducer(t, c, tc.opts...)
			ctx := testCtx(t)
			err := p.ProduceSync(ctx, &record.Record{Topic: "t", Value: []byte("refused")})
			require.ErrorIs(t, err, producer.ErrOutOfOrderSequence)
			require.Equal(t, int32(1), c.produces.Load(), "attempts of the refused batch")
			r := &record.Record{Topic: "t", Value: []byte("next")}
			require.NoError(t, p.ProduceSync(ctx, r))
			require.Equal(t, int32(2), c.produces.Load())
		})
	}
}
