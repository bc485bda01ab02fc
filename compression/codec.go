// Package compression implements the batch compression codecs of Kafka's
// RecordBatch format (magic v2).
//
// A v2 record batch keeps its compression codec in bits 0-2 of the batch
// attributes and stores the records section compressed with that codec:
// 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd. This package turns those ids
// into a Codec and compresses or decompresses whole buffers with it. It is a
// leaf package: package record calls it to encode and decode the records of
// a batch, and it knows nothing about batches itself.
//
// # Wire formats
//
// The wire formats are the ones Kafka clients exchange.
//
// gzip: an RFC 1952 gzip stream (github.com/klauspost/compress/gzip).
// Concatenated gzip members are decoded as one stream. Bytes after a
// member that do not start another are refused (Java's GZIPInputStream,
// Kafka's reader, ignores them).
//
// snappy: encoded as one raw snappy block, as franz-go writes it (with
// github.com/klauspost/compress/s2's snappy encoder) and as Java's xerial
// SnappyInputStream reads it. It is decoded with github.com/golang/snappy,
// which refuses S2's extensions to the block format as every snappy
// reader does. Decoding accepts both a raw block and the xerial framing
// the Java client writes. It does not accept xerial streams laid end to
// end, nor one to three stray bytes after the last chunk, which
// SnappyInputStream also reads (the first) or ignores (the second).
//
// lz4: the LZ4 frame format (github.com/pierrec/lz4/v4), which Kafka uses
// since KIP-57. It is written as Kafka's Java client writes it: 64 KiB
// independent blocks, no block or content checksum. Decoding:
//
//   - also accepts frames of dependent blocks, legacy frames (magic
//     0x184c2102) and skippable frames, which Kafka's Java reader
//     (Lz4BlockInputStream, formerly KafkaLZ4BlockInputStream) refuses;
//   - reads on past the first frame's end, where Kafka's reader stops and
//     ignores what follows: frames laid end to end are decoded as one
//     stream, and bytes after a frame that do not start another are
//     refused;
//   - also checks the content size, which Kafka's reader skips, and the
//     content checksum when a frame has one (runnel wrote one until
//     2026-12), which some versions of it skip.
//
// Codec.CheckKafka refuses, without decompressing, what lz4 decoding takes
// beyond Kafka's reader (any byte after the first frame included). A
// broker runs it on produce, so that it stores only lz4 batches Kafka's
// broker would, while decoding stays lenient for what an older runnel
// stored.
//
// zstd: a zstd frame (github.com/klauspost/compress/zstd, by default at
// level 3, Kafka's default) that states its content size (but from 1 to
// 255 bytes), and no content checksum. The frame is:
//
//   - one single segment when its content is empty, or more than 1 KiB
//     and less than a block (128 KiB; 64 KiB at levels 2 and below);
//   - otherwise, a window of the least power of two above its size, at
//     least 1 KiB and at most 1 MiB (franz-go's is 64 KiB, which made a
//     produce of 1 MiB batches through the broker slower).
//
// Decoding also accepts frames that do not state their size, as Java's
// ZstdOutputStream writes them, and concatenated frames.
//
// # Levels
//
// Each codec but none and snappy compresses at a level, as Kafka numbers
// them (KIP-390):
//
//   - gzip 1 to 9 or -1, default -1;
//   - lz4 1 to 17, default 9;
//   - zstd -131072 to 22, default 3.
//
// AppendEncode uses the default (what Kafka's producer uses unless told
// otherwise), and AppendEncodeLevel the level it is given; CheckLevel
// checks one. Each level runs one of the library's levels, which are
// fewer: AppendEncodeLevel's doc maps them, and says where that is
// coarser than Kafka's.
//
// # Memory and concurrency
//
// Encoders and decoders are pooled or shared, and created on first use,
// but for zstd's shared decoder, which is made when the package is loaded
// (about 12 KB, tens of microseconds). So steady-state calls with a dst of
// sufficient capacity allocate nothing (but a zstd encode of a block or
// more: see AppendEncodeLevel).
//
// All functions are safe for concurrent use. To bound memory, zstd keeps
// at most min(GOMAXPROCS, 4) encoders of each of klauspost's four levels
// in use (as many as have encoded at once), and its shared decoder runs
// as many decodes at once; further callers wait their turn. That is
// GOMAXPROCS as the package is loaded: setting it later, in main say,
// changes neither.
//
// Every codec may be used inside testing/synctest bubbles and outside
// them, in any order: no coder holds a channel of the bubble it was first
// used in (the zstd library's own shared coders would: its EncodeAll
// takes coders from a channel made on first use, and a channel made in a
// bubble may not be used outside it).
//
// # Bounded decoding
//
// Decoding is bounded. Codec.AppendDecode takes a limit on the
// decompressed size and stops with ErrTooLarge before producing more. So
// a small malicious input (a zip bomb, or a header that claims a huge
// size) cannot make it allocate much more than the limit.
//
// Codec.NewReader streams the same output with the same verdicts, for
// checks that read decompressed data once and keep none of it. It holds
// the codec's window or block, not the output, where the codec has a
// streaming form (see Reader).
package compression

