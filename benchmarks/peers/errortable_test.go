package peers

import (
	"errors"
	"fmt"
	"testing"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/index"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/twmb/franz-go/pkg/kerr"
)

// kafkaError is franz-go's copy of Kafka's Errors.java entry for code,
// with kerr's two departures from Kafka's own source put back: code 6 is
// NOT_LEADER_OR_FOLLOWER since Kafka 2.7 (kerr keeps the older
// NOT_LEADER_FOR_PARTITION), BrokerNotAvailableException (8)
// extends ApiException, not RetriableException (kerr retries it), and
// ConcurrentTransactionsException (51), ShareSessionNotFoundException
// (122) and InvalidShareSessionEpochException (123) extend
// RetriableException (kerr does not retry them).
func kafkaError(t *testing.T, code int16) kerr.Error {
	t.Helper()
	var ke *kerr.Error
	if !errors.As(kerr.ErrorForCode(code), &ke) {
		t.Fatalf("kerr does not know Kafka code %d", code)
	}
	e := *ke
	switch code {
	case 6:
		e.Message = "NOT_LEADER_OR_FOLLOWER"
	case 8:
		e.Retriable = false
	case 51, 122, 123:
		e.Retriable = true
	}
	return e
}

// TestParityErrorTable (a parity test: .ci/run runs -run Parity) checks runnel's Kafka error table (package
// api) against franz-go's kerr, a copy of Kafka's Errors.java: for every
// code the table knows, the name and the retriability (Kafka's
// RetriableException subclasses) are Kafka's, and code → error → code
// goes round; every sentinel the table maps has its code's name and
// retriability; and the errors a broker or client call can return that
// have no Kafka code (local ones) map to none, rather than to a wrong
// one.
func TestParityErrorTable(t *testing.T) {
	known := 0
	for code := int16(-1); code <= 200; code++ {
		err := api.ForCode(code)
		var unknown *api.UnknownCodeError
		if code == 0 || errors.As(err, &unknown) {
			continue
		}
		known++
		ke := kafkaError(t, code)
		if got := api.Code(err); got != code {
			t.Errorf("code %d: ForCode gives %v, whose Code is %d", code, err, got)
		}
		if got := api.Name(err); got != ke.Message {
			t.Errorf("code %d: runnel's name %s, Kafka's %s", code, got, ke.Message)
		}
		if got := api.IsRetriable(err); got != ke.Retriable {
			t.Errorf("code %d (%s): runnel's retriable %v, Kafka's %v", code, ke.Message, got, ke.Retriable)
		}
	}
	if known < 20 {
		t.Fatalf("the table knows only %d codes", known)
	}

	// Every code Kafka has (as kerr knows them), the table's or not,
	// goes round (code → error → code) and is retriable exactly when
	// Kafka's error is: a code the table has no sentinel for (an
	// *UnknownCodeError, which a Client of a test's own or a Faults rule
	// ported from kfake may answer) is retried by runnel's clients when
	// kgo and Kafka's retry it (LEADER_NOT_AVAILABLE, say).
	for code := int16(-1); code <= 200; code++ {
		var ke *kerr.Error
		if code == 0 || !errors.As(kerr.ErrorForCode(code), &ke) {
			continue
		}
		want := kafkaError(t, code)
		err := api.ForCode(code)
		if got := api.Code(err); got != code {
			t.Errorf("code %d (%s): ForCode gives %v, whose Code is %d", code, want.Message, err, got)
		}
		if got := api.IsRetriable(fmt.Errorf("wrapped: %w", err)); got != want.Retriable {
			t.Errorf("code %d (%s): runnel's retriable %v, Kafka's %v", code, want.Message, got, want.Retriable)
		}
		if want.Retriable && api.Name(err) != want.Message {
			t.Errorf("code %d: runnel's name %s, Kafka's %s", code, api.Name(err), want.Message)
		}
	}

	// Every sentinel with a code: that code's name and retriability, and
	// ForCode of its code maps back to the same code.
	mapped := []error{
		api.ErrUnknownTopicOrPartition, api.ErrUnknownTopicID, api.ErrInvalidTopic,
		api.ErrTopicAlreadyExists, api.ErrInvalidPartitions, api.ErrInvalidRequiredAcks,
		api.ErrInvalidRequest, api.ErrPolicyViolation, api.ErrNotLeader,
		api.ErrNotEnoughReplicas, api.ErrRequestTimedOut, api.ErrOutOfOrderSequence,
		api.ErrDuplicateSequence, api.ErrProducerFenced, api.ErrUnknownProducerID,
		api.ErrBrokerClosed, api.ErrInvalidTimestamp, api.ErrUnsupportedVersion, api.ErrStorage,
		log.ErrOffsetOutOfRange, log.ErrRecordTooLarge, log.ErrInvalidRecord,
		log.ErrInvalidTimestamp, log.ErrInvalidConfig, log.ErrLogFenced, log.ErrClosed, log.ErrRollFailed,
		record.ErrCorrupt, &record.CorruptError{Reason: "x"}, compression.ErrCorrupt, compression.ErrTooLarge,
		// The root package's and the clients' aliases.
		runnel.ErrUnknownTopic, runnel.ErrUnknownTopicID, runnel.ErrInvalidTopic,
		runnel.ErrTopicExists, runnel.ErrInvalidPartitions, runnel.ErrPolicyViolation, runnel.ErrClosed,
		producer.ErrRecordTooLarge, producer.ErrOutOfOrderSequence, producer.ErrProducerFenced,
		producer.ErrInvalidTimestamp,
		// A malformed record in a sound batch (see log.ErrInvalidRecord).
		fmt.Errorf("%w: %w", log.ErrInvalidRecord, &record.CorruptError{Reason: "bad header count"}),
		// A deleted topic named by its ID.
		fmt.Errorf("%w: %w", api.ErrUnknownTopicOrPartition, api.ErrUnknownTopicID),
	}
	for _, err := range mapped {
		code := api.Code(err)
		if code <= 0 {
			t.Errorf("%v: no Kafka code", err)
			continue
		}
		ke := kafkaError(t, code)
		if api.Name(err) != ke.Message || api.IsRetriable(err) != ke.Retriable {
			t.Errorf("%v: %s (retriable %v); Kafka's code %d is %s (retriable %v)",
				err, api.Name(err), api.IsRetriable(err), code, ke.Message, ke.Retriable)
		}
		if back := api.Code(api.ForCode(code)); back != code {
			t.Errorf("%v: code %d → %v → code %d", err, code, api.ForCode(code), back)
		}
	}
	// What Kafka answers, where the mapping is a choice.
	for _, c := range []struct {
		err  error
		name string
	}{
		{api.ErrBrokerClosed, "BROKER_NOT_AVAILABLE"},
		{log.ErrLogFenced, "KAFKA_STORAGE_ERROR"},
		{api.ErrProducerFenced, "INVALID_PRODUCER_EPOCH"}, // a produce of an old epoch (KIP-588), not PRODUCER_FENCED
		{fmt.Errorf("%w: %w", log.ErrInvalidRecord, &record.CorruptError{Reason: "bad varint"}), "INVALID_RECORD"},
		{&record.CorruptError{Reason: "bad crc"}, "CORRUPT_MESSAGE"},
		{fmt.Errorf("%w: %w", api.ErrUnknownTopicOrPartition, api.ErrUnknownTopicID), "UNKNOWN_TOPIC_ID"},
	} {
		if got := api.Name(c.err); got != c.name {
			t.Errorf("%v: %s, want %s", c.err, got, c.name)
		}
	}

	// Local errors: of a client's own checks, or of a broker's own files
	// and directory. None has a Kafka code (UNKNOWN_SERVER_ERROR, -1), so
	// none is taken for a Kafka answer, nor retried as one.
	local := []error{
		runnel.ErrCorruptMetadata, runnel.ErrNewerMetadata,
		log.ErrNotLogDir, log.ErrBadCheckpoint, log.ErrBadTailCopy, log.ErrInvalidTopicID,
		vfs.ErrLocked, vfs.ErrNameTooLong, vfs.ErrNotSupported,
		index.ErrCorrupt, record.ErrTooLarge, compression.ErrUnknownCodec,
		producer.ErrClosed, producer.ErrMaxBuffered, producer.ErrNoTopic, producer.ErrNilRecord,
		producer.ErrInvalidPartition, producer.ErrDeliveryTimeout, producer.ErrInvalidOption, producer.ErrMaybeWritten,
		consumer.ErrClosed, consumer.ErrNotAssigned, consumer.ErrInvalidOffset, consumer.ErrInvalidOption,
	}
	for _, err := range local {
		if code := api.Code(err); code != -1 {
			t.Errorf("%v: local, yet Kafka code %d (%s)", err, code, api.Name(err))
		}
		if api.IsRetriable(err) {
			t.Errorf("%v: local, yet retriable", err)
		}
	}
}
