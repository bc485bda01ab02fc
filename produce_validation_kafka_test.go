package runnel

import (
	"context"
	"encoding/binary"
	"math"
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// TestProduceHeaderCountsAreInvalidRecord: a batch whose CRC holds but
// whose header disagrees with itself — a record count that is not its
// offset range (last offset delta + 1), a negative count or delta, more
// records than its bytes can hold, a base offset whose last offset
// overflows — is refused as Kafka's broker refuses it: LogValidator's
// validateBatch throws InvalidRecordException (INVALID_RECORD, 87, not
// retriable) for the offset range and count, and the records that are not
// there fail the record iterator the same way. Not CORRUPT_MESSAGE, which
// a producer retries until its delivery timeout: the batch never changes.
// Kafka checks the base offset first, before the batch's size and CRC
// (UnifiedLog.analyzeAndValidateRecords), so a batch with a base offset
// other than 0 is INVALID_RECORD whatever its CRC; a CRC that fails is
// CORRUPT_MESSAGE before any count is looked at. The log is unchanged
// after each.
func TestProduceHeaderCountsAreInvalidRecord(t *testing.T) {
	b := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	const (
		offLastDelta = 23
		offCount     = 57
	)
	put := func(d []byte, off int, v uint32) { binary.BigEndian.PutUint32(d[off:], v) }
	sealed := func(d []byte) []byte { record.Batch(d).UpdateCRC(); return d }
	for _, tc := range []struct {
		name string
		data []byte
		code int16
	}{
		{"count 3, last offset delta 1", sealed(func() []byte { d := batch(t, "a", "b"); put(d, offCount, 3); return d }()), 87},
		{"count 1, last offset delta 1", sealed(func() []byte { d := batch(t, "a", "b"); put(d, offCount, 1); return d }()), 87},
		{"count -1", sealed(func() []byte { d := batch(t, "a", "b"); put(d, offCount, math.MaxUint32); return d }()), 87},
		{"count 0, last offset delta -1", sealed(func() []byte {
			d := batch(t, "a")
			put(d, offCount, 0)
			put(d, offLastDelta, math.MaxUint32)
			return d
		}()), 87},
		{"count 0, last offset delta 0", sealed(func() []byte { d := batch(t, "a"); put(d, offCount, 0); return d }()), 87},
		{"count 100 in the bytes of one record", sealed(func() []byte {
			d := batch(t, "a")
			put(d, offCount, 100)
			put(d, offLastDelta, 99)
			return d
		}()), 87},
		{"count and delta MaxInt32", sealed(func() []byte {
			d := batch(t, "a")
			put(d, offCount, math.MaxInt32)
			put(d, offLastDelta, math.MaxInt32-1)
			return d
		}()), 87},
		{"base offset MaxInt64", func() []byte { d := batch(t, "a", "b"); record.Batch(d).SetBaseOffset(math.MaxInt64); return d }(), 87},
		{"base offset 5 and a bad CRC", func() []byte {
			d := batch(t, "a")
			record.Batch(d).SetBaseOffset(5)
			d[len(d)-1] ^= 1
			return d
		}(), 87},
		{"count 3, last offset delta 1, bad CRC", func() []byte { d := batch(t, "a", "b"); put(d, offCount, 3); return d }(), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: tc.data})
			require.Error(t, err)
			require.Equal(t, tc.code, api.Code(err), "%v", err)
			if tc.code == 87 {
				require.ErrorIs(t, err, log.ErrInvalidRecord)
				require.False(t, api.IsRetriable(err))
			} else {
				require.ErrorIs(t, err, record.ErrCorrupt)
			}
			info, err := b.DescribeTopic(ctx, "t")
			require.NoError(t, err)
			require.Zero(t, info.Partitions[0].LogEndOffset, "nothing appended")
		})
	}
	// A good batch is still taken, and is all there is.
	produce(t, b, "t", 0, "x")
	resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t"}}})
	require.NoError(t, err)
	require.Equal(t, []string{"x"}, values(t, resp.Partitions[0].Records))
}
