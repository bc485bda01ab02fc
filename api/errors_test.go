package api

import (
	"errors"
	"fmt"
	"testing"

	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

func TestErrorTable(t *testing.T) {
	require.EqualValues(t, 0, Code(nil))
	require.Nil(t, ForCode(0))
	seen := map[int16]bool{}
	for _, e := range table {
		require.Equal(t, e.code, Code(e.err), "%v", e.err)
		require.Equal(t, e.code, Code(fmt.Errorf("wrapped: %w", e.err)), "wrapped %v", e.err)
		require.Equal(t, e.retriable, IsRetriable(e.err))
		require.Equal(t, e.name, Name(e.err))
		// code → error → code, for every row (ForCode gives the code's
		// first row).
		require.Equal(t, e.code, Code(ForCode(e.code)), "%v", e.err)
		if !seen[e.code] {
			// The first row of a code is its error; it maps back.
			require.ErrorIs(t, ForCode(e.code), e.err)
			seen[e.code] = true
		}
	}
	require.EqualValues(t, -1, Code(errors.New("something else")))
	require.False(t, IsRetriable(errors.New("something else")))
	var unknown *UnknownCodeError
	require.ErrorAs(t, ForCode(999), &unknown)
	require.EqualValues(t, 999, unknown.Code)

	// Storage errors carry their codes through the broker.
	require.EqualValues(t, 1, Code(fmt.Errorf("fetch: %w", log.ErrOffsetOutOfRange)))
	require.EqualValues(t, 2, Code(&record.CorruptError{Reason: "bad crc"}))
	require.EqualValues(t, 56, Code(fmt.Errorf("%w: %w", log.ErrLogFenced, errors.New("EIO"))))
	// KAFKA_STORAGE_ERROR read back is the general storage error, not
	// one of its causes: a client cannot tell a fenced log from a failed
	// roll by the code.
	require.Same(t, ErrStorage, ForCode(56))
	require.NotErrorIs(t, ForCode(56), log.ErrLogFenced)
	// A malformed record in a sound batch: both, INVALID_RECORD's code.
	require.EqualValues(t, 87, Code(fmt.Errorf("%w: %w", log.ErrInvalidRecord, &record.CorruptError{Reason: "bad varint"})))
	// A deleted topic named by its ID: both, with the ID's code.
	require.EqualValues(t, 100, Code(fmt.Errorf("%w: %w", ErrUnknownTopicOrPartition, ErrUnknownTopicID)))
}

func TestAcks(t *testing.T) {
	for _, a := range []Acks{AcksNone, AcksLeader, AcksAll} {
		require.True(t, a.Valid())
	}
	require.False(t, Acks(2).Valid())
	require.Equal(t, "all", AcksAll.String())
	require.Equal(t, "orders-3", TopicPartition{"orders", 3}.String())
}

// TestIsRetriableOfSeveral: an error that matches a retriable error of
// the table and one that is not (a request timed out because the broker
// closed) is not retriable, whichever the table lists first.
func TestIsRetriableOfSeveral(t *testing.T) {
	both := fmt.Errorf("%w: %w", ErrRequestTimedOut, ErrBrokerClosed)
	if IsRetriable(both) {
		t.Errorf("IsRetriable(%v) = true", both)
	}
	if !IsRetriable(fmt.Errorf("%w: %w", ErrRequestTimedOut, ErrNotLeader)) {
		t.Error("two retriable errors: not retriable")
	}
}

// TestRetriableCodesKerrCallsNot: three codes Kafka's own source
// makes retriable (apache/kafka, clients/.../common/errors:
// ConcurrentTransactionsException, ShareSessionNotFoundException and
// InvalidShareSessionEpochException extend RetriableException) that
// franz-go's kerr copy calls not retriable. IsRetriable's doc reads
// Kafka's Errors.java, so they are retried and named.
func TestRetriableCodesKerrCallsNot(t *testing.T) {
	for _, tc := range []struct {
		code int16
		name string
	}{
		{51, "CONCURRENT_TRANSACTIONS"},
		{122, "SHARE_SESSION_NOT_FOUND"},
		{123, "INVALID_SHARE_SESSION_EPOCH"},
	} {
		err := ForCode(tc.code)
		if !IsRetriable(err) {
			t.Errorf("code %d (%s): IsRetriable false, Kafka's exception is a RetriableException", tc.code, tc.name)
		}
		if got := Name(err); got != tc.name {
			t.Errorf("code %d: Name %s, want %s", tc.code, got, tc.name)
		}
		if got := Code(err); got != tc.code {
			t.Errorf("code %d: Code %d", tc.code, got)
		}
	}
}

// TestStorageRowsComeFirst: an error that matches a storage row and
// another — a fenced log wraps what fenced it, which may be a corrupt
// segment's *record.CorruptError (a failed reopen's) or a roll's
// failure — is KAFKA_STORAGE_ERROR, whatever else it wraps:
// the storage rows come first in the table. (A client reported such a
// fenced partition as CORRUPT_MESSAGE, not retriable.)
func TestStorageRowsComeFirst(t *testing.T) {
	corrupt := &record.CorruptError{Path: "/d/t-0/00000000000000000000.log", Reason: "bad crc"}
	for _, err := range []error{
		fmt.Errorf("%w: t-0 could not be reopened: %w", log.ErrLogFenced, corrupt),
		fmt.Errorf("%w: %w", log.ErrLogFenced, log.ErrInvalidRecord),
		fmt.Errorf("%w: %w", log.ErrRollFailed, log.ErrOffsetOutOfRange),
		errors.Join(ErrStorage, record.ErrCorrupt),
	} {
		require.EqualValues(t, 56, Code(err), "%v", err)
		require.Equal(t, "KAFKA_STORAGE_ERROR", Name(err), "%v", err)
	}
}
