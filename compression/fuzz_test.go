package compression

import (
	"bytes"
	"errors"
	"testing"
)

// fuzzLimit is the decode limit the fuzz targets use: small enough that
// bombs are cut short quickly.
const fuzzLimit = 1 << 20

// decodeSeeds returns real encodings for every codec, in the forms this
// package and Kafka clients write, to start FuzzDecode from.
func decodeSeeds(t testing.TB) []struct {
	codec Codec
	data  []byte
} {
	small := recordLike(300, 60)
	var seeds []struct {
		codec Codec
		data  []byte
	}
	add := func(c Codec, data []byte) {
		seeds = append(seeds, struct {
			codec Codec
			data  []byte
		}{c, data})
	}
	for _, c := range allCodecs {
		add(c, mustEncode(t, c, nil, small))
		add(c, mustEncode(t, c, nil, nil))
		add(c, mustEncode(t, c, nil, []byte("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab")))
	}
	add(Snappy, xerialStream(small[:100], small[100:]))
	add(Zstd, zstdStream(t, small))
	add(Gzip, mustEncode(t, Gzip, mustEncode(t, Gzip, nil, small[:10]), small[10:]))
	// lz4 frames of dependent blocks, which the lz4 CLI writes: one that
	// decodes, one whose block copies from before the frame.
	back16 := lz4Compressed([]byte{0x0c, 0x10, 0x00, 0x50, 'v', 'w', 'x', 'y', 'z'})
	add(LZ4, lz4HandFrame(0x40, lz4Stored("abcdefghijklmnop"), back16))
	add(LZ4, lz4HandFrame(0x40, back16))
	return seeds
}

// FuzzDecode feeds arbitrary input to every decoder. It must never panic;
// a failure must be ErrCorrupt or ErrTooLarge and leave dst as it was; a
// success must stay within the limit and be reproducible: the same output
// with exactly enough room, and ErrTooLarge with a limit one byte short.
// CheckKafka refuses only lz4 input, with an *Error matching ErrCorrupt.
func FuzzDecode(f *testing.F) {
	for _, s := range decodeSeeds(f) {
		f.Add(byte(s.codec), s.data)
	}
	f.Add(byte(5), []byte("any"))
	f.Add(byte(7), []byte{})
	f.Fuzz(func(t *testing.T, codec byte, data []byte) {
		c := Codec(codec % 8) // 5 to 7: the attribute bits no codec has
		if c > Zstd {
			out, err := c.AppendDecode([]byte("pre"), data, fuzzLimit)
			if !errors.Is(err, ErrUnknownCodec) || string(out) != "pre" {
				t.Fatalf("%v: AppendDecode = %q, %v; want dst as it was and ErrUnknownCodec", c, out, err)
			}
			return
		}
		// Kafka's check refuses with ErrCorrupt, and only lz4 input.
		if err := c.CheckKafka(data); err != nil {
			var ce *Error
			if c != LZ4 || !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) || ce.Codec != c {
				t.Fatalf("%v: CheckKafka: %v", c, err)
			}
		}
		out, err := c.AppendDecode([]byte("pre"), data, fuzzLimit)
		if err != nil {
			if !decodeFailure(err) {
				t.Fatalf("%v: unexpected error kind: %v", c, err)
			}
			if string(out) != "pre" {
				t.Fatalf("%v: dst changed on error: %q", c, out)
			}
			return
		}
		if string(out[:3]) != "pre" {
			t.Fatalf("%v: prefix clobbered", c)
		}
		n := len(out) - 3
		if n > fuzzLimit {
			t.Fatalf("%v: %d bytes, over the limit", c, n)
		}
		exact := make([]byte, 0, n)
		again, err := c.AppendDecode(exact, data, max(n, 1))
		if err != nil || !bytes.Equal(again, out[3:]) {
			t.Fatalf("%v: decode with exactly enough room differs (%v)", c, err)
		}
		if n > 1 {
			if _, err := c.AppendDecode(nil, data, n-1); !decodeFailure(err) {
				t.Fatalf("%v: %d-byte output with limit %d: %v", c, n, n-1, err)
			}
		}
	})
}

// FuzzRoundTrip checks that every codec decodes its own encoding of any
// input back to that input, and that Kafka's check (CheckKafka) takes it.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("x"))
	f.Add(recordLike(500, 61))
	f.Add(bytes.Repeat([]byte{0}, 3000))
	f.Add(randomBytes(200, 62))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, c := range allCodecs {
			enc := mustEncode(t, c, []byte("e"), data)
			if err := c.CheckKafka(enc[1:]); err != nil {
				t.Fatalf("%v: Kafka's check refuses what the encoder wrote: %v", c, err)
			}
			dec := mustDecode(t, c, []byte("d"), enc[1:], max(len(data), 1))
			if !bytes.Equal(dec[1:], data) || enc[0] != 'e' || dec[0] != 'd' {
				t.Fatalf("%v: round trip of %d bytes differs", c, len(data))
			}
		}
	})
}

// FuzzParseCodec: a configured codec name (compression.type) is accepted
// exactly when it is the String of a valid codec, which it then is, and
// refused with ErrUnknownCodec otherwise.
func FuzzParseCodec(f *testing.F) {
	for _, s := range []string{"none", "gzip", "snappy", "lz4", "zstd", "GZIP", "producer", "uncompressed", "codec(7)", "", "zstd\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCodec(s)
		if err != nil {
			if !errors.Is(err, ErrUnknownCodec) {
				t.Fatalf("ParseCodec(%q) = %v, not ErrUnknownCodec", s, err)
			}
			for _, v := range allCodecs {
				if v.String() == s {
					t.Fatalf("ParseCodec(%q) refuses %v's name", s, v)
				}
			}
			return
		}
		if !c.Valid() || c.String() != s {
			t.Fatalf("ParseCodec(%q) = %v (%s)", s, c, c.String())
		}
	})
}
