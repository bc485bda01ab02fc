package compression

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/runnel/runnel/internal/testkit"
)

// readAll reads r to its end in reads of size n, and closes it.
func readAll(r *Reader, n int) ([]byte, error) {
	defer r.Close()
	var out []byte
	p := make([]byte, n)
	for stalls := 0; ; {
		k, err := r.Read(p)
		out = append(out, p[:k]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if k == 0 {
			if stalls++; stalls > 1000 {
				return out, errors.New("Reader made no progress")
			}
		}
	}
}

// verdict names an outcome of AppendDecode or of a Reader.
func verdict(err error) string {
	var e *Error
	switch {
	case err == nil:
		return "ok"
	case !errors.As(err, &e):
		return fmt.Sprintf("not an *Error: %v", err)
	case errors.Is(err, ErrTooLarge):
		return fmt.Sprintf("%v too large", e.Codec)
	case errors.Is(err, ErrCorrupt):
		return fmt.Sprintf("%v corrupt", e.Codec)
	case errors.Is(err, ErrUnknownCodec):
		return fmt.Sprintf("%v unknown", e.Codec)
	}
	return fmt.Sprintf("other: %v", err)
}

// checkReader compares a Reader of data with AppendDecode at limit: the
// same verdict, and on success the same bytes, whatever the read size,
// also when it streams every zstd frame it can, however small.
func checkReader(t *testing.T, c Codec, data []byte, limit, readSize int) {
	t.Helper()
	want, werr := c.AppendDecode(nil, data, limit)
	for _, streamAll := range []bool{false, true} {
		if streamAll && c != LZ4 && c != Zstd {
			break // only lz4 and zstd Readers look at streamAll
		}
		got, gerr := readAll(c.newReader(data, limit, streamAll), readSize)
		if verdict(werr) != verdict(gerr) {
			t.Fatalf("%v, limit %d, reads of %d, streamAll %v: AppendDecode: %v; Reader: %v (after %d bytes)", c, limit, readSize, streamAll, werr, gerr, len(got))
		}
		if werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("%v, limit %d, reads of %d, streamAll %v: Reader gave %d bytes, AppendDecode %d, or different ones", c, limit, readSize, streamAll, len(got), len(want))
		}
	}
}

// FuzzReaderMatchesDecode: a Reader gives exactly what AppendDecode gives
// (the same verdict, the same bytes), for any input, at the fuzz limit,
// at the decoded size, one byte short of it and one over, in reads of
// any size.
func FuzzReaderMatchesDecode(f *testing.F) {
	for _, s := range decodeSeeds(f) {
		f.Add(byte(s.codec), s.data, uint16(0))
		f.Add(byte(s.codec), s.data, uint16(1))
		if len(s.data) > 4 {
			f.Add(byte(s.codec), s.data[:len(s.data)-3], uint16(7)) // truncated
			bad := bytes.Clone(s.data)
			bad[len(bad)/2] ^= 0x55
			f.Add(byte(s.codec), bad, uint16(64)) // garbage inside
		}
	}
	f.Add(byte(Zstd), zstdStreamSeed(f, 200<<10), uint16(0))
	f.Fuzz(func(t *testing.T, codec byte, data []byte, read uint16) {
		c := Codec(codec % 6) // 5: unknown
		readSize := int(read%4096) + 1
		checkReader(t, c, data, fuzzLimit, readSize)
		out, err := c.AppendDecode(nil, data, fuzzLimit)
		if err != nil {
			return
		}
		for _, l := range []int{len(out) - 1, len(out), len(out) + 1} {
			if l > 0 {
				checkReader(t, c, data, l, readSize)
			}
		}
	})
}

// zstdStreamSeed is a zstd stream of n bytes that does not state its size
// and is not a single segment (as Java's ZstdOutputStream writes): what a
// Reader streams.
func zstdStreamSeed(t testing.TB, n int) []byte {
	return zstdStream(t, recordLike(n, 46))
}

