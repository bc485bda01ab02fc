package log

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// txnBatch is a batch of transactional producer 5 (epoch 0) at base
// offset base, sequence seq, as Apache Kafka writes one.
func txnBatch(t *testing.T, base int64, seq int32, ts int64, recs ...kv) []byte {
	t.Helper()
	var b record.Builder
	b.Reset()
	b.SetProducer(5, 0, seq)
	b.SetTransactional(true)
	for _, r := range recs {
		b.Append(ts, r.key, r.value, nil)
	}
	out, err := b.AppendTo(nil, compression.None)
	require.NoError(t, err)
	record.Batch(out).SetBaseOffset(base)
	record.Batch(out).UpdateCRC()
	return out
}

// commitMarker is producer 5's COMMIT control batch at offset base, as a
// transaction coordinator has Kafka's broker write it: a transactional
// control batch of one record, key (version 0, type 1), value (version 0,
// coordinator epoch 0), sequence -1.
func commitMarker(t *testing.T, base, ts int64) []byte {
	t.Helper()
	key := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, 0), 1)
	value := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint16(nil, 0), 0)
	var b record.Builder
	b.Reset()
	b.SetProducer(5, 0, -1)
	b.SetTransactional(true)
	b.Append(ts, key, value, nil)
	out, err := b.AppendTo(nil, compression.None)
	require.NoError(t, err)
	out[22] |= byte(record.AttrControl) // attributes' low byte
	record.Batch(out).SetBaseOffset(base)
	record.Batch(out).UpdateCRC()
	return out
}

// TestCompactionKafkaTransactionalLog compacts a segment as Apache Kafka
// writes one for a transactional producer: data batches with the
// transactional bit, COMMIT markers (control batches) between them, and
// plain batches. The key map takes no control record's key for a record's
// (they would supersede one another, and a marker's key could collide
// with a record's), the markers stay as they are, a transactional batch
// rebuilt keeps its producer, sequence and transactional bit and gets the
// delete horizon of its tombstone, which goes after delete.retention.ms;
// each key's latest record stays, across a reopen, and the log end does
// not move.
func TestCompactionKafkaTransactionalLog(t *testing.T) {
	e := newEnv(t)
	ts := e.clock.Now().UnixMilli()
	var data []byte
	data = append(data, txnBatch(t, 0, 0, ts, kv{key: []byte("a"), value: []byte("a1")}, kv{key: []byte("b"), value: []byte("b1")})...)
	data = append(data, commitMarker(t, 2, ts)...)
	// A record whose key is a COMMIT marker's: the markers after it do
	// not supersede it.
	plain := batchOf(t, compression.None, kv{key: []byte("a"), value: []byte("a2"), ts: ts}, kv{key: []byte{0, 0, 0, 1}, value: []byte("like a marker's key"), ts: ts})
	record.Batch(plain).SetBaseOffset(3)
	record.Batch(plain).UpdateCRC()
	data = append(data, plain...)
	data = append(data, txnBatch(t, 5, 2, ts, kv{key: []byte("b")}, kv{key: []byte("c"), value: []byte("c1")})...)
	data = append(data, commitMarker(t, 7, ts)...)
	plain = batchOf(t, compression.None, kv{key: []byte("a"), value: []byte("a3"), ts: ts})
	record.Batch(plain).SetBaseOffset(8)
	record.Batch(plain).UpdateCRC()
	data = append(data, plain...)

	require.NoError(t, e.fs.MkdirAll(e.dir, 0o755))
	f, err := e.fs.Create(filepath.Join(e.dir, "00000000000000000000.log"))
	require.NoError(t, err)
	_, err = f.Write(data)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())

	cfg := Config{CleanupPolicy: Compact, DeleteRetentionTime: time.Hour}
	l := e.open(cfg)
	defer func() { l.Close() }()
	require.EqualValues(t, 9, l.LogEndOffset())
	require.NoError(t, l.Roll())

	type rec struct {
		off        int64
		key, value string
		tombstone  bool
	}
	records := func() ([]rec, []record.Batch) {
		batches, _ := readBatches(t, l, l.LogStartOffset())
		var out []rec
		for _, b := range batches {
			if b.IsControl() {
				continue
			}
			for r, err := range b.Records() {
				require.NoError(t, err)
				out = append(out, rec{r.Offset, string(r.Key), string(r.Value), r.Value == nil})
			}
		}
		return out, batches
	}
	markersAt := func(batches []record.Batch) []int64 {
		var at []int64
		for _, b := range batches {
			if b.IsControl() {
				require.True(t, b.IsTransactional())
				require.EqualValues(t, 5, b.ProducerID())
				at = append(at, b.BaseOffset())
			}
		}
		return at
	}

	_, err = l.Compact(context.Background())
	require.NoError(t, err)
	got, batches := records()
	require.Equal(t, []rec{{4, "\x00\x00\x00\x01", "like a marker's key", false}, {5, "b", "", true}, {6, "c", "c1", false}, {8, "a", "a3", false}}, got)
	require.Equal(t, []int64{2, 7}, markersAt(batches))
	for _, b := range batches {
		if b.BaseOffset() == 5 {
			require.True(t, b.IsTransactional())
			require.False(t, b.IsControl())
			require.EqualValues(t, 5, b.ProducerID())
			require.EqualValues(t, 2, b.BaseSequence())
			require.True(t, b.HasDeleteHorizon(), "the tombstone's batch has no delete horizon")
			require.Equal(t, e.clock.Now().Add(time.Hour).UnixMilli(), b.BaseTimestamp())
		}
	}
	require.EqualValues(t, 9, l.LogEndOffset())

	// Within delete.retention.ms the tombstone stays, after it it goes.
	e.clock.Advance(59 * time.Minute)
	_, err = l.Compact(context.Background())
	require.NoError(t, err)
	got, _ = records()
	require.Len(t, got, 4)
	e.clock.Advance(2 * time.Minute)
	_, err = l.Compact(context.Background())
	require.NoError(t, err)
	got, batches = records()
	require.Equal(t, []rec{{4, "\x00\x00\x00\x01", "like a marker's key", false}, {6, "c", "c1", false}, {8, "a", "a3", false}}, got)
	require.Equal(t, []int64{2, 7}, markersAt(batches))

	require.NoError(t, l.Close())
	l = e.open(cfg)
	got2, batches := records()
	require.Equal(t, got, got2)
	require.Equal(t, []int64{2, 7}, markersAt(batches))
	require.EqualValues(t, 9, l.LogEndOffset())
	res := appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("d"), value: []byte("d1"), ts: ts}))
	require.EqualValues(t, 9, res.FirstOffset)
}
