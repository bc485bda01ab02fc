package log

import (
	"context"
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// The checks Append makes of a produced batch at their boundaries: the
// sizes, offsets, sequences, timestamps and attributes it refuses or
// stamps. Each test pins a comparison or a check that the rest of the
// suite would let change.

// TestAppendLogAppendTimeAtEpoch: a LogAppendTime topic stamps the
// broker's clock even when it reads 0 ms (the Unix epoch): 0 is a time,
// only -1 is none. The batch is marked LogAppendTime with max timestamp 0.
func TestAppendLogAppendTimeAtEpoch(t *testing.T) {
	e := newEnv(t)
	e.clock = &fakeClock{t: time.UnixMilli(0)}
	l := e.open(Config{TimestampType: LogAppendTime})
	defer l.Close()
	res := appendOK(t, l, valueBatch(t, 5_000, "a"))
	require.Zero(t, res.LogAppendTime)
	bs, _ := readBatches(t, l, 0)
	require.Len(t, bs, 1)
	require.Equal(t, record.LogAppendTime, bs[0].TimestampType())
	require.Zero(t, bs[0].MaxTimestamp())
}

// TestAppendMaxMessageBytesBoundary: max.message.bytes bounds a batch's
// whole size, its offset and length fields included (Kafka's
// batch.sizeInBytes > maxMessageSize): a batch of exactly that many bytes
// is taken, one byte more is RecordTooLarge, and the refused append
// writes nothing.
func TestAppendMaxMessageBytesBoundary(t *testing.T) {
	size := len(valueBatch(t, 1_700_000_000_000, "a"))
	e := newEnv(t)
	l := e.open(Config{MaxMessageBytes: size})
	defer l.Close()
	res := appendOK(t, l, valueBatch(t, e.clock.Now().UnixMilli(), "a"))
	require.Zero(t, res.FirstOffset)

	e2 := newEnv(t)
	l2 := e2.open(Config{MaxMessageBytes: size - 1})
	defer l2.Close()
	requireRefused(t, l2, valueBatch(t, e2.clock.Now().UnixMilli(), "a"), ErrRecordTooLarge)
}

// TestAppendRefusesProducerZeroWithoutSequence: producer id 0 is a
// producer (Kafka's ids start at 0; only -1 is none), so its batch needs a
// sequence number: one of sequence -1 is INVALID_RECORD, as
// LogValidator's, and nothing is written.
func TestAppendRefusesProducerZeroWithoutSequence(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	defer l.Close()
	var b record.Builder
	b.Reset()
	b.SetProducer(0, 0, -1)
	b.Append(e.clock.Now().UnixMilli(), []byte("k"), []byte("v"), nil)
	data, err := b.AppendTo(nil, compression.None)
	require.NoError(t, err)
	requireRefused(t, l, data, ErrInvalidRecord)
}

// TestAppendResetsLogAppendTimeBitAtRecordsMax: a batch marked
// LogAppendTime on a CreateTime topic is stored as a CreateTime batch even
// when the time its producer claims is its records' largest create time
// (the max timestamp needs no change, the bit still does), as Kafka's
// setMaxTimestamp(CREATE_TIME, ...) clears it: readers see the records'
// own times.
func TestAppendResetsLogAppendTimeBitAtRecordsMax(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	defer l.Close()
	now := e.clock.Now().UnixMilli()
	data := batchOf(t, compression.None, kv{[]byte("a"), []byte("1"), now - 5}, kv{[]byte("b"), []byte("2"), now})
	record.Batch(data).SetLogAppendTime(now)
	appendOK(t, l, data)
	bs, recs := readBatches(t, l, 0)
	require.Len(t, bs, 1)
	require.NoError(t, bs[0].Validate(0))
	require.Equal(t, record.CreateTime, bs[0].TimestampType())
	require.Equal(t, now, bs[0].MaxTimestamp())
	require.Len(t, recs, 2)
	require.Equal(t, record.CreateTime, recs[0].TimestampType)
	require.Equal(t, now-5, recs[0].Timestamp.UnixMilli())
}

// TestAppendRefusesIdempotentBatchFollowedByPlainOne: an idempotent
// producer's batch must come alone, also when the batches after it are
// not an idempotent producer's: data of such a batch and a plain one is
// INVALID_RECORD, and nothing is written.
func TestAppendRefusesIdempotentBatchFollowedByPlainOne(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	defer l.Close()
	data := append(idemBatch(t, 1, 0, 0, 1), valueBatch(t, e.clock.Now().UnixMilli(), "a")...)
	requireRefused(t, l, data, ErrInvalidRecord)
}

// TestAppendRefusesOffsetRangeWiderThanRecords: a batch whose last offset
// delta says more offsets than it holds records (two records, delta 2),
// its CRC sound, is INVALID_RECORD, as Kafka's LogValidator.validateBatch
// refuses a count that is not lastOffset - baseOffset + 1: the log would
// otherwise hold an offset no record has, and nothing is written.
func TestAppendRefusesOffsetRangeWiderThanRecords(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	defer l.Close()
	data := valueBatch(t, e.clock.Now().UnixMilli(), "a", "b")
	binary.BigEndian.PutUint32(data[23:], 2) // the last offset delta, after the attributes
	record.Batch(data).UpdateCRC()
	require.EqualValues(t, 2, record.Batch(data).LastOffsetDelta())
	requireRefused(t, l, data, ErrInvalidRecord)
}

// TestAppendRefusesNegativeSequences: an idempotent producer's batch
// needs a sequence number: any negative one (not only -1, none) is
// INVALID_RECORD, as Kafka's LogValidator (baseSequence < 0), and nothing
// is written.
func TestAppendRefusesNegativeSequences(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	defer l.Close()
	for _, seq := range []int32{-1, -2, math.MinInt32} {
		_, err := l.Append(context.Background(), idemBatch(t, 1, 0, seq, 1), AppendOptions{})
		require.ErrorIs(t, err, ErrInvalidRecord, "sequence %d", seq)
	}
	require.Zero(t, l.LogEndOffset())
}

// TestAppendRefusesDeleteHorizon: a produced batch carrying the log
// cleaner's delete-horizon mark (KIP-534), its CRC sound, is
// INVALID_RECORD, and nothing is written.
func TestAppendRefusesDeleteHorizon(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	defer l.Close()
	data := valueBatch(t, e.clock.Now().UnixMilli(), "a")
	binary.BigEndian.PutUint16(data[21:], binary.BigEndian.Uint16(data[21:])|record.AttrDeleteHorizon)
	record.Batch(data).UpdateCRC()
	require.True(t, record.Batch(data).HasDeleteHorizon())
	requireRefused(t, l, data, ErrInvalidRecord)
}

// TestAppendCRCFailureIsCorruptMessage: a batch whose CRC fails went bad
// on its way (CORRUPT_MESSAGE, retriable, as Kafka's broker answers it):
// record.ErrCorrupt, not ErrInvalidRecord, which a producer does not
// retry.
func TestAppendCRCFailureIsCorruptMessage(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	defer l.Close()
	data := valueBatch(t, e.clock.Now().UnixMilli(), "a")
	data[len(data)-2] ^= 0xff // in the record's value: the CRC fails
	err := requireRefused(t, l, data, record.ErrCorrupt)
	require.NotErrorIs(t, err, ErrInvalidRecord)
}

// TestAppendCutLaterBatchIsCorruptMessage: data whose second batch is cut
// short is CORRUPT_MESSAGE (record.ErrCorrupt), not INVALID_RECORD: only
// a first batch that is not whole is "no batch" (see notABatch).
func TestAppendCutLaterBatchIsCorruptMessage(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	defer l.Close()
	now := e.clock.Now().UnixMilli()
	second := valueBatch(t, now, "b")
	data := append(valueBatch(t, now, "a"), second[:len(second)-5]...)
	err := requireRefused(t, l, data, record.ErrCorrupt)
	require.NotErrorIs(t, err, ErrInvalidRecord)
}

// requireRefused appends data to l, which must refuse it with an error
// matching want and write nothing; it returns the error.
func requireRefused(t *testing.T, l *Log, data []byte, want error) error {
	t.Helper()
	_, err := l.Append(context.Background(), data, AppendOptions{})
	require.ErrorIs(t, err, want)
	require.Zero(t, l.LogEndOffset(), "a refused append writes nothing")
	return err
}

// TestLogAppendTimeBeforeTheEpoch: a LogAppendTime topic stamps
// every batch with the log's clock, whatever time it tells: one before
// 1970 (a fake clock left at its zero time, a machine whose clock was
// never set) is a negative append time, which Kafka's broker stamps as it
// is (time.milliseconds). The log took a negative append time for "the
// topic uses CreateTime": it stored the producer's batch as it came, a
// CreateTime batch, its header's max timestamp uncorrected (here 7, where
// its records' largest is 1000), and answered the append with that
// negative time as its LogAppendTime.
func TestLogAppendTimeBeforeTheEpoch(t *testing.T) {
	e := newEnv(t)
	e.clock.t = time.UnixMilli(-5000)
	l := e.open(Config{TimestampType: LogAppendTime})
	defer l.Close()
	data := batchOf(t, compression.None, kv{value: []byte("a"), ts: 1000}, kv{value: []byte("b"), ts: 500})
	record.Batch(data).SetMaxTimestamp(7)
	res := appendOK(t, l, data)
	require.EqualValues(t, -5000, res.LogAppendTime)

	raw, err := l.Read(0, 1<<20, l.LogEndOffset())
	require.NoError(t, err)
	b := record.Batch(raw)
	require.Equal(t, record.LogAppendTime, b.TimestampType(), "stamped by the log")
	require.EqualValues(t, -5000, b.MaxTimestamp())
	for _, r := range readAll(t, l, 0) {
		require.Equal(t, record.LogAppendTime, r.TimestampType)
		require.EqualValues(t, -5000, r.Timestamp.UnixMilli())
	}
}
