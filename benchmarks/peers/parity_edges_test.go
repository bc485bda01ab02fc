// More parity scenarios: the edges of ListOffsets, Fetch, Produce,
// idempotence and topic administration. Each case says where Kafka's
// answer comes from (its broker's source: UnifiedLog, LogSegment,
// ProducerAppendInfo, ReplicationControlManager, ReplicaManager; or a KIP).

package peers

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchLimits fetches one partition from both systems with the given
// partition and request max bytes.
func (p *pair) fetchLimits(t *testing.T, topic string, partition int32, offset int64, partMax, reqMax int) (rn, kf fetchResult) {
	t.Helper()
	resp, err := p.rn.b.Fetch(p.ctx, &api.FetchRequest{MaxBytes: reqMax, Partitions: []api.FetchPartition{{Topic: topic, Partition: partition, Offset: offset, MaxBytes: partMax}}})
	if err != nil {
		rn = fetchResult{code: api.Code(err)}
	} else {
		fp := resp.Partitions[0]
		rn = fetchResult{code: api.Code(fp.Err), highWatermark: fp.HighWatermark, logStartOffset: fp.LogStartOffset, records: fp.Records}
	}
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, 0, 0, int32(reqMax)
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = partition, offset, int32(partMax)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	kresp := p.kf.request(p.ctx, req).(*kmsg.FetchResponse)
	if kresp.ErrorCode != 0 || len(kresp.Topics) != 1 || len(kresp.Topics[0].Partitions) != 1 {
		return rn, fetchResult{code: kresp.ErrorCode}
	}
	kp := kresp.Topics[0].Partitions[0]
	return rn, fetchResult{code: kp.ErrorCode, highWatermark: kp.HighWatermark, logStartOffset: kp.LogStartOffset, records: kp.RecordBatches}
}

