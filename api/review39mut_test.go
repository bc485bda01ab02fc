package api

import (
	"fmt"
	"strings"
	"testing"
)

// TestReview39UnknownCodeBesideARetriableSentinel: an *UnknownCodeError
// counts as one more error among those err matches (IsRetriable's doc):
// beside a retriable sentinel (a timed-out request) it makes err not
// retriable when its code is not (TOPIC_AUTHORIZATION_FAILED, a code
// Kafka has no name for here), and leaves it retriable when its code is
// (LEADER_NOT_AVAILABLE); Code and Name are the sentinel's. Kills the
// mutants that read the unknown code only when no sentinel matched, or
// that let a non-retriable one pass beside a retriable sentinel (both
// were retriable).
func TestReview39UnknownCodeBesideARetriableSentinel(t *testing.T) {
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

// TestReview39UnknownCodeErrorNamesKafkasError: an *UnknownCodeError of
// a code IsRetriable knows says its Kafka name in its message, as Name
// gives it, and one of a code it does not know says the code alone.
// Kills the mutant that drops the name from the message.
func TestReview39UnknownCodeErrorNamesKafkasError(t *testing.T) {
	if got := ForCode(5).Error(); !strings.Contains(got, "5") || !strings.Contains(got, "LEADER_NOT_AVAILABLE") {
		t.Errorf("ForCode(5).Error() = %q, want the code and LEADER_NOT_AVAILABLE", got)
	}
	if got := ForCode(999).Error(); got != "runnel: Kafka error code 999" {
		t.Errorf("ForCode(999).Error() = %q", got)
	}
}
