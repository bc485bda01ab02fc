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

func ExampleCodec_AppendEncodeLevel() {
	records := bytes.Repeat([]byte(`{"user":"ada","event":"login"}`), 100)

	// Kafka's compression.zstd.level=1: klauspost's SpeedFastest.
	fast, err := compression.Zstd.AppendEncodeLevel(nil, records, 1)
	if err != nil {
		panic(err)
	}
	back, err := compression.Zstd.AppendDecode(nil, fast, 1<<20)
	fmt.Println(bytes.Equal(back, records), err)

	// A level the codec does not have is refused, naming its range.
	err = compression.Gzip.CheckLevel(0)
	fmt.Println(errors.Is(err, compression.ErrInvalidLevel))
	fmt.Println(err)
	fmt.Println(compression.LZ4.DefaultLevel(), compression.Zstd.DefaultLevel())

	// Output:
	// true <nil>
	// true
	// runnel/compression: gzip encode: invalid compression level 0: want 1 to 9, or -1 (the default)
	// 9 3
}
