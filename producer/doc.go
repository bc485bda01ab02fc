// Package producer is runnel's producer client. It batches records per
// partition into Kafka RecordBatch v2 batches (package [record]), optionally
// compressed (package [compression]). It sends them to a broker through
// the small [Client] interface, which *runnel.Broker satisfies.
//
// It sits with the other clients above the broker. It imports only
// package [api], package [log] (for its errors, such as
// [log.ErrRecordTooLarge] and [log.ErrLogFenced]) and the leaves, never the
// root package, so tests can hand it a fake Client.
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
// The API follows franz-go's kgo:
//
//   - asynchronous [Producer.Produce] with a promise;
//   - [Producer.TryProduce], which fails fast on a full buffer;
//   - [Producer.ProduceSync] and [Producer.Flush], which wait;
//   - functional options.
//
// The behaviour follows Kafka's Java producer: acks, linger, a bounded
// buffer, retries with backoff until a delivery timeout, idempotence on by
// default, and the default partitioner of Kafka 2.4 to 3.2. That
// partitioner uses murmur2 for keys. Records without a key go to sticky
// partitions (KIP-480), among the partitions that take appends when the
// Client says which ([HealthClient]).
//
// # The path of a record
//
// Produce does five things, without a channel hop or a goroutine per
// record:
//
//  1. It takes buffer space for the record. When the buffer is full it
//     waits in line for it: the Produce calls that wait are served in
//     order.
//  2. It resolves the record's topic. It asks the broker for the topic's
//     partition count the first time, and again when the count grew
//     [MetadataMaxAge] old while the topic was idle. The record holds its
//     space meanwhile, so that Flush waits for it, as kgo's does.
//  3. It sets the record's timestamp if it has none.
//  4. It lets the topic's partitioner choose a partition.
//  5. It appends the record to that partition's open batch.
//
// Produce only sizes the record (for [BatchMaxBytes] and the buffer
// bounds). The record is encoded later, with the rest of its batch, which
// is why a record must not be modified until its promise has run.
//
// Each partition with records has one goroutine, which sends its batches
// one request at a time. A batch goes as soon as the previous request is
// answered (after [Linger], if set). With an [AsyncClient], it goes as soon
// as the previous one is appended, while up to [MaxInFlight] requests wait
// for their acknowledgement. The records produced meanwhile form the next
// batch, up to BatchMaxBytes.
//
// For each batch, the partition's goroutine:
//
//   - drops the records whose ctx has ended (they fail with ctx's error,
//     unsent);
//   - encodes and compresses the batch, into one [record.Builder] per
//     sending partition;
//   - stamps the producer id and sequence numbers;
//   - calls Client.Produce (or ProduceAsync);
//   - retries what is retriable;
//   - runs the promises in order (a second goroutine runs those of the
//     requests that wait for their acknowledgement);
//   - frees the buffer space.
//
// The goroutine ends once the partition has had nothing to send for a
// second. Encoding on that goroutine rather than the caller's lets the two
// run on two cores.
//
// See [Producer] for the ordering, idempotence and failure rules, and
// [Acks] for what each acknowledgement level means in process.
package producer