import (
	"fmt"
	"math"
	"strconv"
)

// Codec is a Kafka compression codec, as stored in bits 0-2 of a v2 record
// batch's attributes.
type Codec int8

// The codecs Kafka defines, with their wire ids.
const (
	None   Codec = 0 // no compression
	Gzip   Codec = 1 // gzip (RFC 1952)
	Snappy Codec = 2 // snappy: raw block, or xerial framing on decode
	LZ4    Codec = 3 // LZ4 frame format
	Zstd   Codec = 4 // Zstandard frame format
)

// DefaultDecodeLimit is the limit on decompressed size that
// Codec.AppendDecode applies when it is passed a limit <= 0: 64 MiB. That is
// well above Kafka's default maximum batch size (1 MiB, message.max.bytes)
// even for highly compressible data, while keeping what one malicious batch
// can make a decoder allocate modest. The bound is on the decompressed
// bytes only: decoding them into records allocates more where a record
// holds many small headers (a record.Header takes 40 bytes for an encoded
// header of at least 2), as Kafka's Java consumer does.
const DefaultDecodeLimit = 64 << 20

var codecNames = [...]string{
	None:   "none",
	Gzip:   "gzip",
	Snappy: "snappy",
	LZ4:    "lz4",
	Zstd:   "zstd",
}

// String returns the codec's name as Kafka spells it in configuration
// ("none", "gzip", "snappy", "lz4", "zstd"), or "codec(N)" for an unknown
// value N.
func (c Codec) String() string {
	if c.Valid() {
		return codecNames[c]
	}
	return "codec(" + strconv.Itoa(int(c)) + ")"
}

// Valid reports whether c is one of the codecs Kafka defines (ids 0 to 4).
func (c Codec) Valid() bool {
	return c >= None && c <= Zstd
}

// ParseCodec returns the codec named s, which must be one of the names
// String returns for a valid codec ("none", "gzip", "snappy", "lz4",
// "zstd"); like Kafka's configuration, the match is case-sensitive. Any other
// string yields an error wrapping ErrUnknownCodec.
func ParseCodec(s string) (Codec, error) {
	for c, name := range codecNames {
		if s == name {
			return Codec(c), nil
		}
	}
	return 0, fmt.Errorf("%w %q", ErrUnknownCodec, s)
}

