package producer_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// countingHold is a Client whose Partitions answers as the broker until
// hold is set, and from then on waits for its ctx to end, counting the
// calls it held.
type countingHold struct {
	*runnel.Broker
	hold atomic.Bool
	held atomic.Int32
}

func (c *countingHold) Partitions(ctx context.Context, topic string) (int, error) {
	if !c.hold.Load() {
		return c.Broker.Partitions(ctx, topic)
	}
	c.held.Add(1)
	<-ctx.Done()
	return 0, ctx.Err()
}

// A ProduceSync whose record for a partition past the count the producer
// knows could not learn the count within DeliveryTimeout (a broker that
// does not answer) fails the records after it for such a partition with
// that error at once, as it does the records of a topic whose count it
// could not learn (see ProduceSync), rather than wait as long again for
// each; a record for a partition the producer knows is written. On the
// old code every such record waited out its own DeliveryTimeout: the
// broker was asked once per record. In a synctest bubble: the record
// written must be written within the DeliveryTimeout that the others
// wait out, which on the real clock a loaded machine could miss.
func TestProduceSyncPastTheCountTimesOutOnce(t *testing.T) {
	synctest.Test(t, testProduceSyncPastTheCountTimesOutOnce)
}

func testProduceSyncPastTheCountTimesOutOnce(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := &countingHold{Broker: b}
	p := newProducer(t, c, producer.RecordPartitioner(producer.ManualPartitioner()),
		producer.DeliveryTimeout(time.Second))
	require.NoError(t, p.ProduceSync(testCtx(t), &record.Record{Topic: "t", Value: []byte("first")}))

	c.hold.Store(true)
	recs := []*record.Record{
		{Topic: "t", Partition: 3, Value: []byte("past-a")},
		{Topic: "t", Partition: 0, Value: []byte("known")},
		{Topic: "t", Partition: 3, Value: []byte("past-b")},
		{Topic: "t", Partition: 5, Value: []byte("past-c")},
	}
	err := p.ProduceSync(testCtx(t), recs...)
	require.Error(t, err)
	var failed []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var re *producer.RecordError
		require.True(t, errors.As(e, &re), "%v", e)
		require.ErrorIs(t, re.Err, producer.ErrDeliveryTimeout)
		failed = append(failed, string(re.Record.Value))
	}
	require.ElementsMatch(t, []string{"past-a", "past-b", "past-c"}, failed)
	require.EqualValues(t, 1, c.held.Load(), "the broker was asked for the count once")

	var values []string
	for _, r := range runneltest.ConsumeAll(t, b, "t") {
		values = append(values, string(r.Value))
	}
	require.Equal(t, []string{"first", "known"}, values)
}
