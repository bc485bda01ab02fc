package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/runneltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func post(t *testing.T, url, body string) (*http.Response, Status) {
	t.Helper()
	resp, err := http.Post(url+"/orders", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	var st Status
	if resp.StatusCode == http.StatusCreated {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	}
	return resp, st
}

// waitDone polls GET /orders/{id} until billing and shipping have both
// handled the order, or ctx ends.
func waitDone(ctx context.Context, t *testing.T, url, id string) Status {
	t.Helper()
	for {
		resp, err := http.Get(url + "/orders/" + id)
		require.NoError(t, err)
		var st Status
		if resp.StatusCode == http.StatusOK {
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
		}
		resp.Body.Close()
		if st.Invoice != "" && st.Shipment != "" {
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatalf("order %s not handled: %+v", id, st)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func newService(t *testing.T, b *runnel.Broker) (*Service, *httptest.Server) {
	svc, err := NewService(context.Background(), b, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(func() { srv.Close(); require.NoError(t, svc.Close()) })
	return svc, srv
}

func TestOrdersFanOut(t *testing.T) {
	b := runneltest.NewBroker(t)
	_, srv := newService(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	placed := map[string]Status{}
	for i := range 20 {
		resp, st := post(t, srv.URL, fmt.Sprintf(`{"customer":"c%d","items":["book","pen"],"amount_cents":%d}`, i%3, 100+i))
		require.Equal(t, http.StatusCreated, resp.StatusCode)
		require.Equal(t, "/orders/"+st.Order.ID, resp.Header.Get("Location"))
		placed[st.Order.ID] = st
	}
	for id, want := range placed {
		got := waitDone(ctx, t, srv.URL, id)
		require.Equal(t, want.Order, got.Order)
		require.Equal(t, want.Partition, got.Partition)
		require.Equal(t, want.Offset, got.Offset)
		require.Equal(t, fmt.Sprintf("INV-%d-%d", want.Partition, want.Offset), got.Invoice)
		require.Equal(t, "SHP-"+want.Order.Customer+"-2", got.Shipment)
	}
	// One customer's orders share a partition (keyed by customer).
	parts := map[string]int32{}
	for _, st := range placed {
		if p, ok := parts[st.Order.Customer]; ok {
			require.Equal(t, p, st.Partition)
		}
		parts[st.Order.Customer] = st.Partition
	}
	// The events are on the topic: 20 of them.
	info, err := b.DescribeTopic(ctx, OrdersTopic)
	require.NoError(t, err)
	var n int64
	for _, p := range info.Partitions {
		n += p.HighWatermark
	}
	require.EqualValues(t, 20, n)
}

// TestClientGoneDoesNotFailTheOrder: a client that goes away while its
// order is placed (its request's ctx ends, here before the handler even
// starts) does not decide the outcome: the order is placed, the handler
// answers that it was, and billing and shipping handle it.
func TestClientGoneDoesNotFailTheOrder(t *testing.T) {
	b := runneltest.NewBroker(t)
	svc, srv := newService(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	gone, hangUp := context.WithCancel(ctx)
	hangUp()
	req := httptest.NewRequest(http.MethodPost, "/orders",
		strings.NewReader(`{"customer":"ada","items":["book"],"amount_cents":1299}`)).WithContext(gone)
	w := httptest.NewRecorder()
	svc.Handler().ServeHTTP(w, req)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	var st Status
	require.NoError(t, json.NewDecoder(w.Body).Decode(&st))
	got := waitDone(ctx, t, srv.URL, st.Order.ID)
	require.Equal(t, st.Offset, got.Offset)
}

func TestBadRequests(t *testing.T) {
	b := runneltest.NewBroker(t)
	_, srv := newService(t, b)
	for _, body := range []string{
		`not json`,
		`{"customer":"","items":["x"],"amount_cents":1}`,
		`{"customer":"c","items":[],"amount_cents":1}`,
		`{"customer":"c","items":["x"],"amount_cents":0}`,
		`{"customer":"c","items":["x"],"amount_cents":1,"admin":true}`,
	} {
		resp, _ := post(t, srv.URL, body)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
	}
	resp, err := http.Get(srv.URL + "/orders/order-nope")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}

// TestRestartRebuildsState: on disk, a new service on the same directory
// rebuilds every order's state from the events.
func TestRestartRebuildsState(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	b, err := runnel.Open(runnel.Config{Dir: dir})
	require.NoError(t, err)
	svc, err := NewService(ctx, b, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	srv := httptest.NewServer(svc.Handler())
	_, st := post(t, srv.URL, `{"customer":"ada","items":["book"],"amount_cents":1299}`)
	waitDone(ctx, t, srv.URL, st.Order.ID)
	srv.Close()
	require.NoError(t, svc.Close())
	require.NoError(t, b.Close())

	b, err = runnel.Open(runnel.Config{Dir: dir})
	require.NoError(t, err)
	defer b.Close()
	_, srv2 := newService(t, b)
	got := waitDone(ctx, t, srv2.URL, st.Order.ID)
	require.Equal(t, st.Order, got.Order)
}

// TestRun runs the program itself: serve, place an order, shut down on
// ctx.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addrc := make(chan string, 1)
	var out bytes.Buffer
	errc := make(chan error, 1)
	runCtx, stop := context.WithCancel(ctx)
	go func() { errc <- run(runCtx, []string{"-addr", "127.0.0.1:0"}, &out, func(a string) { addrc <- a }) }()
	var url string
	select {
	case a := <-addrc:
		url = "http://" + a
	case err := <-errc:
		t.Fatal(err)
	}
	resp, st := post(t, url, `{"customer":"ada","items":["book"],"amount_cents":1299}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	waitDone(ctx, t, url, st.Order.ID)
	stop()
	require.NoError(t, <-errc)
	require.Contains(t, out.String(), "serving")
	require.Error(t, run(ctx, []string{"-bogus"}, io.Discard, nil))
}
