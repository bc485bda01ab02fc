package record

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/runnel/runnel/compression"
	"github.com/stretchr/testify/require"
)

// kafkaVarint is Kafka's ByteUtils.readVarint (ByteBuffer), ported: at
// most 5 bytes, the 5th without its continuation bit ("Varint is too
// long" otherwise), its bits past 32 dropped (Java's int shift), then
// zigzag. ok is false where Kafka throws (a BufferUnderflowException too).
func kafkaVarint(b []byte) (v int32, n int, ok bool) {
	var result int32
	for i := 0; i < 5; i++ {
		if i >= len(b) {
			return 0, 0, false
		}
		tmp := int8(b[i])
		if i == 4 {
			result |= int32(tmp) << 28
			if tmp < 0 {
				return 0, 0, false
			}
			break
		}
		if tmp >= 0 {
			result |= int32(tmp) << (7 * i)
			n = i + 1
			u := uint32(result)
			return int32(u>>1) ^ -int32(u&1), n, true
		}
		result |= int32(tmp&127) << (7 * i)
	}
	u := uint32(result)
	return int32(u>>1) ^ -int32(u&1), 5, true
}

// kafkaVarlong is Kafka's ByteUtils.readVarlong (ByteBuffer), ported: at
// most 10 bytes, the 10th without its continuation bit, its bits past 64
// dropped, then zigzag.
func kafkaVarlong(b []byte) (v int64, n int, ok bool) {
	var value uint64
	i := 0
	for k := 0; ; k++ {
		if k >= len(b) {
			return 0, 0, false
		}
		c := int64(int8(b[k])) // Java's long b = buffer.get(): sign-extended
		if c&0x80 == 0 {
			value |= uint64(c) << i
			return int64(value>>1) ^ -int64(value&1), k + 1, true
		}
		value |= uint64(c&0x7f) << i
		i += 7
		if i > 63 {
			return 0, 0, false
		}
	}
}

// paddedVarint writes u in exactly width bytes, continuation bits on all
// but the last, as a writer that pads (or a hostile one) would; junk is
// OR-ed into the last byte.
func paddedVarint(u uint64, width int, junk byte) []byte {
	out := make([]byte, width)
	for i := range width {
		out[i] = byte(u>>(7*i)) & 0x7f
		if i < width-1 {
			out[i] |= 0x80
		}
	}
	out[width-1] |= junk
	return out
}

// varintForms are encodings of the int32 v, each with whether Kafka's
// readVarint takes it (and then reads v): the shortest and every padding
// to 5 bytes (taken), the 5-byte one with junk in its 5th byte's bits
// past 32 (taken, the junk dropped), and paddings to 6 to 10 bytes
// (refused: "Varint is too long").
func varintForms(v int32) map[string]bool {
	u := uint64(uint32(v<<1 ^ v>>31))
	forms := map[string]bool{}
	short := len(binary.AppendUvarint(nil, u))
	for w := short; w <= 10; w++ {
		forms[string(paddedVarint(u, w, 0))] = w <= 5
	}
	forms[string(paddedVarint(u, 5, 0x70))] = true
	return forms
}

// varlongForms are varintForms for the int64 v of a varlong: paddings to
// 10 bytes are taken, the 10-byte one with junk in its bits past 64 too,
// 11 bytes are refused.
func varlongForms(v int64) map[string]bool {
	u := uint64(v<<1 ^ v>>63)
	forms := map[string]bool{}
	short := len(binary.AppendUvarint(nil, u))
	for w := short; w <= 11; w++ {
		forms[string(paddedVarint(u, w, 0))] = w <= 10
	}
	forms[string(paddedVarint(u, 10, 0x7e))] = true
	return forms
}

