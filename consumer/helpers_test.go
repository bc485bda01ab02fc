package consumer_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The broker is what consumers read from.
var _ consumer.Client = (*runnel.Broker)(nil)

// wait bounds every blocking call of a test: a hang fails, it does not
// time anything (generous: a loaded CI machine under -race is slow, and
// a Poll whose ctx ends returns what it has, which a test would misread).
const wait = 60 * time.Second

// testCtx is a ctx that ends after wait: in a synctest bubble on the
// bubble's clock, so that a loop of Polls (or Records) whose records
// never come, with the fake clock moving at each wait, fails the test
// instead of running for ever.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

// openBroker opens an in-memory broker with the topics given as name,
// partitions pairs, and closes it when the test ends.
func openBroker(t *testing.T, topics map[string]int) *runnel.Broker {
	t.Helper()
	b, err := runnel.Open(runnel.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	for name, n := range topics {
		require.NoError(t, b.CreateTopic(context.Background(), name, log.TopicConfig{Partitions: n}))
	}
	return b
}

func newConsumer(t *testing.T, c consumer.Client, opts ...consumer.Opt) *consumer.Consumer {
	t.Helper()
	cs, err := consumer.New(c, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, cs.Close()) })
	return cs
}

// rec is a record to produce.
type rec struct {
	ts      int64 // ms; 0: now
	key     []byte
	value   string
	headers []record.Header
}

// encode builds one batch of recs with codec.
func encode(t testing.TB, codec compression.Codec, recs ...rec) []byte {
	t.Helper()
	var b record.Builder
	for _, r := range recs {
		ts := r.ts
		if ts == 0 {
			ts = time.Now().UnixMilli()
		}
		b.Append(ts, r.key, []byte(r.value), r.headers)
	}
	data, err := b.AppendTo(nil, codec)
	require.NoError(t, err)
	return data
}

// produce appends recs to a partition as one batch and returns the
// offset of the first.
func produce(t testing.TB, b *runnel.Broker, topic string, p int32, codec compression.Codec, recs ...rec) int64 {
	t.Helper()
	resp, err := b.Produce(context.Background(), &api.ProduceRequest{
		Topic: topic, Partition: p, Acks: api.AcksAll, Batches: encode(t, codec, recs...),
	})
	require.NoError(t, err)
	return resp.BaseOffset
}

// values produces one batch of the given values.
func values(t testing.TB, b *runnel.Broker, topic string, p int32, vs ...string) int64 {
	t.Helper()
	recs := make([]rec, len(vs))
	for i, v := range vs {
		recs[i].value = v
	}
	return produce(t, b, topic, p, compression.None, recs...)
}

// seq returns values prefix0..prefix(n-1).
func seq(prefix string, from, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, from+i)
	}
	return out
}

// got is what a test read: records and errors, in order.
type got struct {
	recs []*record.Record
	errs []error
}

func (g *got) values(topic string, p int32) []string {
	var out []string
	for _, r := range g.recs {
		if r.Topic == topic && r.Partition == p {
			out = append(out, string(r.Value))
		}
	}
	return out
}

func (g *got) add(fs consumer.Fetches) {
	for r, err := range fs.Records() {
		if err != nil {
			g.errs = append(g.errs, err)
			continue
		}
		g.recs = append(g.recs, r)
	}
}

// pollUntil polls until n records arrived, failing on any Poll error or
// when the test's deadline passes.
func pollUntil(t *testing.T, c *consumer.Consumer, n int) *got {
	t.Helper()
	ctx := testCtx(t)
	g := &got{}
	for len(g.recs) < n {
		fs, err := c.Poll(ctx)
		require.NoError(t, err, "after %d of %d records", len(g.recs), n)
		g.add(fs)
		require.Empty(t, g.errs)
	}
	require.Len(t, g.recs, n)
	return g
}

// abcOr answers req: each partition with the batch "a", "b", "c" at
// offset 0 (high watermark 3, topic ID id), or with the error errFor
// gives it, when not nil.
func abcOr(t *testing.T, req *api.FetchRequest, id log.TopicID, errFor func(p api.FetchPartition) error) api.FetchResponse {
	var resp api.FetchResponse
	for _, p := range req.Partitions {
		fp := api.FetchedPartition{Topic: p.Topic, Partition: p.Partition, TopicID: id, HighWatermark: 3}
		if fp.Err = errFor(p); fp.Err == nil {
			fp.Records = batchAt(t, 0, "a", "b", "c")
		}
		resp.Partitions = append(resp.Partitions, fp)
	}
	return resp
}

