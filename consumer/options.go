package consumer

import (
	"fmt"
	"log/slog"
	"time"
)

// Opt configures a Consumer (see New). Options are applied in order; New
// validates the result.
type Opt func(*config)

type config struct {
	minBytes     int
	maxWait      time.Duration
	maxBytes     int
	maxPartBytes int
	reset        ResetPolicy
	backoff      time.Duration
	checkCRCs    bool
	crcsSet      bool         // CheckCRCs was given: it overrides the Client's CRCChecker
	logger       *slog.Logger // nil means nowhere: New puts a discarding one there
}

func defaults() config {
	return config{
		minBytes:     1,
		maxWait:      500 * time.Millisecond,
		maxBytes:     50 << 20,
		maxPartBytes: 1 << 20,
		reset:        ResetEarliest,
		backoff:      500 * time.Millisecond,
		checkCRCs:    true,
	}
}

// validate returns ErrInvalidOption naming the first option out of range.
func (c *config) validate() error {
	bad := func(name string, v any) error { return fmt.Errorf("%w: %s(%v)", ErrInvalidOption, name, v) }
	switch {
	case c.minBytes < 0:
		return bad("FetchMinBytes", c.minBytes)
	case c.maxWait < 0:
		return bad("FetchMaxWait", c.maxWait)
	case c.maxBytes < 1:
		return bad("FetchMaxBytes", c.maxBytes)
	case c.maxPartBytes < 1:
		return bad("FetchMaxPartitionBytes", c.maxPartBytes)
	case c.reset < ResetEarliest || c.reset > ResetNone:
		return bad("ResetOffset", c.reset)
	case c.backoff < 0:
		return bad("RetryBackoff", c.backoff)
	}
	return nil
}

// FetchMinBytes is how many bytes of records a fetch waits for, up to
// FetchMaxWait, before it answers (Kafka's fetch.min.bytes).
//
//   - Default 1: a fetch answers as soon as there is anything.
//   - 0, as in Kafka, makes a fetch answer at once with what there is,
//     maybe nothing: it is FetchMaxWait(0), whatever FetchMaxWait says
//     (see there).
//   - One above [FetchMaxBytes] (or the broker's cap, see there) waits for
//     that many, as Kafka's broker waits for min(fetch.min.bytes,
//     fetch.max.bytes).
//
// New returns [ErrInvalidOption] for a negative n.
func FetchMinBytes(n int) Opt {
	return func(c *config) { c.minBytes = n }
}

// FetchMaxWait is how long a fetch waits for FetchMinBytes (Kafka's
// fetch.max.wait.ms). Default 500 ms. New returns [ErrInvalidOption] for a
// negative d.
//
// 0 makes a fetch answer at once with what there is: Poll returns at
// once, maybe with nothing, also when it has nothing to fetch. So a loop
// of Polls over idle partitions polls busily, as Kafka's consumer does
// with fetch.max.wait.ms=0.
//
// The Records iterator, which never returns empty-handed, would only spin.
// So after a Poll of its that found nothing, its next fetch waits up to
// 500 ms for one record (whatever [FetchMinBytes]), which the broker sends
// as soon as it is appended, so records still come without delay. With
// nothing to fetch at all (everything paused, say) it waits up to 500 ms
// for a change.
//
// A partition backed off after an error ends either wait when it may be
// retried, and once a fetch returns something the next answers at once
// again.
func FetchMaxWait(d time.Duration) Opt {
	return func(c *config) { c.maxWait = d }
}

// FetchMaxBytes bounds the bytes of one fetch over all partitions (Kafka's
// fetch.max.bytes), except that a fetch returns at least one batch however
// large. Default 50 MiB. New returns [ErrInvalidOption] for n < 1.
//
// It is the client's own setting, as in Kafka. A *runnel.Broker caps it at
// its Config.FetchMaxBytes (Kafka's broker fetch.max.bytes, 55 MiB by
// default), and on disk reads a fetch's batches into memory, up to the
// smaller of the two (see its Fetch). So a consumer whose n comes from
// outside the program (a tenant's) lets that choose how much memory each
// of its polls takes, up to the broker's cap.
func FetchMaxBytes(n int) Opt {
	return func(c *config) { c.maxBytes = n }
}

