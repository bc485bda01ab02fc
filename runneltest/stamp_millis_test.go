package runneltest_test

import (
	"testing"
	"time"

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

// TestProduceTruncatesOwnTimestamp: Produce truncates a Timestamp of the
// caller's to the millisecond, as a producer does (its Location kept), so
// that it is Equal to the record read back; one in whole milliseconds,
// and one before 1970 (which Produce takes), likewise. Until 2026-12-07
// the caller's nanoseconds were kept.
func TestProduceTruncatesOwnTimestamp(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	where := time.FixedZone("UTC-5", -5*60*60)
	stamps := []time.Time{
		time.Date(2026, 12, 7, 12, 30, 0, 123456789, where),
		time.Date(2026, 12, 7, 12, 30, 0, 123000000, where),
		time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC),
	}
	var sent []*record.Record
	for _, ts := range stamps {
		r := &record.Record{Value: []byte("v"), Timestamp: ts}
		runneltest.Produce(t, b, "t", r)
		require.Equal(t, ts.Truncate(time.Millisecond), r.Timestamp)
		sent = append(sent, r)
	}
	got := runneltest.ConsumeAll(t, b, "t")
	require.Len(t, got, len(sent))
	for i, r := range sent {
		require.True(t, r.Timestamp.Equal(got[i].Timestamp), "record %d: produced %v, stored %v", i, r.Timestamp, got[i].Timestamp)
	}
}
