package compression

// Mut48: tests that close the gaps the ninth mutation pass found in
// codec47's changes (lz4 and zstd frames written without a content
// checksum, snappy encoded with s2); each names the mutants it kills.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"
	"testing"
	"unsafe"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/runnel/runnel/internal/testkit"
)

// TestMut48ContentChecksumsChecked: frames that carry a content checksum,
// as runnel wrote them until codec47 (lz4's xxh32, zstd's xxh64), are
// still checked, by AppendDecode and by a Reader, both where it decodes
// whole and where it streams: with the checksum's last byte flipped they
// are refused as corrupt, and intact they decode. (mut48: L10, a
// streamed lz4 frame's checksum mismatch taken as its end; Z04 and Z05,
// zstd's decoders made to ignore the checksum.)
func TestMut48ContentChecksumsChecked(t *testing.T) {
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

// TestMut48SnappyRefusesS2: a block in S2's extensions of the snappy
// format (a copy of offset 0 repeats the last offset), which s2.Decode
// reads and golang/snappy refuses, is refused as corrupt, by AppendDecode,
// by a Reader and in a xerial chunk, as every snappy reader refuses it:
// decoding stays with golang/snappy. (mut48: S08, decoding with
// s2.Decode.)
func TestMut48SnappyRefusesS2(t *testing.T) {
	src := recordLike(16<<10, 48)
	block := s2.Encode(nil, src)
	// Within the ratio a block may claim, so that only the decoder can
	// refuse it.
	if len(src) > len(block)*snappyMaxRatio {
		t.Fatalf("S2 block of %d bytes for %d: past snappyMaxRatio", len(block), len(src))
	}
	if got, err := s2.Decode(nil, block); err != nil || !bytes.Equal(got, src) {
		t.Fatalf("s2.Decode: %d bytes, %v", len(got), err)
	}
	if _, err := snappy.Decode(nil, block); err == nil {
		t.Fatal("golang/snappy reads this S2 block: it uses no extension")
	}
	_, err := Snappy.AppendDecode(nil, block, 0)
	wantErr(t, err, ErrCorrupt, "AppendDecode of an S2 block")
	_, err = readAll(Snappy.NewReader(block, 0), 64<<10)
	wantErr(t, err, ErrCorrupt, "Reader of an S2 block")
	x := binary.BigEndian.AppendUint32(xerialStream(), uint32(len(block))) // the header, then one chunk
	_, err = Snappy.AppendDecode(nil, append(x, block...), 0)
	wantErr(t, err, ErrCorrupt, "AppendDecode of a xerial chunk in S2")
	// Encoded as runnel encodes it, the same input is standard snappy.
	if got, err := snappy.Decode(nil, mustEncode(t, Snappy, nil, src)); err != nil || !bytes.Equal(got, src) {
		t.Fatalf("golang/snappy of runnel's encoding: %d bytes, %v", len(got), err)
	}
}

// TestMut48SnappyEncodeRefusesPastGolangSnappysBound: encoding refuses
// the inputs golang/snappy's encoder refused (a MaxEncodedLen past 4 GiB),
// though s2's smaller bound would take some of them: the smallest input
// refused is refused, with ErrTooLarge, before anything is read. As
// TestSnappyEncodeTooLarge, the input is a slice header over one byte.
// (mut48: S03, s2.MaxEncodedLen as the bound.)
func TestMut48SnappyEncodeRefusesPastGolangSnappysBound(t *testing.T) {
	if strconv.IntSize < 64 {
		t.Skip("needs a 64-bit int")
	}
	if testkit.RaceEnabled {
		t.Skip("checkptr (on under -race) refuses a slice longer than its memory")
	}
	// The smallest length golang/snappy refuses.
	// MaxEncodedLen(lo) >= 0, MaxEncodedLen(hi) < 0; hi converted at run
	// time, as a constant int it would not compile where int has 32 bits.
	above := uint64(1<<32 + 1)
	lo, hi := 0, int(above)
	for hi-lo > 1 {
		if mid := lo + (hi-lo)/2; snappy.MaxEncodedLen(mid) < 0 {
			hi = mid
		} else {
			lo = mid
		}
	}
	if s2.MaxEncodedLen(hi) < 0 {
		t.Fatalf("s2 refuses %d bytes too: the bounds no longer differ there", hi)
	}
	var b byte
	huge := unsafe.Slice(&b, hi) // 64-bit only: skipped above
	dst := make([]byte, 3, 8)
	out, err := Snappy.AppendEncode(dst, huge)
	var ce *Error
	if !errors.As(err, &ce) || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("AppendEncode of %d bytes: %v, want a *Error matching ErrTooLarge", hi, err)
	}
	if len(out) != 3 {
		t.Fatalf("dst changed: len %d", len(out))
	}
}

// TestMut48CheckKafkaLZ4ChecksumCutShort: CheckKafka refuses a frame with
// a content checksum (as runnel wrote them until codec47) cut short
// within that checksum, by one to four bytes, as a frame cut short, and
// takes it whole. (mut48: L08, the frame walk taking a checksum of 3
// bytes.)
func TestMut48CheckKafkaLZ4ChecksumCutShort(t *testing.T) {
	older := lz4Frame(t, recordLike(100<<10, 481), lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(true))
	if older[4]&lz4FlagContentSum == 0 {
		t.Fatalf("FLG %#x: no content checksum", older[4])
	}
	if err := LZ4.CheckKafka(older); err != nil {
		t.Fatalf("whole frame refused: %v", err)
	}
	for cut := 1; cut <= 4; cut++ {
		err := LZ4.CheckKafka(older[:len(older)-cut])
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, ErrCorrupt) {
			t.Errorf("cut by %d bytes: %v, want an *Error matching ErrCorrupt", cut, err)
		}
	}
}
