package log

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed is returned by every method of a closed Log.
	ErrClosed = errors.New("runnel/log: log is closed")
	// ErrLogFenced is matched by every append after a write or fsync
	// failed; the log must be closed and reopened (which recovers it, and
	// writes anew what the failure may have left undurable: see Open).
	ErrLogFenced = errors.New("runnel/log: log fenced after a failed write or sync")
	// ErrRollFailed is matched by an append that had to roll the active
	// segment and could not create the new segment's files (nor open the
	// directory to sync their names): the process at its limit of open
	// files (EMFILE), say. Nothing was written, the log is not fenced,
	// and the next append tries the roll again; the error wraps the file
	// system's. An append after it that does not roll matches it too
	// while the directory cannot be opened to sync the removal of the
	// failed roll's files. Retriable, as Kafka's KAFKA_STORAGE_ERROR.
	ErrRollFailed = errors.New("runnel/log: the segment roll could not create the new segment")
	// ErrOffsetOutOfRange is returned for a read or seek outside
	// [LogStartOffset, LogEndOffset].
	ErrOffsetOutOfRange = errors.New("runnel/log: offset out of range")
	// ErrRecordTooLarge is returned by Append for a batch larger than
	// MaxMessageBytes, or batches that add up to more than a segment
	// holds (2 GiB - 1 bytes, or 2^31 - 1 records: its offsets).
	ErrRecordTooLarge = errors.New("runnel/log: record batch too large")
	// ErrInvalidRecord is returned by Append for a well-formed batch that
	// breaks a rule of the log. It is Kafka's INVALID_RECORD. The rules
	// broken are:
	//
	//   - no records;
	//   - offsets deltas that disagree with the count;
	//   - a base offset other than 0;
	//   - a control or transactional batch;
	//   - a delete horizon (the cleaner's mark);
	//   - an idempotent batch without a sequence number;
	//   - a null key on a compacted topic;
	//   - a refused timestamp ([ErrInvalidTimestamp]);
	//   - a record that does not decode in a batch whose header and CRC
	//     are sound. The error then wraps the *record.CorruptError that
	//     says why, and matches record.ErrCorrupt too.
	ErrInvalidRecord = errors.New("runnel/log: invalid record")
	// ErrInvalidTimestamp is returned by Append for a batch whose
	// timestamps Kafka's broker refuses (INVALID_TIMESTAMP):
	//
	//   - one a producer marked LogAppendTime, on a LogAppendTime topic or
	//     with max timestamp -1;
	//   - on a CreateTime topic, one with a record stamped outside Config's
	//     TimestampBeforeMax and TimestampAfterMax around the log's clock.
	//
	// It matches ErrInvalidRecord too.
	ErrInvalidTimestamp = fmt.Errorf("%w: invalid timestamp", ErrInvalidRecord)
	// ErrInvalidConfig is returned by Open and Config.Validate for a
	// Config out of range. The error names the field, its Kafka config
	// and the range.
	//
	// So it is returned by the broker's CreateTopic, AlterTopicConfig and
	// UpdateTopicConfig for a topic's config, and by runnel.Open for its
	// TopicDefaults. Open and runnel.Open also return it for a
	// CleanerMapBytes below MinCleanerMapBytes, or an FS or Clock that is
	// a nil pointer.
	ErrInvalidConfig = errors.New("runnel/log: invalid config")
	// ErrNotLogDir is returned by Open for a directory holding files that
	// are not a log's.
	ErrNotLogDir = errors.New("runnel/log: directory is not a log")
)
