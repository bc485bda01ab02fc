// Parity tests: a differential test of runnel's broker semantics against
// franz-go's kfake, an in-process fake Kafka cluster. Each test runs the
// same sequence of operations on a runnel broker (called directly, and
// through runnel's producer and consumer) and on kfake (raw kmsg requests
// sent to its one broker, and the kgo client), and compares the outcomes —
// offsets, error codes (runnel's errors through api.Code), the records and
// their fields — with what real Apache Kafka does.
//
// Where kfake differs from Kafka (it has its quirks), runnel is asserted
// against Kafka's documented behaviour and the quirk is logged. Where runnel
// differs from Kafka, the subtest skips with a message starting "runnel
// diverges:", so that the suite stays green while the divergence stays
// listed; once runnel behaves as Kafka does, the subtest passes and asserts
// it. Run them alone with `go test -run Parity` in this module.

package peers

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
	"go.uber.org/goleak"
)

// Kafka's error codes, as the protocol guide lists them.
const (
	codeNone               int16 = 0
	codeOffsetOutOfRange   int16 = 1
	codeUnknownTopic       int16 = 3
	codeMessageTooLarge    int16 = 10
	codeCorruptMessage     int16 = 2
	codeInvalidTopic       int16 = 17
	codeTopicExists        int16 = 36
	codeInvalidPartitions  int16 = 37
	codeInvalidTimestamp   int16 = 32
	codeOutOfOrderSequence int16 = 45
	codePolicyViolation    int16 = 44
	codeInvalidEpoch       int16 = 47
	codeInvalidRecord      int16 = 87
)

// ListOffsets' special timestamps (KIP-79, KIP-734).
const (
	tsLatest       int64 = -1
	tsEarliest     int64 = -2
	tsMaxTimestamp int64 = -3
	// KIP-405 and KIP-1005 (tiered storage): the local log start, and
	// the last offset in remote storage (-1 without tiered storage).
	tsEarliestLocal int64 = -4
	tsLatestTiered  int64 = -5
)

// topicSpec is a topic as both systems are asked to create it.
type topicSpec struct {
	partitions      int
	maxMessageBytes int  // max.message.bytes; 0: the default
	compact         bool // cleanup.policy=compact
	compactDelete   bool // cleanup.policy=compact,delete
	logAppendTime   bool // message.timestamp.type=LogAppendTime
}

type produceResult struct {
	code           int16
	baseOffset     int64
	logAppendTime  int64
	logStartOffset int64
}

type fetchResult struct {
	code           int16
	highWatermark  int64
	logStartOffset int64
	records        []byte // whole batches
}

// system is one side of the comparison, at the level of Kafka's requests:
// every method answers with Kafka's error code.
type system interface {
	createTopic(ctx context.Context, name string, spec topicSpec) int16
	deleteTopic(ctx context.Context, name string) int16
	createPartitions(ctx context.Context, name string, n int) int16
	produce(ctx context.Context, topic string, partition int32, batch []byte) produceResult
	fetch(ctx context.Context, topic string, partition int32, offset int64) fetchResult
	listOffset(ctx context.Context, topic string, partition int32, ts int64) (int16, int64)
	// listedTimestamp is the timestamp listOffset's answer carries (-1 on
	// an error).
	listedTimestamp(ctx context.Context, topic string, partition int32, ts int64) int64
	deleteRecords(ctx context.Context, topic string, partition int32, offset int64) (int16, int64)
	initProducerID(ctx context.Context) (int64, int16)
}

// Both sides answer the same requests.
var (
	_ system = runnelSys{}
	_ system = kfakeSys{}
)

// runnelSys is a runnel broker in memory.
type runnelSys struct{ b *runnel.Broker }

func (s runnelSys) createTopic(ctx context.Context, name string, spec topicSpec) int16 {
	return api.Code(s.b.CreateTopic(ctx, name, spec.runnelConfig()))
}

// runnelConfig is spec as runnel's topic config.
func (spec topicSpec) runnelConfig() log.TopicConfig {
	cfg := log.TopicConfig{Partitions: spec.partitions}
	cfg.MaxMessageBytes = spec.maxMessageBytes
	switch {
	case spec.compactDelete:
		cfg.CleanupPolicy = log.Compact | log.Delete
	case spec.compact:
		cfg.CleanupPolicy = log.Compact
	}
	if spec.logAppendTime {
		cfg.TimestampType = log.LogAppendTime
	}
	return cfg
}

func (s runnelSys) deleteTopic(ctx context.Context, name string) int16 {
	return api.Code(s.b.DeleteTopic(ctx, name))
}

func (s runnelSys) createPartitions(ctx context.Context, name string, n int) int16 {
	return api.Code(s.b.CreatePartitions(ctx, name, n))
}

func (s runnelSys) produce(ctx context.Context, topic string, partition int32, batch []byte) produceResult {
	resp, err := s.b.Produce(ctx, &api.ProduceRequest{Topic: topic, Partition: partition, Acks: api.AcksAll, Batches: slices.Clone(batch)})
	if err != nil {
		return produceResult{code: api.Code(err), baseOffset: -1, logAppendTime: -1, logStartOffset: -1}
	}
	return produceResult{baseOffset: resp.BaseOffset, logAppendTime: resp.LogAppendTime, logStartOffset: resp.LogStartOffset}
}

func (s runnelSys) fetch(ctx context.Context, topic string, partition int32, offset int64) fetchResult {
	resp, err := s.b.Fetch(ctx, &api.FetchRequest{MaxBytes: 1 << 20, Partitions: []api.FetchPartition{{Topic: topic, Partition: partition, Offset: offset, MaxBytes: 1 << 20}}})
	if err != nil {
		return fetchResult{code: api.Code(err)}
	}
	p := resp.Partitions[0]
	return fetchResult{code: api.Code(p.Err), highWatermark: p.HighWatermark, logStartOffset: p.LogStartOffset, records: p.Records}
}

func (s runnelSys) listOffset(ctx context.Context, topic string, partition int32, ts int64) (int16, int64) {
	off, err := s.b.ListOffset(ctx, topic, partition, ts)
	if err != nil {
		return api.Code(err), -1
	}
	return 0, off.Offset
}

func (s runnelSys) listedTimestamp(ctx context.Context, topic string, partition int32, ts int64) int64 {
	off, err := s.b.ListOffset(ctx, topic, partition, ts)
	if err != nil {
		return -1
	}
	return off.Timestamp
}

func (s runnelSys) deleteRecords(ctx context.Context, topic string, partition int32, offset int64) (int16, int64) {
	low, err := s.b.DeleteRecords(ctx, topic, partition, offset)
	if err != nil {
		return api.Code(err), -1
	}
	return 0, low
}

func (s runnelSys) initProducerID(ctx context.Context) (int64, int16) {
	id, epoch, err := s.b.InitProducerID(ctx)
	if err != nil {
		panic(err)
	}
	return id, epoch
}

// kfakeSys is a one-broker kfake cluster; requests go to its broker
// directly (no kgo sharding, retries or metadata look-ups), at the request
// versions of Kafka 3.0: ListOffsets v7 knows MAX_TIMESTAMP (KIP-734) and
// Fetch v12 still names topics (v13 takes topic ids).
type kfakeSys struct {
	t  testing.TB
	c  *kfake.Cluster
	cl *kgo.Client
}

func (s kfakeSys) request(ctx context.Context, req kmsg.Request) kmsg.Response {
	resp, err := s.cl.Broker(0).Request(ctx, req)
	if err != nil {
		s.t.Fatalf("kfake %T: %v", req, err)
	}
	return resp
}

func (s kfakeSys) createTopic(ctx context.Context, name string, spec topicSpec) int16 {
	return s.createTopicWith(ctx, name, spec)
}

// createTopicWith creates the topic spec says, with the configs of extra
// (name, value, name, value, ...) too.
func (s kfakeSys) createTopicWith(ctx context.Context, name string, spec topicSpec, extra ...string) int16 {
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, int32(spec.partitions), 1
	config := func(k, v string) {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, c)
	}
	if spec.maxMessageBytes != 0 {
		config("max.message.bytes", strconv.Itoa(spec.maxMessageBytes))
	}
	switch {
	case spec.compactDelete:
		config("cleanup.policy", "compact,delete")
	case spec.compact:
		config("cleanup.policy", "compact")
	}
	if spec.logAppendTime {
		config("message.timestamp.type", "LogAppendTime")
	}
	for i := 0; i+1 < len(extra); i += 2 {
		config(extra[i], extra[i+1])
	}
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 5000
	resp := s.request(ctx, req).(*kmsg.CreateTopicsResponse)
	return resp.Topics[0].ErrorCode
}

func (s kfakeSys) deleteTopic(ctx context.Context, name string) int16 {
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TopicNames = []string{name}
	rt := kmsg.NewDeleteTopicsRequestTopic()
	rt.Topic = kmsg.StringPtr(name)
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 5000
	resp := s.request(ctx, req).(*kmsg.DeleteTopicsResponse)
	return resp.Topics[0].ErrorCode
}

