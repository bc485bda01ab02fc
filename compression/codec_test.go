package compression

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/runnel/runnel/internal/testkit"
)

func TestCodecString(t *testing.T) {
	for c, want := range map[Codec]string{
		None: "none", Gzip: "gzip", Snappy: "snappy", LZ4: "lz4", Zstd: "zstd",
		5: "codec(5)", 7: "codec(7)", -1: "codec(-1)",
	} {
		if got := c.String(); got != want {
			t.Errorf("Codec(%d).String() = %q, want %q", int8(c), got, want)
		}
	}
}

func TestCodecValid(t *testing.T) {
	for i := -128; i <= 127; i++ {
		c := Codec(i)
		if want := i >= 0 && i <= 4; c.Valid() != want {
			t.Errorf("Codec(%d).Valid() = %v", i, c.Valid())
		}
	}
}

func TestParseCodec(t *testing.T) {
	for _, c := range allCodecs {
		got, err := ParseCodec(c.String())
		if err != nil || got != c {
			t.Errorf("ParseCodec(%q) = %v, %v", c.String(), got, err)
		}
	}
	for _, s := range []string{"", "GZIP", "uncompressed", "producer", "codec(5)", "lz4 ", "brotli"} {
		_, err := ParseCodec(s)
		wantErr(t, err, ErrUnknownCodec, fmt.Sprintf("ParseCodec(%q)", s))
		if !strings.Contains(err.Error(), fmt.Sprintf("%q", s)) {
			t.Errorf("ParseCodec(%q) error %q does not name the input", s, err)
		}
	}
}

func TestUnknownCodec(t *testing.T) {
	for _, c := range []Codec{5, 6, 7, -1, 127} {
		dst := []byte("keep")
		out, err := c.AppendEncode(dst, []byte("data"))
		wantErr(t, err, ErrUnknownCodec, c.String()+" encode")
		if string(out) != "keep" {
			t.Errorf("%v encode returned %q, want dst unchanged", c, out)
		}

		out, err = c.AppendDecode(dst, []byte("data"), 0)
		wantErr(t, err, ErrUnknownCodec, c.String()+" decode")
		if string(out) != "keep" {
			t.Errorf("%v decode returned %q, want dst unchanged", c, out)
		}
		var e *Error
		if !errors.As(err, &e) || e.Codec != c || e.Op != "decode" {
			t.Errorf("%v decode error %#v is not an *Error naming the codec and op", c, err)
		}
		if want := "runnel/compression: " + c.String() + " decode: unknown codec"; err.Error() != want {
			t.Errorf("message %q, want %q", err, want)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	_, err := Gzip.AppendDecode(nil, []byte("not gzip at all"), 0)
	wantErr(t, err, ErrCorrupt, "gzip garbage")
	var e *Error
	if !errors.As(err, &e) || e.Codec != Gzip || e.Op != "decode" {
		t.Fatalf("error %#v is not an *Error for gzip decode", err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "runnel/compression: gzip decode: corrupt compressed data: ") ||
		strings.Count(msg, "runnel/compression") != 1 {
		t.Errorf("message %q", msg)
	}
	if (&Error{Codec: Zstd, Op: "encode"}).Error() != "runnel/compression: zstd encode: <nil>" {
		t.Error("Error with nil Err")
	}
}

// roundTripInputs are the inputs every codec must round-trip.
var roundTripInputs = []struct {
	name string
	data []byte
}{
	{"empty", []byte{}},
	{"nil", nil},
	{"one byte", []byte{0x42}},
	{"compressible 1MiB", bytes.Repeat([]byte("kafka record batch "), (1<<20)/19+1)[:1<<20]},
	{"zeros 1MiB", make([]byte, 1<<20)},
	{"random 64KiB", randomBytes(64<<10, 1)},
	{"record-like 64KiB", recordLike(64<<10, 2)},
	{"record-like 300KiB", recordLike(300<<10, 3)},
}

func TestRoundTrip(t *testing.T) {
	for _, c := range allCodecs {
		for _, in := range roundTripInputs {
			t.Run(c.String()+"/"+in.name, func(t *testing.T) {
				// Encode after a prefix, which must be kept.
				enc := mustEncode(t, c, []byte("prefix"), in.data)
				if string(enc[:6]) != "prefix" {
					t.Fatalf("encode clobbered the prefix: %q", enc[:6])
				}
				enc = enc[6:]
				if c != None && len(enc) == 0 {
					t.Fatal("a compressed stream is never empty")
				}

				if got := mustDecode(t, c, nil, enc, 0); !bytes.Equal(in.data, got) {
					t.Fatal("decode into nil differs")
				}
				got := mustDecode(t, c, []byte("head"), enc, 0)
				if string(got[:4]) != "head" || !bytes.Equal(in.data, got[4:]) {
					t.Fatal("decode after a prefix differs")
				}
				exact := make([]byte, 3, 3+len(in.data))
				got = mustDecode(t, c, exact, enc, len(in.data))
				if !bytes.Equal(in.data, got[3:]) {
					t.Fatal("decode into exact capacity differs")
				}
				if len(in.data) > 0 && &exact[:1][0] != &got[0] {
					t.Error("decoding into enough capacity reallocated")
				}
			})
		}
	}
}

// TestEncodeDeterministic checks that pooled coders carry no state from one
// call to the next.
func TestEncodeDeterministic(t *testing.T) {
	a, b := recordLike(100<<10, 4), randomBytes(10<<10, 5)
	for _, c := range allCodecs {
		first := mustEncode(t, c, nil, a)
		mustEncode(t, c, nil, b)
		if again := mustEncode(t, c, nil, a); !bytes.Equal(first, again) {
			t.Errorf("%v: encoding the same input twice differs", c)
		}
	}
}

func TestDecodeLimit(t *testing.T) {
	zeros := make([]byte, 1<<20)
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			enc := mustEncode(t, c, nil, zeros)
			for _, limit := range []int{1, 1000, len(zeros) - 1} {
				out, err := c.AppendDecode([]byte("x"), enc, limit)
				wantErr(t, err, ErrTooLarge, fmt.Sprintf("limit %d", limit))
				if errors.Is(err, ErrCorrupt) {
					t.Errorf("limit %d: %v also matches ErrCorrupt", limit, err)
				}
				if string(out) != "x" {
					t.Errorf("limit %d: dst not returned with its length on error: %q", limit, out)
				}
				if !strings.Contains(err.Error(), c.String()) {
					t.Errorf("error %q does not name the codec", err)
				}
			}

			// Exactly the size, with and without spare capacity in dst.
			if out := mustDecode(t, c, nil, enc, len(zeros)); !bytes.Equal(zeros, out) {
				t.Error("decode at exact limit differs")
			}
			if out := mustDecode(t, c, make([]byte, 0, 2*len(zeros)), enc, len(zeros)); !bytes.Equal(zeros, out) {
				t.Error("decode at exact limit into a large dst differs")
			}
			// The limit counts only what the call appends.
			if out := mustDecode(t, c, make([]byte, 100), enc, len(zeros)); len(out) != 100+len(zeros) {
				t.Errorf("decode after a prefix: %d bytes", len(out))
			}
		})
	}
}

