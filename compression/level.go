package compression

import (
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// Kafka's level ranges (CompressionType's minLevel, maxLevel and
// defaultLevel).
const (
	gzipMinLevel, gzipMaxLevel, gzipDefaultLevel = 1, 9, -1
	lz4MinLevel, lz4MaxLevel, lz4DefaultLevel    = 1, 17, 9
	zstdMinLevel, zstdMaxLevel, zstdDefaultLevel = -131072, 22, 3
)

// DefaultLevel returns the level codec c compresses at unless told
// otherwise, as Kafka numbers it: -1 for gzip, 9 for lz4, 3 for zstd; 0
// for none and snappy, which have no levels, and for an unknown codec.
// AppendEncode compresses at it.
func (c Codec) DefaultLevel() int {
	switch c {
	case Gzip:
		return gzipDefaultLevel
	case LZ4:
		return lz4DefaultLevel
	case Zstd:
		return zstdDefaultLevel
	}
	return 0
}

// CheckLevel reports whether level is one of codec c's compression
// levels, as Kafka's producer takes them (KIP-390): gzip 1 to 9, or -1
// (its default); lz4 1 to 17; zstd -131072 to 22. None and snappy have no
// levels: they take 0 only (their DefaultLevel). AppendEncodeLevel says
// what each level runs.
//
// Errors: a *Error (Op "encode") matching ErrInvalidLevel, and naming
// the range, for a level out of it; one matching ErrUnknownCodec for an
// unknown codec.
func (c Codec) CheckLevel(level int) error {
	var ok bool
	switch c {
	case None, Snappy:
		ok = level == 0
	case Gzip:
		ok = level == gzipDefaultLevel || level >= gzipMinLevel && level <= gzipMaxLevel
	case LZ4:
		ok = level >= lz4MinLevel && level <= lz4MaxLevel
	case Zstd:
		ok = level >= zstdMinLevel && level <= zstdMaxLevel
	default:
		return &Error{Codec: c, Op: opEncode, Err: ErrUnknownCodec}
	}
	if ok {
		return nil
	}
	var want string
	switch c {
	case None, Snappy:
		want = c.String() + " has no levels (want 0)"
	case Gzip:
		want = fmt.Sprintf("want %d to %d, or %d (the default)", gzipMinLevel, gzipMaxLevel, gzipDefaultLevel)
	case LZ4:
		want = fmt.Sprintf("want %d to %d (default %d)", lz4MinLevel, lz4MaxLevel, lz4DefaultLevel)
	case Zstd:
		want = fmt.Sprintf("want %d to %d (default %d)", zstdMinLevel, zstdMaxLevel, zstdDefaultLevel)
	}
	return &Error{Codec: c, Op: opEncode, Err: fmt.Errorf("%w %d: %s", ErrInvalidLevel, level, want)}
}

// AppendEncodeLevel is AppendEncode at a compression level, as Kafka
// numbers them (KIP-390, Kafka 3.8: the producer's compression.gzip.level,
// compression.lz4.level and compression.zstd.level), mapped onto the
// libraries runnel encodes with:
//
//	codec  Kafka's levels          default  what runnel runs
//	gzip   1 to 9, or -1           -1       klauspost/compress/gzip at that level;
//	                                        -1 is its DefaultCompression, its level 5
//	lz4    1 to 17                 9        9: pierrec/lz4 Fast; any other: its HC
//	                                        compressor, Level1 (for 1 to 8 and 10)
//	                                        to Level8 (17)
//	zstd   -131072 to 22           3        klauspost/compress/zstd: SpeedFastest for
//	                                        levels below 3 but 0, SpeedDefault for 0
//	                                        and 3 to 5, SpeedBetterCompression 6 to 9,
//	                                        SpeedBestCompression 10 and up
//	none, snappy: no levels (0 only)
//
// The mapping is coarser than Kafka's:
//
//   - gzip's levels are klauspost's own, not zlib's (Java's Deflater,
//     which Kafka's producer runs): klauspost's default is its level 5,
//     zlib's its 6. 0 (no compression) is refused, as Kafka refuses it.
//   - lz4: Kafka's default, 9, is lz4-java's fast compressor, and every
//     other level its HC compressor, which searches up to 2^(level-1)
//     earlier positions for a match (lz4-java's Java HC compressor; its
//     JNI one, the reference library's LZ4_compress_HC, searches as many
//     from 3 to 9, and parses optimally from 10 to 12, higher levels
//     counting as 12). pierrec/lz4's HC levels search 2^(8+n) positions
//     (Level1: 512). So each Kafka level L other than 9 runs pierrec's
//     Level n with n = L-9, at least 1. Levels 1 to 8 and 10 all run
//     Level1, which searches deeper than Kafka's levels 1 to 9 would, and
//     no level runs the optimal parser. As in Kafka, every level but the
//     default runs an HC compressor, slower than the default's: none is
//     faster.
//   - zstd: klauspost's encoder has four levels, and
//     zstd.EncoderLevelFromZstd picks the one whose ratio is closest to a
//     zstd level's; but zstd's level 0 means its default (3), not a fast
//     level, so 0 runs SpeedDefault. zstd's negative levels, faster than
//     its level 1 at a lower ratio, all run SpeedFastest, as 1 and 2 do.
//
// Levels that run the same coder write the same bytes: -1 and 5 with
// gzip; 1 to 8 and 10 with lz4; 0 and 3 to 5 with zstd, and so on.
//
// AppendEncode(dst, src) is AppendEncodeLevel(dst, src, c.DefaultLevel()),
// and writes the same bytes.
//
// Coders are made on first use of a level, then pooled or kept as
// AppendEncode's are (zstd: of each of klauspost's four levels, as many
// encoders as have encoded at once, at most min(GOMAXPROCS, 4); callers
// one at a time make one). So steady-state calls allocate nothing (but a
// zstd frame of a block or more: its header, a few bytes).
//
// A zstd encoder is kept for the life of the process, and its memory
// grows with its level. Each held, its blocks of input and output
// included:
//
//   - about 2.7 MiB at SpeedFastest;
//   - 3.8 at SpeedDefault;
//   - 6.6 at SpeedBetterCompression;
//   - 37 at SpeedBestCompression.
//
// That is the heap in use after each had encoded 1 MiB of record-like
// bytes, 2026-12-06. gzip's and lz4's writers hold 1 MiB at most, and go
// with their pool.
//
// Errors: AppendEncode's, and a *Error matching ErrInvalidLevel for a
// level CheckLevel refuses (dst is then returned unchanged).
func (c Codec) AppendEncodeLevel(dst, src []byte, level int) ([]byte, error) {
	if err := c.CheckLevel(level); err != nil {
		return dst, err
	}
	var (
		out []byte
		err error
	)
	switch c {
	case None:
		return append(dst, src...), nil
	case Gzip:
		out, err = gzipEncode(dst, src, gzipLevel(level))
	case Snappy:
		out, err = snappyEncode(dst, src)
	case LZ4:
		out, err = lz4Encode(dst, src, lz4Level(level))
	case Zstd:
		out, err = zstdEncode(dst, src, zstdLevel(level))
	}
	if err != nil {
		return dst, &Error{Codec: c, Op: opEncode, Err: err}
	}
	return out, nil
}

// gzipLevel maps a valid Kafka gzip level onto klauspost's: the same
// number, but -1 (DefaultCompression), which is klauspost's level 5.
func gzipLevel(level int) int {
	if level == gzipDefaultLevel {
		return 5
	}
	return level
}

// lz4Level maps a valid Kafka lz4 level onto the index of pierrec's level
// that runs it: 0 for Fast (Kafka's 9), n for Leveln (see the package
// doc).
func lz4Level(level int) int {
	if level == lz4DefaultLevel {
		return 0
	}
	return max(level-9, 1)
}

// zstdLevel maps a valid Kafka zstd level onto klauspost's.
func zstdLevel(level int) zstd.EncoderLevel {
	if level == 0 {
		return zstd.SpeedDefault
	}
	return zstd.EncoderLevelFromZstd(level)
}