// countBatches counts the whole batches in data.
func countBatches(t *testing.T, data []byte) int {
	t.Helper()
	n := 0
	for _, err := range record.Batches(data) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

// produceBoth produces batch to both systems and fails the test unless
// both take it.
func (p *pair) produceBoth(t *testing.T, topic string, partition int32, batch []byte) (rn, kf produceResult) {
	t.Helper()
	rn, kf = p.rn.produce(p.ctx, topic, partition, batch), p.kf.produce(p.ctx, topic, partition, batch)
	if rn.code != 0 || kf.code != 0 {
		t.Fatalf("produce to %s-%d: runnel %d, kfake %d", topic, partition, rn.code, kf.code)
	}
	return rn, kf
}

// TestParityListOffsetsEdges: ListOffsets on an empty partition, with
// timestamps that tie, and MAX_TIMESTAMP after DeleteRecords.
func TestParityListOffsetsEdges(t *testing.T) {
	p := newPair(t)
	p.createTopic(t, "lo-empty", topicSpec{partitions: 1})
	p.createTopic(t, "lo-ties", topicSpec{partitions: 1})
	p.createTopic(t, "lo-deleted", topicSpec{partitions: 1})
	base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

	t.Run("EmptyPartition", func(t *testing.T) {
		// UnifiedLog.fetchOffsetByTimestamp: earliest is the log start
		// offset (0) and latest the high watermark (0); a timestamp
		// finds no segment whose largest timestamp reaches it, and
		// MAX_TIMESTAMP finds no batch: both answer none (offset -1,
		// timestamp -1), which runnel answers with the high watermark
		// (documented; see TestParityListOffsetsByTime).
		for _, c := range []struct {
			name string
			ts   int64
			want int64
		}{
			{"earliest", tsEarliest, 0},
			{"latest", tsLatest, 0},
			{"by time 0", 0, -1},
			{"by a recent time", base, -1},
			{"max timestamp", tsMaxTimestamp, -1},
		} {
			rc, ro := p.rn.listOffset(p.ctx, "lo-empty", 0, c.ts)
			kc, ko := p.kf.listOffset(p.ctx, "lo-empty", 0, c.ts)
			expect(t, c.name+": code", codeNone, rc, kc)
			if c.want == -1 {
				expectOne(t, c.name+" (runnel's none: the high watermark)", 0, ro)
				if ko != -1 {
					t.Logf("kfake quirk: %s on an empty partition: kfake %d, Kafka -1", c.name, ko)
				}
				continue
			}
			expect(t, c.name, c.want, ro, ko)
			expect(t, c.name+": timestamp", -1, p.rn.listedTimestamp(p.ctx, "lo-empty", 0, c.ts), p.kf.listedTimestamp(p.ctx, "lo-empty", 0, c.ts))
		}
	})

	t.Run("Ties", func(t *testing.T) {
		// offsets:            0        1          2          3          4         5
		p.produceBoth(t, "lo-ties", 0, values(t, []int64{base, base + 9, base + 9, base + 3}))
		p.produceBoth(t, "lo-ties", 0, values(t, []int64{base + 9, base + 1}))
		// By time: the first offset whose timestamp is at or after the
		// target (LogSegment.findOffsetByTimestamp: the first batch whose
		// max timestamp reaches it, then its first record that does).
		for _, c := range []struct {
			ts   int64
			want int64
		}{{base + 9, 1}, {base + 2, 1}, {base + 3, 1}, {base, 0}} {
			_, ro := p.rn.listOffset(p.ctx, "lo-ties", 0, c.ts)
			_, ko := p.kf.listOffset(p.ctx, "lo-ties", 0, c.ts)
			expect(t, fmt.Sprintf("by time base+%d", c.ts-base), c.want, ro, ko)
		}
		// MAX_TIMESTAMP (KIP-734): the segment whose maxTimestampSoFar is
		// the largest (its first offset with it, kept as the first that
		// reached it), the first batch from there whose max timestamp is
		// it, and that batch's offsetOfMaxTimestamp: its first record
		// with it. Three records tie at base+9: offset 1 is the answer.
		rc, ro := p.rn.listOffset(p.ctx, "lo-ties", 0, tsMaxTimestamp)
		kc, ko := p.kf.listOffset(p.ctx, "lo-ties", 0, tsMaxTimestamp)
		expect(t, "max timestamp with ties: code", codeNone, rc, kc)
		expect(t, "max timestamp with ties", 1, ro, ko)
		expect(t, "max timestamp with ties: timestamp", base+9,
			p.rn.listedTimestamp(p.ctx, "lo-ties", 0, tsMaxTimestamp), p.kf.listedTimestamp(p.ctx, "lo-ties", 0, tsMaxTimestamp))
	})

	t.Run("CompressedBatch", func(t *testing.T) {
		// LogSegment.findOffsetByTimestamp reads inside a compressed
		// batch too: the first record at or after the target.
		p.createTopic(t, "lo-zstd", topicSpec{partitions: 1})
		var bl record.Builder
		for i, ts := range []int64{base + 5, base + 1, base + 7, base + 7, base + 2} {
			bl.Add(&record.Record{Key: []byte(strconv.Itoa(i)), Value: []byte("v"), Timestamp: time.UnixMilli(ts)})
		}
		batch, err := bl.AppendTo(nil, compression.Zstd)
		if err != nil {
			t.Fatal(err)
		}
		p.produceBoth(t, "lo-zstd", 0, batch)
		for _, c := range []struct {
			ts   int64
			want int64
		}{{base, 0}, {base + 6, 2}, {base + 7, 2}, {base + 5, 0}} {
			_, ro := p.rn.listOffset(p.ctx, "lo-zstd", 0, c.ts)
			_, ko := p.kf.listOffset(p.ctx, "lo-zstd", 0, c.ts)
			expect(t, fmt.Sprintf("zstd batch, by time base+%d", c.ts-base), c.want, ro, ko)
		}
		_, ro := p.rn.listOffset(p.ctx, "lo-zstd", 0, tsMaxTimestamp)
		_, ko := p.kf.listOffset(p.ctx, "lo-zstd", 0, tsMaxTimestamp)
		expect(t, "zstd batch, max timestamp (the first of two)", 2, ro, ko)
	})

	t.Run("MaxTimestampAfterDeleteRecords", func(t *testing.T) {
		// offsets 0..3; the largest timestamp is at offset 1.
		p.produceBoth(t, "lo-deleted", 0, values(t, []int64{base, base + 50, base + 10, base + 20}))
		rc, _ := p.rn.deleteRecords(p.ctx, "lo-deleted", 0, 2)
		kc, _ := p.kf.deleteRecords(p.ctx, "lo-deleted", 0, 2)
		expect(t, "delete records before 2: code", codeNone, rc, kc)
		// Kafka's MAX_TIMESTAMP look-up reads the segments'
		// maxTimestampSoFar, which DeleteRecords does not lower (the
		// segment stays, its log start moves): it answers offset 1, below
		// the log start offset, where a fetch is OFFSET_OUT_OF_RANGE.
		// runnel answers among the records a consumer can read.
		_, ro := p.rn.listOffset(p.ctx, "lo-deleted", 0, tsMaxTimestamp)
		_, ko := p.kf.listOffset(p.ctx, "lo-deleted", 0, tsMaxTimestamp)
		t.Logf("MAX_TIMESTAMP after deleting the record that has it: kfake answers %d", ko)
		expectOne(t, "runnel: max timestamp among the records left", 3, ro)
		diverges(t, "MAX_TIMESTAMP after DeleteRecords passed the record that has it", 1, ro,
			"deliberate: runnel answers the largest timestamp at or past the log start offset (offset 3), one a consumer can read; Kafka's answer, below the log start, is OFFSET_OUT_OF_RANGE to fetch")
	})
}

// TestParityFetchEdges: Fetch at and past the log end, below the log
// start, with limits smaller than a batch, of an unknown partition and of
// a deleted topic.
func TestParityFetchEdges(t *testing.T) {
	p := newPair(t)
	p.createTopic(t, "fe", topicSpec{partitions: 1})
	now := time.Now().UnixMilli()
	// Three batches of three records, each larger than 100 bytes.
	batch := func() []byte {
		r := func(v string) *record.Record {
			return &record.Record{Key: []byte("k"), Value: []byte(v + strings.Repeat("-", 40)), Timestamp: time.UnixMilli(now)}
		}
		return batchOf(t, -1, -1, -1, r("a"), r("b"), r("c"))
	}
	for range 3 {
		p.produceBoth(t, "fe", 0, batch())
	}
	first := batch()
	if len(first) <= 100 {
		t.Fatalf("a batch of %d bytes: the limits below need more than 100", len(first))
	}

	// ReplicaManager.readFromLog / LocalLog.read: a fetch at the log
	// end answers no records and no error; past it (and below 0) is
	// OFFSET_OUT_OF_RANGE.
	for _, c := range []struct {
		what   string
		offset int64
		code   int16
	}{
		{"at the log end", 9, codeNone},
		{"past the log end", 10, codeOffsetOutOfRange},
		{"far past the log end", 1 << 40, codeOffsetOutOfRange},
		{"at offset -1", -1, codeOffsetOutOfRange},
	} {
		r, k := p.rn.fetch(p.ctx, "fe", 0, c.offset), p.kf.fetch(p.ctx, "fe", 0, c.offset)
		expect(t, "fetch "+c.what+": code", c.code, r.code, k.code)
		if c.code == codeNone {
			expect(t, "fetch "+c.what+": bytes", 0, len(r.records), len(k.records))
			expect(t, "fetch "+c.what+": high watermark", 9, r.highWatermark, k.highWatermark)
		}
	}

	// KIP-74: the first batch is returned whole whatever the partition
	// and request limits (LogSegment.read with minOneMessage: its max
	// size is raised to the first batch's), and only that batch.
	for _, c := range []struct {
		what             string
		partMax, reqMax  int
		offset, wantBase int64
	}{
		{"partition max bytes 1", 1, 1 << 20, 0, 0},
		{"partition max bytes 100", 100, 1 << 20, 4, 3},
		{"request max bytes 1", 1 << 20, 1, 3, 3},
		{"both 100", 100, 100, 6, 6},
	} {
		r, k := p.fetchLimits(t, "fe", 0, c.offset, c.partMax, c.reqMax)
		expect(t, c.what+": code", codeNone, r.code, k.code)
		expect(t, c.what+": batches", 1, countBatches(t, r.records), countBatches(t, k.records))
		expect(t, c.what+": first batch", c.wantBase, firstBatchBase(r.records), firstBatchBase(k.records))
	}
	// A partition max bytes that holds two batches but not three gets two.
	r, k := p.fetchLimits(t, "fe", 0, 0, 2*len(first)+len(first)/2, 1<<20)
	expect(t, "partition max bytes of two and a half batches: batches", 2, countBatches(t, r.records), countBatches(t, k.records))

	t.Run("PartitionMaxBytes0", func(t *testing.T) {
		// Kafka: a partition max bytes of 0 reads with max size 0, which
		// minOneMessage raises to the first batch's: one batch.
		r, k := p.fetchLimits(t, "fe", 0, 0, 0, 1<<20)
		expect(t, "partition max bytes 0: code", codeNone, r.code, k.code)
		if n := countBatches(t, k.records); n != 1 {
			t.Logf("kfake quirk: partition max bytes 0: kfake %d batches, Kafka 1", n)
		}
		diverges(t, "partition max bytes 0: batches", 1, countBatches(t, r.records),
			"deliberate: api.FetchPartition.MaxBytes 0 (its zero value) means no limit of the partition's own, the request's applies (documented on the field)")
	})
	t.Run("RequestMaxBytes0", func(t *testing.T) {
		r, k := p.fetchLimits(t, "fe", 0, 0, 1<<20, 0)
		expect(t, "request max bytes 0: code", codeNone, r.code, k.code)
		if n := countBatches(t, k.records); n != 1 {
			t.Logf("kfake quirk: request max bytes 0: kfake %d batches, Kafka 1", n)
		}
		diverges(t, "request max bytes 0: batches", 1, countBatches(t, r.records),
			"deliberate: api.FetchRequest.MaxBytes 0 (its zero value) means 50 MiB, the Java consumer's fetch.max.bytes (documented on the field)")
	})

	t.Run("UnknownPartitionAndDeletedTopic", func(t *testing.T) {
		r, k := p.rn.fetch(p.ctx, "fe", 1, 0), p.kf.fetch(p.ctx, "fe", 1, 0)
		expect(t, "fetch an unknown partition", codeUnknownTopic, r.code, k.code)
		p.createTopic(t, "fe-gone", topicSpec{partitions: 1})
		p.produceBoth(t, "fe-gone", 0, values(t, []int64{now}))
		expect(t, "delete topic", codeNone, p.rn.deleteTopic(p.ctx, "fe-gone"), p.kf.deleteTopic(p.ctx, "fe-gone"))
		// kfake deletes asynchronously: wait until it answers unknown.
		var k2 fetchResult
		p.eventually(t, "the deleted topic answers a fetch", func() bool {
			k2 = p.kf.fetch(p.ctx, "fe-gone", 0, 0)
			return k2.code != codeNone
		})
		r = p.rn.fetch(p.ctx, "fe-gone", 0, 0)
		expect(t, "fetch a deleted topic (fetch by name, v12)", codeUnknownTopic, r.code, k2.code)
	})
}

// TestParityProduceEdges: records stamped -1, and the answer's fields on
// a LogAppendTime topic after DeleteRecords.
func TestParityProduceEdges(t *testing.T) {
	p := newPair(t)

	t.Run("TimestampsMinus1", func(t *testing.T) {
		// LogValidator.validateTimestamp checks the distance from the
		// broker's clock (message.timestamp.before/after.max.ms) only
		// for a timestamp other than NO_TIMESTAMP (-1), as runnel does:
		// the batch is taken, its records keep -1, and the batch's max
		// timestamp is -1.
		p.createTopic(t, "ts-none", topicSpec{partitions: 1})
		batch := values(t, []int64{-1, -1})
		r, k := p.rn.produce(p.ctx, "ts-none", 0, batch), p.kf.produce(p.ctx, "ts-none", 0, batch)
		expect(t, "code", codeNone, r.code, k.code)
		expect(t, "log append time", -1, r.logAppendTime, k.logAppendTime)
		rf, kf := p.rn.fetch(p.ctx, "ts-none", 0, 0), p.kf.fetch(p.ctx, "ts-none", 0, 0)
		rr, kr := decode(t, rf.records, 0), decode(t, kf.records, 0)
		if !slices.Equal(rr, kr) || len(rr) != 2 || rr[0].TS != -1 || rr[1].TS != -1 {
			t.Errorf("records: runnel %v, kfake %v; Kafka keeps -1", rr, kr)
		}
		if len(rf.records) >= record.HeaderSize {
			expectOne(t, "runnel: stored max timestamp", -1, record.Batch(rf.records).MaxTimestamp())
		}
		// By time 0: no record is stamped at or after it (-1 < 0), none.
		rc, ro := p.rn.listOffset(p.ctx, "ts-none", 0, 0)
		kc, ko := p.kf.listOffset(p.ctx, "ts-none", 0, 0)
		expect(t, "by time 0: code", codeNone, rc, kc)
		expectOne(t, "runnel: by time 0 (none: the high watermark)", 2, ro)
		if ko != -1 {
			t.Logf("kfake quirk: by time 0 over records stamped -1: kfake %d, Kafka -1", ko)
		}
	})

	t.Run("LogAppendTimeAfterDeleteRecords", func(t *testing.T) {
		// The produce response's log_start_offset is the log's after the
		// append (UnifiedLog.append: appendInfo.setLogStartOffset), and
		// log_append_time the time stamped on the batch.
		p.createTopic(t, "lat-del", topicSpec{partitions: 1, logAppendTime: true})
		old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
		p.produceBoth(t, "lat-del", 0, values(t, []int64{old, old, old}))
		rc, _ := p.rn.deleteRecords(p.ctx, "lat-del", 0, 2)
		kc, _ := p.kf.deleteRecords(p.ctx, "lat-del", 0, 2)
		expect(t, "delete records: code", codeNone, rc, kc)
		before := time.Now().UnixMilli()
		r, k := p.produceBoth(t, "lat-del", 0, values(t, []int64{old}))
		after := time.Now().UnixMilli()
		expect(t, "base offset", 3, r.baseOffset, k.baseOffset)
		expect(t, "log start offset", 2, r.logStartOffset, k.logStartOffset)
		if r.logAppendTime < before || r.logAppendTime > after {
			t.Errorf("runnel's log append time %d is not in [%d, %d]", r.logAppendTime, before, after)
		}
		rf := p.rn.fetch(p.ctx, "lat-del", 0, 3)
		if rr := decode(t, rf.records, 3); len(rr) != 1 || rr[0].TS != r.logAppendTime || rr[0].TSType != record.LogAppendTime {
			t.Errorf("runnel's record %v: Kafka's is stamped LogAppendTime %d, the answer's", rr, r.logAppendTime)
		}
	})
}

// TestParityIdempotenceEdges: how far back a duplicate is recognized, and
// what the broker answers to the sequences and epochs around it.
func TestParityIdempotenceEdges(t *testing.T) {
	p := newPair(t)
	p.createTopic(t, "idem-edges", topicSpec{partitions: 1})
	now := time.Now()
	two := func(pid int64, epoch int16, seq int32) []byte {
		return batchOf(t, pid, epoch, seq, &record.Record{Value: []byte("a"), Timestamp: now}, &record.Record{Value: []byte("b"), Timestamp: now})
	}
	rpid, repoch := p.rn.initProducerID(p.ctx)
	kpid, kepoch := p.kf.initProducerID(p.ctx)
	send := func(what string, epochDelta int16, seq int32, code int16, base int64) {
		t.Helper()
		r := p.rn.produce(p.ctx, "idem-edges", 0, two(rpid, repoch+epochDelta, seq))
		k := p.kf.produce(p.ctx, "idem-edges", 0, two(kpid, kepoch+epochDelta, seq))
		expect(t, what+": code", code, r.code, k.code)
		expect(t, what+": base offset", base, r.baseOffset, k.baseOffset)
	}
	// Six batches of two records: sequences 0, 2, ..., 10 at offsets 0,
	// 2, ..., 10.
	for i := range int32(6) {
		send(fmt.Sprintf("batch %d", i), 0, 2*i, codeNone, int64(2*i))
	}
	// ProducerStateEntry keeps the last 5 batches (NUM_BATCHES_TO_RETAIN)
	// and findDuplicateBatch answers a retry of any of them with its
	// first offset (UnifiedLog.append: the duplicate's offsets).
	for i := int32(1); i < 6; i++ {
		send(fmt.Sprintf("retry of batch %d (one of the last 5)", i), 0, 2*i, codeNone, int64(2*i))
	}
	// A retry of the 6th last is not found: ProducerAppendInfo.checkSequence
	// sees a sequence that does not follow the last one and throws
	// OutOfOrderSequenceException (45). The broker has no path to
	// DUPLICATE_SEQUENCE_NUMBER (46) any more: the Java client treats 46
	// as success, and Kafka's broker does not send it.
	send("retry of batch 0 (older than the last 5)", 0, 0, codeOutOfOrderSequence, -1)
	// A batch that starts where a remembered one starts but ends
	// elsewhere is no duplicate (first and last sequence both match in
	// batchWithSequenceRange), and out of order.
	r := p.rn.produce(p.ctx, "idem-edges", 0, batchOf(t, rpid, repoch, 10, &record.Record{Value: []byte("a"), Timestamp: now}))
	k := p.kf.produce(p.ctx, "idem-edges", 0, batchOf(t, kpid, kepoch, 10, &record.Record{Value: []byte("a"), Timestamp: now}))
	expect(t, "a batch overlapping the last one: code", codeOutOfOrderSequence, r.code, k.code)
	// A gap, then the next in sequence.
	send("a gap of one batch", 0, 14, codeOutOfOrderSequence, -1)
	send("the next batch", 0, 12, codeNone, 12)
	// checkProducerEpoch: an epoch below the last seen is
	// InvalidProducerEpochException (47) in produce since Kafka 2.7
	// (KIP-588 replaced PRODUCER_FENCED, 90, there), even for a batch
	// that repeats one appended under that older epoch.
	send("epoch bump", 1, 0, codeNone, 14)
	send("the old epoch, next sequence", 0, 14, codeInvalidEpoch, -1)
	send("the old epoch, a retry of its last batch", 0, 12, codeInvalidEpoch, -1)
	send("the new epoch's retry", 1, 0, codeNone, 14)

	// checkSequence accepts any first sequence from a producer the
	// partition has no state for (currentEntry's epoch is
	// NO_PRODUCER_EPOCH), as after KIP-360 and retention; kfake does too.
	rpid2, repoch2 := p.rn.initProducerID(p.ctx)
	kpid2, kepoch2 := p.kf.initProducerID(p.ctx)
	r = p.rn.produce(p.ctx, "idem-edges", 0, two(rpid2, repoch2, 7))
	k = p.kf.produce(p.ctx, "idem-edges", 0, two(kpid2, kepoch2, 7))
	expect(t, "a new producer's first batch at sequence 7: code", codeNone, r.code, k.code)
	_, ro := p.rn.listOffset(p.ctx, "idem-edges", 0, tsLatest)
	expectOne(t, "runnel: records appended", 18, ro)

	t.Run("SequenceWrap", func(t *testing.T) {
		// ProducerAppendInfo.inSequence: 0 follows Integer.MAX_VALUE, and
		// a batch's last sequence wraps (DefaultRecordBatch.lastSequence,
		// incrementSequence).
		rpid, repoch := p.rn.initProducerID(p.ctx)
		kpid, kepoch := p.kf.initProducerID(p.ctx)
		const top = int32(1<<31 - 1)
		for _, c := range []struct {
			what string
			seq  int32
			code int16
		}{
			{"a first batch ending at the largest sequence", top - 1, codeNone},
			{"the next batch, at sequence 0", 0, codeNone},
			{"its retry", 0, codeNone},
			{"then sequence 1 (a repeat of the second record)", 1, codeOutOfOrderSequence},
			{"then sequence 2", 2, codeNone},
		} {
			r := p.rn.produce(p.ctx, "idem-edges", 0, two(rpid, repoch, c.seq))
			k := p.kf.produce(p.ctx, "idem-edges", 0, two(kpid, kepoch, c.seq))
			if c.seq == top-1 {
				expect(t, c.what+": code", c.code, r.code, k.code)
				continue
			}
			expectQuirk(t, c.what+": code", c.code, r.code, k.code, "kfake does not wrap sequences")
		}
	})

	t.Run("DuplicateOnLogAppendTimeTopic", func(t *testing.T) {
		// A duplicate's log_append_time is duplicate.timestamp, the
		// remembered batch's max timestamp: on a LogAppendTime topic, the
		// time the first append stamped, so both answers say the same.
		p.createTopic(t, "idem-dup-lat", topicSpec{partitions: 1, logAppendTime: true})
		pid, epoch := p.rn.initProducerID(p.ctx)
		b := func() []byte { return batchOf(t, pid, epoch, 0, &record.Record{Value: []byte("x"), Timestamp: now}) }
		first := p.rn.produce(p.ctx, "idem-dup-lat", 0, b())
		time.Sleep(2 * time.Millisecond) // a new append would stamp a later time
		dup := p.rn.produce(p.ctx, "idem-dup-lat", 0, b())
		expectOne(t, "duplicate: code", codeNone, dup.code)
		expectOne(t, "duplicate: base offset", 0, dup.baseOffset)
		expectOne(t, "duplicate: log append time, the first answer's", first.logAppendTime, dup.logAppendTime)
	})

	t.Run("DuplicateLogAppendTime", func(t *testing.T) {
		// UnifiedLog.append answers a duplicate with
		// setLogAppendTime(duplicate.timestamp): the remembered batch's
		// max timestamp, whatever the topic's timestamp type. On a
		// CreateTime topic that is the records' largest create time,
		// where the first answer said -1.
		p.createTopic(t, "idem-dup-ct", topicSpec{partitions: 1})
		ts := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
		batch := func(pid int64, epoch int16) []byte {
			return batchOf(t, pid, epoch, 0, &record.Record{Value: []byte("x"), Timestamp: ts})
		}
		pid, epoch := p.rn.initProducerID(p.ctx)
		first := p.rn.produce(p.ctx, "idem-dup-ct", 0, batch(pid, epoch))
		expectOne(t, "first answer: log append time", -1, first.logAppendTime)
		dup := p.rn.produce(p.ctx, "idem-dup-ct", 0, batch(pid, epoch))
		expectOne(t, "duplicate: base offset", 0, dup.baseOffset)
		diverges(t, "a duplicate's log append time on a CreateTime topic", ts.UnixMilli(), dup.logAppendTime,
			"deliberate: runnel answers a duplicate as it answered the batch (-1 on a CreateTime topic: the time is no log append time); documented in the README's differences")
	})
}

// TestParityCreateTopicErrors: which error CreateTopics answers when
// several apply, and INVALID_CONFIG. ReplicationControlManager.createTopics
// checks the name (INVALID_TOPIC_EXCEPTION), then whether the topic exists
// (TOPIC_ALREADY_EXISTS), then the configs (INVALID_CONFIG, via
// incrementalAlterConfig), and only then, in createTopic, the partition
// count (INVALID_PARTITIONS for 0 or below -1; -1 is the default, KIP-464).
func TestParityCreateTopicErrors(t *testing.T) {
	p := newPair(t)
	p.createTopic(t, "exists", topicSpec{partitions: 2})
	expect(t, "an existing topic with 0 partitions", codeTopicExists,
		p.rn.createTopic(p.ctx, "exists", topicSpec{partitions: 0}), p.kf.createTopic(p.ctx, "exists", topicSpec{partitions: 0}))
	expect(t, "an existing topic with -2 partitions", codeTopicExists,
		p.rn.createTopic(p.ctx, "exists", topicSpec{partitions: -2}), p.kf.createTopic(p.ctx, "exists", topicSpec{partitions: -2}))
	expectQuirk(t, "a new topic with -2 partitions", codeInvalidPartitions,
		p.rn.createTopic(p.ctx, "minus-two", topicSpec{partitions: -2}), p.kf.createTopic(p.ctx, "minus-two", topicSpec{partitions: -2}),
		"kfake takes any negative count for the default")

	// INVALID_CONFIG: min.cleanable.dirty.ratio is between(0, 1) in
	// LogConfig's ConfigDef, and max.compaction.lag.ms below
	// min.compaction.lag.ms is refused by LogConfig.validateValues.
	// kfake checks config names, not values: compare runnel with Kafka.
	invalid := []struct {
		name string
		cfg  log.Config
	}{
		{"min.cleanable.dirty.ratio 1.5", log.Config{MinCleanableDirtyRatio: 1.5}},
		{"max.compaction.lag.ms below min.compaction.lag.ms", log.Config{MinCompactionLag: time.Hour, MaxCompactionLag: time.Minute}},
	}
	for _, c := range invalid {
		err := p.rn.b.CreateTopic(p.ctx, "bad-config", log.TopicConfig{Partitions: 1, Config: c.cfg})
		expectOne(t, "a new topic with "+c.name, codeInvalidConfig, api.Code(err))
		err = p.rn.b.CreateTopic(p.ctx, "exists", log.TopicConfig{Partitions: 1, Config: c.cfg})
		expectOne(t, "an existing topic with "+c.name, codeTopicExists, api.Code(err))
		err = p.rn.b.CreateTopic(p.ctx, "bad-both", log.TopicConfig{Partitions: 0, Config: c.cfg})
		expectOne(t, "a new topic with "+c.name+" and 0 partitions", codeInvalidConfig, api.Code(err))
	}
	// kfake's answer to a config value Kafka refuses, for the record.
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "bad-config", 1, 1
	cfg := kmsg.NewCreateTopicsRequestTopicConfig()
	cfg.Name, cfg.Value = "min.cleanable.dirty.ratio", kmsg.StringPtr(strconv.FormatFloat(1.5, 'f', -1, 64))
	rt.Configs = append(rt.Configs, cfg)
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 5000
	if kc := p.kf.request(context.Background(), req).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode; kc != codeInvalidConfig {
		t.Logf("kfake quirk: min.cleanable.dirty.ratio 1.5: kfake %d, Kafka %d", kc, codeInvalidConfig)
	}

	// DeleteRecords on an empty partition: 0 and -1 (the high
	// watermark) leave the log start at 0; 1 is past the high watermark
	// (UnifiedLog.maybeIncrementLogStartOffset: OFFSET_OUT_OF_RANGE).
	p.createTopic(t, "empty-del", topicSpec{partitions: 1})
	for _, c := range []struct {
		off  int64
		code int16
	}{{0, codeNone}, {-1, codeNone}, {1, codeOffsetOutOfRange}} {
		rc, rl := p.rn.deleteRecords(p.ctx, "empty-del", 0, c.off)
		kc, kl := p.kf.deleteRecords(p.ctx, "empty-del", 0, c.off)
		expect(t, fmt.Sprintf("delete records before %d of an empty partition: code", c.off), c.code, rc, kc)
		if c.code == codeNone {
			expect(t, fmt.Sprintf("delete records before %d of an empty partition: low watermark", c.off), 0, rl, kl)
		}
	}

	// CreatePartitions of a deleted topic: UNKNOWN_TOPIC_OR_PARTITION.
	p.createTopic(t, "gone", topicSpec{partitions: 1})
	expect(t, "delete topic", codeNone, p.rn.deleteTopic(p.ctx, "gone"), p.kf.deleteTopic(p.ctx, "gone"))
	expectOne(t, "runnel: create partitions of a deleted topic", codeUnknownTopic, p.rn.createPartitions(p.ctx, "gone", 2))
}

// codeInvalidConfig is INVALID_CONFIG.
const codeInvalidConfig int16 = 40

// TestParityIdempotenceAfterDeleteRecords: Kafka's broker keeps a
// producer's state when DeleteRecords (or retention) moves the log start
// past its batches: ProducerStateManager.onLogStartOffsetIncremented drops
// only unreplicated transactions, and a producer goes only when it
// expires (producer.id.expiration.ms; since KIP-360, also at a restart:
// loadFromSnapshot filters by expiration only). Its last 5 batches stay
// whole (batchMetadata is never trimmed by offset): a retry of one below
// the log start is still a duplicate, answered with its offsets. runnel
// does the same since be4da99.
func TestParityIdempotenceAfterDeleteRecords(t *testing.T) {
	p := newPair(t)
	p.createTopic(t, "idem-del", topicSpec{partitions: 1})
	now := time.Now()
	rpid, repoch := p.rn.initProducerID(p.ctx)
	kpid, kepoch := p.kf.initProducerID(p.ctx)
	one := func(pid int64, epoch int16, seq int32) []byte {
		return batchOf(t, pid, epoch, seq, &record.Record{Value: []byte("v"), Timestamp: now})
	}
	send := func(seq int32) (produceResult, produceResult) {
		return p.rn.produce(p.ctx, "idem-del", 0, one(rpid, repoch, seq)), p.kf.produce(p.ctx, "idem-del", 0, one(kpid, kepoch, seq))
	}
	for seq := range int32(3) {
		r, k := send(seq)
		expect(t, fmt.Sprintf("batch %d: base offset", seq), int64(seq), r.baseOffset, k.baseOffset)
	}
	rc, _ := p.rn.deleteRecords(p.ctx, "idem-del", 0, 2)
	kc, _ := p.kf.deleteRecords(p.ctx, "idem-del", 0, 2)
	expect(t, "delete records before 2: code", codeNone, rc, kc)

	t.Run("RetryBelowTheLogStart", func(t *testing.T) {
		r, k := send(1)
		if k.code != codeNone || k.baseOffset != 1 {
			t.Logf("kfake quirk: a retry of a batch below the log start: kfake code %d offset %d, Kafka 0 and 1", k.code, k.baseOffset)
		}
		expectOne(t, "a retry of a batch below the log start: code", codeNone, r.code)
		expectOne(t, "a retry of a batch below the log start: base offset", 1, r.baseOffset)
	})

	t.Run("AllBatchesBelowTheLogStart", func(t *testing.T) {
		rc, _ := p.rn.deleteRecords(p.ctx, "idem-del", 0, 3)
		kc, _ := p.kf.deleteRecords(p.ctx, "idem-del", 0, 3)
		expect(t, "delete records before 3: code", codeNone, rc, kc)
		r, k := send(2)
		if k.code != codeNone || k.baseOffset != 2 {
			t.Logf("kfake quirk: a retry of the last batch, all below the log start: kfake code %d offset %d, Kafka 0 and 2", k.code, k.baseOffset)
		}
		expectOne(t, "a retry of the last batch, all of the producer's below the log start: base offset", 2, r.baseOffset)
	})
}

// TestParityInvalidTopicName: requests on a topic name Kafka would refuse.
// Kafka's broker answers Produce, Fetch and DeleteRecords of a topic its
// metadata cache does not hold with UNKNOWN_TOPIC_OR_PARTITION
// (KafkaApis: metadataCache.contains), ListOffsets likewise
// (ReplicaManager.getPartitionOrException), DeleteTopics and
// CreatePartitions of a missing name too; only its Metadata request
// answers INVALID_TOPIC_EXCEPTION, which is what a Kafka client reports.
func TestParityInvalidTopicName(t *testing.T) {
	p := newPair(t)
	now := time.Now().UnixMilli()
	for _, name := range []string{"a/b", "", ".."} {
		expect(t, fmt.Sprintf("%q: delete topic", name), codeUnknownTopic, p.rn.deleteTopic(p.ctx, name), p.kf.deleteTopic(p.ctx, name))
		expect(t, fmt.Sprintf("%q: create partitions", name), codeUnknownTopic, p.rn.createPartitions(p.ctx, name, 2), p.kf.createPartitions(p.ctx, name, 2))
		r, k := p.rn.produce(p.ctx, name, 0, values(t, []int64{now})), p.kf.produce(p.ctx, name, 0, values(t, []int64{now}))
		expectOne(t, fmt.Sprintf("kfake: %q: produce", name), codeUnknownTopic, k.code)
		rf, kf := p.rn.fetch(p.ctx, name, 0, 0), p.kf.fetch(p.ctx, name, 0, 0)
		expectOne(t, fmt.Sprintf("kfake: %q: fetch", name), codeUnknownTopic, kf.code)
		rl, _ := p.rn.listOffset(p.ctx, name, 0, tsLatest)
		rd, _ := p.rn.deleteRecords(p.ctx, name, 0, 0)
		for what, code := range map[string]int16{"produce": r.code, "fetch": rf.code, "list offsets": rl, "delete records": rd} {
			t.Run(fmt.Sprintf("%q_%s", name, what), func(t *testing.T) {
				diverges(t, fmt.Sprintf("%q: %s", name, what), codeUnknownTopic, code,
					"deliberate: runnel's in-process calls are also its clients' metadata look-up, and answer ErrInvalidTopic (INVALID_TOPIC_EXCEPTION, what a Kafka client learns from its Metadata request) for a name no topic can have (README)")
			})
		}
	}
}
