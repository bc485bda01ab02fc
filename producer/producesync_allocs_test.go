package producer_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
)

// TestProduceSyncAllocatesPerCallNotPerRecord: a ProduceSync allocates
// what the call needs (its wait, its channel), not an object for each of
// its records: the records' promise, a method value, was made (and
// allocated, as it escapes into the batch) once per record.
func TestProduceSyncAllocatesPerCallNotPerRecord(t *testing.T) {
	p, err := producer.New(&discard{}, producer.Acks(producer.AcksLeader), producer.DisableIdempotence(),
		producer.BatchMaxBytes(1_000_000), producer.MaxBufferedRecords(10_000))
	require.NoError(t, err)
	defer p.Close()
	ctx := context.Background()
	value := make([]byte, 100)
	recs := func(n int) []*record.Record {
		rs := make([]*record.Record, n)
		for i := range rs {
			rs[i] = &record.Record{Topic: "t", Value: value}
		}
		return rs
	}
	one, many := recs(1), recs(1000)
	// Warm up: the topic's state, the batches and their buffers.
	require.NoError(t, p.ProduceSync(ctx, many...))
	require.NoError(t, p.ProduceSync(ctx, one...))
	// A record produced again once its promise has run is a new record
	// for the producer (see Produce); each run stamps it anew.
	allocs := func(rs []*record.Record) float64 {
		return testing.AllocsPerRun(20, func() {
			for _, r := range rs {
				r.Timestamp = record.Record{}.Timestamp
			}
			if err := p.ProduceSync(ctx, rs...); err != nil {
				t.Fatal(err)
			}
		})
	}
	a1, a1000 := allocs(one), allocs(many)
	t.Logf("allocations a ProduceSync: %.1f of 1 record, %.1f of 1000", a1, a1000)
	require.Less(t, a1000-a1, 100.0, "allocations grow with the records of a ProduceSync")
}
