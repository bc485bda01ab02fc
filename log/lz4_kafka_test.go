package log

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/pierrec/lz4/v4"
	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
)

// lz4BatchOf is plain, an uncompressed batch, with its records section
// replaced by payload(records) under the lz4 codec, its CRC made good.
func lz4BatchOf(plain []byte, payload func(records []byte) []byte) []byte {
	out := append(bytes.Clone(plain[:record.HeaderSize]), payload(plain[record.HeaderSize:])...)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	attrs := binary.BigEndian.Uint16(out[21:])&^record.AttrCodecMask | uint16(compression.LZ4)
	binary.BigEndian.PutUint16(out[21:], attrs)
	record.Batch(out).UpdateCRC()
	return out
}

// lz4Dependent is frame, one of compression's lz4 frames, declaring
// dependent blocks: FLG bit 5 cleared and the header checksum (the byte
// after FLG and BD) remade, found as the one byte the decoder takes.
func lz4Dependent(t *testing.T, frame []byte) []byte {
	t.Helper()
	out := bytes.Clone(frame)
	out[4] &^= 0x20
	for hc := range 256 {
		out[6] = byte(hc)
		if _, err := compression.LZ4.AppendDecode(nil, out, 0); err == nil {
			return out
		}
	}
	t.Fatal("no header checksum fits")
	return nil
}

// TestAppendRefusesLZ4KafkaRefuses: an lz4 batch that runnel's decoder
// reads but Kafka's reader (Lz4BlockInputStream) refuses — a legacy
// frame, a skippable frame first, a frame of dependent blocks, records
// that go on into a second frame — is refused on produce as other
// undecodable compressed records are (INVALID_RECORD, record.ErrCorrupt,
// compression.ErrCorrupt), on a deleting and a compacted topic, and
// nothing is written; yet the same batch's records still decode, as they
// would from a segment an older runnel wrote. A batch of one frame of
// independent blocks, as Kafka clients write, is taken.
func TestAppendRefusesLZ4KafkaRefuses(t *testing.T) {
	e := newEnv(t)
	plain := valueBatch(t, e.clock.Now().UnixMilli(), "a", "b", "c")
	encode := func(b []byte) []byte {
		out, err := compression.LZ4.AppendEncode(nil, b)
		require.NoError(t, err)
		return out
	}
	legacy := func(b []byte) []byte {
		var buf bytes.Buffer
		w := lz4.NewWriter(&buf)
		require.NoError(t, w.Apply(lz4.LegacyOption(true)))
		_, err := w.Write(b)
		require.NoError(t, err)
		require.NoError(t, w.Close())
		return buf.Bytes()
	}
	bad := map[string]func([]byte) []byte{
		"legacy frame":     legacy,
		"dependent blocks": func(b []byte) []byte { return lz4Dependent(t, encode(b)) },
		"records in two frames": func(b []byte) []byte {
			return append(encode(b[:len(b)/2]), encode(b[len(b)/2:])...)
		},
		"skippable frame first": func(b []byte) []byte {
			return append([]byte{0x50, 0x2a, 0x4d, 0x18, 1, 0, 0, 0, 'x'}, encode(b)...)
		},
	}
	for _, policy := range []CleanupPolicy{Delete, Compact} {
		for name, payload := range bad {
			t.Run(fmt.Sprintf("%v %s", policy, name), func(t *testing.T) {
				l := newEnv(t).open(Config{CleanupPolicy: policy})
				defer l.Close()
				data := lz4BatchOf(plain, payload)
				err := requireRefused(t, l, data, ErrInvalidRecord)
				require.ErrorIs(t, err, record.ErrCorrupt)
				require.ErrorIs(t, err, compression.ErrCorrupt)
				var values []string
				for r, err := range record.Batch(data).Records() {
					require.NoError(t, err)
					values = append(values, string(r.Value))
				}
				require.Equal(t, []string{"a", "b", "c"}, values, "the records still decode")
			})
		}
		l := newEnv(t).open(Config{CleanupPolicy: policy})
		appendOK(t, l, lz4BatchOf(plain, encode))
		require.Len(t, readAll(t, l, 0), 3)
		require.NoError(t, l.Close())
	}
}

// TestReadStoredLZ4DependentBlocks: an lz4 batch of dependent blocks in a
// segment (as an older runnel, which took them on produce, stored it) is
// still read back whole.
func TestReadStoredLZ4DependentBlocks(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	plain := valueBatch(t, e.clock.Now().UnixMilli(), "a", "b", "c")
	var frame []byte
	appendOK(t, l, lz4BatchOf(plain, func(b []byte) []byte {
		out, err := compression.LZ4.AppendEncode(nil, b)
		require.NoError(t, err)
		frame = out
		return out
	}))
	require.NoError(t, l.Close())
	// The dependent frame has the same length: put it in place of the
	// stored one.
	path := filepath.Join(e.dir, segment.FileName(0, segment.LogSuffix))
	seg := readAllFile(t, e.fs, path)
	copy(seg[record.HeaderSize:], lz4Dependent(t, frame))
	record.Batch(seg).UpdateCRC()
	writeAllFile(t, e.fs, path, seg)

	l = e.open(Config{})
	defer l.Close()
	recs := readAll(t, l, 0)
	require.Len(t, recs, 3)
	require.Equal(t, "c", string(recs[2].Value))
}
