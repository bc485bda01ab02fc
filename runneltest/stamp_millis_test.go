package runneltest_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
)

// TestProduceStampsWhatIsStored: Produce stamps a record without a
// Timestamp in whole milliseconds, so that it is Equal to the record
// ConsumeAll reads back, as a producer's stamp is (until 2026-12-07 it
// kept time.Now's nanoseconds).
func TestProduceStampsWhatIsStored(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	var sent []*record.Record
	for range 20 {
		r := &record.Record{Value: []byte("v")}
		runneltest.Produce(t, b, "t", r)
		sent = append(sent, r)
	}
	got := runneltest.ConsumeAll(t, b, "t")
	require.Len(t, got, len(sent))
	for i, r := range sent {
		require.True(t, r.Timestamp.Equal(got[i].Timestamp), "record %d: produced %v, stored %v", i, r.Timestamp, got[i].Timestamp)
	}
}
