// Package log is one partition's durable, append-only, segmented log, in
// Kafka's on-disk format. A log is a directory (named <topic>-<partition>
// by the broker) of segments (see package segment) plus small checkpoint
// files:
//
//	00000000000000000000.log        a segment's batches, named by its base offset
//	00000000000000000000.index      its offset index
//	00000000000000000000.timeindex  its time index
//	recovery-point-checkpoint       offsets below it are synced (see Maintain)
//	log-start-offset-checkpoint     the first offset readers may see
//	leader-epoch-checkpoint         leader epoch → its first offset (KIP-101)
//	cleaner-checkpoint              where compaction's dirty section starts
//	00000000000000000000.snapshot   idempotent producers' last batches as of that offset
//	clean-shutdown                  present only while the log is cleanly closed
//	sync-failed-checkpoint          present after a failed fsync, until Open rewrote the tail
//
// It sits in the middle of the layer stack: above package segment (and
// index, record and vfs below it), below the broker (package runnel). The
// broker opens one Log per partition, in a [Partition] (its high watermark,
// its lock, and its readers' waits: [Partition.Changed], [Partition.Mark]
// with [Mark.ChangedPast], and a [Wake] for several partitions at once),
// and serves producers and consumers from them.
//
// An application embeds the broker rather than this package. What it
// takes from here are:
//
//   - the topic settings the broker's admin calls take: [TopicConfig] and
//     [Config], with [SyncPolicy], [CleanupPolicy] and [TimestampType];
//   - errors such as [ErrOffsetOutOfRange].
//
// Importing it next to the standard library's log needs a name for one of
// the two.
//
// # What a Log does
//
// A Log:
//
//   - validates and appends batches, assigning offsets by rewriting each
//     batch's base offset in place;
//   - rolls segments by size, age and index space;
//   - reads whole batches by offset or time;
//   - applies retention by time and size;
//   - deletes records before an offset;
//   - compacts (cleanup.policy compact): it keeps the latest record per
//     key, and drops tombstones after delete.retention.ms. As Kafka's
//     cleaner, each pass maps the keys of the dirty section only, in a key
//     map of bounded size, and max.compaction.lag.ms forces a pass;
//   - truncates for replication.
//
// Time comes from an injected [Clock] so that retention and compaction are
// tested without sleeping. Log runs no goroutine of its own for them: its
// owner (the broker) calls [Log.Maintain] periodically for retention,
// compaction and flush.ms. Its only goroutine is a group commit's fsync
// round, run apart from a waiter whose ctx may end (but on a vfs.MemFS),
// which Close waits for (see [Options.Go]).
//
// # Checkpoint files
//
// Checkpoint files use Kafka's text layout: a version line, a count line,
// one entry per line. They are replaced atomically: written to a .tmp
// file, synced, renamed, and the directory synced.
//
// # Idempotent producers
//
// The idempotent producers' state holds each producer's last batches, to
// answer retries as duplicates. It outlives the deletion of those batches
// by retention or DeleteRecordsBefore, until the producer expires
// ([Options.ProducerExpiration]), as Kafka's does since KIP-360. A retry
// of a deleted batch is still answered as a duplicate, with its offsets
// below the log start offset, and a gap in the producer's sequence is
// still refused.
//
// Across a restart, the state survives as far as a snapshot at or above
// the log start offset holds it. The clean Close writes one. After a
// crash, the one at the start's segment may have been pruned, as Kafka
// deletes its snapshots at or below the log start at a reload.
//
// It is snapshotted as Kafka does it: a snapshot file per segment roll,
// named by its offset (the log end offset it was written at). It is also
// snapshotted:
//
//   - at a clean Close;
//   - after a recovery;
//   - after a truncation;
//   - before DeleteRecordsBefore or retention moves the log start past
//     every snapshot.
//
// Open loads the newest snapshot at or below the log end offset it
// recovered, and replays the batches after it. An unreadable snapshot is
// logged and the next older one tried; with none, the log is replayed
// from its start. [RecoveryInfo] says which it loaded and how many batches
// it read.
//
// A truncation, and Open, remove the snapshots past the end. A truncation
// also rebuilds the state as of its new end, as Kafka's truncateAndReload
// does, from the newest snapshot at or below it and the batches after. It
// does so when that snapshot lies at or past the log end offset Open
// found and all that compaction has cleaned since. Else it drops the
// removed batches from the state it had.
//
// Retention and rolls prune the snapshots. Those past the recovery point
// stay, and so do the two newest at or below it that are not below the
// log start offset.
//
// Unlike Kafka's binary snapshots, these use the checkpoint layout (a
// Kafka .snapshot file is skipped as unreadable), in a version of
// runnel's own: version 1. Its last line is the CRC-32C (Castagnoli, in
// decimal) of the bytes before it, as Kafka's snapshots carry one. A
// snapshot whose checksum fails, such as one with a digit changed, is
// unreadable: a wrong one would answer retries wrongly.
//
// Version 0 snapshots (no checksum, written by an older runnel) are still
// read. The single producer-state-checkpoint file of an older runnel is
// read and replaced. The other checkpoints keep Kafka's version 0.
//
// # Durability
//
// Durability is a setting ([SyncPolicy]). By default an append returns
// only after its bytes are fsynced, and concurrent appends share one
// fsync (group commit).
//
// A failed fsync is never retried: the log fences itself and every later
// append fails with [ErrLogFenced]. That is because the kernel may already
// have dropped the dirty pages. Or, as Linux may, it marked them clean, so
// that the file still reads them back and no later fsync writes them.
//
// The fenced log records its durable offset in a sync-failed-checkpoint
// file. So does a Close whose flush failed, and an Open whose recovery's
// fsync failed, at its recovery point. The next Open, in the same boot or
// after a crash, then:
//
//  1. recovers the log as after a crash;
//  2. writes the bytes from that offset on anew: truncated and written
//     back at the same offsets and positions;
//  3. fsyncs them before it serves them or appends after them
//     (RecoveryInfo.RewrittenBytes).
//
// Before it cuts a segment, it saves the bytes it will write back in a
// synced tail copy, <base>.log.rewrite, removed once they are synced
// back. An Open that finds one (the write back failed, or the power went)
// puts it back first, once its name is durable too (which a failed
// directory fsync may have left it not). So a failure part way loses
// nothing.
//
// The tail goes to the copy and back a block (1 MiB) at a time, never
// onto the heap whole. What is read back is checked against the copy's
// checksum before the fsync ([ErrBadTailCopy]). The copy takes as much
// disk space as the tail: an Open that cannot save it fails (the disk
// full, say) and changes nothing.
//
// Nothing is cut that a reader may have seen:
//
//   - under SyncAlways the high watermark never passed the durable offset,
//     and the records after it (never acknowledged) are kept;
//   - under SyncPeriodic and SyncNever the records acknowledged and read
//     past it stay at their offsets.
//
// A crash during that rewrite loses those records, which were not
// durable: as any crash may under SyncPeriodic and SyncNever.
//
// A checkpoint that cannot be written (the disk failing) leaves the log
// fenced. Its Close tries again and fails if it still cannot. The process
// then remembers the durable offset the checkpoint would have held, for
// the log's directory on its file system:
//
//   - the file system is the FS under its vfs.Wrapper wrappers, such as
//     vfs.WithFaults;
//   - for the OS file system, the directory is its absolute path, or
//     another path to the same directory (a symbolic link), by
//     os.SameFile;
//   - for a vfs.MemFS, it is its path from the root, as the MemFS takes a
//     relative one.
//
// An Open of the log in the same process takes that offset as the
// checkpoint (the lower offset, if it finds one too). It writes the
// checkpoint, and fails if it cannot, then writes the tail anew as above.
// The process forgets once that is durable, or when the log is discarded
// ([Log.Discard], for a directory about to be removed).
//
// An Open that does not know trusts the tail, which a later power cut may
// take, acknowledged records with it. Such an Open is one:
//
//   - in another process in the same boot (a restarted broker, the
//     machine up);
//   - on a file system wrapped in a way that Unwrap does not see through.
//
// # Recovery
//
// Opening a log recovers it. Segments from the recovery point on are read
// batch by batch and their indexes rebuilt:
//
//   - a torn tail past the recovery point is cut and reported
//     ([RecoveryInfo]);
//   - so is the end of a rolled segment whose last batches were lost whole
//     past it (the segments after a cut go);
//   - bad bytes below it are an error matching record.ErrCorrupt that
//     names the file and position.
//
// The recovery point moves:
//
//   - to a new segment's base when a syncing log rolls;
//   - to the offset fsynced so far at each Maintain, as Kafka checkpoints
//     its flushed offsets.
//
// So batches acknowledged since the last Maintain lie past it, and one
// gone bad there is cut as a torn write is.
//
// A log closed cleanly opens by reading its checkpoints and the tail of
// each segment's index.
//
// Either way, each segment's batches must end below the next segment's
// base. A cleanly closed log's active segment must end exactly at the log
// end offset that Close recorded (see segment.OpenOptions). A batch header
// gone bad there is an error of Open, never a log end offset that was not
// reached. Elsewhere reads find it (see package segment, "Offsets").
//
// A clean-shutdown marker that the files show stale is not trusted, and
// the log is recovered as after a crash. (A crash brought it back, or it
// was copied with other files than its own.) The files show it stale
// with:
//
//   - a recovery point below the active segment, or of 0 beside records
//     (a clean Close at 0 leaves an empty log);
//   - an active segment that goes on past a batch ending at the recorded
//     end (appends after that Close, or a torn tail).
//
// So is a marker that records, against what Open finds:
//
//   - another log end or active segment;
//   - another max timestamp of the active segment, or offset of it, than
//     Open finds from its time index's last entry and the batches after
//     its offset index's. (A time index may have lost its last entries to
//     a failed write: Close makes that max timestamp the time index's last
//     entry, as Kafka does.)
//   - another number of time index entries. (A time index may have lost
//     entries before that of the max timestamp, found again in the batches
//     after the offset index's last entry: later answers rest on those
//     entries.)
//
// So is an older runnel's empty marker, which records none of them. The
// active segment is then scanned once, from its base when no
// recovery-point file is beside the marker: the Close that wrote it had
// synced the segments below.
//
// An active segment with no batch ending at the recorded end lost records
// the Close recorded: still an error.
//
// A log end below the log start offset checkpoint empties the log, as
// Kafka's log loading does, after a crash or beside a clean-shutdown
// marker (then stale). Such a log end comes from records deleted by
// DeleteRecordsBefore before they were synced, then lost to a crash; or
// from segment files lost. Every segment, the leader epochs and the
// producer state go, and the log starts anew at the log start offset,
// which never comes down (see [Open]).
//
// [OpenContext] cuts a long recovery short when its ctx ends, leaving the
// rest of it to the next Open.
package log