func TestDefaultLimit(t *testing.T) {
	big := make([]byte, DefaultDecodeLimit+1)
	for _, c := range allCodecs {
		if testing.Short() && c != None && c != Zstd {
			continue
		}
		enc := mustEncode(t, c, nil, big)
		for _, limit := range []int{0, -1} {
			_, err := c.AppendDecode(nil, enc, limit)
			wantErr(t, err, ErrTooLarge, fmt.Sprintf("%v limit %d", c, limit))
		}
	}
	// Exactly DefaultDecodeLimit is allowed.
	for _, c := range []Codec{None, Zstd} {
		enc := mustEncode(t, c, nil, big[:DefaultDecodeLimit])
		if out := mustDecode(t, c, nil, enc, 0); len(out) != DefaultDecodeLimit {
			t.Errorf("%v: %d bytes", c, len(out))
		}
	}
}

func TestDecodeEmptyInput(t *testing.T) {
	for _, c := range packed {
		_, err := c.AppendDecode(nil, nil, 0)
		wantErr(t, err, ErrCorrupt, c.String()+" empty input")
	}
	if out := mustDecode(t, None, []byte("a"), nil, 0); string(out) != "a" {
		t.Errorf("none: %q", out)
	}
}

func TestDecodeGarbage(t *testing.T) {
	for _, c := range packed {
		for i, n := range []int{1, 2, 3, 7, 16, 100, 4096} {
			garbage := randomBytes(n, uint64(100+i))
			out, err := c.AppendDecode([]byte("x"), garbage, 1<<20)
			if !decodeFailure(err) {
				t.Errorf("%v: garbage of %d bytes: %v", c, n, err)
			}
			if string(out) != "x" {
				t.Errorf("%v: dst not returned with its length on error", c)
			}
		}
	}
}

