package compression

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"unsafe"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/s2"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/stretchr/testify/require"
)

// xerialStream frames chunks the way Java's xerial SnappyOutputStream does:
// the header, then each chunk as a 4-byte big-endian length and a raw block.
func xerialStream(chunks ...[]byte) []byte {
	b := append([]byte(nil), xerialMagic...)
	b = binary.BigEndian.AppendUint32(b, 1) // version
	b = binary.BigEndian.AppendUint32(b, 1) // compatible version
	for _, c := range chunks {
		enc := snappy.Encode(nil, c)
		b = binary.BigEndian.AppendUint32(b, uint32(len(enc)))
		b = append(b, enc...)
	}
	return b
}

// split cuts b into chunks of n bytes, as SnappyOutputStream's 32 KiB
// buffer does.
func split(b []byte, n int) [][]byte {
	var out [][]byte
	for len(b) > n {
		out = append(out, b[:n])
		b = b[n:]
	}
	return append(out, b)
}

func TestSnappyXerial(t *testing.T) {
	for _, in := range [][]byte{
		{7},
		recordLike(100<<10, 30),
		make([]byte, 1<<20),
		randomBytes(70<<10, 31),
	} {
		stream := xerialStream(split(in, 32<<10)...)
		if got := mustDecode(t, Snappy, nil, stream, 0); !bytes.Equal(got, in) {
			t.Fatalf("%d bytes: wrong output", len(in))
		}
		got := mustDecode(t, Snappy, []byte("pre"), stream, len(in))
		if string(got[:3]) != "pre" || !bytes.Equal(got[3:], in) {
			t.Fatalf("%d bytes after a prefix at exact limit: wrong output", len(in))
		}
		if len(in) > 1 {
			// Every chunk fits the limit, the sum does not.
			_, err := Snappy.AppendDecode(nil, stream, len(in)-1)
			wantErr(t, err, ErrTooLarge, fmt.Sprintf("%d bytes, limit one less", len(in)))
		}
	}

	// Only the header: an empty stream.
	if got := mustDecode(t, Snappy, []byte("x"), xerialStream(), 0); string(got) != "x" {
		t.Errorf("header only: %q", got)
	}
	// The version fields are not checked.
	odd := xerialStream([]byte("hello"))
	binary.BigEndian.PutUint32(odd[8:], 7)
	if got := mustDecode(t, Snappy, nil, odd, 0); string(got) != "hello" {
		t.Errorf("other version: %q", got)
	}
}

func TestSnappyXerialCorrupt(t *testing.T) {
	good := xerialStream([]byte("first chunk, "), []byte("second chunk"))
	firstLen := int(binary.BigEndian.Uint32(good[16:]))
	secondAt := 16 + 4 + firstLen

	longer := bytes.Clone(good)
	binary.BigEndian.PutUint32(longer[secondAt:], uint32(len(good)-secondAt-4+1))

	huge := bytes.Clone(good)
	binary.BigEndian.PutUint32(huge[16:], 0xffffffff)

	shorter := bytes.Clone(good)
	binary.BigEndian.PutUint32(shorter[16:], uint32(firstLen-1))

	zero := append(xerialStream([]byte("a")), 0, 0, 0, 0)

	badBlock := bytes.Clone(good)
	badBlock[16+4] = 0xff // first chunk's length varint no longer ends

	for name, src := range map[string][]byte{
		"header truncated":          good[:15],
		"magic only":                good[:8],
		"chunk length past the end": longer,
		"chunk length 4 GiB":        huge,
		"chunk length one short":    shorter,
		"chunk length truncated":    append(bytes.Clone(good), 0, 0),
		"chunk cut short":           good[:len(good)-1],
		"empty chunk":               zero,
		"corrupt block":             badBlock,
	} {
		out, err := Snappy.AppendDecode([]byte("x"), src, 0)
		wantErr(t, err, ErrCorrupt, name)
		if string(out) != "x" {
			t.Errorf("%s: dst not returned with its length", name)
		}
	}
}

