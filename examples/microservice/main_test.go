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
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func post(t *testing.T, url, body string) (*http.Response, Status) {
	t.Helper()
	return postKey(t, url, "", body)
}

// postKey is post with an Idempotency-Key header, unless key is "".
func postKey(t *testing.T, url, key, body string) (*http.Response, Status) {
	t.Helper()
	resp := postOrder(t, url, key, body)
	defer resp.Body.Close()
	var st Status
	if resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	}
	return resp, st
}

// postText is postKey for an answer read as text: its status and body.
func postText(t *testing.T, url, key, body string) (int, string) {
	t.Helper()
	resp := postOrder(t, url, key, body)
	defer resp.Body.Close()
	text, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(text)
}

// postOrder POSTs body to url's /orders, with an Idempotency-Key header
// unless key is "".
func postOrder(t *testing.T, url, key, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/orders", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	return resp
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
	return newLoggedService(t, b, slog.New(slog.DiscardHandler))
}

// newLoggedService is newService with the service's logger.
func newLoggedService(t *testing.T, b *runnel.Broker, logger *slog.Logger) (*Service, *httptest.Server) {
	svc, err := NewService(context.Background(), b, logger)
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
// rebuilds every order's state from the events — also an order placed
// more than Kafka's default retention (7 days) before the restart, the
// broker's maintenance having run meanwhile: the orders topic keeps its
// events for ever (with the default, its segment was deleted and the
// order gone).
func TestRestartRebuildsState(t *testing.T) {
	for _, tc := range []struct {
		name  string
		clock log.Clock // the restarted broker's; nil: the system's
	}{
		{"at once", nil},
		{"8 days on", laterClock{8 * 24 * time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
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

			b, err = runnel.Open(runnel.Config{Dir: dir, Clock: tc.clock})
			require.NoError(t, err)
			defer b.Close()
			require.NoError(t, b.Maintain(ctx)) // retention, as the maintenance goroutine runs it
			_, srv2 := newService(t, b)
			got := waitDone(ctx, t, srv2.URL, st.Order.ID)
			require.Equal(t, st.Order, got.Order)
		})
	}
}

// laterClock is the system clock moved on by d.
type laterClock struct{ d time.Duration }

func (c laterClock) Now() time.Time { return time.Now().Add(c.d) }

// startRun runs the program with args on a free port of 127.0.0.1 until
// stop, which returns run's error; it fails the test if run ends before
// it serves. stop is also called, its error dropped, at the test's end.
func startRun(ctx context.Context, t *testing.T, out io.Writer, args ...string) (addr string, stop func() error) {
	t.Helper()
	runCtx, cancel := context.WithCancel(ctx)
	addrc, errc := make(chan string, 1), make(chan error, 1)
	go func() {
		errc <- run(runCtx, append([]string{"-addr", "127.0.0.1:0"}, args...), out, io.Discard, func(a string) { addrc <- a })
	}()
	select {
	case addr = <-addrc:
	case err := <-errc:
		cancel()
		t.Fatal(err)
	case <-time.After(testkit.HangGuard):
		cancel()
		t.Fatalf("run neither listened nor returned within %v", testkit.HangGuard)
	}
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-errc })
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return addr, stop
}

