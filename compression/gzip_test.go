package compression

import (
	"bytes"
	stdgzip "compress/gzip"
	"encoding/binary"
	"testing"
	"time"
)

// TestGzipStdlibStream decodes a stream written by the standard library,
// with the optional header fields a Java GZIPOutputStream or a command-line
// gzip may set.
func TestGzipStdlibStream(t *testing.T) {
	in := recordLike(80<<10, 40)
	var buf bytes.Buffer
	w, _ := stdgzip.NewWriterLevel(&buf, stdgzip.BestCompression)
	w.Name, w.Comment, w.ModTime, w.Extra = "batch.bin", "records", time.Unix(1700000000, 0), []byte("xx")
	w.Write(in)
	w.Close()
	if got := mustDecode(t, Gzip, nil, buf.Bytes(), 0); !bytes.Equal(got, in) {
		t.Fatal("wrong output")
	}
	// And the standard library reads ours.
	r, err := stdgzip.NewReader(bytes.NewReader(mustEncode(t, Gzip, nil, in)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := out.ReadFrom(r); err != nil || !bytes.Equal(out.Bytes(), in) {
		t.Fatalf("stdlib decode: %v", err)
	}
}

// TestGzipMembers decodes concatenated members as one stream. The trailer's
// size is only the last member's, so the size hint is too small and the
// output must grow past it.
func TestGzipMembers(t *testing.T) {
	a, b := recordLike(200<<10, 41), []byte("tail")
	enc := mustEncode(t, Gzip, nil, a)
	enc = mustEncode(t, Gzip, enc, b)
	want := append(bytes.Clone(a), b...)
	if got := mustDecode(t, Gzip, nil, enc, 0); !bytes.Equal(got, want) {
		t.Fatal("wrong output")
	}
	_, err := Gzip.AppendDecode(nil, enc, len(want)-1)
	wantErr(t, err, ErrTooLarge, "members, limit one less")

	// Garbage after a member is not another member.
	_, err = Gzip.AppendDecode(nil, append(mustEncode(t, Gzip, nil, a), "junk"...), 0)
	wantErr(t, err, ErrCorrupt, "trailing garbage")
}

func TestGzipTrailer(t *testing.T) {
	enc := mustEncode(t, Gzip, nil, []byte("hello, gzip"))

	badSize := bytes.Clone(enc)
	binary.LittleEndian.PutUint32(badSize[len(badSize)-4:], 0xffffffff)
	var err error
	alloc := allocatedBy(func() { _, err = Gzip.AppendDecode(nil, badSize, 0) })
	wantErr(t, err, ErrCorrupt, "wrong ISIZE")
	if alloc > 1<<20 { // a pooled reader, if the pool was emptied, is ~80 KiB
		t.Errorf("a trailer claiming 4 GiB made the decoder allocate %d bytes", alloc)
	}

	badCRC := bytes.Clone(enc)
	badCRC[len(badCRC)-8] ^= 1
	_, err = Gzip.AppendDecode(nil, badCRC, 0)
	wantErr(t, err, ErrCorrupt, "wrong CRC")
}
