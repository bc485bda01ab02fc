package log

import (
	"context"
	"testing"
	"time"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestExpiredProducerStaysForgottenAfterACrash: a producer id
// that Maintain forgot (ProducerExpiration) is unknown to the log, which
// takes its next batch at any sequence number and appends a retry of an
// old batch again, as Kafka's broker does. A power cut that leaves the
// snapshot of a roll before the expiry as the newest must not bring it
// back: Kafka's ProducerStateManager skips expired producers when it
// loads a snapshot. Open loaded it whole, so after the restart the same
// batches were answered otherwise than without it: a batch of producer 7
// after a gap refused with ErrOutOfOrderSequence, and a retry of
// producer 8's batch answered as a duplicate of offset 1 (until the next
// Maintain).
func TestExpiredProducerStaysForgottenAfterACrash(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	open := func() *Log { return e.openIdem(nil) }
	l := open()
	appendOK(t, l, idemBatch(t, 7, 0, 0, 1))
	appendOK(t, l, idemBatch(t, 8, 0, 0, 1))
	require.NoError(t, l.Roll()) // a snapshot at 2: producers 7 and 8
	e.clock.Advance(2 * time.Hour)
	require.NoError(t, l.Maintain(ctx)) // both expire
	require.NoError(t, l.Flush(ctx))    // the segment rolled, durable

	// A power cut: Open loads the snapshot at 2, written before the
	// expiry.
	e.fs = e.fs.(*vfs.MemFS).CrashClone(vfs.CrashOptions{})
	l.Close()
	l = open()
	defer l.Close()
	require.EqualValues(t, 2, l.Recovery().ProducerSnapshot)
	res, err := l.Append(ctx, idemBatch(t, 7, 0, 5, 1), AppendOptions{})
	require.NoError(t, err, "producer 7 expired before the crash: any sequence number is taken")
	require.EqualValues(t, 2, res.FirstOffset)
	res = appendOK(t, l, idemBatch(t, 8, 0, 0, 1))
	require.False(t, res.Duplicate, "producer 8 expired before the crash: its old batch is a new one")
	require.EqualValues(t, 3, res.FirstOffset)
}
