package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/runneltest"
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

// What defaultShutdownTimeout's doc says of a shutdown that times out: it
// closes the producer under a request still placing its order, whose
// client is then told that the order may or may not have been placed.
func TestReview32ProducerClosedUnderAPlacingRequest(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic(OrdersTopic, 4))
	f := runneltest.NewFaults(t, b)
	held := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.HoldRequest, Count: 1})
	p, err := producer.New(f, producer.Linger(0), producer.DeliveryTimeout(deliveryTimeout))
	require.NoError(t, err)
	defer p.Close()
	srv := newServiceWithoutHandlers(t, p)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	code, body := make(chan int, 1), make(chan string, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/orders", strings.NewReader(`{"customer":"ada","items":["book"],"amount_cents":1299}`))
		req.Header.Set("Idempotency-Key", "k-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			code <- 0
			body <- err.Error()
			return
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		code <- resp.StatusCode
		body <- string(data)
	}()
	require.NoError(t, held.Wait(ctx, 1))
	require.NoError(t, p.Close()) // what Service.Close does at the end of a shutdown
	require.Equal(t, http.StatusServiceUnavailable, <-code)
	require.Contains(t, <-body, "may or may not have been placed")
}
