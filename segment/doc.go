// Package segment implements one segment of a partition's log: Kafka's file
// triple, named by the offset of the segment's first record as 20 digits:
//
//	00000000000000004242.log        record batches (RecordBatch v2), back to back
//	00000000000000004242.index      sparse offset index: relative offset → position
//	00000000000000004242.timeindex  sparse time index: max timestamp → relative offset
//
// A Segment:
//
//   - appends validated batches with one write call;
//   - finds the position of an offset or a timestamp through the sparse
//     indexes and a short scan of batch headers;
//   - hands out read views of whole batches that never change under the
//     reader (zero copy on the in-memory FS, one read on the OS's), or
//     writes a range to an io.Writer (sendfile-ready for TCP).
//
// It sits below package log, which keeps a partition's segments in order
// and decides when to roll, retain and compact them. It sits above
// packages index, record and vfs, which it builds on. Applications do not
// use it directly: the broker (package runnel) reaches it through package
// log.
//
// # Recovery
//
// Recovery (Recover) reads every batch from the start, checking length,
// magic and CRC, and rebuilds both indexes. Of the bad bytes it finds:
//
//   - Bad bytes at the end of the file with no valid batch after them are
//     a torn write: they are cut and reported in the RecoveryResult.
//   - So are bad bytes followed by a valid batch when a sector of zeros
//     lies between them (a whole aligned 512-byte sector, or the end of the
//     sector the valid batches end in). That is a write the disk never made
//     while it made later ones, which a power loss leaves on a file system
//     that commits a file's size before all its data and reads what was
//     never written as zeros (XFS).
//   - Other bad bytes followed by a valid batch, and bad bytes holding
//     offsets below the durable offset the caller vouches for, are taken
//     for corruption of acknowledged data. Recover cuts nothing and returns
//     a *record.CorruptError naming the file and position.
//
// ext4 with data=writeback may leave a block's old content where a write
// was lost: Recover cannot tell it from corruption, and refuses it too.
//
// # Indexes
//
// The indexes are sparse and can always be rebuilt from the .log, so a
// Segment trusts an entry only as far as the log confirms it. Open checks
// the index files' sizes and each index's last entry against the log (see
// Open); Recover rebuilds both indexes. Every other entry is checked when a
// lookup uses it, with the batch header the lookup reads anyway:
//
//   - An offset index entry (o, p) is used only if the batch at position p
//     has a sane header (magic, a length within the segment) and holds o:
//     base <= o <= last. Batches are in offset order, so no batch before p
//     holds o or a later offset, and a scan forward from p cannot pass the
//     batch holding the offset looked up (o is at most that offset).
//   - A time index entry (T, o) is used only if the batch holding o has T
//     as its max timestamp. A Segment appends a time entry only as the
//     largest max timestamp of the batches up to o's, with o an offset of
//     the first batch that has it. So every batch before o's has a smaller
//     max timestamp and holds no record a search for T (or later) wants.
//
// These corruptions of a time entry are not caught:
//
//   - an entry moved to a later batch with the same max timestamp (batches
//     stamped in the same millisecond);
//   - an entry whose timestamp and offset are both changed to a batch's
//     own max timestamp and offset when an earlier batch has a larger one
//     (two fields corrupted consistently). A time lookup may then start
//     past records it wants, and MaxTimestampBelow answer too low.
//
// MaxTimestampBelow uses the two indexes together. Both get an entry at
// the same batches (the time index only when the largest timestamp grew).
// So the time entry with the greatest offset at or before an offset
// entry's says the largest max timestamp of the batches up to that entry's
// batch. It checks both entries as above, and reads every header from the
// start of the segment when one fails or an index was found bad before.
//
// Append adds an index point's time entry before its offset entry, so that
// a reader that finds the offset entry during an Append of several batches
// finds the time entry too.
//
// Open cannot tell a time index that lost entries before the offset
// index's last one: it scans only the batches after that entry for the max
// timestamp. So the files are written so that a .index never holds entries
// the .timeindex beside it does not cover, whatever write or fsync fails,
// in the same boot or before a power cut:
//
//   - Seal seals (writes and syncs) the time index before the offset
//     index;
//   - Open, finding one index file missing, recreates both, the .index
//     removed first;
//   - Recover of a sealed segment empties the .index durably before it
//     resets the .timeindex, and writes the rebuilt offset entries only
//     once the time index is sealed.
//
// Nothing orders the two files' writes while a segment is active: Open
// recovers the active segment after a crash, and Close syncs both before a
// clean-shutdown marker may vouch for them.
//
// An entry that fails its check is no error and is never followed. The
// lookup falls back to the entry before it (checked in turn) or to the
// start of the segment (for a search by time, the batch holding its from
// offset). It answers as a rebuilt index would, more slowly.
//
// The entry is remembered as bad, so that later lookups skip it without
// reading the log again, and the segment reports the index in
// IndexDistrusted. Close then removes that index's file, so that the next
// Open reports needsRecovery and Recover rebuilds it. Nothing is logged.
//
// A failed offset check is blamed on the index only once the scan from the
// earlier entry has succeeded. When that scan finds a corrupt header at
// the entry's position, a batch boundary, it is the log that is bad there,
// and the read returns the *record.CorruptError, as it would have without
// the check. A time entry is not blamed when the batch it names fails its
// CRC check: that error is returned.
//
// Lookups check entries while appends go on: an entry is added only after
// its batch is written and counted in the segment's size, and a lookup
// loads the size after the entry. A lookup that races a TruncateTo may use
// an entry whose batch the truncation just removed and distrust a sound
// index; that costs a rebuild at the next Open, never a wrong answer.
//
// # Offsets
//
// A batch's CRC covers its last offset delta but not its base offset. A
// header is read, for its offsets, before the batch's CRC is checked (when
// it is at all: a scan reads headers alone). So every walk over the
// batches (reads, scans, Open's scan of the tail, Recover) checks the
// offsets it reads with a few comparisons, and no read. As in Kafka:
//
//   - the offsets of a segment increase strictly from batch to batch
//     (compaction leaves gaps, never overlaps);
//   - the first batch starts at or above the segment's base;
//   - every batch lies within 2^31-1 of it and below the segment's limit,
//     the base of the segment after it (OpenOptions.Limit).
//
// A batch that breaks the order is a *record.CorruptError naming the file
// and its position. Beyond that:
//
//   - A batch whose last offset stops a read (it holds the caller's bound,
//     the high watermark) has its CRC checked first, when it is the first
//     batch of the read: a last offset delta gone bad would stop every read
//     there, silently.
//
//   - A batch after a gap in the offsets may be one whose base offset went
//     bad, or follow one whose last offset delta shrank, hiding records. A
//     scan that ends at such a batch checks the CRC of the batch before it
//     when the offset sought lies in the gap, and that the batch after it
//     starts above its last offset. A read returns such a batch only once
//     the batch after it (or the segment's end) confirms it. Segments
//     without gaps (all but compacted ones) pay nothing for this.
//
//   - Where a header says where the segment ends, Open checks it. It must
//     lie below the limit, and, for its active segment, exactly at
//     OpenOptions.End, the log end offset a log closed cleanly recorded.
//     That also makes any corruption of its last batch's offsets an error
//     of Open, never a log end offset that was not reached. Open checks it
//     with the last batch's CRC when the batches end short of the limit.
//     Open also checks the max timestamps it scans against the time
//     index's last entry.
//
//   - In the process that writes a segment, Append keeps its limit at the
//     offset after its last batch, and Seal leaves it there, so the last
//     batch's offsets are checked against it as Open's are.
//
// What no check can tell apart:
//
//   - a base offset that moved within the gaps around its batch (the
//     offsets still increase; only compacted segments have gaps);
//   - after a crash, that of the active segment's last batch (Recover
//     checks CRCs and the order, and the end offset is not known).
//
// A Read from a position has not seen the batch before it: a caller that
// walks a segment with Read checks each Read's first batch against the
// last one before it.
//
// # Descriptors and goroutines
//
// An active segment holds its three files open. A sealed one holds only
// its .log, its indexes being mapped (or copied) with their files closed
// (see package index). So a log of n segments holds n+2 descriptors.
//
// The layer above (package log) owns a partition's ordered segments and
// decides when to roll, recover, truncate and delete. A Segment is written
// by one goroutine at a time and read by any number.
package segment