// TestRun runs the program itself: serve, place an order, shut down on
// ctx.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	addr, stop := startRun(ctx, t, &out)
	url := "http://" + addr
	resp, st := post(t, url, `{"customer":"ada","items":["book"],"amount_cents":1299}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	waitDone(ctx, t, url, st.Order.ID)
	require.NoError(t, stop())
	require.Contains(t, out.String(), "serving")
	require.Error(t, run(ctx, []string{"-bogus"}, io.Discard, io.Discard, nil))
	// -h prints the usage (on stderr) and is no failure; it serves nothing.
	out.Reset()
	var usage bytes.Buffer
	require.NoError(t, run(ctx, []string{"-h"}, &out, &usage, func(string) { t.Error("-h served") }))
	require.Contains(t, usage.String(), "Usage of microservice")
	require.NotContains(t, out.String(), "serving")
	require.Empty(t, out.String())
	// A signal before the broker is open (here: ctx already ended) stops
	// it quietly: no broker, nothing served, no error.
	out.Reset()
	ended, cancelEnded := context.WithCancel(ctx)
	cancelEnded()
	require.NoError(t, run(ended, []string{"-addr", "127.0.0.1:0", "-dir", t.TempDir()}, &out, io.Discard, func(string) { t.Error("served") }))
	require.Contains(t, out.String(), "stopped while opening the broker")
}

// TestRunStoppedWhileStarting: a signal after the broker is open but
// while the service starts (here: ctx ends when the orders topic's first
// log is created) is a clean stop too, as one during the open is — no
// error, so the service exits 0 — where it was reported as a failure.
// Fails on the run that returned NewService's error as it was.
func TestRunStoppedWhileStarting(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &cancelOnWrite{marker: "log created", cancel: cancel}
	require.NoError(t, run(ctx, []string{"-addr", "127.0.0.1:0"}, out, io.Discard, func(string) { t.Error("served") }))
	require.Contains(t, out.String(), "stopped while starting the service")
}

// cancelOnWrite is an io.Writer that keeps what is written and calls
// cancel once a write holds marker.
type cancelOnWrite struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	cancel context.CancelFunc
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if bytes.Contains(p, []byte(w.marker)) {
		w.cancel()
	}
	return w.buf.Write(p)
}

func (w *cancelOnWrite) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestIdempotencyKey: a retry with the same Idempotency-Key and order,
// once the order is seen, is answered with its status and writes no
// second event; the key with another order, or a bad key, is refused.
func TestIdempotencyKey(t *testing.T) {
	b := runneltest.NewBroker(t)
	_, srv := newService(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	resp, st := postKey(t, srv.URL, "k-1", `{"customer":"ada","items":["book"],"amount_cents":1299}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Equal(t, "order-k-1", st.Order.ID)
	waitDone(ctx, t, srv.URL, st.Order.ID)

	resp, _ = postKey(t, srv.URL, "k-1", `{"customer":"bob","items":["pen"],"amount_cents":5}`)
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, "a key reused for another order")
	resp, again := postKey(t, srv.URL, "k-1", `{"customer":"ada","items":["book"],"amount_cents":1299}`)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "/orders/order-k-1", resp.Header.Get("Location"))
	require.Equal(t, st.Order, again.Order)
	require.Equal(t, st.Offset, again.Offset)
	require.Equal(t, st.Partition, again.Partition)
	require.Len(t, runneltest.ConsumeAll(t, b, OrdersTopic), 1) // no second event

	for _, key := range []string{"a b", strings.Repeat("x", 65), "ä"} {
		resp, _ := postKey(t, srv.URL, key, `{"customer":"ada","items":["book"],"amount_cents":1}`)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, key)
	}
}

// TestDuplicateEventsHandledOnce: when an order's event is written twice
// (a retry after an unknown outcome, before the handlers saw the first),
// billing and shipping act on the first event only, even when the
// duplicate lands on another partition.
func TestDuplicateEventsHandledOnce(t *testing.T) {
	b := runneltest.NewBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), testkit.HangGuard)
	defer cancel()
	require.NoError(t, b.CreateTopic(ctx, OrdersTopic, log.TopicConfig{Partitions: 4}))
	p := runneltest.NewProducer(t, b)
	event := func(customer string) *record.Record {
		v, err := json.Marshal(Order{ID: "order-dup", Customer: customer, Items: []string{"book"}, AmountCents: 1299})
		require.NoError(t, err)
		return &record.Record{Topic: OrdersTopic, Key: []byte(customer), Value: v}
	}
	first, second, third := event("ada"), event("ada"), event("zed")
	require.NoError(t, p.ProduceSync(ctx, first))
	require.NoError(t, p.ProduceSync(ctx, second, third))
	require.NotEqual(t, first.Partition, third.Partition, "pick another customer: the test wants a duplicate on another partition")

	// Billing and shipping start after all three events are written, so
	// each meets the duplicates as a restarted service would.
	_, srv := newService(t, b)
	got := waitDone(ctx, t, srv.URL, "order-dup")
	want := Status{Partition: first.Partition, Offset: first.Offset}
	// Whichever handler saw an event first recorded it: the same order
	// then holds for both, so invoice and shipment agree on it.
	if got.Partition != want.Partition || got.Offset != want.Offset {
		require.Equal(t, third.Partition, got.Partition, "status from an event that was never written: %+v", got)
		want = Status{Partition: third.Partition, Offset: third.Offset}
	}
	require.Equal(t, fmt.Sprintf("INV-%d-%d", want.Partition, want.Offset), got.Invoice)
	require.Equal(t, "SHP-"+got.Order.Customer+"-1", got.Shipment)
}

// An argument that is no flag (a port given as "8081", say) is refused,
// as quickstart refuses it, rather than ignored while the service serves
// on -addr's default: nothing is opened or served.
func TestRunRefusesArguments(t *testing.T) {
	var out bytes.Buffer
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	err := run(ctx, []string{"-addr", "127.0.0.1:0", "8081"}, &out, io.Discard, func(string) { t.Error("served"); cancel() })
	require.ErrorContains(t, err, `unexpected argument "8081"`)
	require.NotContains(t, out.String(), "serving")
}

// newServiceWithoutHandlers is a Service whose handlers have not caught
// up (it runs none), producing with p.
func newServiceWithoutHandlers(t *testing.T, p *producer.Producer) *httptest.Server {
	svc := &Service{producer: p, logger: slog.New(slog.DiscardHandler), orders: map[string]*Status{}, pending: map[string]*pendingOrder{}}
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(srv.Close)
	return srv
}
