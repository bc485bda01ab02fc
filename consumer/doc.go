// Package consumer reads partitions of a runnel broker without a consumer
// group. The application assigns partitions, says where to start (an
// offset, the start, the end, a time), and polls. It is Kafka's
// assign()/seek()/poll() consumer.
//
// Consumer groups are not built yet: no membership, no partitions balanced
// across members, no committed offsets. An application that must resume
// where it stopped saves [Consumer.Position] once it has handled the
// records before it; Position still answers after Close. It starts from
// the saved position with [At] (Example_resume). That is what a Kafka
// consumer commits, kept where the application likes, such as in the
// database its handler writes to, in the same transaction.
//
// It sits with the other clients above package [api]. It never imports
// the root package: it declares the [Client] it needs (Partitions,
// ListOffset, Fetch), which *runnel.Broker satisfies, so tests can hand it
// a fake.
//
//	c, err := consumer.New(b) // b is a *runnel.Broker
//	if err != nil {
//		return err
//	}
//	defer c.Close()
//	if err := c.Assign("orders", 0, consumer.AtTime(t0)); err != nil {
//		return err
//	}
//	for rec, err := range c.Records(ctx) { // until ctx ends or c closes
//		if err != nil && ctx.Err() != nil {
//			break // ctx's error, the loop's last: a shutdown, not a failure
//		}
//		if err != nil {
//			continue // a *PartitionError (log it): the loop goes on
//		}
//		handle(rec)
//		saved, _ = c.Position(rec.Topic, rec.Partition) // the next offset: At(saved) resumes
//	}
//
// # Positions
//
// Each assigned partition has a position: the offset of the next record
// to return. [At] sets it at once; [Start], [End] and [AtTime] are resolved
// with ListOffset on the next Poll.
//
// [Consumer.Poll] sends one Fetch request for every assigned, unpaused
// partition with a position, and advances each past the records it
// returns. The [Consumer.Records] iterator advances a position record by
// record instead, so that breaking out of its loop loses nothing.
// [Consumer.Lag] tells how far a position is behind the high watermark the
// last fetch saw, so that a loop can stop once it has caught up.
//
// A position out of range is reset per [ResetOffset]: one below the log
// start after retention or DeleteRecords, or one past the end. So is the
// position of a partition whose topic the consumer sees deleted (see
// Poll).
//
// A position looked up with ListOffset keeps the topic ID ListOffset gives
// with it, and every fetch names its position's ID. So a topic deleted and
// created again under its name is seen as gone rather than read from the
// old topic's offset. That holds even between a look-up and the first
// fetch, or while a position read in it is reset. An offset given with At
// names no topic: it is read in the topic there at its first fetch.
//
// Only records below the high watermark are returned. The broker sends
// whole batches, so the first batch of a fetch may begin before the
// position: its earlier records are skipped. Control batches (transaction
// markers) are skipped too. Records of transactions are returned whether
// committed or not (Kafka's read_uncommitted).
//
// # Positions and lost records
//
// A broker may lose records that had been read: a crash under
// log.SyncNever or a periodic fsync policy cuts the unsynced tail. A
// position saved after them and given back with At is then past the log
// end. It is out of range, and reset per ResetOffset (the Logger's line
// is at Warn: "offset out of range past the log end: resetting"), until
// appends bring the log end past it again. From then on it is read without a word, and
// the records appended from the cut up to it are never returned.
//
// Kafka's consumers tell such a truncation by leader epochs (KIP-320),
// which this package neither keeps nor checks, and neither does a Java
// consumer's seek to a bare offset. An application that saves positions
// across crashes of such a broker can:
//
//   - compare each position with its partition's log end when it opens the
//     broker again, before anything is appended (a position past it names
//     records lost);
//   - or use the default fsync policy, under which a consumer reads only
//     what was fsynced.
//
// # Records and their bytes
//
// Fetch.Batches holds the batch bytes as the Client returned them. Records
// decode from them lazily, as the iterators reach them ([record.Batch]
// views). A compressed batch is decompressed, into a buffer of its own,
// when the iteration reaches it.
//
// A record's Key, Value and header values point into those bytes. They stay
// valid, unchanged, for as long as the record (or the Fetch) is
// referenced: api's Fetch contract is that the bytes are the caller's and
// never change. With *runnel.Broker that holds on both file systems:
//
//   - On the in-memory FS the bytes are views of the log's own memory,
//     which the memory FS never writes over once handed out
//     (vfs.Viewer). Should a truncation be followed by appends, it copies
//     its array instead, and retention drops references rather than
//     memory.
//   - On the OS file system each Fetch reads into fresh memory (the broker
//     passes no buffer to log.Partition.ReadInto).
//
// Never modify them: on the in-memory FS they are the log itself.
//
// So memory is held by what is kept. A record kept from the in-memory
// broker keeps the log's memory chunk it points into (up to 4 MiB, even
// after retention deleted its segment). One kept from a disk-backed broker
// keeps the Fetch's whole read buffer (up to the fetch's max bytes). To
// keep a few records for long, copy their Key and Value ([bytes.Clone]).
//
// Each record yielded is a new *[record.Record] that the caller may keep.
// The records of one batch are allocated together, in slices of up to
// 1,024, so a kept record keeps up to 1,023 others of its batch alive:
// their structs, 144 KiB on 64-bit platforms (the bytes they point into
// are the batch's, above). Decoding allocates nothing else per record but
// its headers: package record makes a slice and a key string for each
// record that has headers.
//
// # Concurrency
//
// A Consumer's methods are safe for concurrent use. Assign, Seek, Pause,
// Resume and Unassign may be called from any goroutine, also while Poll
// waits. They take effect at once: Poll returns early, and no record
// fetched before a Seek is returned after it, also by a Records loop
// running in another goroutine (see Records), but those taken before it:
// the answer of a Poll that had moved the positions past it, the record
// in hand of a Records loop (Position is past them; see Seek). Poll and
// Records are meant for one goroutine at a time.
//
// [Consumer.Close] interrupts a Poll (or an AssignTopic) in progress,
// waits for it, and makes later calls return [ErrClosed]. Position and
// Assigned still answer, so that positions can be saved after Close, and
// so does Lag (see Close).
//
// A Consumer starts no goroutines of its own that outlive a call. A
// wake-up or a Close during a Poll runs a short one ([context.AfterFunc])
// that cancels the Poll's wait and ends there.
//
// # Shutdown
//
// Close clients before the broker they use: consumers first, then
// producers (Flush, then Close: see package producer), then the broker.
// With defer, that is creating them in the opposite order: the broker
// first, its Close deferred first, so that it runs last.
//
// Closing a consumer ends its Records loop (without an error) and waits
// for a Poll in progress, so no call to the broker is in flight
// afterwards.
//
// A broker closed first is not a disaster: the consumer sees it at its
// next call. Poll returns [api.ErrBrokerClosed] (runnel.ErrClosed) as its
// own error, with no position moved and no partition stopped; Records
// yields it once and ends. Close the consumer all the same.
//
// # Errors
//
// Methods return:
//
//   - [ErrClosed] after Close.
//   - [ErrNotAssigned] (Seek).
//   - [ErrInvalidOffset], [api.ErrInvalidTopic] and [ErrInvalidOption] for
//     bad arguments. api.ErrInvalidTopic is for a name Kafka refuses (see
//     [api.ValidateTopicName]): Assign, AssignTopic and Seek check names at
//     once.
//
// A nil ctx (Poll, Records, AssignTopic) is not reported as one: package
// context asks for none (pass context.TODO), and they may panic on it.
//
// Per-partition failures come in Fetch.Err (and from the Records
// iterators) as a [*PartitionError] wrapping the broker's error:
//
//   - [log.ErrOffsetOutOfRange] under ResetNone.
//   - [api.ErrUnknownTopicOrPartition] (= runnel.ErrUnknownTopic) for a
//     partition gone from under a position it had read: a deleted topic.
//     One never read is retried, see below.
//   - [api.ErrUnknownTopicID] (= runnel.ErrUnknownTopicID) for a topic
//     deleted under the consumer, whether or not it was created again. For
//     a deleted topic the broker's error matches ErrUnknownTopicOrPartition
//     too.
//   - [record.ErrCorrupt] for bytes that do not decode.
//
// Poll documents which of them stop a partition and which retry it after
// RetryBackoff.
//
// Errors Kafka's table calls retriable are retried after RetryBackoff
// without a word, as Kafka's consumers retry them: not the leader, a
// request timed out, a storage error, an unknown topic not read yet. That
// holds whether a partition's answer, a ListOffset or the whole Fetch
// returned them. A partition gone from under a position it had read is
// reported all the same, and so is a corrupt batch.
//
// A closed Client (api.ErrBrokerClosed) is not a partition's error but
// Poll's, and it ends Records. So does any error of Poll itself that
// Kafka's table calls not retriable (see Records).
package consumer