// Every codec's Reader, over large inputs, in each form: the same bytes
// as AppendDecode, and the same verdict at the decoded size and one byte
// short of it, and for the input cut short or with a byte flipped. The
// input is 3 MiB, 1.5 MiB under the race detector (whose cost grows with
// the bytes allocated and copied; the codecs start no goroutines): either
// is over wholeBelow, so that lz4 and a zstd stream that does not state
// its size are streamed, and the first of the two zstd frames (2 MiB, or
// 1.3 MiB) holds more than its 1 MiB window and two blocks (1.25 MiB),
// so that it is streamed too; the second is a single segment, decoded
// whole.
func TestReaderMatchesDecode(t *testing.T) {
	n, firstFrame := 3<<20, 2<<20
	if testkit.RaceEnabled {
		n, firstFrame = 3<<19, 13<<20/10
	}
	src := recordLike(n, 460)
	inputs := map[string]struct {
		c    Codec
		data []byte
	}{
		"xerial":      {Snappy, xerialStream(src[:n/3], src[n/3:2*n/3], src[2*n/3:])},
		"zstd stream": {Zstd, zstdStream(t, src)},
		"zstd frames": {Zstd, mustEncode(t, Zstd, mustEncode(t, Zstd, nil, src[:firstFrame]), src[firstFrame:])},
	}
	for _, c := range allCodecs {
		inputs[c.String()] = struct {
			c    Codec
			data []byte
		}{c, mustEncode(t, c, nil, src)}
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			sizes := []int{1 << 10, 64 << 10, 1 << 20}
			if testkit.RaceEnabled {
				sizes = sizes[1:] // 1.5 MiB in reads of 1 KiB: seconds under the race detector
			}
			for _, rs := range sizes {
				checkReader(t, in.c, in.data, 0, rs)
			}
			checkReader(t, in.c, in.data, len(src), 64<<10)
			checkReader(t, in.c, in.data, len(src)-1, 64<<10)
			checkReader(t, in.c, in.data[:len(in.data)-5], 0, 64<<10)
			bad := bytes.Clone(in.data)
			bad[len(bad)*3/4] ^= 0x10
			checkReader(t, in.c, bad, 0, 64<<10)
		})
	}
}

// A Reader of a large stream holds its codec's window or block, not the
// output: reading 16 MiB of zeros allocates less than 2 MiB (the first
// use of a pool included) for gzip, lz4 and zstd streams, and xerial.
func TestReaderAllocatesWindow(t *testing.T) {
	zeros := make([]byte, 16<<20)
	inputs := map[string]struct {
		c    Codec
		data []byte
	}{
		"gzip":        {Gzip, mustEncode(t, Gzip, nil, zeros)},
		"lz4":         {LZ4, mustEncode(t, LZ4, nil, zeros)},
		"zstd":        {Zstd, mustEncode(t, Zstd, nil, zeros)},
		"zstd stream": {Zstd, zstdStream(t, zeros, zstd.WithWindowSize(2<<20))}, // zstd's own window at level 3
		"xerial":      {Snappy, xerialStream(zeros[:4<<20], zeros[4<<20:8<<20], zeros[8<<20:12<<20], zeros[12<<20:])},
	}
	// The shared zstd decoder is built once a process, not per call.
	mustDecode(t, Zstd, nil, mustEncode(t, Zstd, nil, []byte("warm")), 0)
	for name, in := range inputs {
		buf := make([]byte, 64<<10)
		var n int
		var err error
		alloc := allocatedBy(func() {
			r := in.c.NewReader(in.data, 0)
			for err == nil {
				var k int
				k, err = r.Read(buf)
				n += k
			}
			r.Close()
		})
		if err != io.EOF || n != len(zeros) {
			t.Fatalf("%s: read %d bytes, %v", name, n, err)
		}
		t.Logf("%s: %d bytes in, 16 MiB out, %.2f MB allocated", name, len(in.data), float64(alloc)/1e6)
		limit := uint64(2 << 20)
		switch name {
		case "xerial":
			limit = 4<<20 + 1<<20 // one chunk of 4 MiB
		case "zstd stream":
			// 1 MiB tried whole (its buffer, and what the decoder
			// allocates when the output outgrows it), then a window of
			// 2 MiB and two blocks.
			limit = 6 << 20
		}
		if alloc > limit {
			t.Errorf("%s: reading allocated %d bytes, more than %d", name, alloc, limit)
		}
	}
}

// stuckReader returns neither data nor an error, up to a bound past which
// it fails, so that a reader loop without a stall guard ends quickly.
type stuckReader struct{ reads int }

var errStillReading = errors.New("still reading after 10000 empty reads")

func (r *stuckReader) Read([]byte) (int, error) {
	if r.reads++; r.reads > 10000 {
		return 0, errStillReading
	}
	return 0, nil
}

// TestReadAppendStall: readAppend gives up on a reader that makes no
// progress, after a bounded number of empty reads.
func TestReadAppendStall(t *testing.T) {
	var probe [1]byte
	for _, dst := range [][]byte{nil, make([]byte, 0, 16)} {
		r := new(stuckReader)
		_, err := readAppend(dst, r, 100, 0, &probe)
		if !errors.Is(err, errNoProgress) {
			t.Fatalf("cap %d: got %v after %d reads, want errNoProgress", cap(dst), err, r.reads)
		}
	}
}

var _ io.Reader = (*stuckReader)(nil)
