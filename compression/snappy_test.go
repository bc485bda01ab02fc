package compression

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/golang/snappy"
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
