package consumer

import (
	"fmt"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/record"
)

type offsetKind uint8

const (
	kindStart offsetKind = iota // the zero Offset
	kindEnd
	kindExact
	kindTime
)

// Offset is where a partition's consumption starts: an exact offset, the
// log start, the end (the high watermark), or the first record at or after
// a time. Only At is resolved at once; the others are resolved with the
// Client's ListOffset on the next Poll. The zero Offset is Start().
type Offset struct {
	kind offsetKind
	v    int64 // the offset, or the time in ms
}

// At is the exact offset o. Assign and Seek return ErrInvalidOffset for a
// negative o. An offset past the end is out of range on the next Poll,
// and the ResetOffset policy applies.
func At(o int64) Offset { return Offset{kind: kindExact, v: o} }

// Start is the log start offset: the oldest record still kept.
func Start() Offset { return Offset{kind: kindStart} }

// End is the high watermark as the next Poll finds it, as Kafka's
// seekToEnd, which is lazy: only records produced after that Poll's look-up
// are read, and those produced between Assign (or Seek) and that Poll are
// skipped. To read everything produced after a point, take the high
// watermark at that point (the Client's ListOffset with api.Latest) and
// Assign At it.
func End() Offset { return Offset{kind: kindEnd} }

// AtTime is the first record whose timestamp is at or after t
// (millisecond precision), as Kafka's ListOffsets finds it; the end when
// every record is older.
//
//   - A t before 1970 means the Unix epoch.
//   - A t past what an int64 of milliseconds holds (some 292 million years
//     after 1970) is past every timestamp, the largest (math.MaxInt64 ms,
//     which a record may have) too: it resolves as End does.
func AtTime(t time.Time) Offset {
	var ms int64
	switch {
	case t.Before(time.UnixMilli(0)):
	case !record.MillisFit(t):
		// Past the largest timestamp, math.MaxInt64 ms (t.UnixMilli
		// would wrap): no timestamp is at or after t, and the look-up
		// is Latest's, which no time in range is (they are not
		// negative).
		ms = pastLastMilli
	default:
		ms = t.UnixMilli()
	}
	return Offset{kind: kindTime, v: ms}
}

// pastLastMilli is the v of AtTime's Offset for a time past the largest
// timestamp: api.Latest, which listTimestamp passes on as it is.
const pastLastMilli = api.Latest

// String formats o for logs: "42", "start", "end" or a time.
func (o Offset) String() string {
	switch o.kind {
	case kindEnd:
		return "end"
	case kindExact:
		return fmt.Sprint(o.v)
	case kindTime:
		if o.v == pastLastMilli {
			return "time past math.MaxInt64 ms"
		}
		return "time " + time.UnixMilli(o.v).UTC().Format(time.RFC3339Nano)
	}
	return "start"
}

func (o Offset) validate() error {
	if o.kind == kindExact && o.v < 0 {
		return fmt.Errorf("%w: At(%d)", ErrInvalidOffset, o.v)
	}
	return nil
}

// listTimestamp is the ListOffset argument that resolves o.
func (o Offset) listTimestamp() int64 {
	switch o.kind {
	case kindEnd:
		return api.Latest
	case kindTime:
		return o.v
	}
	return api.Earliest
}

// ResetPolicy is where a partition goes when its position is out of
// range (see ResetOffset).
//
// The default is ResetEarliest rather than Kafka's "latest". In an
// embedded log, a position usually falls out of range because retention
// or DeleteRecords overtook a slow reader. Going to the earliest record
// left then skips only what was deleted, where "latest" would skip
// everything still there.
//
// franz-go's kgo does the same below the log start. Past the end (records
// the broker lost), its default since v1.22, RewindOffset(time.Minute),
// resumes a minute's records before the last one consumed, where
// ResetEarliest goes back to the log start. Before v1.22, kgo's default
// was the start, as here.
//
// ResetLatest is the Java consumer's "latest": it skips to the high
// watermark also below the log start, after records were consumed. kgo
// (v1.22) applies its ConsumeResetOffset there only to a partition that
// has returned no record yet; one that fell below the log start while
// consuming resumes at the log start whatever the policy, even
// NewOffset().AtEnd().
type ResetPolicy int8

const (
	// ResetEarliest moves the position to the log start offset.
	ResetEarliest ResetPolicy = iota
	// ResetLatest moves the position to the high watermark.
	ResetLatest
	// ResetNone keeps the position and reports the error in the
	// partition's Fetch: a *PartitionError matching
	// log.ErrOffsetOutOfRange, or api.ErrUnknownTopicOrPartition or
	// api.ErrUnknownTopicID for a partition gone. The partition is not
	// fetched again until Seek or Assign gives it a new position.
	ResetNone
)

// String returns the policy's name, such as "latest".
func (p ResetPolicy) String() string {
	switch p {
	case ResetEarliest:
		return "earliest"
	case ResetLatest:
		return "latest"
	case ResetNone:
		return "none"
	}
	return fmt.Sprintf("ResetPolicy(%d)", int8(p))
}

func (p ResetPolicy) offset() Offset {
	if p == ResetLatest {
		return End()
	}
	return Start()
}
