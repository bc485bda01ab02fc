package producer

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/stretchr/testify/require"
)

// storageFullClient answers a partition count of 1 until full is set,
// then fails every look-up with a retriable error (a broker that cannot
// create the topic again, its disk full).
type storageFullClient struct {
	manyClient
	full atomic.Bool
}

func (c *storageFullClient) Partitions(ctx context.Context, topic string) (int, error) {
	if c.full.Load() {
		return 0, fmt.Errorf("%w: auto-creating topic %s: no space left on device", api.ErrStorage, topic)
	}
	return 1, nil
}

// storageFullProducer is a producer on a storageFullClient whose
// look-ups fail by DeliveryTimeout in 50 ms once the client is full, its
// lines at Warn or above kept. Its tests run in a synctest bubble: a
// look-up that answers must answer within those 50 ms, which on the real
// clock a loaded machine could miss.
func storageFullProducer(t *testing.T) (*Producer, *storageFullClient, *testkit.Warned) {
	t.Helper()
	warned := &testkit.Warned{}
	c := &storageFullClient{manyClient: manyClient{n: 1}}
	p, err := New(c, Logger(warned.Logger()), RetryBackoff(time.Millisecond), DeliveryTimeout(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p, c, warned
}

// TestGoneTopicsLookUpFailureLogged: a topic the producer knew, found
// deleted (see partition.gone), is looked up again by every record; when
// those look-ups fail by DeliveryTimeout (the broker cannot create it
// again), the records are lost as a new topic's are, and are logged at
// Warn as theirs are (TestRecordsFailedByTheirTopicsLookUpLogged): they
// were logged at Debug only.
func TestGoneTopicsLookUpFailureLogged(t *testing.T) {
	synctest.Test(t, testGoneTopicsLookUpFailureLogged)
}

func testGoneTopicsLookUpFailureLogged(t *testing.T) {
	lookUpFailureRun(t, func(ts *topicState) { ts.gone.Store(true) }) // as a batch refused with an unknown topic sets it
}

// lookUpFailureRun has the Client's look-ups of topic t fail by
// DeliveryTimeout once mark has made t's next record look its count up
// again: two records fail, with one Warn line for the run, and the first
// record whose look-up answers ends the run.
func lookUpFailureRun(t *testing.T, mark func(*topicState)) {
	p, c, warned := storageFullProducer(t)
	ctx := context.Background()
	ts, err := p.topic(ctx, "t", true)
	require.NoError(t, err)
	mark(ts)
	c.full.Store(true)
	for range 2 {
		_, err = p.topic(ctx, "t", true)
		require.ErrorIs(t, err, ErrDeliveryTimeout)
	}
	require.Equal(t, []string{"records failed: the topic's partition count not known"}, warned.Messages())
	c.full.Store(false)
	_, err = p.topic(ctx, "t", true)
	require.NoError(t, err)
	p.lookUpMu.Lock()
	defer p.lookUpMu.Unlock()
	require.Empty(t, p.lookUpFailures, "a look-up that answered ends the run")
}

// TestIdleTopicsLookUpFailureLogged: as TestGoneTopicsLookUpFailureLogged,
// for a topic the producer knows whose count grew MetadataMaxAge old
// while no partition's goroutine ran (see topicState.freshen): the
// look-up its next record makes, failing by DeliveryTimeout, fails the
// record, logged at Warn once for the run, and the first that answers
// ends the run. No test held either half.
func TestIdleTopicsLookUpFailureLogged(t *testing.T) {
	synctest.Test(t, testIdleTopicsLookUpFailureLogged)
}

func testIdleTopicsLookUpFailureLogged(t *testing.T) {
	lookUpFailureRun(t, func(ts *topicState) { ts.refreshAt.Store(0) }) // due, as MetadataMaxAge after the last look-up
}