// AppendEncode appends the compressed form of src to dst and returns the
// extended slice. None appends src unchanged. The output of every other
// codec is a complete, self-delimiting stream, even for an empty src.
//
// It never retains src or dst: both may be reused as soon as it returns. If
// dst has enough spare capacity, the output is written into it, so src
// must not share memory with that spare capacity: the codecs read src as
// they write, and the output may be wrong. On error dst is returned
// unchanged.
//
// Errors: a *Error matching ErrUnknownCodec for an unknown codec, or
// ErrTooLarge for a snappy input over 4 GiB (too large for a block).
func (c Codec) AppendEncode(dst, src []byte) ([]byte, error) {
	return c.AppendEncodeLevel(dst, src, c.DefaultLevel())
}

// AppendDecode appends the decompressed form of src to dst and returns the
// extended slice. For None that is src itself.
//
// limit bounds the number of bytes this call appends; limit <= 0 means
// DefaultDecodeLimit. If the output would exceed it, AppendDecode stops and
// returns an error matching ErrTooLarge.
//
// Sizes that the input claims (in a snappy or zstd header, a gzip trailer)
// are checked against the limit, and against what the input could
// possibly decode to, before anything is allocated. The output buffer
// grows only as data is actually produced, and never past the limit.
//
// Growing it geometrically means a call can allocate up to about twice the
// limit in total (somewhat more for a zstd frame that does not state its
// size, decoded again into twice the room each time its output does not
// fit, up to the limit), plus the decoders' own working memory:
//
//   - for lz4, one block buffer of the size the frame header declares, at
//     most 4 MiB;
//   - for zstd, about one 128 KiB block.
//
// Malformed or truncated input, including empty input for a compressing
// codec, yields an error matching ErrCorrupt; an unknown codec one matching
// ErrUnknownCodec. All errors are of type *Error. On error AppendDecode
// returns dst with its original length, but the bytes between len(dst) and
// cap(dst) may have been overwritten.
//
// It never retains src or dst.
func (c Codec) AppendDecode(dst, src []byte, limit int) ([]byte, error) {
	if limit <= 0 {
		limit = DefaultDecodeLimit
	}
	// Keep len(dst)+limit representable.
	if limit > math.MaxInt-len(dst) {
		limit = math.MaxInt - len(dst)
	}
	var (
		out []byte
		err error
	)
	switch c {
	case None:
		if len(src) > limit {
			err = tooLarge(limit)
			break
		}
		out = append(dst, src...)
	case Gzip:
		out, err = gzipDecode(dst, src, limit)
	case Snappy:
		out, err = snappyDecode(dst, src, limit)
	case LZ4:
		out, err = lz4Decode(dst, src, limit)
	case Zstd:
		out, err = zstdDecode(dst, src, limit)
	default:
		err = ErrUnknownCodec
	}
	if err != nil {
		return dst, &Error{Codec: c, Op: opDecode, Err: err}
	}
	return out, nil
}

// CheckKafka reports compressed records, src, that AppendDecode takes but
// Kafka's Java reader of codec c refuses. So a broker can refuse on
// produce what Kafka's broker refuses, while AppendDecode goes on reading
// what an older runnel stored.
//
// Only lz4 has such forms. CheckKafka refuses:
//
//   - input that does not start with a frame (magic 0x184d2204: not a
//     legacy frame, magic 0x184c2102, nor a skippable one);
//   - a frame of dependent blocks;
//   - any byte after the first frame, where Kafka's reader stops. Records
//     that go on into a second frame are cut short for it. runnel refuses
//     even empty frames or stray bytes there, which Kafka's reader would
//     ignore but AppendDecode would not.
//
// For every other codec it returns nil.
//
// It decompresses nothing, and allocates only to refuse: it walks the
// lz4 frame's header and block sizes, leaving everything else (the header
// and block checksums, the frame's flags) to AppendDecode, which a caller
// runs after it.
//
// Errors: an *Error (Op "decode") matching ErrCorrupt.
func (c Codec) CheckKafka(src []byte) error {
	if c != LZ4 {
		return nil
	}
	if err := lz4CheckKafka(src); err != nil {
		return &Error{Codec: c, Op: opDecode, Err: err}
	}
	return nil
}
