// Package record holds runnel's Record and the codec of Kafka's RecordBatch
// v2 (magic 2), byte for byte as Kafka writes it on disk and on the wire.
//
// It is a leaf of the layer stack, above only package compression, which
// it calls to encode and decode a batch's records. Segment, log and the
// clients build on it.
//
// # The batch
//
// All integers are big-endian. A batch is 61 bytes of header followed by its
// records (compressed as one block when the codec is not none):
//
//	offset size field
//	     0    8 baseOffset            first offset of the batch
//	     8    4 batchLength           bytes after this field (total = 12 + batchLength)
//	    12    4 partitionLeaderEpoch  stamped by the leader; -1 from producers
//	    16    1 magic                 always 2
//	    17    4 crc                   CRC-32C (Castagnoli) of bytes 21..end
//	    21    2 attributes            bits 0-2 codec (0 none, 1 gzip, 2 snappy,
//	                                  3 lz4, 4 zstd), bit 3 timestamp type
//	                                  (1 = LogAppendTime), bit 4 transactional,
//	                                  bit 5 control, bit 6 delete horizon set
//	    23    4 lastOffsetDelta       offset of the last record - baseOffset
//	    27    8 baseTimestamp         first timestamp (ms), or the delete horizon
//	    35    8 maxTimestamp          largest timestamp (ms)
//	    43    8 producerId            -1 when not idempotent
//	    51    2 producerEpoch
//	    53    4 baseSequence          -1 when not idempotent
//	    57    4 recordCount
//	    61    … records
//
// The CRC covers attributes to the end, so the broker assigns offsets and
// stamps the leader epoch by rewriting bytes 0..15 in place (SetBaseOffset,
// SetLeaderEpoch) without recomputing it or re-encoding anything.
//
// # The record
//
// Each record is varint-framed. Varints are zigzag-encoded (as
// encoding/binary.PutVarint writes them) and read as Kafka's ByteUtils
// reads them:
//
//   - the timestamp delta's in at most 10 bytes (a varlong);
//   - every other's in at most 5 (a 32-bit varint; Kafka refuses a longer
//     one, and drops the bits of a 5th byte past the 32nd).
//
// A record is laid out as:
//
//	length          varint  bytes that follow
//	attributes      int8    unused, 0
//	timestampDelta  varint  timestamp - baseTimestamp
//	offsetDelta     varint  offset - baseOffset
//	keyLength       varint  -1 for a null key (any negative reads as null)
//	key             bytes
//	valueLength     varint  -1 for a null value (a tombstone; as the key)
//	value           bytes
//	headerCount     varint
//	headers         per header: keyLength varint, key, valueLength varint
//	                (-1 = null; as the key), value; a header key is never null
//
// # Reading without trust
//
// Parse checks the header of one batch against the bytes it has, and
// Validate its CRC. A RecordIter decodes records lazily, checking every
// length and varint against what is left and the record count against the
// records found.
//
// Errors match ErrCorrupt (and ErrTruncated when the input simply ends
// early, as a torn write does). Nothing panics on any input, which the
// fuzz targets check.
package record