// TestVarintsAsKafka: every varint field of a record is read as
// Kafka's DefaultRecord.readFrom reads it (ByteUtils.readVarint for the
// length, offset delta, key and value lengths, header count and header
// key and value lengths, at most 5 bytes; readVarlong for the timestamp
// delta, at most 10): a field Kafka refuses makes the record corrupt
// (Kafka's broker answers INVALID_RECORD), and one Kafka takes is taken,
// with Kafka's value. binary.Varint reads up to 10 bytes for every field
// and refuses bits past 64 rather than dropping them past 32 (or 64).
func TestVarintsAsKafka(t *testing.T) {
	// The ports agree with what Kafka's writers write.
	for _, v := range []int32{0, 1, -1, 63, -64, 64, 8191, -8192, 1 << 20, -(1 << 27), 1<<31 - 1, -1 << 31} {
		enc := binary.AppendVarint(nil, int64(v))
		got, n, ok := kafkaVarint(enc)
		require.True(t, ok)
		require.Equal(t, v, got)
		require.Equal(t, len(enc), n)
	}
	for _, v := range []int64{0, -1, 1 << 40, -1 << 63, 1<<63 - 1} {
		enc := binary.AppendVarint(nil, v)
		got, n, ok := kafkaVarlong(enc)
		require.True(t, ok)
		require.Equal(t, v, got)
		require.Equal(t, len(enc), n)
	}

	// A record of one key byte, one value byte and one header ("h":
	// "x"), timestamp delta tsDelta, offset delta 0; field i is written
	// as enc, the others at their shortest.
	const (
		fLength = iota
		fTsDelta
		fOffDelta
		fKeyLen
		fValueLen
		fHeaderCount
		fHeaderKeyLen
		fHeaderValueLen
		nFields
	)
	const tsDelta, base = -3, 1000
	values := [nFields]int64{fTsDelta: tsDelta, fKeyLen: 1, fValueLen: 1, fHeaderCount: 1, fHeaderKeyLen: 1, fHeaderValueLen: 1}
	record := func(field int, enc []byte) []byte {
		put := func(dst []byte, f int) []byte {
			if f == field {
				return append(dst, enc...)
			}
			return binary.AppendVarint(dst, values[f])
		}
		body := []byte{0}
		body = put(body, fTsDelta)
		body = put(body, fOffDelta)
		body = append(put(body, fKeyLen), 'k')
		body = append(put(body, fValueLen), 'v')
		body = put(body, fHeaderCount)
		body = append(put(body, fHeaderKeyLen), 'h')
		body = append(put(body, fHeaderValueLen), 'x')
		values[fLength] = int64(len(body))
		return append(put(nil, fLength), body...)
	}
	batchOf := func(codec compression.Codec, records []byte) Batch {
		payload, err := codec.AppendEncode(make([]byte, HeaderSize), records)
		require.NoError(t, err)
		b := Batch(payload)
		binary.BigEndian.PutUint64(b[offBaseOffset:], 0)
		b.SetLeaderEpoch(NoLeaderEpoch)
		b[offMagic] = Magic
		binary.BigEndian.PutUint16(b[offAttributes:], uint16(codec))
		binary.BigEndian.PutUint64(b[offBaseTime:], base)
		binary.BigEndian.PutUint64(b[offMaxTime:], base)
		copy(b[offProducerID:offCount], bytes.Repeat([]byte{0xff}, offCount-offProducerID)) // no producer: -1, -1, -1
		putHeader(b, 1)
		return b
	}

	record(-1, nil) // sets values[fLength], which no other field's form changes
	checked := 0
	for field := range nFields {
		var forms map[string]bool
		if field == fTsDelta {
			forms = varlongForms(values[field])
		} else {
			forms = varintForms(int32(values[field]))
		}
		for enc, kafkaTakes := range forms {
			rec := record(field, []byte(enc))
			// What the port reads is what the form claims.
			if field == fTsDelta {
				v, n, ok := kafkaVarlong([]byte(enc))
				require.Equal(t, kafkaTakes, ok)
				if ok {
					require.Equal(t, values[field], v)
					require.Equal(t, len(enc), n)
				}
			} else {
				v, n, ok := kafkaVarint([]byte(enc))
				require.Equal(t, kafkaTakes, ok, "% x", enc)
				if ok && field != fLength {
					require.EqualValues(t, values[field], v)
					require.Equal(t, len(enc), n)
				}
			}
			for _, codec := range []compression.Codec{compression.None, compression.Zstd} {
				b := batchOf(codec, rec)
				name := fmt.Sprintf("field %d as % x (Kafka takes it: %v), %v", field, enc, kafkaTakes, codec)
				require.NoError(t, b.Validate(0), name)
				_, _, ferr := b.CheckFramingBuffer(0, 0, nil)
				verr := b.ValidateRecords(0, 0)
				if !kafkaTakes {
					require.ErrorIs(t, ferr, ErrCorrupt, "%s: the broker's check takes it", name)
					require.ErrorIs(t, verr, ErrCorrupt, "%s: the records decode", name)
					continue
				}
				require.NoError(t, ferr, "%s: the broker's check", name)
				require.NoError(t, verr, "%s: decoding", name)
				n := 0
				for r, err := range b.Records() {
					require.NoError(t, err, name)
					require.Equal(t, []byte("k"), r.Key, name)
					require.Equal(t, []byte("v"), r.Value, name)
					require.Equal(t, []Header{{Key: "h", Value: []byte("x")}}, r.Headers, name)
					require.EqualValues(t, base+tsDelta, r.Timestamp.UnixMilli(), name)
					require.EqualValues(t, 0, r.Offset, name)
					n++
				}
				require.Equal(t, 1, n, name)
				checked++
			}
		}
	}
	require.NotZero(t, checked)
}
