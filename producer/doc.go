// Package producer is runnel's producer client: it batches records per
// partition into Kafka RecordBatch v2 batches (package record), optionally
// compressed (package compression), and sends them to a broker through
// the small Client interface, which *runnel.Broker satisfies. It sits with
// the other clients above the broker and imports only package api,
// package log (for its errors, such as ErrRecordTooLarge and ErrLogFenced)
// and the leaves, never the root package, so tests can hand it a fake
// Client.
//
//	p, err := producer.New(b, producer.Linger(5*time.Millisecond),
//		producer.Compression(compression.Zstd))
//	if err != nil {
//		return err // ErrInvalidOption
//	}
//	defer p.Close() // fails what is still buffered: Flush first
//	p.Produce(ctx, &record.Record{Topic: "orders", Key: k, Value: v},
//		func(r *record.Record, err error) { /* err, or r.Partition and r.Offset */ })
//	err = p.Flush(ctx) // waits for every record produced so far and its promise
//	err = p.ProduceSync(ctx, recs...) // waits; a *RecordError per failed record
//
// The API follows franz-go's kgo: asynchronous Produce with a promise,
// TryProduce that fails fast on a full buffer, ProduceSync and Flush that
// wait, functional options. The behaviour follows Kafka's Java producer:
// acks, linger, a bounded buffer, retries with backoff until a delivery
// timeout, idempotence on by default, and the default partitioner of Kafka
// 2.4 to 3.2 (murmur2 for keys, sticky partitions for records without,
// KIP-480, among the partitions that take appends when the Client says
// which: HealthClient).
//
// # The path of a record
//
// Produce takes buffer space for the record (waiting in line for it, the
// Produce calls that wait served in order, when the buffer is full),
// resolves its topic (asking the broker for its partition count the
// first time, and again when the count grew MetadataMaxAge old while the
// topic was idle: the record holds its space meanwhile, so that Flush
// waits for it, as kgo's does), sets the record's timestamp if it has
// none, lets the topic's partitioner choose a partition, and appends the
// record to that partition's open batch, without a channel hop or a
// goroutine per record. It only sizes the record (for BatchMaxBytes and the buffer
// bounds); the record is encoded later, with the rest of its batch —
// which is why a record must not be modified until its promise has run.
// Each partition with records has one goroutine, which sends its batches
// one request at a time: a batch goes as soon as the previous request is
// answered (after Linger, if set) — with an AsyncClient, as soon as it is
// appended, while up to MaxInFlight requests wait for their
// acknowledgement — and the records produced meanwhile form the next one,
// up to BatchMaxBytes. The goroutine drops the records whose ctx has
// ended (they fail with ctx's error, unsent), encodes and compresses the
// batch (into one record.Builder per sending partition), stamps the
// producer id and sequence numbers, calls Client.Produce (or
// ProduceAsync), retries what is retriable, runs the promises in order (a
// second goroutine runs those of the requests that wait for their
// acknowledgement), frees the buffer space, and ends once the partition
// has had nothing to send for a second. Encoding on that goroutine rather
// than the caller's lets the two run on two cores.
//
// See Producer for the ordering, idempotence and failure rules, and Acks
// for what each acknowledgement level means in process.
package producer
