package api

import "testing"

// TestReview34RetriableCodesKerrCallsNot: three codes Kafka's own source
// makes retriable (apache/kafka, clients/.../common/errors:
// ConcurrentTransactionsException, ShareSessionNotFoundException and
// InvalidShareSessionEpochException extend RetriableException) that
// franz-go's kerr copy calls not retriable. IsRetriable's doc reads
// Kafka's Errors.java, so they are retried and named.
func TestReview34RetriableCodesKerrCallsNot(t *testing.T) {
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
