// Package segment implements one segment of a partition's log: Kafka's file
// triple, named by the offset of the segment's first record as 20 digits:
//
//	00000000000000004242.log        record batches (RecordBatch v2), back to back
//	00000000000000004242.index      sparse offset index: relative offset → position
//	00000000000000004242.timeindex  sparse time index: max timestamp → relative offset
//
// A Segment appends validated batches with one write call, finds the
// position of an offset or a timestamp through the sparse indexes and a
// short scan of batch headers, and hands out read views of whole batches
// that never change under the reader (zero copy on the in-memory FS, one
// read on the OS's), or writes a range to an io.Writer (sendfile-ready for
// TCP).
//
// Recovery (Recover) reads every batch from the start, checking length,
// magic and CRC, and rebuilds both indexes. Bad bytes at the end of the
// file with no valid batch after them are a torn write: they are cut and
// reported in the RecoveryResult. Bad bytes followed by a valid batch, or
// bad bytes holding offsets below the durable offset the caller vouches for,
// are corruption of acknowledged data: Recover cuts nothing and returns a
// *record.CorruptError naming the file and position.
//
// The layer above (package log) owns a partition's ordered segments and
// decides when to roll, recover, truncate and delete; a Segment is written
// by one goroutine at a time and read by any number.
package segment