// FetchMaxPartitionBytes bounds the bytes of one partition in one fetch
// (Kafka's max.partition.fetch.bytes). Default 1 MiB. New returns
// [ErrInvalidOption] for n < 1.
//
// As in Kafka, the first batch of the first partition with records in the
// fetch is returned whole however large. So a partition whose next batch
// is larger than n gets it in a fetch where it is the first with records:
// at the latest when its turn at the head of the fetch comes (see
// [Consumer.Poll]).
func FetchMaxPartitionBytes(n int) Opt {
	return func(c *config) { c.maxPartBytes = n }
}

// ResetOffset sets what happens when a partition's position is out of
// range, and when a partition read before is unknown to the Client (its
// topic was deleted: see [Consumer.Poll]). Default [ResetEarliest]. New
// returns [ErrInvalidOption] for an unknown policy.
//
// A position is out of range below the log start offset (retention or
// DeleteRecords removed the records) or past the log end (a Seek past the
// end, records the broker lost: see the package doc), as Kafka's
// auto.offset.reset applies to both. A position above the high watermark
// but not past the log end is not out of range, in Kafka either: its
// fetches wait for the high watermark to reach it.
func ResetOffset(p ResetPolicy) Opt {
	return func(c *config) { c.reset = p }
}

// RetryBackoff is how long a partition whose fetch or look-up failed with
// an error that is not permanent (an unknown topic, not the leader, a
// request timed out, a corrupt batch: see [Consumer.Poll]) is left out of
// fetches before it is tried again. It is also how long Records waits
// after a Poll that failed with an error that is not permanent (a Seek,
// Assign, Unassign, Pause or Resume ends that wait: see
// [Consumer.Records]). Default 500 ms. New returns [ErrInvalidOption] for a
// negative d.
//
// A failed look-up of a position (ListOffset, for Start, End, AtTime or
// a reset) is retried after RetryBackoff, ending other partitions' long
// poll then: a ListOffset is a request of its own, as Kafka's consumer
// sends its ListOffsets beside the fetch in flight.
//
// A failed fetch is retried after RetryBackoff or, if other partitions'
// long poll is under way then, when it ends (at most FetchMaxWait
// later: one fetch at a time, as Kafka's consumer has one in flight per
// broker).
//
// 0 retries at once: against a Client that keeps answering a retriable
// error, a loop that only calls it.
//
// The wait does not grow with consecutive failures, where Kafka's consumer
// doubles retry.backoff.ms (100 ms) up to retry.backoff.max.ms (1 s,
// KIP-580) and franz-go grows its backoff from 250 ms to 5 s (v1.22; 2.5 s
// in older releases, v1.15 say). Against a broker in the same process a
// retry costs a call, not a round trip over a network that may be
// overloaded, and a fixed wait bounds how late a partition that comes back
// (a topic created at last) is read.
func RetryBackoff(d time.Duration) Opt {
	return func(c *config) { c.backoff = d }
}

// CheckCRCs sets whether Poll verifies the CRC-32C of every fetched batch
// (Kafka's check.crcs).
//
// Default true, unless the Client is a [CRCChecker] that says it has
// checked them (as *runnel.Broker, in the same process, does). Then
// checking again would only repeat its work.
//
// Unchecked, a batch whose last offset lies below its base is still
// refused ([record.ErrCorrupt]), so that a position never moves back.
func CheckCRCs(on bool) Opt { return func(c *config) { c.checkCRCs, c.crcsSet = on, true } }

// CRCChecker is an optional ability of a Client: ChecksCRCs reports
// whether every batch its Fetch returns has had its CRC-32C verified, and
// the bytes cannot have changed between that check and the consumer (read
// back from storage after the check, or sent over a network). A consumer
// of such a Client skips its own check unless CheckCRCs(true) is given.
type CRCChecker interface {
	ChecksCRCs() bool
}

// Logger sets where the consumer logs offset resets and partition errors.
// Default: nowhere. A nil l keeps the default. Its handler is called on
// the goroutine of the call that logs (a Poll, a Records loop,
// AssignTopic), or of a concurrent one that hands on the lines logged
// meanwhile, in the order logged; it holds none of the consumer's locks
// then, so it may call the consumer's methods (Position, Pause,
// Close...). Only its Enabled is asked while a lock is held.
func Logger(l *slog.Logger) Opt { return func(c *config) { c.logger = l } }
