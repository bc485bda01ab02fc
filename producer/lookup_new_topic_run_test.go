package producer

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"
)

// TestNewTopicsLookUpAnsweredEndsTheRun: as TestGoneTopicsLookUpFailureLogged,
// for a topic the producer has not known: its first look-up that fails by
// DeliveryTimeout starts a run of failures (one Warn line), and the first
// that answers ends it (topic's endLookUpFailures before newTopic), so that
// the next failure is a first, at Warn, and the runs are not kept.
func TestNewTopicsLookUpAnsweredEndsTheRun(t *testing.T) {
	synctest.Test(t, testNewTopicsLookUpAnsweredEndsTheRun)
}

func testNewTopicsLookUpAnsweredEndsTheRun(t *testing.T) {
	p, c, warned := storageFullProducer(t)
	ctx := context.Background()
	c.full.Store(true)
	_, err := p.topic(ctx, "t", true)
	require.ErrorIs(t, err, ErrDeliveryTimeout)
	require.Equal(t, []string{"records failed: the topic's partition count not known"}, warned.Messages())
	c.full.Store(false)
	_, err = p.topic(ctx, "t", true)
	require.NoError(t, err)
	p.lookUpMu.Lock()
	defer p.lookUpMu.Unlock()
	require.Empty(t, p.lookUpFailures, "a look-up that answered ends the run")
}

// TestClosedProducerKeepsNoLookUpRun: Close, once it has waited for the
// producer's goroutines, lets go of the runs of failed look-ups too (a
// topic whose count never answered, whose run a look-up that answers
// would have ended).
func TestClosedProducerKeepsNoLookUpRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, c, _ := storageFullProducer(t)
		c.full.Store(true)
		_, err := p.topic(context.Background(), "t", true)
		require.ErrorIs(t, err, ErrDeliveryTimeout)
		p.lookUpMu.Lock()
		require.Len(t, p.lookUpFailures, 1, "the run of t's failures")
		p.lookUpMu.Unlock()
		require.NoError(t, p.Close())
		p.lookUpMu.Lock()
		defer p.lookUpMu.Unlock()
		require.Nil(t, p.lookUpFailures, "the closed producer keeps the runs")
	})
}