// TestSnappyClaimedLength checks blocks whose length header lies: they are
// refused before the claimed size is allocated.
func TestSnappyClaimedLength(t *testing.T) {
	claim := func(n uint64, body string) []byte {
		return append(binary.AppendUvarint(nil, n), body...)
	}
	for _, tc := range []struct {
		name  string
		src   []byte
		limit int
		want  error
	}{
		{"4 GiB", claim(0xffffffff, "\x00a"), 0, ErrTooLarge},
		{"past the limit", claim(1001, "\x00a"), 1000, ErrTooLarge},
		{"beyond any ratio", claim(60<<20, "\x00a"), 0, ErrCorrupt},
		{"more than the body", claim(2, "\x00a"), 0, ErrCorrupt},
		{"less than the body", claim(0, "\x00a"), 0, ErrCorrupt},
		{"varint overflow", []byte("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"), 0, ErrCorrupt},
		{"xerial chunk beyond any ratio", append(xerialStream(), append([]byte{0, 0, 0, 7}, claim(60<<20, "\x00a")...)...), 0, ErrCorrupt},
	} {
		var err error
		alloc := allocatedBy(func() { _, err = Snappy.AppendDecode(nil, tc.src, tc.limit) })
		wantErr(t, err, tc.want, tc.name)
		if alloc > 64<<10 {
			t.Errorf("%s: allocated %d bytes", tc.name, alloc)
		}
	}
	if got := mustDecode(t, Snappy, nil, claim(1, "\x00a"), 0); string(got) != "a" {
		t.Errorf("honest block: %q", got)
	}
}

// TestSnappyEncodeIsRawBlock pins the wire format: one raw block, readable
// by any snappy block decoder.
func TestSnappyEncodeIsRawBlock(t *testing.T) {
	in := recordLike(50<<10, 32)
	enc := mustEncode(t, Snappy, nil, in)
	got, err := snappy.Decode(nil, enc)
	if err != nil || !bytes.Equal(got, in) {
		t.Fatalf("not a raw snappy block: %v", err)
	}
}

// snappyCorpus is the differential tests' input: the edges of the block
// format (nothing, one byte, shorter than any copy), incompressible bytes,
// long runs, record-like and JSON-like batches, and sizes around and well
// past 64 KiB, where golang/snappy's encoder starts a new internal block.
func snappyCorpus() map[string][]byte {
	var json []byte
	for i := 0; len(json) < 300<<10; i++ {
		json = fmt.Appendf(json, `{"id":%08d,"customer":"c-%04d","items":["book","pen"],"amount_cents":%06d}`, i*7919, i%977, i*31%100000)
	}
	return map[string][]byte{
		"empty":              {},
		"one byte":           {'x'},
		"16 bytes":           []byte("0123456789abcdef"),
		"short run":          bytes.Repeat([]byte{'a'}, 17),
		"incompressible 1 B": randomBytes(1, 80),
		"incompressible":     randomBytes(100<<10, 81),
		"zeros 1 MiB":        make([]byte, 1<<20),
		"records 64 KiB":     recordLike(64<<10, 82),
		"records 64 KiB+1":   recordLike(64<<10+1, 83),
		"records 1 MiB":      recordLike(1<<20, 84),
		"json 300 KiB":       json,
		"mixed 5 MiB": bytes.Join([][]byte{
			recordLike(2<<20, 85), randomBytes(1<<20, 86), make([]byte, 1<<20), json, randomBytes(700<<10, 87),
		}, nil),
	}
}

// TestSnappyDifferential: the blocks Snappy.AppendEncode writes (via
// klauspost/compress/s2's snappy-compatible encoder) are read by
// github.com/golang/snappy's decoder, as by s2's and by AppendDecode, and
// the blocks golang/snappy writes (as older runnel did) are read by
// AppendDecode and s2's: raw snappy blocks, either way.
func TestSnappyDifferential(t *testing.T) {
	for name, in := range snappyCorpus() {
		ours := mustEncode(t, Snappy, []byte("prefix"), in)[len("prefix"):]
		theirs := snappy.Encode(nil, in)
		for _, enc := range []struct {
			who string
			b   []byte
		}{{"ours", ours}, {"golang/snappy's", theirs}} {
			if n, err := snappy.DecodedLen(enc.b); err != nil || n != len(in) {
				t.Errorf("%s: %s block states %d bytes (%v), want %d", name, enc.who, n, err, len(in))
			}
			if got, err := snappy.Decode(nil, enc.b); err != nil || !bytes.Equal(got, in) {
				t.Errorf("%s: golang/snappy does not read %s block: %v", name, enc.who, err)
			}
			if got, err := s2.Decode(nil, enc.b); err != nil || !bytes.Equal(got, in) {
				t.Errorf("%s: s2 does not read %s block: %v", name, enc.who, err)
			}
			if got := mustDecode(t, Snappy, []byte("p"), enc.b, 0); !bytes.Equal(got[1:], in) {
				t.Errorf("%s: AppendDecode of %s block: wrong output", name, enc.who)
			}
			_, err := Snappy.AppendDecode(nil, enc.b, len(in)-1)
			if len(in) > 1 { // a limit of 0 is the default
				wantErr(t, err, ErrTooLarge, fmt.Sprintf("%s: %s block, limit one short", name, enc.who))
			}
		}
		// In xerial framing, as Java's producer writes, chunk by chunk.
		if got := mustDecode(t, Snappy, nil, xerialStream(split(in, 32<<10)...), 0); !bytes.Equal(got, in) {
			t.Errorf("%s: xerial: wrong output", name)
		}
		if s2max, max := s2.MaxEncodedLen(len(in)), snappy.MaxEncodedLen(len(in)); s2max > max {
			t.Errorf("%s: s2 may write %d bytes where %d are reserved", name, s2max, max)
		}
	}
}

