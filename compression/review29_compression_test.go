package compression

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// TestReview29SnappyRatioCheckOn32Bit: a snappy block's decoded length is
// checked against the most the block could decode to, len(block) * 32;
// computed in int, that product wrapped where int has 32 bits for a block
// of 64 MiB or more, and a good block was refused as corrupt (on 386: a
// batch of 64 MiB of records that do not compress, within the default
// limit). The block here is one literal of 64 MiB - 8 zero bytes, one
// byte over 64 MiB in all.
func TestReview29SnappyRatioCheckOn32Bit(t *testing.T) {
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
