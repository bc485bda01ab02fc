package runneltest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

func TestThreeLines(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("orders", 3))
	runneltest.ProduceValues(t, b, "orders", "a", "b", "c")
	recs := runneltest.Consume(t, b, "orders", 3)

	require.Len(t, recs, 3)
	for i, r := range recs {
		require.Equal(t, []string{"a", "b", "c"}[i], string(r.Value))
		require.EqualValues(t, i, r.Offset)
		require.Equal(t, "orders", r.Topic)
	}
}

func TestKeyedSpread(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("events", 4))
	var recs []*record.Record
	for i := range 40 {
		recs = append(recs, &record.Record{Key: fmt.Appendf(nil, "user-%d", i%8), Value: fmt.Appendf(nil, "%d", i)})
	}
	runneltest.Produce(t, b, "events", recs...)
	byKey := map[string]int32{}
	for _, r := range recs {
		if p, ok := byKey[string(r.Key)]; ok {
			require.Equal(t, p, r.Partition, "a key stays on its partition")
		}
		byKey[string(r.Key)] = r.Partition
	}
	got := runneltest.Consume(t, b, "events", 40)
	require.Len(t, got, 40)

	// The producer puts a key where runneltest.Produce did.
	p, err := producer.New(b)
	require.NoError(t, err)
	defer p.Close()
	for key, part := range byKey {
		r := &record.Record{Topic: "events", Key: []byte(key)}
		require.NoError(t, p.ProduceSync(context.Background(), r))
		require.Equal(t, part, r.Partition, key)
	}
}

func TestProduceToMissingPartitionFails(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("one", 1))
	ft := &fakeT{TB: t}
	func() {
		defer func() { recover() }() // Fatalf ends the goroutine's test func; fakeT panics instead
		runneltest.Produce(ft, b, "one", &record.Record{Partition: 3, Value: []byte("x")})
	}()
	require.True(t, ft.failed)
}

// fakeT records a failure instead of ending the test.
type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Fatalf(format string, args ...any) { f.failed = true; panic("fatal") }
func (f *fakeT) Helper()                           {}
