package compression

import (
	"fmt"
	"testing"
)

// BenchmarkCodecs encodes and decodes a 64 KiB record-like batch with each
// codec, into reused buffers as package record does in steady state.
func BenchmarkCodecs(b *testing.B) {
	in := recordLike(64<<10, 70)
	for _, c := range allCodecs {
		enc := mustEncode(b, c, nil, in)
		b.Run(c.String()+"/encode", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			dst := make([]byte, 0, 2*len(in)+1024)
			for b.Loop() {
				dst = mustEncode(b, c, dst[:0], in)
			}
			b.ReportMetric(float64(len(in))/float64(len(enc)), "ratio")
		})
		b.Run(c.String()+"/decode", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			dst := make([]byte, 0, len(in))
			for b.Loop() {
				dst = mustDecode(b, c, dst[:0], enc, 0)
			}
		})
	}
}

// BenchmarkDecodeIntoNil decodes into a nil dst, which sizes the output from
// the stream's own hints (or, for lz4 and zstd frames without a size,
// guesses) and allocates it.
func BenchmarkDecodeIntoNil(b *testing.B) {
	in := recordLike(64<<10, 71)
	for _, c := range packed {
		enc := mustEncode(b, c, nil, in)
		b.Run(c.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				mustDecode(b, c, nil, enc, 0)
			}
		})
	}
	b.Run("zstd-no-size", func(b *testing.B) {
		enc := zstdStream(b, in)
		b.ReportAllocs()
		b.SetBytes(int64(len(in)))
		for b.Loop() {
			mustDecode(b, Zstd, nil, enc, 0)
		}
	})
}

// BenchmarkEncodeLevels encodes BenchmarkCodecs' 64 KiB record-like batch
// at levels of each codec, as Kafka numbers them (level=default is the
// codec's DefaultLevel, AppendEncode's), into a reused buffer, and reports
// the compression ratio.
func BenchmarkEncodeLevels(b *testing.B) {
	in := recordLike(64<<10, 70)
	for _, cl := range []struct {
		c      Codec
		levels []int
	}{
		{Gzip, []int{-1, 1, 9}},
		{LZ4, []int{9, 1, 17}},
		{Zstd, []int{3, 1, 6, 10}},
	} {
		for _, level := range cl.levels {
			name := fmt.Sprintf("codec=%v/level=%d", cl.c, level)
			if level == cl.c.DefaultLevel() {
				name = fmt.Sprintf("codec=%v/level=default", cl.c)
			}
			b.Run(name, func(b *testing.B) {
				enc, err := cl.c.AppendEncodeLevel(nil, in, level)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.SetBytes(int64(len(in)))
				dst := make([]byte, 0, 2*len(in)+1024)
				for b.Loop() {
					dst, _ = cl.c.AppendEncodeLevel(dst[:0], in, level)
				}
				b.ReportMetric(float64(len(in))/float64(len(enc)), "ratio")
			})
		}
	}
}

// BenchmarkEncodeSizes encodes record-like input of sizes from a part of
// one zstd block to a producer's largest batch (1 MiB, several blocks) at
// zstd's levels 1 and 3 (klauspost's SpeedFastest, whose blocks are 64
// KiB, and SpeedDefault, 128 KiB), into a reused buffer.
func BenchmarkEncodeSizes(b *testing.B) {
	for _, n := range []int{16 << 10, 64 << 10, 200 << 10, 1 << 20} {
		in := recordLike(n, 77)
		for _, level := range []int{1, 3} {
			b.Run(fmt.Sprintf("codec=zstd/size=%dKiB/level=%d", n>>10, level), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(n))
				dst := make([]byte, 0, 2*n+1024)
				for b.Loop() {
					var err error
					if dst, err = Zstd.AppendEncodeLevel(dst[:0], in, level); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
