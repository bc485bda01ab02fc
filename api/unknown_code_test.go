package api

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestUnknownCodeKeepsKafkasCodeAndRetriability: a Kafka error
// code the table has no sentinel for (one runnel's broker never sends,
// but a Client of a test's own, a runneltest.Faults rule ported from
// kfake, or a proxy to a Kafka cluster may answer) decodes with ForCode
// to an error whose Code is that code again, and which is retriable
// exactly when Kafka's Errors.java makes it a RetriableException: a
// LEADER_NOT_AVAILABLE is retried, as kgo and Kafka's clients retry it,
// and a TOPIC_AUTHORIZATION_FAILED is not. (Before, every such code was
// -1 and not retriable, so a producer failed at once a record that kgo
// retries and delivers.)
func TestUnknownCodeKeepsKafkasCodeAndRetriability(t *testing.T) {
	for _, tc := range []struct {
		code      int16
		name      string
		retriable bool
	}{
		{5, "LEADER_NOT_AVAILABLE", true},
		{9, "REPLICA_NOT_AVAILABLE", true},
		{13, "NETWORK_EXCEPTION", true},
		{20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND", true},
		{74, "FENCED_LEADER_EPOCH", true},
		{78, "OFFSET_NOT_AVAILABLE", true},
		{89, "THROTTLING_QUOTA_EXCEEDED", true},
		{29, "", false}, // TOPIC_AUTHORIZATION_FAILED
		{999, "", false},
	} {
		err := ForCode(tc.code)
		var unknown *UnknownCodeError
		if !errors.As(err, &unknown) || unknown.Code != tc.code {
			t.Fatalf("ForCode(%d) = %#v", tc.code, err)
		}
		wrapped := fmt.Errorf("injected: %w", err)
		if got := Code(wrapped); got != tc.code {
			t.Errorf("Code(ForCode(%d)) = %d", tc.code, got)
		}
		if got := IsRetriable(wrapped); got != tc.retriable {
			t.Errorf("IsRetriable(ForCode(%d)) = %v, Kafka's %v", tc.code, got, tc.retriable)
		}
		if got := Name(wrapped); tc.name != "" && got != tc.name {
			t.Errorf("Name(ForCode(%d)) = %s, want %s", tc.code, got, tc.name)
		}
	}
	// Beside a sentinel that is not retriable, it is not either (as two
	// sentinels are retriable only if both are).
	if IsRetriable(fmt.Errorf("%w: %w", ErrBrokerClosed, ForCode(5))) {
		t.Error("a closed broker's error beside LEADER_NOT_AVAILABLE is retriable")
	}
}

// TestUnknownCodeBesideARetriableSentinel: an *UnknownCodeError
// counts as one more error among those err matches (IsRetriable's doc):
// beside a retriable sentinel (a timed-out request) it makes err not
// retriable when its code is not (TOPIC_AUTHORIZATION_FAILED, a code
// Kafka has no name for here), and leaves it retriable when its code is
// (LEADER_NOT_AVAILABLE); Code and Name are the sentinel's. Kills the
// mutants that read the unknown code only when no sentinel matched, or
// that let a non-retriable one pass beside a retriable sentinel (both
// were retriable).
func TestUnknownCodeBesideARetriableSentinel(t *testing.T) {
	for _, tc := range []struct {
		code      int16
		retriable bool
	}{{29, false}, {999, false}, {5, true}, {13, true}} {
		err := fmt.Errorf("%w: %w", ErrRequestTimedOut, ForCode(tc.code))
		if got := IsRetriable(err); got != tc.retriable {
			t.Errorf("IsRetriable(REQUEST_TIMED_OUT beside code %d) = %v, want %v", tc.code, got, tc.retriable)
		}
		if got := Code(err); got != 7 {
			t.Errorf("Code(REQUEST_TIMED_OUT beside code %d) = %d, want the sentinel's 7", tc.code, got)
		}
		if got := Name(err); got != "REQUEST_TIMED_OUT" {
			t.Errorf("Name(REQUEST_TIMED_OUT beside code %d) = %s", tc.code, got)
		}
	}
}

// TestUnknownCodeErrorNamesKafkasError: an *UnknownCodeError of
// a code IsRetriable knows says its Kafka name in its message, as Name
// gives it, and one of a code it does not know says the code alone.
// Kills the mutant that drops the name from the message.
func TestUnknownCodeErrorNamesKafkasError(t *testing.T) {
	if got := ForCode(5).Error(); !strings.Contains(got, "5") || !strings.Contains(got, "LEADER_NOT_AVAILABLE") {
		t.Errorf("ForCode(5).Error() = %q, want the code and LEADER_NOT_AVAILABLE", got)
	}
	if got := ForCode(999).Error(); got != "runnel: Kafka error code 999" {
		t.Errorf("ForCode(999).Error() = %q", got)
	}
}
