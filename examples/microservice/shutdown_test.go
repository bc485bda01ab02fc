package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// The default -shutdown-timeout covers the longest a request placing an
// order may take (deliveryTimeout), so that a shutdown lets it be
// answered: it was 5 s, and a request still placing then was cut off,
// its client answered "may or may not have been placed", or not at all.
func TestShutdownWaitsForPlacingRequests(t *testing.T) {
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
func TestProducerClosedUnderAPlacingRequest(t *testing.T) {
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
	require.Equal(t, http.StatusServiceUnavailable, testkit.Await(t, code, "the POST's status"))
	require.Contains(t, testkit.Await(t, body, "the POST's body"), "may or may not have been placed")
}

// A service's Close is a shutdown, not a failure: its handlers' Records
// loops end with ctx's error (Records' doc), which they do not log as a
// consume error. An order placed before handled by both handlers first.
func TestServiceCloseLogsNoConsumeError(t *testing.T) {
	b := runneltest.NewBroker(t)
	var logged syncBuffer
	svc, err := NewService(context.Background(), b, slog.New(slog.NewTextHandler(&logged, nil)))
	require.NoError(t, err)
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	resp, st := post(t, srv.URL, `{"customer":"ada","items":["book"],"amount_cents":1299}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitDone(ctx, t, srv.URL, st.Order.ID)
	require.NoError(t, svc.Close())
	require.NotContains(t, logged.String(), "msg=consume", "a shutdown logged as a failure")
}

// A shutdown whose requests are still under way when -shutdown-timeout
// ends (here one whose body never comes) fails the run saying so, with
// the timeout's error, and still closes the broker cleanly.
func TestRunShutdownTimesOut(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	addr, stop := startRun(ctx, t, io.Discard, "-dir", dir, "-shutdown-timeout", "1ns")

	// As in TestSecondSignalExitsAtOnce: a handler reading a body that
	// never comes holds the shutdown up.
	stuck := stuckRequest(t, addr)
	defer stuck.Close()

	err := stop()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "shutdown: requests still under way after 1ns")
	require.NoError(t, stuck.Close()) // the handler's read ends: no goroutine left
	for p := range 4 {
		_, err := os.Stat(filepath.Join(dir, OrdersTopic+"-"+strconv.Itoa(p), "clean-shutdown"))
		require.NoError(t, err, "partition %d not closed cleanly", p)
	}
}
