package producer_test

import (
	"context"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// lateLookup is slowLookup whose Partitions returns a moment after its
// ctx ends, as a Client's call does when the ctx's end takes it a while to
// see (a network round trip, a goroutine to be scheduled).
type lateLookup struct{ slowLookup }

func (c *lateLookup) Partitions(ctx context.Context, topic string) (int, error) {
	n, err := c.slowLookup.Partitions(ctx, topic)
	time.Sleep(50 * time.Millisecond)
	return n, err
}

// BufferedRecords' doc said that a record is not counted "after Close
// returns (a Close that waits for the producer's goroutines: not one
// called from a promise), whatever the records' fate", and
// BufferedBytes' that it "goes back to 0 when BufferedRecords does
// (after Flush, after Close)". A Produce that waits for its topic's
// partition count holds its buffer space (so that Flush waits for it),
// and Close, which ends that wait, does not wait for the Produce, on the
// caller's goroutine, to give the space back (nor could it, without
// counting every Produce under way): Close returned with the record still
// counted. Both are counted until that Produce returns, and not after.
func TestBufferedCountsAProduceCloseEndedUntilItReturns(t *testing.T) {
	c := &lateLookup{slowLookup{entered: make(chan struct{}, 1)}}
	p, err := producer.New(c)
	require.NoError(t, err)
	got := make(chan error, 1)
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		p.Produce(context.Background(), &record.Record{Topic: "t", Value: []byte("v")},
			func(_ *record.Record, err error) { got <- err })
	}()
	testkit.AwaitHold(t, c.entered, got, "the Produce")
	require.NoError(t, p.Close())
	n, bytes := p.BufferedRecords(), p.BufferedBytes()
	testkit.Await(t, returned, "Produce's return")
	require.ErrorIs(t, testkit.Await(t, got, "the record's promise"), producer.ErrClosed)
	require.Zero(t, p.BufferedRecords(), "once the Produce that Close ended has returned")
	require.Zero(t, p.BufferedBytes(), "once the Produce that Close ended has returned")
	// As BufferedRecords' doc now says: counted until the Produce
	// returned, maybe after Close did (here 50 ms after).
	t.Logf("right after Close returned: %d records, %d bytes", n, bytes)
}
