package compression_test

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/runnel/runnel/compression"
)

func ExampleCodec_AppendEncode() {
	// The records section of a batch, and the codec from its attributes.
	records := bytes.Repeat([]byte(`{"user":"ada","event":"login"}`), 100)
	attributes := int16(4)
	codec := compression.Codec(attributes & 0x07)

	compressed, err := codec.AppendEncode(nil, records)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%v: %d bytes compressed to fewer: %v\n", codec, len(records), len(compressed) < len(records))

	// Decode into a reusable buffer, refusing more than the batch may hold.
	buf := make([]byte, 0, 4096)
	buf, err = codec.AppendDecode(buf[:0], compressed, 1<<20)
	if err != nil {
		panic(err)
	}
	fmt.Println("round trip ok:", bytes.Equal(buf, records))

	// A limit that is too small is reported, not exceeded.
	_, err = codec.AppendDecode(nil, compressed, 100)
	fmt.Println(errors.Is(err, compression.ErrTooLarge))
	fmt.Println(err)

	// Output:
	// zstd: 3000 bytes compressed to fewer: true
	// round trip ok: true
	// true
	// runnel/compression: zstd decode: decompressed data exceeds limit of 100 bytes
}

func ExampleParseCodec() {
	c, err := compression.ParseCodec("lz4")
	fmt.Println(c, int8(c), err)

	_, err = compression.ParseCodec("brotli")
	fmt.Println(errors.Is(err, compression.ErrUnknownCodec))
	// Output:
	// lz4 3 <nil>
	// true
}
