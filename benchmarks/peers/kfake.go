package peers

import (
	"context"
	"errors"
	"fmt"

	"github.com/klauspost/compress/zstd"
	"github.com/runnel/runnel/benchmarks/internal/e2e"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrNoSync is returned when a system is asked to fsync data it keeps in
// memory.
var ErrNoSync = errors.New("peers: an in-memory store cannot fsync")

// ErrNoCodec is returned when a system is asked for a compression codec it
// does not have (JetStream has none per message) or a name that is not
// one of Kafka's.
var ErrNoCodec = errors.New("peers: no such compression codec")

// kgoCodec returns kgo's codec of a Kafka codec name ("" is "none"), each
// at kgo's default level (gzip's default, lz4's fastest, zstd's default,
// with kgo's 64 KiB window; snappy through klauspost/compress/s2) unless
// level, as Kafka numbers it, is not 0: kgo's WithLevel takes the
// library's own level, so a zstd level goes through
// zstd.EncoderLevelFromZstd (as runnel's does: 1 and 2 are SpeedFastest)
// and a gzip level as it is (the standard library's 1 to 9). A level of
// another codec is not mapped (ErrNoCodec).
func kgoCodec(name string, level int) (kgo.CompressionCodec, error) {
	var c kgo.CompressionCodec
	switch name {
	case "", "none":
		c = kgo.NoCompression()
	case "gzip":
		c = kgo.GzipCompression()
		if level != 0 {
			return c.WithLevel(level), nil
		}
	case "snappy":
		c = kgo.SnappyCompression()
	case "lz4":
		c = kgo.Lz4Compression()
	case "zstd":
		c = kgo.ZstdCompression()
		if level != 0 {
			return c.WithLevel(int(zstd.EncoderLevelFromZstd(level))), nil
		}
	default:
		return kgo.CompressionCodec{}, fmt.Errorf("%w: %q", ErrNoCodec, name)
	}
	if level != 0 {
		return kgo.CompressionCodec{}, fmt.Errorf("%w: %q at level %d", ErrNoCodec, name, level)
	}
	return c, nil
}

// Kfake is franz-go's fake Kafka cluster with one broker, in memory (its
// default) or on disk (its DataDir option; SyncWrites for fsync per
// batch), reached through kgo clients over the loopback interface.
func Kfake() e2e.System {
	return e2e.System{Name: "kfake", Open: openKfake}
}

type kfakeTarget struct {
	cluster *kfake.Cluster
	admin   *kgo.Client
}

var _ e2e.LogSizer = (*kfakeTarget)(nil)

func openKfake(_ context.Context, cfg e2e.Config) (e2e.Target, error) {
	opts := []kfake.Opt{kfake.NumBrokers(1)}
	switch {
	case cfg.Dir != "":
		opts = append(opts, kfake.DataDir(cfg.Dir))
		if cfg.Sync {
			opts = append(opts, kfake.SyncWrites())
		}
	case cfg.Sync:
		return nil, ErrNoSync
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, err
	}
	admin, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		c.Close()
		return nil, err
	}
	return &kfakeTarget{cluster: c, admin: admin}, nil
}

func (t *kfakeTarget) CreateTopic(ctx context.Context, topic string, partitions int) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, int32(partitions), 1
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 10_000
	resp, err := req.RequestWith(ctx, t.admin)
	if err != nil {
		return err
	}
	if len(resp.Topics) != 1 {
		return fmt.Errorf("peers: kfake answered CreateTopics with %d topics", len(resp.Topics))
	}
	return kerr.ErrorForCode(resp.Topics[0].ErrorCode)
}

func (t *kfakeTarget) Count(ctx context.Context, topic string, partitions int) (int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for p := range partitions {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = int32(p), -1 // latest
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, t.admin)
	if err != nil {
		return 0, err
	}
	var n int64
	seen := 0
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				return 0, fmt.Errorf("partition %d: %w", rp.Partition, err)
			}
			n += rp.Offset
			seen++
		}
	}
	if seen != partitions {
		return 0, fmt.Errorf("peers: kfake listed %d partitions of %d", seen, partitions)
	}
	return n, nil
}