// TestDecodeTruncated decodes every strict prefix of an encoding: none is a
// complete stream (this package writes a single frame, member or block), so
// each must fail as corrupt.
func TestDecodeTruncated(t *testing.T) {
	in := recordLike(3000, 6)
	for _, c := range packed {
		enc := mustEncode(t, c, nil, in)
		for n := range len(enc) {
			_, err := c.AppendDecode(nil, enc[:n], 0)
			wantErr(t, err, ErrCorrupt, fmt.Sprintf("%v truncated to %d of %d bytes", c, n, len(enc)))
		}
	}
}

// TestDecodeFlipped flips bits in each byte of an encoding in turn. A flip
// may still decode (a gzip header's timestamp, a snappy literal), but must
// not panic, and a failure must be one of the package's errors.
func TestDecodeFlipped(t *testing.T) {
	in := recordLike(2000, 7)
	for _, c := range packed {
		enc := mustEncode(t, c, nil, in)
		failed := 0
		for i := range enc {
			for _, mask := range []byte{0x01, 0x80, 0xff} {
				bad := bytes.Clone(enc)
				bad[i] ^= mask
				out, err := c.AppendDecode(nil, bad, 1<<20)
				if err != nil {
					failed++
					if !decodeFailure(err) {
						t.Fatalf("%v: byte %d ^ %#x: %v", c, i, mask, err)
					}
				} else if len(out) > 1<<20 {
					t.Fatalf("%v: %d bytes over the limit", c, len(out))
				}
			}
		}
		if failed == 0 {
			t.Errorf("%v: no flip was detected", c)
		}
	}
}

