package peers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/runnel/runnel/benchmarks/internal/e2e"
)

// JetStream is a NATS server with JetStream embedded in the process
// (server.NewServer with DontListen) and reached through in-process
// connections (nats.InProcessServer), with memory storage or file storage
// (SyncAlways for an fsync per message, else its default 2-minute sync
// interval). A topic is a stream whose subjects "<topic>.<partition>"
// stand for the partitions; producers spread records over them round
// robin, and a consumer is an ordered consumer of the whole stream.
func JetStream() e2e.System {
	return e2e.System{Name: "jetstream", Open: openJetStream}
}

type jsTarget struct {
	srv     *server.Server
	nc      *nats.Conn
	js      jetstream.JetStream
	storage jetstream.StorageType
	tmpDir  string // the unused StoreDir of a memory-only server

	mu       sync.Mutex
	subjects map[string][]string // topic → its partitions' subjects
}

func openJetStream(_ context.Context, cfg e2e.Config) (_ e2e.Target, err error) {
	t := &jsTarget{storage: jetstream.FileStorage, subjects: map[string][]string{}}
	dir := cfg.Dir
	if dir == "" {
		if cfg.Sync {
			return nil, ErrNoSync
		}
		t.storage = jetstream.MemoryStorage
		if t.tmpDir, err = os.MkdirTemp("", "e2e-jetstream-"); err != nil {
			return nil, err
		}
		dir = t.tmpDir
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, t.Close())
		}
	}()
	opts := &server.Options{
		ServerName: "bench",
		DontListen: true,
		JetStream:  true,
		StoreDir:   dir,
		SyncAlways: cfg.Sync,
		NoLog:      true,
		NoSigs:     true,
	}
	if t.srv, err = server.NewServer(opts); err != nil {
		return nil, err
	}
	t.srv.Start()
	if !t.srv.ReadyForConnections(10 * time.Second) {
		return nil, errors.New("peers: the NATS server did not start in 10 s")
	}
	if t.nc, err = t.connect(); err != nil {
		return nil, err
	}
	if t.js, err = jetstream.New(t.nc); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *jsTarget) connect() (*nats.Conn, error) {
	return nats.Connect("", nats.InProcessServer(t.srv))
}

func (t *jsTarget) CreateTopic(ctx context.Context, topic string, partitions int) error {
	_, err := t.js.CreateStream(ctx, jetstream.StreamConfig{
		Name:     topic,
		Subjects: []string{topic + ".*"},
		Storage:  t.storage,
		Replicas: 1,
	})
	if err != nil {
		return err
	}
	subjects := make([]string, partitions)
	for i := range subjects {
		subjects[i] = topic + "." + strconv.Itoa(i)
	}
	t.mu.Lock()
	t.subjects[topic] = subjects
	t.mu.Unlock()
	return nil
}

func (t *jsTarget) Count(ctx context.Context, topic string, _ int) (int64, error) {
	s, err := t.js.Stream(ctx, topic)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return int64(info.State.Msgs), nil
}

func (t *jsTarget) NewProducer(cfg e2e.ProducerConfig) (_ e2e.Producer, err error) {
	if cfg.Codec != "" && cfg.Codec != "none" {
		// A stream may compress its file store (S2), but a message is
		// published and stored as sent: there is no per-message codec
		// to compare with a Kafka producer's.
		return nil, fmt.Errorf("%w: JetStream has no per-message %q", ErrNoCodec, cfg.Codec)
	}
	p := &jsProducer{t: t, opts: []jetstream.PublishOpt{jetstream.WithStallWait(time.Minute)}}
	if p.nc, err = t.connect(); err != nil {
		return nil, err
	}
	p.js, err = jetstream.New(p.nc,
		jetstream.WithPublishAsyncMaxPending(cfg.MaxBuffered),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) { p.errs.Set(err) }))
	if err != nil {
		p.nc.Close()
		return nil, err
	}
	return p, nil
}

type jsProducer struct {
	t     *jsTarget
	nc    *nats.Conn
	js    jetstream.JetStream
	opts  []jetstream.PublishOpt
	topic string
	subj  []string
	next  int
	errs  e2e.FirstError
}

func (p *jsProducer) Produce(ctx context.Context, topic string, value []byte) error {
	if topic != p.topic {
		p.t.mu.Lock()
		p.subj = p.t.subjects[topic]
		p.t.mu.Unlock()
		if p.subj == nil {
			return fmt.Errorf("peers: no stream %q", topic)
		}
		p.topic = topic
	}
	subj := p.subj[p.next%len(p.subj)]
	p.next++
	if _, err := p.js.PublishAsync(subj, value, p.opts...); err != nil {
		return err
	}
	return ctx.Err()
}

func (p *jsProducer) Flush(ctx context.Context) error {
	select {
	case <-p.js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	return p.errs.Err()
}

func (p *jsProducer) Close() error {
	p.nc.Close()
	return nil
}

func (t *jsTarget) NewConsumer(cfg e2e.ConsumerConfig) (_ e2e.Consumer, err error) {
	c := &jsConsumer{}
	if c.nc, err = t.connect(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.nc.Close()
		}
	}()
	js, err := jetstream.New(c.nc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, cfg.Topic, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return nil, err
	}
	if c.it, err = cons.Messages(); err != nil {
		return nil, err
	}
	return c, nil
}

type jsConsumer struct {
	nc *nats.Conn
	it jetstream.MessagesContext
}

func (c *jsConsumer) Poll(ctx context.Context, fn func([]byte)) (int, error) {
	m, err := c.it.Next(jetstream.NextContext(ctx))
	if err != nil {
		return 0, err
	}
	fn(m.Data())
	return 1, nil
}

func (c *jsConsumer) Close() error {
	c.it.Stop()
	c.nc.Close()
	return nil
}

func (t *jsTarget) Close() error {
	if t.nc != nil {
		t.nc.Close()
	}
	if t.srv != nil {
		t.srv.Shutdown()
		t.srv.WaitForShutdown()
	}
	if t.tmpDir != "" {
		return os.RemoveAll(t.tmpDir)
	}
	return nil
}
