package compression

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/s2"
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
