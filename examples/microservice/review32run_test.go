package main

import (
	"bytes"
	"io"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The default -shutdown-timeout covers the longest a request placing an
// order may take (deliveryTimeout), so that a shutdown lets it be
// answered: it was 5 s, and a request still placing then was cut off,
// its client answered "may or may not have been placed", or not at all.
func TestReview32ShutdownWaitsForPlacingRequests(t *testing.T) {
	var usage bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"-h"}, io.Discard, &usage, nil))
	m := regexp.MustCompile(`-shutdown-timeout duration\n[^\n]*\(default (\S+)\)`).FindStringSubmatch(usage.String())
	require.NotNil(t, m, usage.String())
	d, err := time.ParseDuration(m[1])
	require.NoError(t, err)
	require.Greater(t, d, deliveryTimeout)
}
