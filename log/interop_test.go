package log

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"path/filepath"
	"testing"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/segment"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestKmsgDecodesOurLogFiles reads the .log files the log wrote, with every
// codec, using franz-go's independent decoder: CRC, offsets and records must
// be what Kafka would write.
func TestKmsgDecodesOurLogFiles(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{SegmentBytes: 2000})
	codecs := []compression.Codec{compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd}
	type want struct{ key, value string }
	var wants []want
	for i := range 40 {
		codec := codecs[i%len(codecs)]
		var recs []kv
		for j := range 1 + i%3 {
			w := want{fmt.Sprintf("k%d-%d", i, j), fmt.Sprintf("value %d/%d with %s", i, j, codec)}
			wants = append(wants, w)
			recs = append(recs, kv{key: []byte(w.key), value: []byte(w.value), ts: 1_700_000_000_000 + int64(i)})
		}
		appendOK(t, l, batchOf(t, codec, recs...))
	}
	require.NoError(t, l.Close())

	names, err := e.fs.List(e.dir)
	require.NoError(t, err)
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	next, n, files := int64(0), 0, 0
	for _, name := range names {
		if !segment.HasSuffix(name, segment.LogSuffix) {
			continue
		}
		files++
		f, err := e.fs.Open(filepath.Join(e.dir, name))
		require.NoError(t, err)
		size, err := f.Size()
		require.NoError(t, err)
		data := make([]byte, size)
		_, err = f.ReadAt(data, 0)
		if err != io.EOF {
			require.NoError(t, err)
		}
		f.Close()
		for len(data) > 0 {
			length := int(binary.BigEndian.Uint32(data[8:12]))
			raw := data[:12+length]
			data = data[12+length:]
			var kb kmsg.RecordBatch
			require.NoError(t, kb.ReadFrom(raw))
			require.Equal(t, next, kb.FirstOffset, "offsets are contiguous")
			require.EqualValues(t, 2, kb.Magic)
			require.Equal(t, crc32.Checksum(raw[21:], castagnoli), uint32(kb.CRC), "CRC-32C over attributes..end")
			codec := compression.Codec(kb.Attributes & 7)
			recs, err := codec.AppendDecode(nil, kb.Records, 0)
			require.NoError(t, err)
			for range kb.NumRecords {
				var kr kmsg.Record
				length, m := binary.Varint(recs)
				require.Positive(t, m)
				require.NoError(t, kr.ReadFrom(recs[:m+int(length)]))
				recs = recs[m+int(length):]
				require.Equal(t, wants[n].key, string(kr.Key))
				require.Equal(t, wants[n].value, string(kr.Value))
				require.Equal(t, next+int64(kr.OffsetDelta), int64(n))
				n++
			}
			require.Empty(t, recs)
			next += int64(kb.LastOffsetDelta) + 1
		}
	}
	require.Greater(t, files, 1, "the log rolled")
	require.Equal(t, len(wants), n)
}