// LogBytes sums the partitions' sizes that kfake's DescribeLogDirs
// answers: the bytes of the record batches it holds, as produced.
func (t *kfakeTarget) LogBytes(ctx context.Context, topic string, partitions int) (int64, error) {
	req := kmsg.NewPtrDescribeLogDirsRequest()
	rt := kmsg.NewDescribeLogDirsRequestTopic()
	rt.Topic = topic
	for p := range partitions {
		rt.Partitions = append(rt.Partitions, int32(p))
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, t.admin)
	if err != nil {
		return 0, err
	}
	var n int64
	seen := 0
	for _, d := range resp.Dirs {
		if err := kerr.ErrorForCode(d.ErrorCode); err != nil {
			return 0, fmt.Errorf("log dir %s: %w", d.Dir, err)
		}
		for _, dt := range d.Topics {
			if dt.Topic != topic {
				continue
			}
			for _, dp := range dt.Partitions {
				n += dp.Size
				seen++
			}
		}
	}
	if seen != partitions {
		return 0, fmt.Errorf("peers: kfake described %d partitions of %d", seen, partitions)
	}
	return n, nil
}

func (t *kfakeTarget) NewProducer(cfg e2e.ProducerConfig) (e2e.Producer, error) {
	codec, err := kgoCodec(cfg.Codec, cfg.Level)
	if err != nil {
		return nil, err
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(t.cluster.ListenAddrs()...),
		kgo.ProducerLinger(cfg.Linger),
		kgo.ProducerBatchMaxBytes(int32(cfg.BatchMaxBytes)),
		kgo.ProducerBatchCompression(codec),
		kgo.MaxBufferedRecords(cfg.MaxBuffered),
		// runnel's default partitioner: a keyless record goes to the
		// topic's sticky partition, which changes each time a record
		// would start a new batch in it.
		// kgo's default (UniformBytesPartitioner of 64 KiB) changes every
		// 64 KiB, which at p=8 made kfake's batches ~64 KiB against
		// runnel's 1 MB (16 times the fsyncs with SyncWrites).
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
	}
	if cfg.Acks == e2e.AcksAll {
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	} else {
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
		// Idempotent, kgo keeps 5 requests in flight per broker by itself
		// (and refuses this option); without idempotence its default is
		// 1, which would leave kfake's acks=1 runs one request at a time
		// against runnel's 5 per partition.
		if cfg.MaxInFlight > 0 {
			opts = append(opts, kgo.MaxProduceRequestsInflightPerBroker(cfg.MaxInFlight))
		}
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	p := &kgoProducer{cl: cl}
	p.promise = func(_ *kgo.Record, err error) { p.errs.Set(err) }
	return p, nil
}

type kgoProducer struct {
	cl      *kgo.Client
	promise func(*kgo.Record, error) // made once: Produce passes it for every record
	errs    e2e.FirstError
}

func (p *kgoProducer) Produce(ctx context.Context, topic string, value []byte) error {
	p.cl.Produce(ctx, &kgo.Record{Topic: topic, Value: value}, p.promise)
	return ctx.Err()
}

func (p *kgoProducer) Flush(ctx context.Context) error {
	return errors.Join(p.cl.Flush(ctx), p.errs.Err())
}

func (p *kgoProducer) Close() error {
	p.cl.Close()
	return nil
}

func (t *kfakeTarget) NewConsumer(cfg e2e.ConsumerConfig) (e2e.Consumer, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(t.cluster.ListenAddrs()...),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(cfg.MaxWait),
		kgo.FetchMaxBytes(50<<20),
		kgo.FetchMaxPartitionBytes(1<<20),
	)
	if err != nil {
		return nil, err
	}
	return &kgoConsumer{cl: cl}, nil
}

type kgoConsumer struct{ cl *kgo.Client }

func (c *kgoConsumer) Poll(ctx context.Context, fn func([]byte)) (int, error) {
	fs := c.cl.PollFetches(ctx)
	if errs := fs.Errors(); len(errs) > 0 {
		return 0, fmt.Errorf("%s-%d: %w", errs[0].Topic, errs[0].Partition, errs[0].Err)
	}
	n := 0
	fs.EachRecord(func(r *kgo.Record) {
		fn(r.Value)
		n++
	})
	return n, nil
}

func (c *kgoConsumer) Close() error {
	c.cl.Close()
	return nil
}

func (t *kfakeTarget) Close() error {
	t.admin.Close()
	t.cluster.Close()
	return nil
}
