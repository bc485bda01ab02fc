package consumer_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// A fenced partition's fetch error is a storage error (KAFKA_STORAGE_ERROR,
// retriable), which Poll retries without a word, whatever fenced the log.
// A log is fenced with the failure's error wrapped beside log.ErrLogFenced,
// and a failed reopen with Open's error, which may be a corrupt segment's
// (*record.CorruptError). api.Code took the table's first row that such an
// error matched, record.ErrCorrupt's CORRUPT_MESSAGE: the consumer reported
// a fenced partition as a corrupt batch at every retry, where one fenced by
// a failed fsync was retried silently, and the producer did not take the
// partition for refusing appends (see producer.HealthClient).
func TestFencedPartitionRetriedWhateverTheCause(t *testing.T) {
	corrupt := &record.CorruptError{Path: "/d/t-0/00000000000000000000.log", Position: 0, Reason: "bad CRC"}
	for _, cause := range []error{errors.New("sync: input/output error"), corrupt} {
		fenced := fmt.Errorf("%w: %w", log.ErrLogFenced, cause)
		require.EqualValues(t, 56, api.Code(fenced), "%v", fenced)
		require.Equal(t, "KAFKA_STORAGE_ERROR", api.Name(fenced))
		require.True(t, api.IsRetriable(fenced))

		b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
		runneltest.ProduceValues(t, b, "t", "a", "b")
		f := runneltest.NewFaults(t, b)
		r := f.Add(runneltest.Fault{Op: runneltest.OpFetch, Topic: "t", Action: runneltest.FailPartitions, Err: fenced, Count: 2})
		c := newConsumer(t, f, consumer.RetryBackoff(time.Millisecond))
		require.NoError(t, c.Assign("t", 0, consumer.Start()))
		var got []string
		for rec, err := range c.Records(testCtx(t)) {
			require.NoError(t, err, "cause %v: a fenced partition is retried without a word", cause)
			got = append(got, string(rec.Value))
			if len(got) == 2 {
				break
			}
		}
		require.Equal(t, []string{"a", "b"}, got)
		require.Equal(t, 2, r.Hits())
	}
}