// ctxEnd reports whether err is the error a Records loop yields last
// once its ctx has ended: ctx's own.
func ctxEnd(ctx context.Context, err error) bool {
	return err != nil && err == ctx.Err()
}

// valuesUntilCtxEnds returns the values of the records the Records
// iterator yields until it yields ctx's error (its last), requiring no
// other error.
func valuesUntilCtxEnds(t *testing.T, ctx context.Context, c *consumer.Consumer) []string {
	t.Helper()
	var got []string
	for r, err := range c.Records(ctx) {
		if ctxEnd(ctx, err) {
			continue // the last
		}
		require.NoError(t, err)
		got = append(got, string(r.Value))
	}
	return got
}

// readN reads n records with the Records iterator, then breaks.
func readN(t *testing.T, c *consumer.Consumer, n int) []*record.Record {
	t.Helper()
	var out []*record.Record
	if n == 0 {
		return out
	}
	for r, err := range c.Records(testCtx(t)) {
		require.NoError(t, err)
		out = append(out, r)
		if len(out) == n {
			break
		}
	}
	require.Len(t, out, n, "the test's deadline passed")
	return out
}

func vals(recs []*record.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Value)
	}
	return out
}

// fakeClient is a Client whose answers a test scripts. Unset functions
// fail the test.
type fakeClient struct {
	t          *testing.T
	partitions func(ctx context.Context, topic string) (int, error)
	listOffset func(ctx context.Context, topic string, p int32, ts int64) (api.ListedOffset, error)
	fetch      func(ctx context.Context, req *api.FetchRequest) (api.FetchResponse, error)
}

func (f *fakeClient) Partitions(ctx context.Context, topic string) (int, error) {
	if f.partitions == nil {
		f.t.Errorf("unexpected Partitions(%q)", topic)
		return 0, api.ErrUnknownTopicOrPartition
	}
	return f.partitions(ctx, topic)
}

func (f *fakeClient) ListOffset(ctx context.Context, topic string, p int32, ts int64) (api.ListedOffset, error) {
	if f.listOffset == nil {
		f.t.Errorf("unexpected ListOffset(%q, %d, %d)", topic, p, ts)
		return api.ListedOffset{}, api.ErrUnknownTopicOrPartition
	}
	return f.listOffset(ctx, topic, p, ts)
}

func (f *fakeClient) Fetch(ctx context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
	if f.fetch == nil {
		f.t.Errorf("unexpected Fetch")
		return api.FetchResponse{}, api.ErrBrokerClosed
	}
	return f.fetch(ctx, req)
}

// logRecorder is a slog.Handler that keeps what a consumer logs, at every
// level.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecorder) logger() *slog.Logger { return slog.New(l) }

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r.Clone())
	return nil
}

// The consumer adds no attributes or groups to its logger.
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { panic("unexpected WithAttrs") }
func (l *logRecorder) WithGroup(string) slog.Handler      { panic("unexpected WithGroup") }

// attrs returns, for each record logged with message msg, the values of
// keys joined by spaces.
func (l *logRecorder) attrs(msg string, keys ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.recs {
		if r.Message != msg {
			continue
		}
		vals := make([]string, len(keys))
		r.Attrs(func(a slog.Attr) bool {
			if i := slices.Index(keys, a.Key); i >= 0 {
				vals[i] = a.Value.String()
			}
			return true
		})
		out = append(out, strings.Join(vals, " "))
	}
	return out
}

// signalClient wraps a broker and reports each Fetch as it starts, so a
// test can act while a Poll waits.
type signalClient struct {
	*runnel.Broker
	fetching chan *api.FetchRequest
}

func newSignalClient(b *runnel.Broker) *signalClient {
	return &signalClient{Broker: b, fetching: make(chan *api.FetchRequest, 100)}
}

func (s *signalClient) Fetch(ctx context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
	s.fetching <- req
	return s.Broker.Fetch(ctx, req)
}

// setControl turns a batch into a control batch (a transaction marker).
func setControl(batch []byte) {
	b := record.Batch(batch)
	attrs := uint16(b.Attributes()) | record.AttrControl
	binary.BigEndian.PutUint16(batch[21:], attrs)
	b.UpdateCRC()
}

// async runs f in a goroutine and returns a channel with its result.
func async[T any](f func() T) <-chan T {
	ch := make(chan T, 1)
	go func() { ch <- f() }()
	return ch
}

// recv waits for a result, failing the test after wait.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatal("timed out")
		panic("unreachable")
	}
}

func hdr(k, v string) []record.Header { return []record.Header{{Key: k, Value: []byte(v)}} }
