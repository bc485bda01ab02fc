package producer_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// *runnel.Broker is what producers talk to.
var _ producer.Client = (*runnel.Broker)(nil)

// ctx is the context of test calls that are expected to finish.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testkit.HangGuard)
	t.Cleanup(cancel)
	return ctx
}

func newBroker(t *testing.T, opts ...runneltest.Option) *runnel.Broker {
	t.Helper()
	// Tests want speed, not fsyncs of the memory FS.
	cfg := runnel.Config{TopicDefaults: log.Config{Sync: log.SyncNever}}
	return runneltest.NewBroker(t, append([]runneltest.Option{runneltest.Config(cfg)}, opts...)...)
}

func newProducer(t *testing.T, c producer.Client, opts ...producer.Opt) *producer.Producer {
	t.Helper()
	p, err := producer.New(c, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

// readBatches returns the batches of a partition, from offset 0.
func readBatches(t *testing.T, b *runnel.Broker, topic string, partition int32) []record.Batch {
	t.Helper()
	var out []record.Batch
	for off := int64(0); ; {
		resp, err := b.Fetch(testCtx(t), &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: topic, Partition: partition, Offset: off}}})
		require.NoError(t, err)
		fp := resp.Partitions[0]
		require.NoError(t, fp.Err)
		if len(fp.Records) == 0 {
			return out
		}
		for batch, err := range record.Batches(fp.Records) {
			require.NoError(t, err)
			require.NoError(t, batch.Validate(0))
			if batch.NextOffset() <= off {
				continue
			}
			out = append(out, batch)
			off = batch.NextOffset()
		}
	}
}

// readRecords returns the records of a partition, in offset order.
func readRecords(t *testing.T, b *runnel.Broker, topic string, partition int32) []*record.Record {
	t.Helper()
	var out []*record.Record
	for _, batch := range readBatches(t, b, topic, partition) {
		for r, err := range batch.Records() {
			require.NoError(t, err)
			r.Topic, r.Partition = topic, partition
			out = append(out, r)
		}
	}
	return out
}

func values(recs []*record.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Value)
	}
	return out
}

// hookClient is a producer.Client in front of a real broker whose
// Produce calls go through a hook, for failure injection. It records
// every request as sent (before the broker rewrites it).
type hookClient struct {
	b *runnel.Broker

	mu    sync.Mutex
	hook  hookFunc
	calls int
	sent  []sentReq
	inits int
	// initHook, if set, may fail InitProducerID call number call.
	initHook func(call int) error
}

type sentReq struct {
	topic     string
	partition int32
	acks      api.Acks
	batch     record.Batch
}

func (c *hookClient) Partitions(ctx context.Context, topic string) (int, error) {
	return c.b.Partitions(ctx, topic)
}

func (c *hookClient) InitProducerID(ctx context.Context) (int64, int16, error) {
	c.mu.Lock()
	call, hook := c.inits, c.initHook
	c.inits++
	c.mu.Unlock()
	if hook != nil {
		if err := hook(call); err != nil {
			return 0, 0, err
		}
	}
	return c.b.InitProducerID(ctx)
}

func (c *hookClient) Produce(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	c.mu.Lock()
	call := c.calls
	c.calls++
	c.sent = append(c.sent, sentReq{req.Topic, req.Partition, req.Acks, append(record.Batch(nil), req.Batches...)})
	hook := c.hook
	c.mu.Unlock()
	next := func() (api.ProduceResponse, error) { return c.b.Produce(ctx, req) }
	if hook == nil {
		return next()
	}
	return hook(ctx, call, req, next)
}

// hookFunc handles Produce call number call; next sends req to the
// broker.
type hookFunc = func(ctx context.Context, call int, req *api.ProduceRequest, next func() (api.ProduceResponse, error)) (api.ProduceResponse, error)

func (c *hookClient) setHook(h hookFunc) {
	c.mu.Lock()
	c.hook = h
	c.mu.Unlock()
}

func (c *hookClient) requests() []sentReq {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]sentReq(nil), c.sent...)
}

func (c *hookClient) initCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inits
}

// gate blocks Produce calls until opened: entered receives each call as
// it starts waiting.
type gate struct {
	entered chan int
	open    chan struct{}
	once    sync.Once
}

func newGate() *gate { return &gate{entered: make(chan int, 100), open: make(chan struct{})} }

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

func (g *gate) hook(ctx context.Context, call int, _ *api.ProduceRequest, next func() (api.ProduceResponse, error)) (api.ProduceResponse, error) {
	g.entered <- call
	select {
	case <-g.open:
		return next()
	case <-ctx.Done():
		return api.ProduceResponse{}, ctx.Err()
	}
}

// gatedClient returns a hookClient in front of b whose Produce calls
// wait at the gate it returns.
func gatedClient(b *runnel.Broker) (*hookClient, *gate) {
	c := &hookClient{b: b}
	g := newGate()
	c.setHook(g.hook)
	return c, g
}

// outcome collects the results of promises.
type outcome struct {
	mu   sync.Mutex
	errs map[*record.Record]error
	wg   sync.WaitGroup
}

func newOutcome() *outcome { return &outcome{errs: map[*record.Record]error{}} }

// promise returns a promise for one more record.
func (o *outcome) promise() func(*record.Record, error) {
	o.wg.Add(1)
	return func(r *record.Record, err error) {
		o.mu.Lock()
		o.errs[r] = err
		o.mu.Unlock()
		o.wg.Done()
	}
}

func (o *outcome) wait() { o.wg.Wait() }

func (o *outcome) err(r *record.Record) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.errs[r]
}

// nilIfEmpty returns s, or nil if it is empty, for comparing what was
// read with what was expected when either may be an empty slice.
func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

func recs(prefix string, n int) []*record.Record {
	out := make([]*record.Record, n)
	for i := range out {
		out[i] = &record.Record{Value: []byte(fmt.Sprintf("%s-%04d", prefix, i))}
	}
	return out
}

// clockTick waits until the monotonic clock (which MetadataMaxAge is
// counted on) reads later than when it was called. Windows' clocks move
// in steps (of up to 15.6 ms), so two readings in a row are often equal,
// and a MetadataMaxAge of a nanosecond has not passed between them: a
// test that counts on a look-up before a batch waits for the step first.
// Elsewhere it returns at once.
func clockTick() {
	t0 := time.Now()
	for time.Since(t0) <= 0 {
		time.Sleep(100 * time.Microsecond)
	}
}
