package api

import (
	"errors"
	"fmt"
	"testing"
)

// TestReview34UnknownCodeKeepsKafkasCodeAndRetriability: a Kafka error
// code the table has no sentinel for (one runnel's broker never sends,
// but a Client of a test's own, a runneltest.Faults rule ported from
// kfake, or a proxy to a Kafka cluster may answer) decodes with ForCode
// to an error whose Code is that code again, and which is retriable
// exactly when Kafka's Errors.java makes it a RetriableException: a
// LEADER_NOT_AVAILABLE is retried, as kgo and Kafka's clients retry it,
// and a TOPIC_AUTHORIZATION_FAILED is not. (Before, every such code was
// -1 and not retriable, so a producer failed at once a record that kgo
// retries and delivers.)
func TestReview34UnknownCodeKeepsKafkasCodeAndRetriability(t *testing.T) {
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
