package consumer_test

import (
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// NumRecords' doc said: "the number of records Records yields ... it
// stops counting at a batch that cannot be decoded". A batch whose
// header is sound (its CRC too) but whose records do not decode is
// counted whole from its header: NumRecords says 4 where Records yields
// 3, and it does not stop counting there. The doc now says so; this
// pins it (the first version of this test asserted the old doc, and
// failed).
func TestNumRecordsCountsAnUndecodableBatchWhole(t *testing.T) {
	bad := batchAt(t, 0, "a", "b")
	bad[len(bad)-1] = 2 // the second record announces a header that is not there
	record.Batch(bad).UpdateCRC()
	data := cat(bad, batchAt(t, 2, "c", "d"))
	var n atomic.Int32
	c := newConsumer(t, serve(t, 4, data, &n))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	yielded := 0
	for r := range fs.Records() {
		if r != nil {
			yielded++
		}
	}
	require.Equal(t, 3, yielded)
	require.Equal(t, 4, fs.NumRecords(), "the batch that does not decode counts whole, from its header")
}
