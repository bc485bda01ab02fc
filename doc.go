// Package runnel is an embeddable broker for Kafka's model. Topics are
// split into partitions, each an append-only log in Kafka's on-disk format
// (see package [log]). The broker serves them to producers and consumers
// in the same process.
//
//	b, err := runnel.Open(runnel.Config{Dir: "data"}) // Dir "" runs in memory
//	if err != nil {
//		return err // vfs.ErrLocked: another Open has the directory
//	}
//	defer b.Close() // deferred first, runs last
//	err = b.CreateTopic(ctx, "orders", log.TopicConfig{Partitions: 8})
//	if err != nil && !errors.Is(err, runnel.ErrTopicExists) {
//		return err
//	}
//	p, err := producer.New(b) // see package producer
//	c, err := consumer.New(b) // see package consumer
//
// The README's first program is this, whole (ExampleOpen in memory).
//
// # Layout on disk
//
// A [Broker] is one node. Its layout on disk is Kafka's: one directory per
// partition, <Dir>/<topic>-<partition>, holding that partition's segments
// and checkpoints. Beside them are runnel's own files:
//
//   - <Dir>/topics/<topic>.json: a topic's partition count and
//     configuration.
//   - <Dir>/producer-ids: the next idempotent producer id. Should the file
//     be lost or rolled back, [Open] hands ids out from past those whose
//     state a partition keeps.
//   - <Dir>/runnel.lock, which a second process opening the same
//     directory finds locked.
//
// # Shutdown
//
// Shut down in the reverse order: consumers first, then producers, then
// the broker. Shut a producer down with Flush, then Close: Close fails
// what is still buffered.
//
// A producer whose broker closed first fails its records with
// [ErrClosed]; a consumer's Records ends.
//
// # Contexts
//
// Every method that takes a ctx needs one that is not nil, as package
// [context] asks: pass [context.TODO] when there is none yet. A nil ctx is
// a programming error, not reported as an error. The broker's and the
// consumer's methods may panic on it; the producer's take it for
// [context.Background].
//
// # Clients and goroutines
//
// The clients (packages producer and consumer) never import this package.
// Each declares the small interface it needs in the terms of package
// [api], and *Broker satisfies them.
//
// The broker starts one goroutine for retention, compaction and flush.ms,
// and, while a partition has appends whose producer stopped waiting for
// their fsync, one for that partition that fsyncs them in turn (see
// [Broker.Produce]). A group commit's fsync that a Produce whose ctx may
// end waits for runs on a goroutine of its own but on a *vfs.MemFS (see
// package log, Options.Go). On the operating system's file system, Open,
// Close, CreateTopic, CreatePartitions and DeleteTopic handle up to eight
// partitions at once, each on a goroutine that ends before the call
// returns. [Broker.Close] stops them and waits for them.
package runnel