func (s kfakeSys) createPartitions(ctx context.Context, name string, n int) int16 {
	req := kmsg.NewPtrCreatePartitionsRequest()
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = name, int32(n)
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 5000
	resp := s.request(ctx, req).(*kmsg.CreatePartitionsResponse)
	return resp.Topics[0].ErrorCode
}

func (s kfakeSys) produce(ctx context.Context, topic string, partition int32, batch []byte) produceResult {
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, slices.Clone(batch)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	p := s.request(ctx, req).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		return produceResult{code: p.ErrorCode, baseOffset: -1, logAppendTime: -1, logStartOffset: -1}
	}
	return produceResult{baseOffset: p.BaseOffset, logAppendTime: p.LogAppendTime, logStartOffset: p.LogStartOffset}
}

func (s kfakeSys) fetch(ctx context.Context, topic string, partition int32, offset int64) fetchResult {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, 0, 0, 1<<20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = partition, offset, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := s.request(ctx, req).(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 {
		return fetchResult{code: resp.ErrorCode}
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		s.t.Fatalf("kfake fetch of %s-%d answered %d topics", topic, partition, len(resp.Topics))
	}
	p := resp.Topics[0].Partitions[0]
	return fetchResult{code: p.ErrorCode, highWatermark: p.HighWatermark, logStartOffset: p.LogStartOffset, records: p.RecordBatches}
}

func (s kfakeSys) listOffset(ctx context.Context, topic string, partition int32, ts int64) (int16, int64) {
	p := s.listOffsets(ctx, topic, partition, ts)
	if p.ErrorCode != 0 {
		return p.ErrorCode, -1
	}
	return 0, p.Offset
}

func (s kfakeSys) listedTimestamp(ctx context.Context, topic string, partition int32, ts int64) int64 {
	p := s.listOffsets(ctx, topic, partition, ts)
	if p.ErrorCode != 0 {
		return -1
	}
	return p.Timestamp
}

// listOffsets sends one ListOffsets request for one partition.
func (s kfakeSys) listOffsets(ctx context.Context, topic string, partition int32, ts int64) kmsg.ListOffsetsResponseTopicPartition {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = partition, ts
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return s.request(ctx, req).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
}

func (s kfakeSys) deleteRecords(ctx context.Context, topic string, partition int32, offset int64) (int16, int64) {
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.TimeoutMillis = 5000
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = partition, offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	p := s.request(ctx, req).(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		return p.ErrorCode, -1
	}
	return 0, p.LowWatermark
}

func (s kfakeSys) initProducerID(ctx context.Context) (int64, int16) {
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionTimeoutMillis = 60_000
	resp := s.request(ctx, req).(*kmsg.InitProducerIDResponse)
	if resp.ErrorCode != 0 {
		s.t.Fatalf("kfake InitProducerID: code %d", resp.ErrorCode)
	}
	return resp.ProducerID, resp.ProducerEpoch
}

// pair is one runnel broker and one kfake cluster for a test.
type pair struct {
	ctx context.Context
	rn  runnelSys
	kf  kfakeSys
}

// eventually polls cond every 10 ms until it holds, for work kfake does
// in the background (it removes a deleted topic asynchronously). It fails
// the test when p's ctx ends first: a hang guard, not a bound on kfake's
// speed (the polls were limited to 100, a second, which a loaded machine
// could outlast).
func (p *pair) eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-p.ctx.Done():
			t.Fatalf("kfake: %s: not so by the test's deadline", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func newPair(t *testing.T) *pair {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	b, err := runnel.Open(runnel.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.MaxVersions(kversion.V3_0_0()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &pair{ctx: ctx, rn: runnelSys{b}, kf: kfakeSys{t: t, c: c, cl: cl}}
}

// createTopic creates a topic on both systems, or fails the test.
func (p *pair) createTopic(t *testing.T, name string, spec topicSpec) {
	t.Helper()
	if rc, kc := p.rn.createTopic(p.ctx, name, spec), p.kf.createTopic(p.ctx, name, spec); rc != 0 || kc != 0 {
		t.Fatalf("create %s: runnel code %d, kfake code %d", name, rc, kc)
	}
}

// expect asserts that runnel and kfake both answered what Kafka answers.
func expect[T comparable](t *testing.T, what string, kafka, rn, kf T) {
	t.Helper()
	if rn != kafka {
		t.Errorf("%s: runnel %v, Kafka %v (kfake %v)", what, rn, kafka, kf)
	}
	if kf != kafka {
		t.Errorf("%s: kfake %v, Kafka %v (runnel %v)", what, kf, kafka, rn)
	}
}

// expectOne asserts one system's answer (runnel's, or kfake's where
// only it is asked) against Kafka's.
func expectOne[T comparable](t *testing.T, what string, kafka, got T) {
	t.Helper()
	if got != kafka {
		t.Errorf("%s: %v, Kafka %v", what, got, kafka)
	}
}

// expectQuirk asserts that runnel answered what Kafka answers, where kfake
// is known to differ; it logs what kfake answered.
func expectQuirk[T comparable](t *testing.T, what string, kafka, rn, kf T, quirk string) {
	t.Helper()
	if rn != kafka {
		t.Errorf("%s: runnel %v, Kafka %v", what, rn, kafka)
	}
	if kf != kafka {
		t.Logf("kfake quirk: %s: kfake %v, Kafka %v: %s", what, kf, kafka, quirk)
	} else {
		t.Logf("%s: kfake now answers as Kafka does (%v); the quirk %q is gone", what, kf, quirk)
	}
}

// diverges skips the (sub)test when runnel does not answer what Kafka
// answers: the divergence is known and listed, not fixed here.
func diverges[T comparable](t *testing.T, what string, kafka, rn T, why string) {
	t.Helper()
	if rn != kafka {
		t.Skipf("runnel diverges: %s: runnel %v, Kafka %v: %s", what, rn, kafka, why)
	}
}

// rec is a record as it compares across systems: null and empty told apart.
type rec struct {
	Offset  int64
	Key     string
	Value   string
	Headers string
	TS      int64
	TSType  record.TimestampType
}

func show(b []byte) string {
	if b == nil {
		return "null"
	}
	return strconv.Quote(string(b))
}

// decode decodes whole batches (the first may start before from) into the
// records at or after from.
func decode(t *testing.T, data []byte, from int64) []rec {
	t.Helper()
	var out []rec
	for b, err := range record.Batches(data) {
		if err != nil {
			t.Fatalf("decoding fetched batches: %v", err)
		}
		it, err := b.Iter(0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var r record.Record
		for it.Next(&r) {
			if r.Offset < from {
				continue
			}
			hs := make([]string, len(r.Headers))
			for i, h := range r.Headers {
				hs[i] = strconv.Quote(h.Key) + "=" + show(h.Value)
			}
			out = append(out, rec{Offset: r.Offset, Key: show(r.Key), Value: show(r.Value),
				Headers: strings.Join(hs, ","), TS: r.Timestamp.UnixMilli(), TSType: r.TimestampType})
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// firstBatchBase is the base offset of the first fetched batch, -1 for none.
func firstBatchBase(data []byte) int64 {
	if len(data) < record.HeaderSize {
		return -1
	}
	return record.Batch(data).BaseOffset()
}

// batchOf encodes one batch of records with CreateTime timestamps, and the
// producer id, epoch and first sequence when pid is not -1.
func batchOf(t *testing.T, pid int64, epoch int16, seq int32, recs ...*record.Record) []byte {
	t.Helper()
	var bl record.Builder
	if pid >= 0 {
		bl.SetProducer(pid, epoch, seq)
	}
	for _, r := range recs {
		bl.Add(r)
	}
	out, err := bl.AppendTo(nil, compression.None)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// values is a batch (no producer id) of records with these values and
// timestamps (ms), keyed "k<i>".
func values(t *testing.T, ts []int64) []byte {
	recs := make([]*record.Record, len(ts))
	for i, ms := range ts {
		recs[i] = &record.Record{Key: []byte("k" + strconv.Itoa(i)), Value: []byte("v" + strconv.Itoa(i)), Timestamp: time.UnixMilli(ms)}
	}
	return batchOf(t, -1, -1, -1, recs...)
}

// TestParityKeyPartitioning: a keyed record goes to murmur2(key) % n in
// Kafka's Java producer (DefaultPartitioner up to 3.2, BuiltInPartitioner
// since KIP-794) and in kgo; runnel's producer must agree for every key
// and partition count, also for the empty (non-null) key.
func TestParityKeyPartitioning(t *testing.T) {
	keys := [][]byte{{}, {0}, {0xff}, []byte("a"), []byte("order-1"), bytes.Repeat([]byte("x"), 1000)}
	for i := range 2000 {
		keys = append(keys, []byte(fmt.Sprintf("key-%d", i*7919)))
	}
	// kgo's default partitioner (KIP-794's uniform sticky one) hashes
	// keyed records without looking at its backup iterator.
	kgoDefault := kgo.UniformBytesPartitioner(64<<10, true, true, nil).ForTopic("t").(kgo.TopicBackupPartitioner)
	kgoSticky := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	for _, n := range []int{1, 2, 3, 5, 7, 8, 12, 16, 31, 64, 100, 1000, 1 << 20} {
		for _, k := range keys {
			want := kgoSticky.Partition(&kgo.Record{Key: k}, n)
			if got := kgoDefault.PartitionByBackup(&kgo.Record{Key: k}, n, nil); got != want {
				t.Fatalf("kgo's partitioners disagree on %q among %d: %d, %d", k, n, got, want)
			}
			if got := producer.KeyPartition(k, n); int(got) != want {
				t.Errorf("key %q among %d partitions: runnel %d, Kafka %d", k, n, got, want)
			}
		}
	}

	// End to end, through both producers, to a topic of 7 partitions.
	p := newPair(t)
	const parts = 7
	p.createTopic(t, "keyed", topicSpec{partitions: parts})
	rp, err := producer.New(p.rn.b)
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Close()
	kp, err := kgo.NewClient(kgo.SeedBrokers(p.kf.c.ListenAddrs()...), kgo.DefaultProduceTopic("keyed"))
	if err != nil {
		t.Fatal(err)
	}
	defer kp.Close()
	var rrecs []*record.Record
	var krecs []*kgo.Record
	for _, k := range keys[:200] {
		rrecs = append(rrecs, &record.Record{Topic: "keyed", Key: k, Value: []byte("v")})
		krecs = append(krecs, &kgo.Record{Key: k, Value: []byte("v")})
	}
	if err := rp.ProduceSync(p.ctx, rrecs...); err != nil {
		t.Fatal(err)
	}
	if err := kp.ProduceSync(p.ctx, krecs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	perPart := map[int32]int64{}
	for i := range rrecs {
		if rrecs[i].Partition != krecs[i].Partition {
			t.Errorf("key %q: runnel's producer chose %d, kgo %d", rrecs[i].Key, rrecs[i].Partition, krecs[i].Partition)
		}
		// Offsets follow per partition, from 0, in both.
		want := perPart[rrecs[i].Partition]
		perPart[rrecs[i].Partition]++
		expect(t, fmt.Sprintf("offset of key %q", rrecs[i].Key), want, rrecs[i].Offset, krecs[i].Offset)
	}
}

// TestParityOffsets: base offsets of successive batches, the log start
// offset in produce responses, the high watermark, and a fetch from inside
// a batch (the whole batch comes back: KIP-74's "the first batch may start
// before the fetch offset").
func TestParityOffsets(t *testing.T) {
	p := newPair(t)
	p.createTopic(t, "offsets", topicSpec{partitions: 2})
	now := time.Now().UnixMilli()
	var next int64
	for i, n := range []int{1, 3, 5, 2} {
		ts := make([]int64, n)
		for j := range ts {
			ts[j] = now + int64(j)
		}
		batch := values(t, ts)
		r, k := p.rn.produce(p.ctx, "offsets", 1, batch), p.kf.produce(p.ctx, "offsets", 1, batch)
		expect(t, fmt.Sprintf("batch %d: code", i), 0, r.code, k.code)
		expect(t, fmt.Sprintf("batch %d: base offset", i), next, r.baseOffset, k.baseOffset)
		expect(t, fmt.Sprintf("batch %d: log append time on a CreateTime topic", i), -1, r.logAppendTime, k.logAppendTime)
		expect(t, fmt.Sprintf("batch %d: log start offset", i), 0, r.logStartOffset, k.logStartOffset)
		next += int64(n)
	}
	rc, ro := p.rn.listOffset(p.ctx, "offsets", 1, tsLatest)
	kc, ko := p.kf.listOffset(p.ctx, "offsets", 1, tsLatest)
	expect(t, "latest: code", 0, rc, kc)
	expect(t, "latest", next, ro, ko)
	rc, ro = p.rn.listOffset(p.ctx, "offsets", 0, tsLatest)
	kc, ko = p.kf.listOffset(p.ctx, "offsets", 0, tsLatest)
	expect(t, "latest of an empty partition", 0, ro, ko)
	expect(t, "earliest of an empty partition: code", 0, rc, kc)

	for _, from := range []int64{0, 1, 2, 4, 5, 9, 10} {
		r, k := p.rn.fetch(p.ctx, "offsets", 1, from), p.kf.fetch(p.ctx, "offsets", 1, from)
		expect(t, fmt.Sprintf("fetch %d: code", from), 0, r.code, k.code)
		expect(t, fmt.Sprintf("fetch %d: high watermark", from), next, r.highWatermark, k.highWatermark)
		expect(t, fmt.Sprintf("fetch %d: first batch's base offset", from), firstBatchBase(k.records), firstBatchBase(r.records), firstBatchBase(k.records))
		rr, kr := decode(t, r.records, from), decode(t, k.records, from)
		if !slices.Equal(rr, kr) {
			t.Errorf("fetch %d: runnel %v, kfake %v", from, rr, kr)
		}
		if int64(len(rr)) != next-from {
			t.Errorf("fetch %d: %d records, want %d", from, len(rr), next-from)
		}
	}
	// At the high watermark: nothing, no error; past it: out of range.
	r, k := p.rn.fetch(p.ctx, "offsets", 1, next), p.kf.fetch(p.ctx, "offsets", 1, next)
	expect(t, "fetch at the high watermark: code", codeNone, r.code, k.code)
	expect(t, "fetch at the high watermark: bytes", 0, len(r.records), len(k.records))
	r, k = p.rn.fetch(p.ctx, "offsets", 1, next+1), p.kf.fetch(p.ctx, "offsets", 1, next+1)
	expect(t, "fetch past the high watermark: code", codeOffsetOutOfRange, r.code, k.code)
}

// TestParityListOffsetsByTime: Kafka's ListOffsets for a timestamp answers
// the first offset whose record's timestamp is at or after it, searching
// by offset (timestamps need not grow); "none" is offset -1 in Kafka's
// protocol, which runnel's ListOffset answers as the high watermark
// (documented: an offset no record has, and where a consumer positioned by
// time then starts).
func TestParityListOffsetsByTime(t *testing.T) {
	p := newPair(t)
	p.createTopic(t, "bytime", topicSpec{partitions: 1})
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	// offsets:    0       1        2        3        4        5
	ts := []int64{base, base + 20, base + 20, base + 15, base + 30, base + 25}
	for _, batch := range [][]int64{ts[0:2], ts[2:4], ts[4:6]} {
		if r, k := p.rn.produce(p.ctx, "bytime", 0, values(t, batch)), p.kf.produce(p.ctx, "bytime", 0, values(t, batch)); r.code != 0 || k.code != 0 {
			t.Fatalf("produce: runnel %d, kfake %d", r.code, k.code)
		}
	}
	const hw = 6
	// runnel answers the high watermark where Kafka answers -1.
	notFound := func(off int64) int64 {
		if off == hw {
			return -1
		}
		return off
	}
	cases := []struct {
		name string
		ts   int64
		want int64
	}{
		{"before the first record", base - 1000, 0},
		{"at the epoch", 0, 0},
		{"equal to the first record's", base, 0},
		{"between two records'", base + 1, 1},
		{"equal to a record's, first of two", base + 20, 1},
		{"equal to an out-of-order record's", base + 15, 1},
		{"equal to a later batch's record's", base + 25, 4},
		{"equal to the largest", base + 30, 4},
		{"after the last record", base + 31, -1},
		{"long after", base + 1e9, -1},
		{"latest (-1)", tsLatest, hw},
		{"earliest (-2)", tsEarliest, 0},
	}
	for _, c := range cases {
		rc, ro := p.rn.listOffset(p.ctx, "bytime", 0, c.ts)
		kc, ko := p.kf.listOffset(p.ctx, "bytime", 0, c.ts)
		expect(t, c.name+": code", 0, rc, kc)
		if c.ts >= 0 {
			ro = notFound(ro)
		}
		expect(t, c.name, c.want, ro, ko)
		// The answer's timestamp: the found record's, -1 for none and
		// for latest and earliest.
		wantTs := int64(-1)
		if c.ts >= 0 && c.want >= 0 {
			wantTs = ts[c.want]
		}
		expect(t, c.name+": timestamp", wantTs, p.rn.listedTimestamp(p.ctx, "bytime", 0, c.ts), p.kf.listedTimestamp(p.ctx, "bytime", 0, c.ts))
	}

	// After DeleteRecords, records below the log start offset are not found.
	if rc, kc := func() (int16, int16) {
		rc, _ := p.rn.deleteRecords(p.ctx, "bytime", 0, 2)
		kc, _ := p.kf.deleteRecords(p.ctx, "bytime", 0, 2)
		return rc, kc
	}(); rc != 0 || kc != 0 {
		t.Fatalf("delete records: runnel %d, kfake %d", rc, kc)
	}
	for _, c := range []struct {
		name string
		ts   int64
		want int64
	}{
		{"after delete: before the first record", base - 1000, 2},
		{"after delete: a deleted record's", base, 2},
		{"after delete: an out-of-order record's", base + 15, 2},
		{"after delete: earliest", tsEarliest, 2},
	} {
		_, ro := p.rn.listOffset(p.ctx, "bytime", 0, c.ts)
		_, ko := p.kf.listOffset(p.ctx, "bytime", 0, c.ts)
		if c.ts >= 0 {
			ro = notFound(ro)
		}
		expect(t, c.name, c.want, ro, ko)
	}

	t.Run("MaxTimestamp", func(t *testing.T) {
		// KIP-734 (Kafka 3.0): -3 is the offset of the record with the
		// largest timestamp: offset 4 (base+30).
		rc, ro := p.rn.listOffset(p.ctx, "bytime", 0, tsMaxTimestamp)
		kc, ko := p.kf.listOffset(p.ctx, "bytime", 0, tsMaxTimestamp)
		expectOne(t, "max timestamp (-3) on kfake: code", 0, kc)
		expectOne(t, "max timestamp (-3) on kfake", 4, ko)
		expectOne(t, "runnel: ListOffsets max timestamp (-3): code", 0, rc)
		expectOne(t, "runnel: ListOffsets max timestamp (-3)", 4, ro)
		expect(t, "max timestamp (-3): timestamp", base+30, p.rn.listedTimestamp(p.ctx, "bytime", 0, tsMaxTimestamp), p.kf.listedTimestamp(p.ctx, "bytime", 0, tsMaxTimestamp))
	})
	// kfake answers -4 and -5 from ListOffsets v8 and v9 only (Kafka 3.4
	// and 3.8); these compare runnel with Kafka's UnifiedLog without
	// tiered storage: -4 is the log start offset, -5 offset -1.
	t.Run("EarliestLocal", func(t *testing.T) {
		rc, ro := p.rn.listOffset(p.ctx, "bytime", 0, tsEarliestLocal)
		if rc != 0 || ro != 2 {
			t.Errorf("earliest local (-4): runnel code %d offset %d, Kafka 0 and the log start offset 2", rc, ro)
		}
	})
	t.Run("LatestTiered", func(t *testing.T) {
		_, ro := p.rn.listOffset(p.ctx, "bytime", 0, tsLatestTiered)
		diverges(t, "ListOffsets latest tiered (-5) without tiered storage", -1, ro,
			"runnel takes -5 for a timestamp (it has no tiered storage, where Kafka answers -1)")
	})
}

// TestParityDeleteRecords: DeleteRecords moves the log start offset (the
// low watermark); Kafka refuses an offset above the high watermark or
// below 0 (OFFSET_OUT_OF_RANGE: UnifiedLog.maybeIncrementLogStartOffset,
// DeleteRecordsRequestTest), takes -1 as the high watermark, and leaves
// the log start unchanged, without error, for an offset below it.
func TestParityDeleteRecords(t *testing.T) {
	p := newPair(t)
	p.createTopic(t, "del", topicSpec{partitions: 1})
	now := time.Now().UnixMilli()
	for range 5 {
		batch := values(t, []int64{now, now})
		if r, k := p.rn.produce(p.ctx, "del", 0, batch), p.kf.produce(p.ctx, "del", 0, batch); r.code != 0 || k.code != 0 {
			t.Fatalf("produce: runnel %d, kfake %d", r.code, k.code)
		}
	}
	del := func(what string, off int64, code int16, low int64) {
		t.Helper()
		rc, rl := p.rn.deleteRecords(p.ctx, "del", 0, off)
		kc, kl := p.kf.deleteRecords(p.ctx, "del", 0, off)
		expect(t, what+": code", code, rc, kc)
		expect(t, what+": low watermark", low, rl, kl)
	}
	del("delete before 3 (inside a batch)", 3, 0, 3)
	earliest := func(want int64) {
		t.Helper()
		_, ro := p.rn.listOffset(p.ctx, "del", 0, tsEarliest)
		_, ko := p.kf.listOffset(p.ctx, "del", 0, tsEarliest)
		expect(t, "earliest", want, ro, ko)
	}
	earliest(3)
	for _, c := range []struct {
		from int64
		code int16
		base int64
	}{{2, codeOffsetOutOfRange, -1}, {0, codeOffsetOutOfRange, -1}, {3, 0, 2}, {4, 0, 4}, {10, 0, -1}, {11, codeOffsetOutOfRange, -1}} {
		r, k := p.rn.fetch(p.ctx, "del", 0, c.from), p.kf.fetch(p.ctx, "del", 0, c.from)
		expect(t, fmt.Sprintf("fetch %d: code", c.from), c.code, r.code, k.code)
		if c.code == 0 {
			expect(t, fmt.Sprintf("fetch %d: log start offset", c.from), 3, r.logStartOffset, k.logStartOffset)
			expect(t, fmt.Sprintf("fetch %d: first batch", c.from), c.base, firstBatchBase(r.records), firstBatchBase(k.records))
		}
	}
	r := p.rn.produce(p.ctx, "del", 0, values(t, []int64{now}))
	k := p.kf.produce(p.ctx, "del", 0, values(t, []int64{now}))
	expect(t, "produce after delete: log start offset", 3, r.logStartOffset, k.logStartOffset)
	expect(t, "produce after delete: base offset", 10, r.baseOffset, k.baseOffset)

	rc, rl := p.rn.deleteRecords(p.ctx, "del", 0, 2)
	kc, kl := p.kf.deleteRecords(p.ctx, "del", 0, 2)
	expectQuirk(t, "delete below the log start: code", codeNone, rc, kc,
		"kfake refuses an offset below the log start; Kafka ignores it (maybeIncrementLogStartOffset only moves forward)")
	if rc == 0 && rl != 3 {
		t.Errorf("delete below the log start: runnel low watermark %d, Kafka 3", rl)
	}
	_ = kl
	del("delete past the high watermark", 12, codeOffsetOutOfRange, -1)
	rc, _ = p.rn.deleteRecords(p.ctx, "del", 0, -5)
	kc, _ = p.kf.deleteRecords(p.ctx, "del", 0, -5)
	expect(t, "delete before -5: code", codeOffsetOutOfRange, rc, kc)
	del("delete up to the high watermark (-1)", -1, 0, 11)
	earliest(11)
	_, ro := p.rn.listOffset(p.ctx, "del", 0, tsLatest)
	_, ko := p.kf.listOffset(p.ctx, "del", 0, tsLatest)
	expect(t, "latest after deleting everything", 11, ro, ko)
	rf, kf := p.rn.fetch(p.ctx, "del", 0, 11), p.kf.fetch(p.ctx, "del", 0, 11)
	expect(t, "fetch at the emptied log's end: code", 0, rf.code, kf.code)
	rf, kf = p.rn.fetch(p.ctx, "del", 0, 10), p.kf.fetch(p.ctx, "del", 0, 10)
	expect(t, "fetch below the emptied log's start: code", codeOffsetOutOfRange, rf.code, kf.code)

	t.Run("CompactedTopic", func(t *testing.T) {
		// Partition.deleteRecordsOnLeader: "Records of partition ... can
		// not be deleted due to the configured policy" unless
		// cleanup.policy includes delete.
		p.createTopic(t, "del-compact", topicSpec{partitions: 1, compact: true})
		p.createTopic(t, "del-compact-delete", topicSpec{partitions: 1, compactDelete: true})
		batch := values(t, []int64{now, now})
		for _, topic := range []string{"del-compact", "del-compact-delete"} {
			if r, k := p.rn.produce(p.ctx, topic, 0, batch), p.kf.produce(p.ctx, topic, 0, batch); r.code != 0 || k.code != 0 {
				t.Fatalf("produce: runnel %d, kfake %d", r.code, k.code)
			}
		}
		rc, _ := p.rn.deleteRecords(p.ctx, "del-compact-delete", 0, 1)
		kc, _ := p.kf.deleteRecords(p.ctx, "del-compact-delete", 0, 1)
		expect(t, "delete records, cleanup.policy=compact,delete", 0, rc, kc)
		rc, _ = p.rn.deleteRecords(p.ctx, "del-compact", 0, 1)
		kc, _ = p.kf.deleteRecords(p.ctx, "del-compact", 0, 1)
		if kc != codePolicyViolation {
			t.Logf("kfake quirk: delete records, cleanup.policy=compact: kfake %d, Kafka %d (POLICY_VIOLATION)", kc, codePolicyViolation)
		}
		expectOne(t, "runnel: delete records, cleanup.policy=compact", codePolicyViolation, rc)
	})
}

// TestParityRecordFields: keys, values and headers round-trip with null
// and empty told apart, header order and duplicate keys kept; CreateTime
// timestamps are the producer's.
func TestParityRecordFields(t *testing.T) {
	p := newPair(t)
	p.createTopic(t, "fields", topicSpec{partitions: 1})
	ts := time.Date(2001, 9, 9, 1, 46, 40, 0, time.UTC)
	recs := []*record.Record{
		{Key: nil, Value: nil, Timestamp: ts},
		{Key: []byte{}, Value: []byte{}, Timestamp: ts.Add(time.Millisecond)},
		{Key: []byte("k"), Value: nil, Timestamp: ts.Add(-time.Hour)},
		{Key: nil, Value: []byte("v"), Timestamp: ts},
		{Key: []byte("k"), Value: []byte("v"), Timestamp: ts, Headers: []record.Header{
			{Key: "a", Value: []byte("1")}, {Key: "", Value: nil}, {Key: "a", Value: []byte{}}, {Key: "z", Value: []byte{0, 0xff}},
		}},
	}
	batch := batchOf(t, -1, -1, -1, recs...)
	if r, k := p.rn.produce(p.ctx, "fields", 0, batch), p.kf.produce(p.ctx, "fields", 0, batch); r.code != 0 || k.code != 0 {
		t.Fatalf("produce: runnel %d, kfake %d", r.code, k.code)
	}
	r, k := p.rn.fetch(p.ctx, "fields", 0, 0), p.kf.fetch(p.ctx, "fields", 0, 0)
	rr, kr := decode(t, r.records, 0), decode(t, k.records, 0)
	if len(rr) != len(recs) || !slices.Equal(rr, kr) {
		t.Fatalf("records:\nrunnel %v\nkfake  %v", rr, kr)
	}
	for i, got := range rr {
		if got.Key != show(recs[i].Key) || got.Value != show(recs[i].Value) || got.TS != recs[i].Timestamp.UnixMilli() || got.TSType != record.CreateTime {
			t.Errorf("record %d: %+v, produced %+v", i, got, recs[i])
		}
	}

	// Through the clients: runnel's producer and consumer, kgo against kfake.
	rp, err := producer.New(p.rn.b, producer.Linger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Close()
	kcl, err := kgo.NewClient(kgo.SeedBrokers(p.kf.c.ListenAddrs()...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"fields": {0: kgo.NewOffset().At(5)}}))
	if err != nil {
		t.Fatal(err)
	}
	defer kcl.Close()
	var krecs []*kgo.Record
	for _, r := range recs {
		r.Topic = "fields"
		kr := &kgo.Record{Topic: "fields", Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}
		for _, h := range r.Headers {
			kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		krecs = append(krecs, kr)
	}
	if err := rp.ProduceSync(p.ctx, recs...); err != nil {
		t.Fatal(err)
	}
	if err := kcl.ProduceSync(p.ctx, krecs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	rc, err := consumer.New(p.rn.b)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := rc.Assign("fields", 0, consumer.At(5)); err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for len(got) < len(recs) {
		fs, err := rc.Poll(p.ctx)
		if err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *record.Record) {
			hs := ""
			for _, h := range r.Headers {
				hs += h.Key + "=" + show(h.Value) + ";"
			}
			got = append(got, fmt.Sprintf("%d %s %s %s %d", r.Offset, show(r.Key), show(r.Value), hs, r.Timestamp.UnixMilli()))
		})
	}
	for len(want) < len(recs) {
		fs := kcl.PollFetches(p.ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			hs := ""
			for _, h := range r.Headers {
				hs += h.Key + "=" + show(h.Value) + ";"
			}
			want = append(want, fmt.Sprintf("%d %s %s %s %d", r.Offset, show(r.Key), show(r.Value), hs, r.Timestamp.UnixMilli()))
		})
	}
	if !slices.Equal(got, want) {
		t.Errorf("through the clients:\nrunnel %q\nkgo    %q", got, want)
	}
}

// TestParityLogAppendTime: on a topic with message.timestamp.type =
// LogAppendTime, Kafka stamps each batch with its append time (the
// timestamp-type attribute set, max timestamp = append time), answers it
// in the produce response, consumers see it as every record's timestamp,
// and ListOffsets searches by it.
func TestParityLogAppendTime(t *testing.T) {
	p := newPair(t)
	p.createTopic(t, "lat", topicSpec{partitions: 1, logAppendTime: true})
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	before := time.Now().UnixMilli()
	batch := values(t, []int64{old, old + 1, old + 2})
	r, k := p.rn.produce(p.ctx, "lat", 0, batch), p.kf.produce(p.ctx, "lat", 0, batch)
	after := time.Now().UnixMilli()
	expect(t, "code", 0, r.code, k.code)
	if r.logAppendTime < before || r.logAppendTime > after {
		t.Errorf("runnel's log append time %d is not in [%d, %d]", r.logAppendTime, before, after)
	}
	expectQuirk(t, "produce response has a log append time", true, r.logAppendTime >= before, k.logAppendTime >= before,
		"kfake ignores message.timestamp.type: it stamps LogAppendTime only when the client set the attribute")
	rf, kf := p.rn.fetch(p.ctx, "lat", 0, 0), p.kf.fetch(p.ctx, "lat", 0, 0)
	rr, kr := decode(t, rf.records, 0), decode(t, kf.records, 0)
	for i, got := range rr {
		if got.TSType != record.LogAppendTime || got.TS != r.logAppendTime {
			t.Errorf("runnel record %d: %v %d, want LogAppendTime %d", i, got.TSType, got.TS, r.logAppendTime)
		}
	}
	if len(kr) > 0 {
		expectQuirk(t, "fetched timestamp type", record.LogAppendTime, rr[0].TSType, kr[0].TSType, "see above")
	}
	// ListOffsets searches the append time, not the producer's.
	_, ro := p.rn.listOffset(p.ctx, "lat", 0, old+1)
	expectOne(t, "offset for the producer's old time", 0, ro)
	_, ro = p.rn.listOffset(p.ctx, "lat", 0, r.logAppendTime)
	expectOne(t, "offset for the append time", 0, ro)
	_, ro = p.rn.listOffset(p.ctx, "lat", 0, r.logAppendTime+1)
	expectOne(t, "offset after the append time (the high watermark: Kafka's -1)", 3, ro)

	// A CreateTime topic keeps the producer's times, and says -1.
	p.createTopic(t, "ct", topicSpec{partitions: 1})
	r, k = p.rn.produce(p.ctx, "ct", 0, batch), p.kf.produce(p.ctx, "ct", 0, batch)
	expect(t, "CreateTime topic: log append time", -1, r.logAppendTime, k.logAppendTime)
	rf, kf = p.rn.fetch(p.ctx, "ct", 0, 0), p.kf.fetch(p.ctx, "ct", 0, 0)
	if rr, kr := decode(t, rf.records, 0), decode(t, kf.records, 0); !slices.Equal(rr, kr) || len(rr) != 3 || rr[2].TS != old+2 {
		t.Errorf("CreateTime records: runnel %v, kfake %v", rr, kr)
	}
}

// TestParityMessageTooLarge: a batch larger than the topic's
// max.message.bytes (counting the whole batch, its 12-byte log overhead
// included, as Kafka's RecordBatch.sizeInBytes does) is refused with
// MESSAGE_TOO_LARGE; one of exactly that size is accepted.
func TestParityMessageTooLarge(t *testing.T) {
	p := newPair(t)
	batch := batchOf(t, -1, -1, -1, &record.Record{Key: []byte("k"), Value: bytes.Repeat([]byte("v"), 2000), Timestamp: time.Now()})
	p.createTopic(t, "fits", topicSpec{partitions: 1, maxMessageBytes: len(batch)})
	p.createTopic(t, "small", topicSpec{partitions: 1, maxMessageBytes: len(batch) - 1})
	r, k := p.rn.produce(p.ctx, "fits", 0, batch), p.kf.produce(p.ctx, "fits", 0, batch)
	expect(t, "batch of exactly max.message.bytes: code", 0, r.code, k.code)
	r, k = p.rn.produce(p.ctx, "small", 0, batch), p.kf.produce(p.ctx, "small", 0, batch)
	expect(t, "batch one byte over max.message.bytes: code", codeMessageTooLarge, r.code, k.code)
	_, ro := p.rn.listOffset(p.ctx, "small", 0, tsLatest)
	_, ko := p.kf.listOffset(p.ctx, "small", 0, tsLatest)
	expect(t, "nothing appended", 0, ro, ko)

	// runnel's producer refuses it too, with the same error.
	rp, err := producer.New(p.rn.b, producer.Linger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Close()
	err = rp.ProduceSync(p.ctx, &record.Record{Topic: "small", Partition: 0, Key: []byte("k"), Value: bytes.Repeat([]byte("v"), 2000)})
	if api.Code(err) != codeMessageTooLarge {
		t.Errorf("runnel producer: %v (code %d), want MESSAGE_TOO_LARGE", err, api.Code(err))
	}
}

// TestParityUnknownTopicOrPartition: every request on a topic or partition
// the broker does not have answers UNKNOWN_TOPIC_OR_PARTITION.
func TestParityUnknownTopicOrPartition(t *testing.T) {
	p := newPair(t)
	p.createTopic(t, "two", topicSpec{partitions: 2})
	batch := values(t, []int64{time.Now().UnixMilli()})
	for _, tp := range []struct {
		topic string
		part  int32
	}{{"missing", 0}, {"two", 2}, {"two", 100}, {"two", -1}} {
		name := fmt.Sprintf("%s-%d", tp.topic, tp.part)
		r, k := p.rn.produce(p.ctx, tp.topic, tp.part, batch), p.kf.produce(p.ctx, tp.topic, tp.part, batch)
		expect(t, name+": produce", codeUnknownTopic, r.code, k.code)
		rf, kf := p.rn.fetch(p.ctx, tp.topic, tp.part, 0), p.kf.fetch(p.ctx, tp.topic, tp.part, 0)
		expect(t, name+": fetch", codeUnknownTopic, rf.code, kf.code)
		for _, ts := range []int64{tsLatest, tsEarliest, 0} {
			rc, _ := p.rn.listOffset(p.ctx, tp.topic, tp.part, ts)
			kc, _ := p.kf.listOffset(p.ctx, tp.topic, tp.part, ts)
			expect(t, fmt.Sprintf("%s: list offsets %d", name, ts), codeUnknownTopic, rc, kc)
		}
		rc, _ := p.rn.deleteRecords(p.ctx, tp.topic, tp.part, 0)
		kc, _ := p.kf.deleteRecords(p.ctx, tp.topic, tp.part, 0)
		expect(t, name+": delete records", codeUnknownTopic, rc, kc)
	}
	expect(t, "create partitions of a missing topic", codeUnknownTopic,
		p.rn.createPartitions(p.ctx, "missing", 3), p.kf.createPartitions(p.ctx, "missing", 3))
	expect(t, "delete a missing topic", codeUnknownTopic, p.rn.deleteTopic(p.ctx, "missing"), p.kf.deleteTopic(p.ctx, "missing"))
	// A deleted topic is unknown, and can be created again, empty.
	expect(t, "delete a topic", 0, p.rn.deleteTopic(p.ctx, "two"), p.kf.deleteTopic(p.ctx, "two"))
	r, k := p.rn.produce(p.ctx, "two", 0, batch), p.kf.produce(p.ctx, "two", 0, batch)
	expect(t, "produce to a deleted topic", codeUnknownTopic, r.code, k.code)
	// kfake removes a deleted topic asynchronously: wait for it.
	p.eventually(t, "the deleted topic can be created again", func() bool {
		return p.kf.createTopic(p.ctx, "two", topicSpec{partitions: 1}) != codeTopicExists
	})
	if c := p.rn.createTopic(p.ctx, "two", topicSpec{partitions: 1}); c != 0 {
		t.Fatalf("runnel: create a deleted topic again: code %d", c)
	}
	_, ro := p.rn.listOffset(p.ctx, "two", 0, tsLatest)
	_, ko := p.kf.listOffset(p.ctx, "two", 0, tsLatest)
	expect(t, "a topic created again is empty", 0, ro, ko)
}

// TestParityTopicNames: Kafka's Topic.validate: 1 to 249 characters of
// [a-zA-Z0-9._-], not "." or "..", and no name that collides with an
// existing topic's once '.' and '_' are the same (INVALID_TOPIC_EXCEPTION
// for all); TOPIC_ALREADY_EXISTS for an existing name.
func TestParityTopicNames(t *testing.T) {
	p := newPair(t)
	cases := []struct {
		name string
		code int16
	}{
		{"ok.name_with-all.3", 0},
		{strings.Repeat("a", 249), 0},
		{strings.Repeat("b", 250), codeInvalidTopic},
		{"", codeInvalidTopic},
		{".", codeInvalidTopic},
		{"..", codeInvalidTopic},
		{"...", 0},
		{"a/b", codeInvalidTopic},
		{"a b", codeInvalidTopic},
		{"é", codeInvalidTopic},
		{"a\x00b", codeInvalidTopic},
		{"tab\t", codeInvalidTopic},
		{"a+b", codeInvalidTopic},
		{"metrics.x", 0},
		{"metrics_x", codeInvalidTopic}, // collides with metrics.x
		{"ok.name_with-all.3", codeTopicExists},
	}
	for _, c := range cases {
		rc, kc := p.rn.createTopic(p.ctx, c.name, topicSpec{partitions: 1}), p.kf.createTopic(p.ctx, c.name, topicSpec{partitions: 1})
		shown := c.name
		if len(shown) > 20 {
			shown = fmt.Sprintf("%s… (%d characters)", shown[:5], len(shown))
		}
		what := fmt.Sprintf("create topic %q", shown)
		if c.code == codeInvalidTopic && c.name != "metrics_x" {
			expectQuirk(t, what, c.code, rc, kc, "kfake does not validate topic names")
		} else {
			expect(t, what, c.code, rc, kc)
		}
	}
}

// TestParityPartitionCounts: CreateTopics with 0 partitions and
// CreatePartitions that do not grow the topic answer INVALID_PARTITIONS;
// KIP-464 (Kafka 2.4) made -1 partitions mean the broker's num.partitions.
func TestParityPartitionCounts(t *testing.T) {
	p := newPair(t)
	expect(t, "create with 0 partitions", codeInvalidPartitions,
		p.rn.createTopic(p.ctx, "zero", topicSpec{partitions: 0}), p.kf.createTopic(p.ctx, "zero", topicSpec{partitions: 0}))
	p.createTopic(t, "grow", topicSpec{partitions: 2})
	expect(t, "grow 2 to 4", 0, p.rn.createPartitions(p.ctx, "grow", 4), p.kf.createPartitions(p.ctx, "grow", 4))
	expect(t, "shrink 4 to 3", codeInvalidPartitions, p.rn.createPartitions(p.ctx, "grow", 3), p.kf.createPartitions(p.ctx, "grow", 3))
	expect(t, "shrink 4 to 0", codeInvalidPartitions, p.rn.createPartitions(p.ctx, "grow", 0), p.kf.createPartitions(p.ctx, "grow", 0))
	// Kafka: "Topic already has 4 partitions." (InvalidPartitionsException).
	expectQuirk(t, "grow 4 to 4", codeInvalidPartitions, p.rn.createPartitions(p.ctx, "grow", 4), p.kf.createPartitions(p.ctx, "grow", 4),
		"kfake accepts a CreatePartitions to the current count")
	batch := values(t, []int64{time.Now().UnixMilli()})
	r, k := p.rn.produce(p.ctx, "grow", 3, batch), p.kf.produce(p.ctx, "grow", 3, batch)
	expect(t, "produce to a new partition", 0, r.code, k.code)
	expect(t, "produce to a new partition: base offset", 0, r.baseOffset, k.baseOffset)

	t.Run("DefaultPartitions", func(t *testing.T) {
		kc := p.kf.createTopic(p.ctx, "dflt", topicSpec{partitions: -1})
		expectOne(t, "kfake: create with -1 partitions", 0, kc)
		expectOne(t, "runnel: create with -1 partitions (KIP-464: the broker's default)", 0, p.rn.createTopic(p.ctx, "dflt", topicSpec{partitions: -1}))
	})
}

// TestParityCompactedTopicNeedsKeys: Kafka's LogValidator refuses a record
// without a key on a topic whose cleanup.policy includes compact, with
// INVALID_RECORD since KIP-467 (Kafka 2.4; CORRUPT_MESSAGE before); an
// empty key is a key, and a tombstone (null value) is fine.
func TestParityCompactedTopicNeedsKeys(t *testing.T) {
	p := newPair(t)
	p.createTopic(t, "compact", topicSpec{partitions: 1, compact: true})
	p.createTopic(t, "compact-delete", topicSpec{partitions: 1, compactDelete: true})
	now := time.Now()
	for _, topic := range []string{"compact", "compact-delete"} {
		keyless := batchOf(t, -1, -1, -1,
			&record.Record{Key: []byte("k"), Value: []byte("v"), Timestamp: now},
			&record.Record{Key: nil, Value: []byte("v"), Timestamp: now})
		r, k := p.rn.produce(p.ctx, topic, 0, keyless), p.kf.produce(p.ctx, topic, 0, keyless)
		expectQuirk(t, topic+": a record without a key", codeInvalidRecord, r.code, k.code,
			"kfake accepts records without keys on compacted topics (its compaction then keeps them)")
		keyed := batchOf(t, -1, -1, -1,
			&record.Record{Key: []byte{}, Value: []byte("v"), Timestamp: now},
			&record.Record{Key: []byte("k"), Value: nil, Timestamp: now})
		r, k = p.rn.produce(p.ctx, topic, 0, keyed), p.kf.produce(p.ctx, topic, 0, keyed)
		expect(t, topic+": an empty key and a tombstone", 0, r.code, k.code)
	}
	_, ro := p.rn.listOffset(p.ctx, "compact", 0, tsLatest)
	if ro != 2 {
		t.Errorf("runnel: the refused batch left the high watermark at %d, want 2", ro)
	}
}

// TestParityIdempotentProducer: a retried batch (same producer id, epoch
// and sequence) is not appended twice and answers its first offset; a gap
// in the sequence is OUT_OF_ORDER_SEQUENCE_NUMBER; an older epoch is
// INVALID_PRODUCER_EPOCH; a newer epoch must start at sequence 0 (KIP-360).
func TestParityIdempotentProducer(t *testing.T) {
	p := newPair(t)
	p.createTopic(t, "idem", topicSpec{partitions: 1})
	rpid, repoch := p.rn.initProducerID(p.ctx)
	kpid, kepoch := p.kf.initProducerID(p.ctx)
	now := time.Now()
	three := []*record.Record{{Value: []byte("a"), Timestamp: now}, {Value: []byte("b"), Timestamp: now}, {Value: []byte("c"), Timestamp: now}}
	send := func(what string, epochDelta int16, seq int32, code int16, base int64) {
		t.Helper()
		r := p.rn.produce(p.ctx, "idem", 0, batchOf(t, rpid, repoch+epochDelta, seq, three...))
		k := p.kf.produce(p.ctx, "idem", 0, batchOf(t, kpid, kepoch+epochDelta, seq, three...))
		expect(t, what+": code", code, r.code, k.code)
		expect(t, what+": base offset", base, r.baseOffset, k.baseOffset)
	}
	send("first batch", 0, 0, 0, 0)
	send("second batch", 0, 3, 0, 3)
	send("retry of the second", 0, 3, 0, 3)
	send("retry of the first", 0, 0, 0, 0)
	send("a gap in the sequence", 0, 9, codeOutOfOrderSequence, -1)
	send("third batch", 0, 6, 0, 6)
	send("a new epoch not at sequence 0", 1, 9, codeOutOfOrderSequence, -1)
	send("a new epoch at sequence 0", 1, 0, 0, 9)
	send("the old epoch", 0, 9, codeInvalidEpoch, -1)
	_, ro := p.rn.listOffset(p.ctx, "idem", 0, tsLatest)
	_, ko := p.kf.listOffset(p.ctx, "idem", 0, tsLatest)
	expect(t, "records appended", 12, ro, ko)
}

// TestParityConsumerPositions: runnel's consumer against kgo's: a start
// by time, and a start below the log start offset with the earliest reset
// policy (auto.offset.reset=earliest), land on the same first record.
func TestParityConsumerPositions(t *testing.T) {
	p := newPair(t)
	p.createTopic(t, "pos", topicSpec{partitions: 1})
	base := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	ts := []int64{base, base + 10, base + 20, base + 30, base + 40, base + 50}
	if r, k := p.rn.produce(p.ctx, "pos", 0, values(t, ts)), p.kf.produce(p.ctx, "pos", 0, values(t, ts)); r.code != 0 || k.code != 0 {
		t.Fatalf("produce: runnel %d, kfake %d", r.code, k.code)
	}
	if rc, _ := p.rn.deleteRecords(p.ctx, "pos", 0, 2); rc != 0 {
		t.Fatalf("runnel delete records: %d", rc)
	}
	if kc, _ := p.kf.deleteRecords(p.ctx, "pos", 0, 2); kc != 0 {
		t.Fatalf("kfake delete records: %d", kc)
	}
	first := func(rat consumer.Offset, kat kgo.Offset) (int64, int64) {
		c, err := consumer.New(p.rn.b, consumer.ResetOffset(consumer.ResetEarliest))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Assign("pos", 0, rat); err != nil {
			t.Fatal(err)
		}
		ro := int64(-1)
		for ro < 0 {
			fs, err := c.Poll(p.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := fs.Err(); err != nil {
				t.Fatal(err)
			}
			fs.EachRecord(func(r *record.Record) {
				if ro < 0 {
					ro = r.Offset
				}
			})
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(p.kf.c.ListenAddrs()...),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"pos": {0: kat}}),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ko := int64(-1)
		for ko < 0 {
			fs := cl.PollFetches(p.ctx)
			if err := fs.Err(); err != nil && !errors.Is(err, context.Canceled) {
				t.Fatal(err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				if ko < 0 {
					ko = r.Offset
				}
			})
		}
		return ro, ko
	}
	ro, ko := first(consumer.At(0), kgo.NewOffset().At(0))
	expect(t, "from offset 0, below the log start, reset to earliest", 2, ro, ko)
	ro, ko = first(consumer.AtTime(time.UnixMilli(base+25)), kgo.NewOffset().AfterMilli(base+25))
	expect(t, "from a time between two records", 3, ro, ko)
	ro, ko = first(consumer.AtTime(time.UnixMilli(base+40)), kgo.NewOffset().AfterMilli(base+40))
	expect(t, "from a record's time", 4, ro, ko)
	ro, ko = first(consumer.Start(), kgo.NewOffset().AtStart())
	expect(t, "from the start", 2, ro, ko)
}

// TestParityProduceValidation: what Kafka's broker refuses in a produced
// batch (ProduceRequest.validateRecords, LogValidator.validateBatch,
// UnifiedLog.analyzeAndValidateRecords): each refusal is INVALID_RECORD
// but the CRC's, which is CORRUPT_MESSAGE.
func TestParityProduceValidation(t *testing.T) {
	p := newPair(t)
	p.createTopic(t, "valid", topicSpec{partitions: 1})
	rpid, repoch := p.rn.initProducerID(p.ctx)
	kpid, kepoch := p.kf.initProducerID(p.ctx)
	now := time.Now()
	one := func(t *testing.T, pid int64, epoch int16, seq int32) []byte {
		return batchOf(t, pid, epoch, seq, &record.Record{Key: []byte("k"), Value: []byte("v"), Timestamp: now})
	}
	attrs := func(b []byte, set int16) {
		binary.BigEndian.PutUint16(b[21:], binary.BigEndian.Uint16(b[21:])|uint16(set))
		record.Batch(b).UpdateCRC()
	}
	cases := []struct {
		name string
		// make builds the batch for a producer id and epoch (-1 for none).
		make   func(t *testing.T, pid int64, epoch int16) []byte
		idem   bool
		kafka  int16
		runnel string // why runnel diverges, if it does
	}{
		{name: "a bad CRC", kafka: codeCorruptMessage, make: func(t *testing.T, _ int64, _ int16) []byte {
			b := one(t, -1, -1, -1)
			b[len(b)-1] ^= 1
			return b
		}},
		{name: "a last offset delta that is not the record count's", kafka: codeInvalidRecord, make: func(t *testing.T, _ int64, _ int16) []byte {
			b := values(t, []int64{now.UnixMilli(), now.UnixMilli()})
			binary.BigEndian.PutUint32(b[23:], 5)
			record.Batch(b).UpdateCRC()
			return b
		}},
		// LogValidator.validateBatch: "Inconsistent batch offset range",
		// "Invalid reported count" (InvalidRecordException), after the
		// CRC check; not CORRUPT_MESSAGE, which a producer retries.
		{name: "a record count above the offset range", kafka: codeInvalidRecord, make: func(t *testing.T, _ int64, _ int16) []byte {
			b := values(t, []int64{now.UnixMilli(), now.UnixMilli()})
			binary.BigEndian.PutUint32(b[57:], 3)
			record.Batch(b).UpdateCRC()
			return b
		}},
		{name: "a negative record count", kafka: codeInvalidRecord, make: func(t *testing.T, _ int64, _ int16) []byte {
			b := values(t, []int64{now.UnixMilli(), now.UnixMilli()})
			binary.BigEndian.PutUint32(b[57:], 0xffffffff)
			record.Batch(b).UpdateCRC()
			return b
		}},
		// UnifiedLog.analyzeAndValidateRecords looks at the base offset
		// before the CRC.
		{name: "a base offset other than 0 and a bad CRC", kafka: codeInvalidRecord, make: func(t *testing.T, _ int64, _ int16) []byte {
			b := one(t, -1, -1, -1)
			binary.BigEndian.PutUint64(b, 5)
			b[len(b)-1] ^= 1
			return b
		}},
		{name: "a base offset other than 0", kafka: codeInvalidRecord,
			make: func(t *testing.T, _ int64, _ int16) []byte {
				b := one(t, -1, -1, -1)
				binary.BigEndian.PutUint64(b, 5) // not covered by the CRC
				return b
			}},
		{name: "two batches for one partition", kafka: codeInvalidRecord,
			runnel: "deliberate: runnel's in-process api.ProduceRequest takes several batches for a partition (each checked as Kafka checks one); Kafka's Produce v3+ allows exactly one record batch per partition",
			make: func(t *testing.T, _ int64, _ int16) []byte {
				b := one(t, -1, -1, -1)
				return append(b, b...)
			}},
		{name: "a control batch", kafka: codeInvalidRecord,
			make: func(t *testing.T, _ int64, _ int16) []byte {
				b := one(t, -1, -1, -1)
				attrs(b, record.AttrControl)
				return b
			}},
		{name: "a producer id with sequence -1", kafka: codeInvalidRecord, idem: true,
			make: func(t *testing.T, pid int64, epoch int16) []byte { return one(t, pid, epoch, -1) }},
		// DefaultRecord.readFrom throws InvalidRecordException, which
		// LogValidator lets through.
		{name: "a record whose header count runs past it, CRC fine", kafka: codeInvalidRecord,
			make: func(t *testing.T, _ int64, _ int16) []byte {
				b := one(t, -1, -1, -1)
				b[len(b)-1] = 4 // the record's header count: 2, with no bytes for them
				record.Batch(b).UpdateCRC()
				return b
			}},
		// ProduceRequest.validateRecords: "must have at least one record
		// batch", "only allowed to contain record batches with magic
		// version 2".
		{name: "a batch cut short", kafka: codeInvalidRecord,
			make: func(t *testing.T, _ int64, _ int16) []byte { b := one(t, -1, -1, -1); return b[:len(b)-1] }},
		{name: "a batch of magic 1", kafka: codeInvalidRecord,
			make: func(t *testing.T, _ int64, _ int16) []byte { b := one(t, -1, -1, -1); b[16] = 1; return b }},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			rb, kb := c.make(t, -1, -1), c.make(t, -1, -1)
			if c.idem {
				rb, kb = c.make(t, rpid, repoch), c.make(t, kpid, kepoch)
			}
			r, k := p.rn.produce(p.ctx, "valid", 0, rb), p.kf.produce(p.ctx, "valid", 0, kb)
			if k.code != c.kafka {
				t.Logf("kfake quirk: %s: kfake %d, Kafka %d", c.name, k.code, c.kafka)
			}
			if c.runnel != "" {
				diverges(t, c.name, c.kafka, r.code, c.runnel)
			} else if r.code != c.kafka {
				t.Errorf("%s: runnel %d, Kafka %d", c.name, r.code, c.kafka)
			}
		})
	}
}

// TestParityProducerTimestamps: what Kafka's LogValidator (3.6 and
// later: validateTimestamp, assignOffsetsNonCompressed) does with
// timestamps a producer sets that only the broker may: a batch marked
// LogAppendTime on a CreateTime topic is taken and stored as a CreateTime
// one (setMaxTimestamp(CREATE_TIME, ...) clears the mark), its records
// keeping their own timestamps; the mark is refused (INVALID_TIMESTAMP) on
// a LogAppendTime topic, and with max timestamp -1. A batch whose records
// are all stamped below -1 is taken (only Kafka's Java producer refuses
// negative timestamps), with max timestamp -1: the broker's starts there.
func TestParityProducerTimestamps(t *testing.T) {
	p := newPair(t)
	p.createTopic(t, "ts-create", topicSpec{partitions: 1})
	p.createTopic(t, "ts-append", topicSpec{partitions: 1, logAppendTime: true})
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	// marked is a batch of records at base and base+5, marked
	// LogAppendTime with max timestamp claim, as a producer may send it.
	marked := func(t *testing.T, claim int64) []byte {
		b := values(t, []int64{base, base + 5})
		record.Batch(b).SetLogAppendTime(claim)
		return b
	}
	maxOf := func(data []byte) int64 {
		if len(data) < record.HeaderSize {
			return -2 // no batch
		}
		return record.Batch(data).MaxTimestamp()
	}

	t.Run("LogAppendTime_mark_on_a_CreateTime_topic", func(t *testing.T) {
		r, k := p.rn.produce(p.ctx, "ts-create", 0, marked(t, base+1000)), p.kf.produce(p.ctx, "ts-create", 0, marked(t, base+1000))
		expect(t, "code", codeNone, r.code, k.code)
		expectQuirk(t, "log append time in the response", -1, r.logAppendTime, k.logAppendTime,
			"kfake stamps LogAppendTime when the producer set the mark, whatever the topic's message.timestamp.type")
		rf, kf := p.rn.fetch(p.ctx, "ts-create", 0, r.baseOffset), p.kf.fetch(p.ctx, "ts-create", 0, k.baseOffset)
		rr, kr := decode(t, rf.records, r.baseOffset), decode(t, kf.records, k.baseOffset)
		if len(rr) != 2 || rr[0].TSType != record.CreateTime || rr[0].TS != base || rr[1].TS != base+5 {
			t.Errorf("runnel's records %v: Kafka's are CreateTime, at %d and %d", rr, base, base+5)
		}
		if len(kr) > 0 {
			expectQuirk(t, "fetched timestamp type", record.CreateTime, rr[0].TSType, kr[0].TSType,
				"kfake keeps the mark (it stamps LogAppendTime when the producer set it)")
		}
		// Kafka's max timestamp is the claim: while the mark is set,
		// every record reads as the claimed time, and LogValidator takes
		// the largest of those.
		diverges(t, "stored max timestamp", base+1000, maxOf(rf.records),
			"runnel sets a CreateTime batch's max timestamp to its records' largest create time (base+5), which its readers, the time index and retention then see")
	})
	for _, c := range []struct {
		name, topic string
		claim       int64
	}{
		{"LogAppendTime_mark_with_max_timestamp_-1", "ts-create", -1},
		{"LogAppendTime_mark_on_a_LogAppendTime_topic", "ts-append", base + 1000},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, k := p.rn.produce(p.ctx, c.topic, 0, marked(t, c.claim)), p.kf.produce(p.ctx, c.topic, 0, marked(t, c.claim))
			if k.code != codeInvalidTimestamp {
				t.Logf("kfake quirk: %s: kfake %d, Kafka %d (kfake does not check the timestamp type)", c.name, k.code, codeInvalidTimestamp)
			}
			if r.code == codeNone {
				t.Fatalf("%s: runnel took the batch; Kafka refuses it with %d", c.name, codeInvalidTimestamp)
			}
			if r.code != codeInvalidTimestamp {
				t.Fatalf("%s: runnel answered %d; Kafka answers INVALID_TIMESTAMP (%d)", c.name, r.code, codeInvalidTimestamp)
			}
		})
	}

	t.Run("timestamps_all_below_-1", func(t *testing.T) {
		p.createTopic(t, "ts-negative", topicSpec{partitions: 1})
		batch := func() []byte {
			b := values(t, []int64{-10, -7})
			record.Batch(b).SetMaxTimestamp(-7) // as a client that writes the true largest sends it
			return b
		}
		r, k := p.rn.produce(p.ctx, "ts-negative", 0, batch()), p.kf.produce(p.ctx, "ts-negative", 0, batch())
		expect(t, "code", codeNone, r.code, k.code)
		rf, kf := p.rn.fetch(p.ctx, "ts-negative", 0, 0), p.kf.fetch(p.ctx, "ts-negative", 0, 0)
		expectQuirk(t, "stored max timestamp", -1, maxOf(rf.records), maxOf(kf.records),
			"kfake stores the batch's header as the producer wrote it")
		if rr, kr := decode(t, rf.records, 0), decode(t, kf.records, 0); !slices.Equal(rr, kr) || len(rr) != 2 || rr[0].TS != -10 || rr[1].TS != -7 {
			t.Errorf("records: runnel %v, kfake %v", rr, kr)
		}
		// ListOffsets by time finds them (runnel answers "none" with the
		// high watermark, Kafka with -1).
		rc, ro := p.rn.listOffset(p.ctx, "ts-negative", 0, base)
		expectOne(t, "offset for a time after them: code", codeNone, rc)
		expectOne(t, "offset for a time after them (the high watermark)", 2, ro)
		// MAX_TIMESTAMP: Kafka looks for a record stamped with the
		// largest max timestamp its segments track, -1 at least, and
		// finds none here.
		_, ro = p.rn.listOffset(p.ctx, "ts-negative", 0, tsMaxTimestamp)
		_, ko := p.kf.listOffset(p.ctx, "ts-negative", 0, tsMaxTimestamp)
		t.Logf("MAX_TIMESTAMP over records stamped -10 and -7: kfake answers %d", ko)
		if ro == 2 {
			ro = -1 // runnel's "none"
		}
		diverges(t, "MAX_TIMESTAMP over records stamped -10 and -7", -1, ro,
			"runnel answers the first record with the largest timestamp, whatever its sign (offset 1, -7)")
	})
}

// TestParityCompressedBatches: a batch of each codec is stored as the
// producer compressed it and fetched back with the same records.
func TestParityCompressedBatches(t *testing.T) {
	p := newPair(t)
	p.createTopic(t, "codecs", topicSpec{partitions: 1})
	now := time.Now()
	var from int64
	for _, codec := range []compression.Codec{compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd} {
		var bl record.Builder
		for i := range 20 {
			bl.Add(&record.Record{Key: []byte(strconv.Itoa(i)), Value: bytes.Repeat([]byte{byte(i)}, 100), Timestamp: now,
				Headers: []record.Header{{Key: "codec", Value: []byte(codec.String())}}})
		}
		batch, err := bl.AppendTo(nil, codec)
		if err != nil {
			t.Fatal(err)
		}
		r, k := p.rn.produce(p.ctx, "codecs", 0, batch), p.kf.produce(p.ctx, "codecs", 0, batch)
		expect(t, codec.String()+": base offset", from, r.baseOffset, k.baseOffset)
		rf, kf := p.rn.fetch(p.ctx, "codecs", 0, from), p.kf.fetch(p.ctx, "codecs", 0, from)
		rr, kr := decode(t, rf.records, from), decode(t, kf.records, from)
		if len(rr) < 20 || !slices.Equal(rr, kr) {
			t.Errorf("%s: runnel %d records, kfake %d, or they differ", codec, len(rr), len(kr))
		}
		from += 20
	}
	// A compacted topic looks inside a compressed batch for its keys.
	p.createTopic(t, "codecs-compact", topicSpec{partitions: 1, compact: true})
	var bl record.Builder
	bl.Add(&record.Record{Key: []byte("k"), Value: []byte("v"), Timestamp: now})
	bl.Add(&record.Record{Value: []byte("no key"), Timestamp: now})
	batch, err := bl.AppendTo(nil, compression.Zstd)
	if err != nil {
		t.Fatal(err)
	}
	r, k := p.rn.produce(p.ctx, "codecs-compact", 0, batch), p.kf.produce(p.ctx, "codecs-compact", 0, batch)
	expectQuirk(t, "zstd batch with a record without a key on a compacted topic", codeInvalidRecord, r.code, k.code,
		"kfake does not check keys on compacted topics")
}