// TestSnappyRefusesS2: a block in S2's extensions of the snappy
// format (a copy of offset 0 repeats the last offset), which s2.Decode
// reads and golang/snappy refuses, is refused as corrupt, by AppendDecode,
// by a Reader and in a xerial chunk, as every snappy reader refuses it:
// decoding stays with golang/snappy. (The mutant: decoding with
// s2.Decode.)
func TestSnappyRefusesS2(t *testing.T) {
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

// TestSnappyEncodeRefusesPastGolangSnappysBound: encoding refuses
// the inputs golang/snappy's encoder refused (a MaxEncodedLen past 4 GiB),
// though s2's smaller bound would take some of them: the smallest input
// refused is refused, with ErrTooLarge, before anything is read. As
// TestSnappyEncodeTooLarge, the input is a slice header over one byte.
// (The mutant: s2.MaxEncodedLen as the bound.)
func TestSnappyEncodeRefusesPastGolangSnappysBound(t *testing.T) {
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

// TestSnappyClaimTooLargeForInt: a block that claims 2 GiB is ErrTooLarge
// on every platform: on 32-bit ones the library itself refuses it as too
// large for an int, which must not turn into ErrCorrupt.
func TestSnappyClaimTooLargeForInt(t *testing.T) {
	block := binary.AppendUvarint(nil, 1<<31)
	block = append(block, 0, 'x')
	_, err := Snappy.AppendDecode(nil, block, 0)
	wantErr(t, err, ErrTooLarge, "block claiming 2 GiB")
}

// TestSnappyRatioCheckOn32Bit: a snappy block's decoded length is
// checked against the most the block could decode to, len(block) * 32;
// computed in int, that product wrapped where int has 32 bits for a block
// of 64 MiB or more, and a good block was refused as corrupt (on 386: a
// batch of 64 MiB of records that do not compress, within the default
// limit). The block here is one literal of 64 MiB - 8 zero bytes, one
// byte over 64 MiB in all.
func TestSnappyRatioCheckOn32Bit(t *testing.T) {
	const n = 64<<20 - 8
	block := binary.AppendUvarint(nil, n)
	block = append(block, 63<<2) // a literal whose length-1 follows in 4 bytes
	block = binary.LittleEndian.AppendUint32(block, n-1)
	block = append(block, make([]byte, n)...)
	if len(block) <= 64<<20 {
		t.Fatalf("block of %d bytes, want over 64 MiB", len(block))
	}
	out, err := Snappy.AppendDecode(nil, block, 0) // the default limit, 64 MiB
	if err != nil {
		t.Fatalf("a good block of %d bytes: %v", len(block), err)
	}
	if len(out) != n || !bytes.Equal(out[:16], make([]byte, 16)) {
		t.Fatalf("decoded %d bytes, want %d zeros", len(out), n)
	}
}

// TestSnappyHugeLength: a snappy block whose header claims 2 GiB
// is refused as too large for the limit, without decoding, on every
// platform: on 32-bit ones the snappy library itself calls the length too
// large (its ErrTooLarge, past math.MaxInt32), a path of snappyDecodeBlock
// that only GOARCH=386 runs (unreached on amd64); on 64-bit ones the limit does.
func TestSnappyHugeLength(t *testing.T) {
	for _, block := range [][]byte{
		{0x80, 0x80, 0x80, 0x80, 0x08, 0}, // 1<<31
		{0xff, 0xff, 0xff, 0xff, 0x0f, 0}, // 1<<32 - 1
	} {
		_, err := Snappy.AppendDecode(nil, block, 0)
		require.ErrorIs(t, err, ErrTooLarge)
		require.NotErrorIs(t, err, ErrCorrupt)
		var e *Error
		require.True(t, errors.As(err, &e), "%T", err)
	}
}