func TestConcurrent(t *testing.T) {
	goroutines, iters := 8, 24
	if testing.Short() {
		iters = 10
	}
	inputs := [][]byte{
		recordLike(64<<10, 10),
		recordLike(5000, 11),
		randomBytes(20<<10, 12),
		make([]byte, 100<<10),
		nil,
	}
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			var enc, dec []byte
			for i := range iters {
				c := allCodecs[(g+i)%len(allCodecs)]
				in := inputs[(g*7+i)%len(inputs)]
				var err error
				if enc, err = c.AppendEncode(enc[:0], in); err != nil {
					errs <- err
					return
				}
				if dec, err = c.AppendDecode(dec[:0], enc, 0); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(in, dec) {
					errs <- fmt.Errorf("%v: round trip of %d bytes differs", c, len(in))
					return
				}
				// Failing decodes share the pools too.
				if _, err = c.AppendDecode(dec[:0], enc, 10); len(in) > 10 && !errors.Is(err, ErrTooLarge) {
					errs <- fmt.Errorf("%v: want ErrTooLarge, got %v", c, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestAllocs checks that steady-state calls with a dst of enough capacity
// allocate nothing: encoders and decoders come from pools or shared coders,
// and the output goes straight into dst.
func TestAllocs(t *testing.T) {
	if testkit.RaceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	// A collection empties the pools, and a pooled encoder made again
	// allocates dozens of objects: within 20 runs, that would read as
	// allocations per call. With the collector off, the pools keep what
	// the first run put in them.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	in := recordLike(64<<10, 13)
	for _, c := range allCodecs {
		enc := mustEncode(t, c, nil, in)
		encBuf := make([]byte, 0, 2*len(in)+1024)
		decBuf := make([]byte, 0, len(in))
		// zstd's shared Decoder hands its internal coders out in turn,
		// and each allocates its tables on first use: use them all
		// first, or a test run alone (go test -run TestAllocs) sees one
		// coder's set-up spread over the runs below. (Its encoders are
		// made as encodes overlap, and one at a time reuse the first.)
		for range zstdConcurrency + 1 {
			mustDecode(t, c, nil, mustEncode(t, c, encBuf, in), 0)
		}
		encAllocs := testing.AllocsPerRun(20, func() { mustEncode(t, c, encBuf, in) })
		decAllocs := testing.AllocsPerRun(20, func() { mustDecode(t, c, decBuf, enc, 0) })
		// Into nil a decode must allocate its output; a size hint (gzip's
		// trailer, the zstd frame header, snappy's length) or a fair guess
		// (lz4) should get it right at once.
		nilAllocs := testing.AllocsPerRun(10, func() { mustDecode(t, c, nil, enc, 0) })
		if encAllocs > 0 || decAllocs > 0 || nilAllocs > 2 {
			t.Errorf("%v: allocations per call: encode %v, decode %v, decode into nil %v; want 0, 0, <= 2",
				c, encAllocs, decAllocs, nilAllocs)
		}
	}
}

// TestDecodeBombMemory decodes 32 MiB of zeros, which every codec squeezes
// into little, with a 1 MiB limit: what the decoder allocates must be a
// small multiple of the limit, not of the real size.
func TestDecodeBombMemory(t *testing.T) {
	zeros := make([]byte, 32<<20)
	const limit = 1 << 20
	for _, c := range packed {
		encs := [][]byte{mustEncode(t, c, nil, zeros)}
		if c == Zstd {
			encs = append(encs, zstdStream(t, zeros)) // no content size
		}
		for _, enc := range encs {
			for _, lim := range []int{1000, limit} {
				_, _ = c.AppendDecode(nil, enc, lim) // warm the pools
				var err error
				alloc := allocatedBy(func() { _, err = c.AppendDecode(nil, enc, lim) })
				wantErr(t, err, ErrTooLarge, c.String())
				if alloc > 6*uint64(lim)+1<<20 {
					t.Errorf("%v: %d-byte bomb with limit %d allocated %d bytes", c, len(enc), lim, alloc)
				}
			}
		}
	}
}

// TestContentChecksumsChecked: frames that carry a content checksum,
// as runnel once wrote them (lz4's xxh32, zstd's xxh64), are
// still checked, by AppendDecode and by a Reader, both where it decodes
// whole and where it streams: with the checksum's last byte flipped they
// are refused as corrupt, and intact they decode. (The mutants: a
// streamed lz4 frame's checksum mismatch taken as its end; zstd's
// decoders made to ignore the checksum.)
func TestContentChecksumsChecked(t *testing.T) {
	src := recordLike(2<<20, 48)
	for _, tc := range []struct {
		name string
		c    Codec
		data []byte
	}{
		// 64 KiB blocks: up to 1 MiB of blocks a Reader decodes whole,
		// past it it streams.
		{"lz4 256 KiB", LZ4, lz4Frame(t, src[:256<<10], lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(true))},
		{"lz4 2 MiB", LZ4, lz4Frame(t, src, lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(true))},
		// A single segment is decoded whole; an unsized frame of 2 MiB
		// with a window of 256 KiB is streamed.
		{"zstd single segment", Zstd, zstdAll(t, src, zstd.WithEncoderCRC(true))},
		{"zstd streamed", Zstd, zstdStream(t, src, zstd.WithWindowSize(256<<10), zstd.WithEncoderCRC(true))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			switch tc.c {
			case LZ4:
				if tc.data[4]&lz4FlagContentSum == 0 {
					t.Fatalf("FLG %#x: no content checksum", tc.data[4])
				}
			case Zstd:
				if tc.data[4]&0x04 == 0 { // Frame_Header_Descriptor's Content_Checksum_flag
					t.Fatalf("FHD %#x: no content checksum", tc.data[4])
				}
			}
			n := len(src)
			if tc.name == "lz4 256 KiB" {
				n = 256 << 10
			}
			if got := mustDecode(t, tc.c, nil, tc.data, 0); !bytes.Equal(got, src[:n]) {
				t.Fatal("intact frame: wrong output")
			}
			bad := bytes.Clone(tc.data)
			bad[len(bad)-1] ^= 0x01 // the last byte of the content checksum
			_, err := tc.c.AppendDecode(nil, bad, 0)
			wantErr(t, err, ErrCorrupt, "AppendDecode, checksum off by one bit")
			for _, streamAll := range []bool{false, true} {
				got, err := readAll(tc.c.newReader(tc.data, 0, streamAll), 64<<10)
				if err != nil || !bytes.Equal(got, src[:n]) {
					t.Fatalf("Reader (stream all %v) of the intact frame: %d bytes, %v", streamAll, len(got), err)
				}
				_, err = readAll(tc.c.newReader(bad, 0, streamAll), 64<<10)
				var e *Error
				if !errors.As(err, &e) || !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Reader (stream all %v), checksum off by one bit: %v, want an *Error matching ErrCorrupt", streamAll, err)
				}
			}
		})
	}
}

// TestDecodeCapWithinLimit: the output buffer never grows past the limit,
// even when the limit is exactly the decoded size and smaller than the
// decoders' smallest growth step. (None is left out: it is append, whose
// capacity rounds up to a size class.)
func TestDecodeCapWithinLimit(t *testing.T) {
	in := recordLike(1000, 60)
	for _, c := range packed {
		enc := mustEncode(t, c, nil, in)
		out := mustDecode(t, c, nil, enc, len(in))
		if !bytes.Equal(out, in) {
			t.Fatalf("%v: decoded wrong", c)
		}
		if cap(out) > len(in) {
			t.Errorf("%v: cap %d past the limit %d", c, cap(out), len(in))
		}
	}
}

// TestDecodeMaxLimitAfterDst: a limit of math.MaxInt with a non-empty dst
// is cut to what len(dst)+limit can hold, rather than overflowing into a
// limit that refuses everything.
func TestDecodeMaxLimitAfterDst(t *testing.T) {
	in := recordLike(10<<10, 61)
	for _, c := range allCodecs {
		enc := mustEncode(t, c, nil, in)
		out := mustDecode(t, c, []byte("prefix"), enc, math.MaxInt)
		if string(out[:6]) != "prefix" || !bytes.Equal(out[6:], in) {
			t.Fatalf("%v: decoded wrong", c)
		}
	}
}

// TestDecodeCauseKept: a stream decoder's error reaches the caller
// wrapped, so that errors.Is finds the library's error as well as
// ErrCorrupt, even when the decoder reports it after output.
func TestDecodeCauseKept(t *testing.T) {
	enc := mustEncode(t, Gzip, nil, recordLike(10<<10, 66))
	enc[len(enc)-8] ^= 0xff // the trailer's CRC-32
	_, err := Gzip.AppendDecode(nil, enc, 0)
	wantErr(t, err, ErrCorrupt, "gzip stream with a bad CRC")
	wantErr(t, err, gzip.ErrChecksum, "gzip stream with a bad CRC")
}

// TestDecodeNotCompressed: input that is not in the codec's format at all
// is corrupt, not too large, and zstd finds so from the frame header,
// before it allocates room for an output.
func TestDecodeNotCompressed(t *testing.T) {
	src := []byte("this is not compressed data, and it is not short either")
	for _, c := range packed {
		_, _ = c.AppendDecode(nil, mustEncode(t, c, nil, src), 0) // warm the decoders
		var err error
		alloc := allocatedBy(func() { _, err = c.AppendDecode(nil, src, 0) })
		wantErr(t, err, ErrCorrupt, c.String())
		if errors.Is(err, ErrTooLarge) {
			t.Errorf("%v: %v, want no ErrTooLarge", c, err)
		}
		if c == Zstd && alloc > 16<<10 {
			t.Errorf("zstd: %d bytes allocated to refuse %d bytes without a frame header", alloc, len(src))
		}
	}
}

// TestParseCodecCaseSensitive: no spelling but the lower-case one is a
// codec's name, not even a capitalized one.
func TestParseCodecCaseSensitive(t *testing.T) {
	for _, s := range []string{"None", "Gzip", "Snappy", "Lz4", "LZ4", "Zstd", "gziP"} {
		c, err := ParseCodec(s)
		wantErr(t, err, ErrUnknownCodec, fmt.Sprintf("ParseCodec(%q) = %v", s, c))
	}
}

// TestEncodedFormats: what the encoders write, beyond being decodable:
// every codec compresses (gzip at a real level, not stored blocks), and
// lz4 writes frames of independent 64 KiB blocks without a content checksum,
// as Kafka's Java client does (the batch's CRC-32C covers the payload).
func TestEncodedFormats(t *testing.T) {
	in := recordLike(64<<10, 69)
	for _, c := range packed {
		if enc := mustEncode(t, c, nil, in); len(enc) > len(in)/2 {
			t.Errorf("%v: %d bytes of records compressed to %d", c, len(in), len(enc))
		}
	}

	enc := mustEncode(t, LZ4, nil, in)
	if flg, bd := enc[4], enc[5]; flg&lz4FlagIndep == 0 || flg&lz4FlagContentSum != 0 || flg&lz4FlagBlockSum != 0 || bd != 0x40 {
		t.Errorf("lz4 FLG %#x BD %#x: want independent blocks, no content or block checksum, 64 KiB blocks", flg, bd)
	}
	// The Java writer's exact header: FLG version 1 and independent
	// blocks only, BD 64 KiB, and the header checksum over the two.
	if want := []byte{0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, lz4HeaderChecksum([]byte{0x60, 0x40})}; !bytes.Equal(enc[:7], want) {
		t.Errorf("lz4 header % x, want % x", enc[:7], want)
	}
	// Blocks, then the end mark, and nothing after it.
	if n, ok := lz4FrameLen(enc); !ok || n != len(enc) || !bytes.Equal(enc[n-4:], []byte{0, 0, 0, 0}) {
		t.Errorf("lz4 frame of %d bytes walks to %d (%v), ends % x", len(enc), n, ok, enc[len(enc)-4:])
	}
}
