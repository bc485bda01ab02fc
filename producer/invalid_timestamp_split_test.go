package producer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// refuseValue is a hook that answers a request holding a record of value
// bad with err, as a broker refuses a whole batch for one of its records,
// and sends the others to the broker.
func refuseValue(t *testing.T, bad string, err error) hookFunc {
	return func(_ context.Context, _ int, req *api.ProduceRequest, next func() (api.ProduceResponse, error)) (api.ProduceResponse, error) {
		for b, berr := range record.Batches(req.Batches) {
			require.NoError(t, berr)
			for r, rerr := range b.Records() {
				require.NoError(t, rerr)
				if string(r.Value) == bad {
					return api.ProduceResponse{}, err
				}
			}
		}
		return next()
	}
}

// A batch the broker refuses as invalid is split, "so that only the
// records at fault fail" (Producer's doc; docs/details.md, Producer
// timestamps: a record refused for its timestamp fails "without retrying
// it; the records batched with it are delivered (the batch is split, as
// for any invalid record)"). With runnel's broker the refusal is
// log.ErrInvalidTimestamp, which matches log.ErrInvalidRecord, and the
// batch is split. A Client that reports Kafka's codes (api.ForCode, as a
// client over the wire reads them, or a runneltest.Faults rule) gives
// INVALID_TIMESTAMP as api.ErrInvalidTimestamp, which the producer counts
// among the broker's refusals but did not split for: the records batched
// with the one at fault failed with it. INVALID_RECORD (87) and
// MESSAGE_TOO_LARGE (10), by code, are split.
func TestInvalidTimestampByCodeSplits(t *testing.T) {
	for _, code := range []int16{32, 87, 10} {
		t.Run(fmt.Sprint(api.Name(api.ForCode(code))), func(t *testing.T) {
			b := newBroker(t, runneltest.Topic("t", 1))
			c := &hookClient{b: b}
			refusal := api.ForCode(code)
			c.setHook(refuseValue(t, "bad", refusal))
			p := newProducer(t, c, producer.Linger(time.Minute), producer.DefaultTopic("t"))
			ctx := testCtx(t)
			out := newOutcome()
			var recs []*record.Record
			for _, v := range []string{"a", "b", "bad", "c", "d"} {
				r := &record.Record{Value: []byte(v)}
				recs = append(recs, r)
				p.Produce(ctx, r, out.promise())
			}
			require.NoError(t, p.Flush(ctx))
			out.wait()
			for _, r := range recs {
				if string(r.Value) == "bad" {
					require.ErrorIs(t, out.err(r), refusal)
				} else {
					require.NoError(t, out.err(r), "record %s, batched with the one refused (%v)", r.Value, refusal)
				}
			}
			require.Equal(t, []string{"a", "b", "c", "d"}, values(readRecords(t, b, "t", 0)))
		})
	}
}
