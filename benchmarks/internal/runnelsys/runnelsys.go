// Package runnelsys is runnel as an e2e.System: a runnel.Broker in this
// process (runnel.Open; in memory or in a directory) used through the
// public producer and consumer packages, as an application would.
//
// It is an internal package of the benchmarks, shared by benchmarks/ and
// the benchmarks/peers module.
package runnelsys

import (
	"context"
	"errors"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/benchmarks/internal/e2e"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
)

// System returns runnel as the e2e.System named "runnel". Config.Sync
// picks the topics' sync policy: log.SyncAlways (fsync before the
// acknowledgement, with group commit; runnel's default) or log.SyncNever.
// In memory the fsync is the memory file system's (a no-op that still
// takes the group-commit path): the System has SyncInMemory.
func System() e2e.System {
	return e2e.System{Name: "runnel", Open: open, SyncInMemory: true}
}

type target struct{ b *runnel.Broker }

var _ e2e.LogSizer = (*target)(nil)

func open(_ context.Context, cfg e2e.Config) (e2e.Target, error) {
	defaults := log.Config{Sync: log.SyncNever}
	if cfg.Sync {
		defaults.Sync = log.SyncAlways
	}
	b, err := runnel.Open(runnel.Config{Dir: cfg.Dir, TopicDefaults: defaults})
	if err != nil {
		return nil, err
	}
	return &target{b: b}, nil
}

func (t *target) CreateTopic(ctx context.Context, topic string, partitions int) error {
	return t.b.CreateTopic(ctx, topic, log.TopicConfig{Partitions: partitions})
}

func (t *target) Count(ctx context.Context, topic string, partitions int) (int64, error) {
	var n int64
	for p := range partitions {
		end, err := t.b.ListOffset(ctx, topic, int32(p), api.Latest)
		if err != nil {
			return 0, err
		}
		n += end.Offset
	}
	return n, nil
}

// LogBytes is the sum of the topic's partitions' sizes
// (runnel.PartitionInfo.Size: the bytes of their record batches).
func (t *target) LogBytes(ctx context.Context, topic string, _ int) (int64, error) {
	info, err := t.b.DescribeTopic(ctx, topic)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, p := range info.Partitions {
		n += p.Size
	}
	return n, nil
}

func (t *target) Close() error { return t.b.Close() }

func (t *target) NewProducer(cfg e2e.ProducerConfig) (e2e.Producer, error) {
	codec := compression.None
	if cfg.Codec != "" {
		var err error
		if codec, err = compression.ParseCodec(cfg.Codec); err != nil {
			return nil, err
		}
	}
	opts := []producer.Opt{
		producer.Linger(cfg.Linger),
		producer.BatchMaxBytes(cfg.BatchMaxBytes),
		producer.Compression(codec),
		producer.RecordPartitioner(producer.StickyKeyPartitioner()),
		producer.MaxBufferedRecords(cfg.MaxBuffered),
	}
	if cfg.Level != 0 {
		opts = append(opts, producer.CompressionLevel(cfg.Level))
	}
	if cfg.MaxInFlight > 0 {
		opts = append(opts, producer.MaxInFlight(cfg.MaxInFlight))
	}
	if cfg.Acks == e2e.AcksAll {
		opts = append(opts, producer.Acks(producer.AcksAll))
	} else {
		// As kgo: idempotence needs acks=all.
		opts = append(opts, producer.Acks(producer.AcksLeader), producer.DisableIdempotence())
	}
	p, err := producer.New(t.b, opts...)
	if err != nil {
		return nil, err
	}
	w := &prod{p: p}
	w.promise = func(_ *record.Record, err error) { w.errs.Set(err) }
	return w, nil
}

type prod struct {
	p       *producer.Producer
	promise func(*record.Record, error) // made once: Produce passes it for every record
	errs    e2e.FirstError
}

func (w *prod) Produce(ctx context.Context, topic string, value []byte) error {
	w.p.Produce(ctx, &record.Record{Topic: topic, Value: value}, w.promise)
	return ctx.Err()
}

func (w *prod) Flush(ctx context.Context) error {
	return errors.Join(w.p.Flush(ctx), w.errs.Err())
}

func (w *prod) Close() error { return w.p.Close() }

func (t *target) NewConsumer(cfg e2e.ConsumerConfig) (e2e.Consumer, error) {
	c, err := consumer.New(t.b,
		consumer.FetchMaxWait(cfg.MaxWait),
		consumer.FetchMinBytes(1),
		consumer.FetchMaxBytes(50<<20),
		consumer.FetchMaxPartitionBytes(1<<20))
	if err != nil {
		return nil, err
	}
	if err := c.AssignTopic(context.Background(), cfg.Topic, consumer.Start()); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	return &cons{c: c}, nil
}

type cons struct{ c *consumer.Consumer }

func (w *cons) Poll(ctx context.Context, fn func([]byte)) (int, error) {
	fs, err := w.c.Poll(ctx)
	if err != nil {
		return 0, err
	}
	if err := fs.Err(); err != nil {
		return 0, err
	}
	n := 0
	for rec, err := range fs.Records() {
		if err != nil {
			return n, err
		}
		fn(rec.Value)
		n++
	}
	return n, nil
}

func (w *cons) Close() error { return w.c.Close() }
