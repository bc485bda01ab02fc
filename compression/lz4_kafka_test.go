package compression

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/pierrec/lz4/v4"
)

// TestCheckKafkaLZ4 pins what CheckKafka refuses: the lz4 payloads that
// AppendDecode reads but Kafka's Java reader (Lz4BlockInputStream)
// refuses (a legacy or skippable frame first, dependent blocks, records
// that go on past the first frame) and, since runnel's decoder would read
// on, any byte after the first frame. The same bytes still decode, so
// that what an older runnel stored stays readable. What the library's
// reader already refuses as Kafka's does (a bad version, a reserved bit)
// is refused by AppendDecode.
func TestCheckKafkaLZ4(t *testing.T) {
	in := recordLike(200<<10, 60)
	ours := mustEncode(t, LZ4, nil, in)
	for name, src := range map[string][]byte{
		"ours":         ours,
		"empty":        mustEncode(t, LZ4, nil, nil),
		"java-like":    lz4Frame(t, in, lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(false)),
		"block sums":   lz4Frame(t, in, lz4.BlockSizeOption(lz4.Block256Kb), lz4.BlockChecksumOption(true)),
		"content size": lz4Frame(t, in, lz4.SizeOption(uint64(len(in)))),
		"4 MiB blocks": lz4Frame(t, in),
	} {
		if err := LZ4.CheckKafka(src); err != nil {
			t.Errorf("%s: refused: %v", name, err)
		}
		mustDecode(t, LZ4, nil, src, 0)
	}

	// A frame of dependent blocks: ours with FLG bit 5 cleared and the
	// header checksum fixed (its blocks do not refer back, so it decodes).
	dependent := bytes.Clone(ours)
	dependent[4] &^= lz4FlagIndep
	dependent[6] = lz4HeaderChecksum(dependent[4:6])
	half := len(in) / 2
	twoFrames := mustEncode(t, LZ4, mustEncode(t, LZ4, nil, in[:half]), in[half:])
	skippable := append(binary.LittleEndian.AppendUint32([]byte{0x50, 0x2a, 0x4d, 0x18}, 3), append([]byte("abc"), ours...)...)
	for name, c := range map[string]struct {
		src  []byte
		want []byte // what AppendDecode still reads from src
	}{
		"legacy frame":        {lz4Frame(t, in, lz4.LegacyOption(true)), in},
		"dependent blocks":    {dependent, in},
		"records in 2 frames": {twoFrames, in},
		"empty second frame":  {mustEncode(t, LZ4, bytes.Clone(ours), nil), in},
		"skippable first":     {skippable, in},
	} {
		err := LZ4.CheckKafka(c.src)
		wantErr(t, err, ErrCorrupt, name)
		var e *Error
		if !errors.As(err, &e) || e.Codec != LZ4 || e.Op != opDecode {
			t.Errorf("%s: error %#v is not an lz4 decode *Error", name, err)
		}
		if got := mustDecode(t, LZ4, nil, c.src, 0); !bytes.Equal(got, c.want) {
			t.Errorf("%s: decodes to %d bytes, want %d", name, len(got), len(c.want))
		}
	}

	// A skippable frame first whose bytes, read as a frame's header and
	// blocks, happen to walk to the end of the input: refused for its
	// magic alone.
	lookalike := lz4SkippableLookalike(t)
	if n, ok := lz4FrameLen(lookalike); !ok || n != len(lookalike) || lookalike[4]&lz4FlagIndep == 0 {
		t.Fatalf("the lookalike does not walk as a frame of independent blocks: %d of %d, %v", n, len(lookalike), ok)
	}
	wantErr(t, LZ4.CheckKafka(lookalike), ErrCorrupt, "skippable lookalike")
	mustDecode(t, LZ4, nil, lookalike, 0)

	// Cut short, or not lz4 at all: refused by both.
	for name, src := range map[string][]byte{
		"nothing":        nil,
		"cut header":     ours[:6],
		"cut frame":      ours[:len(ours)-1],
		"trailing bytes": append(bytes.Clone(ours), 1, 2, 3),
	} {
		wantErr(t, LZ4.CheckKafka(src), ErrCorrupt, name)
		_, err := LZ4.AppendDecode(nil, src, 0)
		wantErr(t, err, ErrCorrupt, name+" decoded")
	}

	// Kafka's FLG.validate and BD.validate refusals that the library's
	// reader makes too (with the header checksum fixed, so that it is the
	// field that fails): CheckKafka leaves them to AppendDecode.
	for name, edit := range map[string]func(f []byte){
		"version 2":      func(f []byte) { f[4] = f[4]&^0xc0 | 0x80 },
		"FLG reserved":   func(f []byte) { f[4] |= 0x02 },
		"BD reserved":    func(f []byte) { f[5] |= 0x01 },
		"BD block size3": func(f []byte) { f[5] = 0x30 },
	} {
		bad := bytes.Clone(ours)
		edit(bad)
		bad[6] = lz4HeaderChecksum(bad[4:6])
		_, err := LZ4.AppendDecode(nil, bad, 0)
		wantErr(t, err, ErrCorrupt, name)
	}

	// Other codecs have nothing of the kind.
	for _, c := range []Codec{None, Gzip, Snappy, Zstd} {
		if err := c.CheckKafka([]byte("anything")); err != nil {
			t.Errorf("%v: %v", c, err)
		}
	}
}

// lz4SkippableLookalike is a skippable frame followed by a frame without
// content checksum, sized so that a walk that took the whole input for one
// frame (FLG the skippable size's low byte, 0x20; a block whose size is
// spelled by the skippable frame's size and first content bytes) would end
// exactly at its end mark.
func lz4SkippableLookalike(t *testing.T) []byte {
	t.Helper()
	const s = 0x20 // the skippable frame's size: FLG 0x20, independent blocks
	for k := 1; k < 1024; k++ {
		// 64 KiB blocks: the library's default of 4 MiB allocates that
		// much for each try (seconds under the race detector), and the
		// frame's BD byte is part of neither walk's header.
		j := lz4Frame(t, randomBytes(k, 61), lz4.ChecksumOption(false), lz4.BlockSizeOption(lz4.Block64Kb))
		v := s + len(j) - 7 // the walk's block: from byte 11 to j's end mark
		if v%256 != 0 {
			continue
		}
		content := make([]byte, s)
		content[0], content[1], content[2] = byte(v>>8), byte(v>>16), byte(v>>24)
		out := binary.LittleEndian.AppendUint32([]byte{0x50, 0x2a, 0x4d, 0x18}, s)
		return append(append(out, content...), j...)
	}
	t.Fatal("no frame length fits")
	return nil
}

// TestCheckKafkaLZ4ChecksumCutShort: CheckKafka refuses a frame with
// a content checksum (as runnel once wrote them) cut short
// within that checksum, by one to four bytes, as a frame cut short, and
// takes it whole. (The mutant: the frame walk taking a checksum of 3
// bytes.)
func TestCheckKafkaLZ4ChecksumCutShort(t *testing.T) {
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
