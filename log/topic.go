package log

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// TopicConfig is a topic's configuration: its partition count and the
// Config of every partition's log (zero fields of Config: the broker's
// defaults).
type TopicConfig struct {
	// Partitions is the partition count: at least 1, or -1 for the
	// broker's DefaultPartitions (runnel.Config; KIP-464). Unlike Config's
	// fields it has no default of its own: CreateTopic refuses 0 with
	// runnel.ErrInvalidPartitions.
	Partitions int
	Config
}

// Topic is the public face of a topic on a broker: its name, its ID, its
// configuration as it was set (its zero fields take the broker's
// defaults, which it does not hold) and its partitions. A runnel.Broker
// keeps one for each of its topics and hands out neither it nor its
// Partitions: its DescribeTopic answers with a copy of what they say
// (runnel.TopicInfo, with a runnel.PartitionInfo per partition).
type Topic struct {
	Name       string       // the topic's name
	ID         TopicID      // new for a topic deleted and created again under its name
	Config     TopicConfig  // its partition count and Config as set, without defaults
	Partitions []*Partition // in order of their number, from 0
}

// Partition is the public face of one partition of a topic: its log, and,
// on a single node, its high watermark — the end of what is durable per the
// topic's fsync policy (the durable offset under SyncAlways, the log end
// offset otherwise). Consumers read below it. Its methods are safe for
// concurrent use.
//
// A Partition is made by NewPartition. A zero Partition (one not made by
// NewPartition) is closed, as a partition whose log is closed: its calls
// answer ErrClosed (its State, PartitionState.Err ErrClosed; its Lock and
// Reopen too, as it has no lock to take), Close and Discard nil, its
// offsets 0 and its Changed a closed channel.
type Partition struct {
	topic string
	id    int32

	// mu guards log (its stores), broken, reopenErr and retry: Reopen
	// swaps them. The calls that use the log hold it shared, a Reopen
	// exclusively, across file I/O (the old log's closing fsync, the new
	// one's recovery): a call with a ctx stops waiting for it when the
	// ctx ends.
	mu  holdLock
	log atomic.Pointer[Log] // loaded without mu by the offsets' getters
	// broken is why the partition's log is never opened again by Reopen:
	// it was fenced (a write or fsync failed), or a Reopen could not
	// close it (its final fsync failed, say). nil otherwise.
	broken error
	// reopenErr is why the last Reopen could not open the log again (nil
	// when it could): the partition then answers ErrLogFenced with it
	// instead of ErrClosed, until a Reopen succeeds.
	reopenErr error
	// retry is the open of a Reopen whose open failed, for RetryReopen;
	// nil otherwise, and once the partition is closed.
	retry   func() (*Log, error)
	changed chan struct{} // closed when the high watermark moves (notifyMu)
	// taken is whether Changed handed out changed since it was made
	// (notifyMu): notify closes and replaces only a channel a reader
	// took, so that an append with no reader waiting costs no channel.
	taken bool
	// epoch counts the changes but growth (notify: a cut, a reopen, a
	// close, a lock's release or a waiter for it giving up), and
	// waiters are the readers' waits for the partition to grow by some
	// bytes (a Wake's, or ChangedPast's), by the count they wait for
	// (notifyMu).
	epoch   uint64
	waiters byteWaiters

	notifyMu sync.Mutex
}

// NewPartition wraps an open log as partition id of topic. A nil l is a
// log closed already: the partition answers ErrClosed until a Reopen
// opens one.
func NewPartition(topic string, id int32, l *Log) *Partition {
	if l == nil {
		l = &Log{} // a zero Log is closed
	}
	p := &Partition{topic: topic, id: id, mu: newHoldLock(), changed: make(chan struct{})}
	p.log.Store(l)
	p.watch(l)
	return p
}

// watch has l wake the partition's readers (see Changed) when its high
// watermark may have moved or records were cut: at each fsync that
// advanced the durable offset only where that is the high watermark
// (SyncAlways). Elsewhere the append woke them, and an fsync — a
// flush.messages or flush.ms flush, Maintain's at a timer tick, a Flush —
// moves nothing they wait for: it woke every reader waiting at the log
// end, each to read and find nothing.
func (p *Partition) watch(l *Log) {
	if durableWatermark(l) {
		l.OnDurable(p.grew)
	}
	l.OnCut(p.notify)
}

// Topic is the partition's topic name.
func (p *Partition) Topic() string { return p.topic }

// ID is the partition's number.
func (p *Partition) ID() int32 { return p.id }

// Log returns the partition's log, waiting for a Reopen under way (see
// LogContext).
func (p *Partition) Log() *Log {
	l, _ := p.LogContext(context.Background())
	return l
}

// LogContext returns the partition's log once no Reopen is under way (the
// one it opens, or, if its open failed, the closed log), or ctx's error
// if ctx ends first.
func (p *Partition) LogContext(ctx context.Context) (*Log, error) {
	if p.zero() {
		return p.current(), nil
	}
	if err := p.mu.RLockContext(ctx); err != nil {
		return nil, err
	}
	defer p.mu.RUnlock()
	return p.log.Load(), nil
}

// HighWatermark is the offset below which consumers may read. Like
// Offsets, LogEndOffset and LogStartOffset, it does not wait for a Reopen
// under way: it reads the log being closed then, whose offsets the new
// one opens with.
func (p *Partition) HighWatermark() int64 { return highWatermark(p.current()) }

// PartitionOffsets are a partition's offsets as of one moment.
type PartitionOffsets struct {
	LogStart      int64 // LogStartOffset
	HighWatermark int64 // HighWatermark
	LogEnd        int64 // LogEndOffset
}

// Offsets returns the partition's log start offset, high watermark and
// log end offset as of one moment (see Log.Offsets): read one after
// another, a truncation or an fsync between the reads could report a
// high watermark past the log end.
func (p *Partition) Offsets() PartitionOffsets { return offsetsOf(p.current()) }

// zero reports whether p is a zero Partition, one not made by
// NewPartition, which is closed: it has no lock and no log.
func (p *Partition) zero() bool { return p.mu.s == nil }

// current is the partition's log, loaded without mu; a zero Log (which
// is closed) for a zero Partition.
func (p *Partition) current() *Log {
	if l := p.log.Load(); l != nil {
		return l
	}
	return &Log{}
}

// offsetsOf is the PartitionOffsets of a partition whose log is l.
func offsetsOf(l *Log) PartitionOffsets {
	o := l.Offsets()
	return PartitionOffsets{LogStart: o.Start, HighWatermark: watermarkOf(l, o.Durable, o.End), LogEnd: o.End}
}

// durableWatermark reports whether the high watermark of a partition
// whose log is l is its durable offset (SyncAlways), which an fsync
// moves, rather than its end, which an append moves.
func durableWatermark(l *Log) bool { return l.Config().Sync == SyncAlways }

// highWatermark is the high watermark of a partition whose log is l.
func highWatermark(l *Log) int64 { return watermarkOf(l, l.DurableOffset(), l.LogEndOffset()) }

// watermarkOf is the high watermark of a partition whose log is l, with
// the given durable and end offsets: the durable offset under SyncAlways
// (acknowledged once fsynced), else the end.
func watermarkOf(l *Log, durable, end int64) int64 {
	if durableWatermark(l) {
		return durable
	}
	return end
}

// ListedOffsets is Offsets for an answer that must come from an open log
// (ListOffsets' Latest and Earliest): read with the partition's log held
// open (a Reopen waits for it), and refused, as its reads and look-ups by
// time are, once the log is closed.
//
// Errors: ErrClosed (the partition was closed: its topic deleted, its
// broker closed); ErrLogFenced (wrapping open's error) once a Reopen's
// open failed (see Reopen); ctx's error, when it ends while a Reopen is
// under way.
func (p *Partition) ListedOffsets(ctx context.Context) (PartitionOffsets, error) {
	l, err := p.rlock(ctx)
	if err != nil {
		return PartitionOffsets{}, err
	}
	defer p.runlock(l)
	if l.isClosed() {
		return PartitionOffsets{}, p.failed(ErrClosed)
	}
	return offsetsOf(l), nil
}

// PartitionState is what Partition.State reads of a partition: its
// offsets, its size, and why it refuses appends, if it does.
type PartitionState struct {
	PartitionOffsets
	// Size is its log's Size.
	Size int64
	// Err is nil while the partition's log is open and not fenced.
	//
	// Otherwise it is the error every append fails with until something
	// changes that:
	//
	//   - an error matching ErrLogFenced and wrapping its cause (below);
	//   - or ErrClosed once the partition is closed.
	//
	// The cause of ErrLogFenced is one of:
	//
	//   - a failed write or fsync fenced the log. The log still serves
	//     reads, but for those of the segments a failed compaction swap
	//     removed, which answer ErrLogFenced until the next Open.
	//   - a Reopen could not open the log again, which RetryReopen or a
	//     later Reopen may.
	//   - a Reopen could not close it, its final fsync failing, say, which
	//     no Reopen mends (see Reopen).
	//
	// A refusal that passes with the append, ErrRollFailed say, is not
	// reported.
	Err error
}

// State returns the partition's offsets as of one moment (as Offsets
// does), then its log's size and why its appends fail, if they do
// (PartitionState.Err), read just after the offsets. It waits for a
// Reopen under way, as the partition's calls do, until ctx ends, and
// makes no file system operation.
//
// Errors: ctx's error (the state then not read).
func (p *Partition) State(ctx context.Context) (PartitionState, error) {
	l, err := p.rlock(ctx)
	if err != nil {
		return PartitionState{}, err
	}
	defer p.runlock(l)
	return PartitionState{PartitionOffsets: offsetsOf(l), Size: l.Size(), Err: p.failed(l.check())}, nil
}

// LogEndOffset is the offset the next appended record will get.
func (p *Partition) LogEndOffset() int64 { return p.current().LogEndOffset() }

// LogStartOffset is the first offset a consumer may read.
func (p *Partition) LogStartOffset() int64 { return p.current().LogStartOffset() }

// Changed returns a channel that is closed the next time:
//   - the high watermark may have moved (an append, a reopen, a close);
//   - records were cut from the log (see Log.OnCut: DeleteRecords,
//     retention, a truncation), which may leave a reader's offset out of
//     range;
//   - a compaction's swap failed once it had closed the segments it
//     replaces, whose offsets a read answers ErrLogFenced since (OnCut
//     too);
//   - or the partition's lock was released, or a wait for it given up
//     (see Busy).
//
// Long-polling readers take it before reading, then wait on it if they
// found not enough.
//
// Two calls with no change between return the same channel. A change that
// finds the channel not taken since the last closes nothing (no one waits
// on it), and the channel stays, to be closed by the first change after a
// reader takes it.
func (p *Partition) Changed() <-chan struct{} {
	if p.zero() {
		return closedChan // closed: nothing to wait for
	}
	p.notifyMu.Lock()
	defer p.notifyMu.Unlock()
	p.taken = true
	return p.changed
}

// closedChan is the Changed of a zero Partition.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// notify wakes the readers that took the partition's change channel
// (Changed): it closes it, and makes the next; and every wait of a Wake
// (or ChangedPast) on the partition, whatever its count. A channel no
// reader took is left as it is, open: no one waits on it, and whoever takes it next
// does so after this change, and reads what it made (an append under
// SyncNever or SyncPeriodic, with no long poll waiting, made and closed
// a channel for nothing, one allocation an append).
func (p *Partition) notify() {
	p.notifyMu.Lock()
	defer p.notifyMu.Unlock()
	p.epoch++
	for _, w := range p.waiters {
		w.i = -1
		w.fire()
	}
	clear(p.waiters)
	p.waiters = p.waiters[:0]
	p.wakeTakenLocked()
}

// grew is notify for a change that only moved the high watermark up (an
// append, under SyncAlways the fsync that made it durable): it wakes the
// readers of Changed, and the waits of a Wake (or ChangedPast) whose
// count the bytes below the high watermark now reach.
func (p *Partition) grew() {
	p.notifyMu.Lock()
	defer p.notifyMu.Unlock()
	n := watermarkBytes(p.current())
	for len(p.waiters) > 0 && p.waiters[0].at <= n {
		p.waiters.remove(0).fire()
	}
	p.wakeTakenLocked()
}

// wakeTakenLocked closes and replaces the channel of Changed if a reader
// took it (see notify). The caller holds notifyMu.
func (p *Partition) wakeTakenLocked() {
	if !p.taken {
		return
	}
	close(p.changed)
	p.changed = make(chan struct{})
	p.taken = false
}

// watermarkBytes counts the bytes appended to l below its high watermark
// since it opened (at the append under SyncNever and SyncPeriodic, at
// the fsync under SyncAlways): it never comes down, and a batch is counted
// only once the high watermark is past it, after it moved (read before
// the high watermark, it covers no batch the high watermark does not).
func watermarkBytes(l *Log) int64 {
	if durableWatermark(l) {
		return l.durableWritten.Load()
	}
	return l.written.Load()
}

// A Mark is where a partition stood for a reader that took it (see
// Partition.Mark) before it read: the bytes below its high watermark
// then, by a count that only appends move, and how far it had changed
// otherwise (a cut, a reopen, a close, a compaction: see ChangedPast and
// Rewritten). A reader that found fewer bytes than it wants waits for
// the rest from it (ChangedPast; a reader of several partitions, Wake),
// and tells from two Marks whether what it read may have been rewritten
// since (Rewritten). The zero Mark is one whose ChangedPast answers at
// once.
type Mark struct {
	p     *Partition
	epoch uint64
	bytes int64
	// gen is the log's count of compactions (see Rewritten), shifted
	// left by one, its lowest bit whether the log had the compact
	// policy (Compacted): a Mark is taken and copied for each partition
	// at each look of a fetch that waits, and a field more (40 bytes
	// where 32) made the wakes of 100 fetches of 64 partitions 0.36 M
	// instructions an append dearer (of 13.4 M).
	gen int64
}

// Compacted reports whether the partition's log had the compact cleanup
// policy when m was taken: a compaction may then change what a reader
// found (the first batch at its offset), and wakes no one.
func (m Mark) Compacted() bool { return m.gen&1 != 0 }

// Rewritten reports whether the batches below the high watermark of
// m's partition may have changed, otherwise than by appends past them,
// between m and now (a Mark taken later): a compaction swapped cleaned
// segments in (it may remove records and batches, and make a batch
// larger: a batch of tombstones cleaned the first time takes a delete
// horizon), or the partition changed otherwise than by an append (see
// ChangedPast: a cut; a reopen, whose open may complete a compaction's
// swap), or now is of another partition. A swap shows in the Marks
// taken after it: one taken as it runs may not show it, though a read
// after that Mark may find the cleaned segments (the next Mark shows
// it).
func (m Mark) Rewritten(now Mark) bool {
	return m.p != now.p || m.epoch != now.epoch || m.gen>>1 != now.gen>>1
}

// Mark returns where the partition stands now, for a reader to take
// before it reads, and to wait from (Mark.ChangedPast; Wake for several
// partitions). A zero Partition's is the zero Mark.
func (p *Partition) Mark() Mark {
	if p.zero() {
		return Mark{}
	}
	p.notifyMu.Lock()
	defer p.notifyMu.Unlock()
	l := p.current()
	gen := l.compactions.Load() << 1
	if l.Config().CleanupPolicy&Compact != 0 {
		gen |= 1
	}
	return Mark{p: p, epoch: p.epoch, bytes: watermarkBytes(l), gen: gen}
}

// ChangedPast returns a channel that is closed once:
//
//   - the appends to m's partition since m was taken have moved its high
//     watermark past n bytes of batches or more;
//   - or the partition has changed otherwise than by an append since m (a
//     cut, a reopen, a close, a lock's release or a waiter for it giving
//     up: what closes Changed's channel but an append).
//
// It is closed at once if that is so already, or n is 0 or less.
//
// Say a reader took m, then read the partition from its offset up to a
// high watermark it looked at after m, found b bytes there and wants w.
// It waits on ChangedPast(w-b): no append that does not reach it can bring
// what a read would find to w.
//
// Unlike Changed's, the channel is the caller's own, which the appends
// that do not reach n leave open. The caller calls stop once it no longer
// waits on it, whether or not it was closed, which frees it. It is a
// Wake of one mark: a reader of several partitions waits on one Wake of
// all of them.
func (m Mark) ChangedPast(n int64) (changed <-chan struct{}, stop func()) {
	if m.p == nil || n <= 0 {
		return closedChan, func() {}
	}
	w := new(Wake)
	w.Add(m, n)
	return w.Done(), w.Stop
}

// Append appends data to the partition's log (see Log.Append) and wakes
// the readers waiting for it, also when the wait for the batches' fsync
// then fails or ctx ends during it (the batches are in the log). A
// Reopen under way is waited for, until ctx ends.
//
// Errors: Log.Append's, with ErrLogFenced (wrapping open's error) in place of ErrClosed once a
// Reopen's open failed (see Reopen).
func (p *Partition) Append(ctx context.Context, data []byte, opts AppendOptions) (AppendResult, error) {
	l, err := p.rlock(ctx)
	if err != nil {
		return AppendResult{LogAppendTime: -1}, err
	}
	// Log.Append in its two steps: once the batches are written the
	// high watermark (the log end, unless under SyncAlways) has moved,
	// whatever the wait for their flush then answers (a failed fsync, an
	// ended ctx), and the readers are woken for it.
	res, d, err := l.AppendAsync(ctx, data, opts)
	wrote := err == nil && !res.Duplicate
	if err == nil {
		err = d.Wait(ctx)
	}
	err = p.failed(err)
	// Under SyncAlways the high watermark moves with the fsync, whose
	// OnDurable callback has woken the readers already.
	durable := durableWatermark(l)
	p.runlock(l)
	if wrote && !durable {
		p.grew()
	}
	return res, err
}

// AppendAsync is Append without the wait for the fsync (see
// Log.AppendAsync): the readers are woken by the fsync that makes the
// batches durable, or now when the topic does not wait for one. A Reopen
// under way is waited for, until ctx ends.
//
// Errors: Log.AppendAsync's, with ErrLogFenced (wrapping open's error) in place of ErrClosed once a
// Reopen's open failed (see Reopen).
func (p *Partition) AppendAsync(ctx context.Context, data []byte, opts AppendOptions) (AppendResult, Durability, error) {
	l, err := p.rlock(ctx)
	if err != nil {
		return AppendResult{LogAppendTime: -1}, Durability{}, err
	}
	res, d, err := l.AppendAsync(ctx, data, opts)
	durable := durableWatermark(l)
	err = p.failed(err)
	p.runlock(l)
	if err == nil && !res.Duplicate && !durable {
		p.grew()
	}
	return res, d, err
}

// ReadInto reads whole batches from offset up to upTo or the high
// watermark, whichever is lower (see Log.ReadInto). A reader that reports
// a high watermark with the batches passes the one it reports as upTo, so
// the batches never reach past it (an append between the two calls would
// otherwise add batches the reported watermark does not cover).
//
// A Reopen under way is waited for, until ctx ends; so is the writer
// that overtook the read, when the read must wait for it to look again
// (a compaction's swap that closed the segment read before it listed the
// cleaned one, a truncation: see Log.Read).
//
// Errors: Log.ReadInto's, with ErrLogFenced (wrapping open's error) in place of ErrClosed once a
// Reopen's open failed (see Reopen); ctx's error.
func (p *Partition) ReadInto(ctx context.Context, dst []byte, offset int64, maxBytes int, upTo int64) ([]byte, error) {
	return p.read(ctx, false, dst, offset, maxBytes, upTo)
}

// ReadWithin is ReadInto with Log.ReadWithin: a first batch larger than
// maxBytes is neither read nor returned (nil).
//
// Errors: ReadInto's.
func (p *Partition) ReadWithin(ctx context.Context, dst []byte, offset int64, maxBytes int, upTo int64) ([]byte, error) {
	return p.read(ctx, true, dst, offset, maxBytes, upTo)
}

// read is ReadInto's and ReadWithin's body: Log.ReadInto (Log.ReadWithin
// when within is set) of the log, held open for the call, up to upTo and
// the high watermark. ctx also ends the read's wait for a writer that
// overtook it (see Log.readInto).
func (p *Partition) read(ctx context.Context, within bool, dst []byte, offset int64, maxBytes int, upTo int64) ([]byte, error) {
	l, err := p.rlock(ctx)
	if err != nil {
		return dst, err
	}
	defer p.runlock(l)
	data, err := l.readInto(ctx, dst, offset, maxBytes, min(highWatermark(l), upTo), within)
	return data, p.failed(err)
}

// OffsetForTime is Log.OffsetForTime, with the partition's log held open
// for the call.
//
// A Reopen waits for the call. These are waited for, until ctx ends:
//
//   - a Reopen under way;
//   - the writer that overtook the search, when it must wait for it to
//     search again: a compaction's swap that closed a segment it read
//     before it listed the cleaned one, a truncation.
//
// Its errors are Log.OffsetForTime's, with ErrLogFenced (wrapping open's
// error) in place of ErrClosed once a Reopen's open failed (see Reopen),
// and ctx's error.
func (p *Partition) OffsetForTime(ctx context.Context, ts int64) (offset int64, ok bool, err error) {
	l, err := p.rlock(ctx)
	if err != nil {
		return 0, false, err
	}
	defer p.runlock(l)
	offset, ok, err = l.offsetForTimeContext(ctx, ts)
	return offset, ok, p.failed(err)
}

// OffsetOfMaxTimestamp is Log.OffsetOfMaxTimestampBelow over the records
// a consumer can read: those below upTo or the high watermark, whichever
// is lower (as ReadInto's).
//
// The partition's log is held open for the call: a Reopen waits for it,
// and a Reopen under way is waited for, until ctx ends.
//
// Its errors are Log.OffsetOfMaxTimestampBelow's, with ErrLogFenced
// (wrapping open's error) in place of ErrClosed once a Reopen's open
// failed (see Reopen).
func (p *Partition) OffsetOfMaxTimestamp(ctx context.Context, upTo int64) (offset int64, ok bool, err error) {
	l, err := p.rlock(ctx)
	if err != nil {
		return 0, false, err
	}
	defer p.runlock(l)
	offset, ok, err = l.OffsetOfMaxTimestampBelow(ctx, min(highWatermark(l), upTo))
	return offset, ok, p.failed(err)
}

// DeleteRecordsBefore is Log.DeleteRecordsBefore, for an offset at most
// the partition's high watermark, with the partition's log held open for
// the call.
//
// An offset above the high watermark (records not yet acknowledged, which
// a consumer cannot read yet) is refused with ErrOffsetOutOfRange, as
// Kafka's UnifiedLog.maybeIncrementLogStartOffset refuses it.
//
// A Reopen waits for the call. A Reopen under way is waited for, until ctx
// ends: ctx's error then.
//
// Its errors are the log's, with ErrLogFenced (wrapping open's error) in
// place of ErrClosed once a Reopen's open failed (see Reopen).
func (p *Partition) DeleteRecordsBefore(ctx context.Context, offset int64) (int64, error) {
	return p.DeleteRecordsChecked(ctx, func(Config, int64) (int64, error) { return offset, nil })
}

// DeleteRecordsChecked is DeleteRecordsBefore with a check that runs
// under the same hold of the partition's log: check is given the log's
// configuration and the partition's high watermark, and returns the
// offset to delete records before, or an error, which is returned as it
// is with nothing deleted. A Reopen (with a new configuration, say) comes
// before the check or after the deletion, never between them. An offset
// above that high watermark is refused, as by DeleteRecordsBefore.
//
// Errors: check's; as DeleteRecordsBefore's.
func (p *Partition) DeleteRecordsChecked(ctx context.Context, check func(cfg Config, highWatermark int64) (int64, error)) (int64, error) {
	l, err := p.rlock(ctx)
	if err != nil {
		return 0, err
	}
	defer p.runlock(l)
	hw := highWatermark(l)
	offset, err := check(l.Config(), hw)
	if err != nil {
		return 0, err
	}
	if offset < 0 {
		// The log refuses it too, but cannot name the partition.
		return 0, fmt.Errorf("%w: delete records before %d of %s-%d, a negative offset", ErrOffsetOutOfRange, offset, p.topic, p.id)
	}
	if offset > hw {
		// Read before the deletion, the high watermark can only have
		// risen since, unless a truncation cut the log meanwhile (the
		// log then refuses an offset past its new end).
		return 0, fmt.Errorf("%w: delete records before %d of %s-%d, above the high watermark %d", ErrOffsetOutOfRange, offset, p.topic, p.id, hw)
	}
	low, err := l.DeleteRecordsBefore(ctx, offset)
	return low, p.failed(err)
}

// rlock takes mu shared, for a call into the partition's log, which it
// returns; runlock(log) releases it. A Reopen under way is waited for
// until ctx ends (ctx's error then, mu not taken). The log's lines logged
// meanwhile are handed on once mu is released (see Log.enter), so that a
// Logger's handler that appends to the partition does not wait for mu
// behind a Reopen that waits for this call.
func (p *Partition) rlock(ctx context.Context) (*Log, error) {
	if p.zero() {
		return p.current(), nil // closed, with nothing to hold
	}
	if err := p.mu.RLockContext(ctx); err != nil {
		return nil, err
	}
	l := p.log.Load()
	l.enter()
	return l, nil
}

// runlock releases rlock's mu, then hands on the lines of l (rlock's).
func (p *Partition) runlock(l *Log) {
	if p.zero() {
		return
	}
	p.mu.RUnlock()
	l.leave()
}

// lock is rlock with mu held exclusively (Reopen, RetryReopen, close):
// the lines of closing the log (l) are handed on once mu is released; a
// new log's Open hands on its own as it returns, holding mu. One that
// gives up (ctx ended before mu came free, or ctx panicked in its Done
// or Err) wakes the partition's readers (notify, with nothing held):
// while it waited on mu the partition was Busy, and a long poll that
// went past it waits for a change, which the lock's release would have
// been (TestFetchWokenWhenAQueuedLockGivesUp,
// TestPartitionLockGivenUpWakesReadersWhateverEndsIt).
func (p *Partition) lock(ctx context.Context) (*Log, error) {
	if p.zero() {
		return nil, ErrClosed // no lock to hold, nor log to reopen
	}
	locked := false
	defer func() {
		if !locked {
			p.notify() // also as a panic of ctx's goes on
		}
	}()
	if err := p.mu.LockContext(ctx); err != nil {
		return nil, err
	}
	locked = true
	l := p.log.Load()
	l.enter()
	return l, nil
}

// unlock releases lock's mu, wakes the partition's readers (notify),
// then hands on the lines of l (lock's). Every release wakes them, once
// mu is free: a reader that went past the partition while it was Busy
// waits for it, and one woken before the release could look at Busy,
// find it still held, and wait again for a wake that never came
// (TestRetryReopenFindingNothingToRetryWakesReaders: a RetryReopen that
// found nothing to retry released mu without one).
func (p *Partition) unlock(l *Log) {
	p.mu.Unlock()
	p.notify()
	l.leave()
}

// failed turns the ErrClosed of a log that a Reopen could not open again
// into ErrLogFenced with the reason. The caller holds mu.
func (p *Partition) failed(err error) error {
	if p.reopenErr != nil && errors.Is(err, ErrClosed) {
		return fmt.Errorf("%w: %s-%d could not be reopened: %w", ErrLogFenced, p.topic, p.id, p.reopenErr)
	}
	return err
}

// Reopen closes the partition's log and opens it again through open (with
// a new configuration, say), waiting for appends and reads in flight. A
// partition closed already (by Close or Discard, or made by NewPartition
// with a nil log) is opened through open the same way: its owner, which
// closed it, decides whether it serves again.
//
// If open fails, the partition stays closed: its appends, reads and
// look-ups fail with ErrLogFenced (wrapping open's error) instead of
// ErrClosed, until a later Reopen, or RetryReopen, succeeds, or Close or
// Discard closes the partition (ErrClosed then).
//
// A log that failed is never opened again by Reopen: one fenced by a
// failed write or fsync, and one that a Reopen could not close (its final
// fsync failed, say). Reopen then leaves the partition as it is (answering
// ErrLogFenced) and returns an error matching ErrLogFenced. After a failed
// fsync the kernel may have dropped the pages it could not write while the
// file still reads them back; the next Open of the log (the broker's)
// writes those bytes anew and syncs them (see Open), and until then the
// partition answers ErrLogFenced.
//
// Errors: open's error; the old log's Close error when it fails (the
// partition then answers ErrLogFenced, and no later Reopen opens it); an
// error matching ErrLogFenced for a partition whose log failed before.
func (p *Partition) Reopen(open func() (*Log, error)) error {
	k, err := p.Lock(context.Background()) // a ctx that never ends: no error but a zero Partition's
	if err != nil {
		return err
	}
	defer k.Unlock()
	return k.Reopen(open)
}

// PartitionLock is a partition's lock held exclusively (see
// Partition.Lock): the partition's calls wait for it, as they wait for a
// Reopen, until Unlock. A caller that must change several partitions
// together, or none of them, takes every one's lock first, with its ctx,
// and then does the changes under them (a topic's deletion, a config
// change that reopens its logs). It is not for concurrent use.
type PartitionLock struct {
	p *Partition
	l *Log // the log when the lock was taken, whose lines Unlock hands on
	// held is true until Unlock.
	held bool
}

// Lock holds the partition's lock exclusively, waiting for the appends,
// reads and look-ups in flight (and holding new ones back) until ctx
// ends: ctx's error then, nothing held, and the readers waiting for the
// partition to change woken, as by Unlock (a long poll that went past
// the partition while Lock waited, see Busy, reads it now). An append
// stuck in a write to a disk that hangs holds the lock until the disk
// answers; so does a Reopen in its closing fsync. A lock that is free is
// taken whatever the ctx. The caller releases it with the
// PartitionLock's Unlock.
//
// Errors: ctx's error; ErrClosed for a zero Partition.
func (p *Partition) Lock(ctx context.Context) (*PartitionLock, error) {
	l, err := p.lock(ctx)
	if err != nil {
		return nil, err
	}
	return &PartitionLock{p: p, l: l, held: true}, nil
}

// Unlock releases the partition's lock, and wakes the readers waiting
// for the partition to change (see Changed): a long poll that went past
// the partition while it was held (see Busy) reads it now. A second call
// does nothing.
func (k *PartitionLock) Unlock() {
	if !k.held {
		return
	}
	k.held = false
	k.p.unlock(k.l) // and wakes the readers
}

// Busy reports whether the partition is held exclusively (a Reopen, a
// PartitionLock), or waited for by one: a call into its log now would
// wait for it. It is a look, stale once it returns. A reader of several
// partitions, which would otherwise hold back the others behind this one
// (a config change's reopen, with its closing fsync), may go past it and
// wait on Changed, which the lock's release closes, and so does the
// giving up of a waiter for it (a Lock whose ctx ended).
func (p *Partition) Busy() bool {
	if p.zero() {
		return false
	}
	if !p.mu.TryRLock() {
		return true
	}
	p.mu.RUnlock()
	return false
}

// Log returns the partition's log as it is now: under the lock held, no
// Reopen changes it but the PartitionLock's own.
func (k *PartitionLock) Log() *Log {
	k.mustHold()
	return k.p.log.Load()
}

// Reopen is Partition.Reopen under the lock held: the partition's log is
// closed and opened again through open, without waiting, and the lock
// stays held. The file operations it makes (the old log's closing fsync,
// the new one's recovery) are not cut short.
//
// Errors: as Partition.Reopen's.
func (k *PartitionLock) Reopen(open func() (*Log, error)) error {
	k.mustHold()
	p := k.p
	// The change is counted (notify) as it is made, under the lock: a
	// Mark, which takes no lock, taken before Unlock shows it
	// (TestMarkRewrittenByAReopenUnderTheLock). Unlock notifies again,
	// for the readers that found the partition Busy meanwhile.
	defer p.notify()
	p.retry = nil
	if p.broken == nil {
		p.broken = p.log.Load().fenceErr()
	}
	if err := p.broken; err != nil {
		if !errors.Is(err, ErrLogFenced) {
			err = fmt.Errorf("%w: %w", ErrLogFenced, err)
		}
		return fmt.Errorf("%s-%d failed before, it is not reopened: %w", p.topic, p.id, err)
	}
	if err := p.log.Load().Close(); err != nil {
		p.reopenErr, p.broken = err, err
		return err
	}
	return p.openLocked(open)
}

// RetryReopen calls again the open of the last Reopen if that open failed
// and nothing has replaced or closed the partition since: it reports
// whether it tried, and open's error. The broker's maintenance calls it,
// so that a partition whose reopen met a passing error (no file
// descriptors left, say) serves again without waiting for a restart.
//
// With nothing to retry, it holds nothing up. It takes the partition's
// lock shared to see so, as the partition's calls do. It neither waits
// for their holds nor holds new ones back meanwhile, as a Reopen does: an
// append stuck in its write to a disk that hangs would have held every
// read of the partition back with it, for each maintenance round.
//
// With a retry to make, it waits for the calls in flight, as Reopen does,
// until ctx ends.
//
// Errors: open's error; ctx's error (nothing tried).
func (p *Partition) RetryReopen(ctx context.Context) (tried bool, err error) {
	if p.zero() {
		return false, nil // nothing to retry
	}
	if err := p.mu.RLockContext(ctx); err != nil {
		return false, err
	}
	due := p.retry != nil
	p.mu.RUnlock()
	if !due {
		return false, nil
	}
	l, err := p.lock(ctx)
	if err != nil {
		return false, err
	}
	defer p.unlock(l)
	if p.retry == nil {
		return false, nil // retried, replaced or closed meanwhile
	}
	return true, p.openLocked(p.retry) // unlock wakes the readers
}

// openLocked opens the partition's log with open, after its old log was
// closed (by Reopen, now or before a failed open that RetryReopen tries
// again). The caller holds mu.
//
// The config change that reopens the log is one Kafka makes in place
// (UnifiedLog.updateConfig): segment.ms's wall-clock wait for an active
// segment whose first batch has no timestamp goes on from the segment's
// creation, not from the reopen, and so does that of an older segment
// that a truncation makes active again. So the old log's creation times
// carry over to the same segments, read once that log is closed (it keeps
// its segments), so that nothing — a TruncateTo of a caller of the bare
// Log, emptying the segment — comes between.
func (p *Partition) openLocked(open func() (*Log, error)) error {
	times := p.log.Load().segmentTimes()
	l, err := open()
	if err != nil {
		p.reopenErr, p.retry = err, open
		return err
	}
	l.keepSegmentTimes(times)
	p.watch(l)
	p.log.Store(l)
	p.reopenErr, p.retry = nil, nil
	return nil
}

// Close closes the partition's log and wakes its waiting readers.
//
// Errors: Log.Close's.
func (p *Partition) Close() error { return p.close((*Log).Close) }

// Discard closes the partition's log as Log.Discard does (no flush, for a
// log about to be removed) and wakes its waiting readers.
//
// Errors: Log.Discard's.
func (p *Partition) Discard() error { return p.close((*Log).Discard) }

// Discard is Partition.Discard under the lock held: the partition's log
// is closed without a flush, without waiting, and its waiting readers
// woken; the lock stays held (the partition's calls answer ErrClosed
// once it is released).
//
// Errors: Log.Discard's.
func (k *PartitionLock) Discard() error {
	k.mustHold()
	// The change is counted (notify) as it is made, under the lock, as
	// Reopen's: a Changed channel taken before it is closed by it, not
	// only by Unlock (TestPartitionLockBehindAStuckAppend).
	defer k.p.notify()
	return k.p.closeLocked((*Log).Discard)
}

// Close is Partition.Close under the lock held: the partition's log is
// closed, without waiting, and its waiting readers woken; the lock stays
// held (the partition's calls answer ErrClosed once it is released).
//
// Errors: Log.Close's.
func (k *PartitionLock) Close() error {
	k.mustHold()
	// Under the lock, as Discard's (TestPartitionLockClose).
	defer k.p.notify()
	return k.p.closeLocked((*Log).Close)
}

// mustHold panics unless the lock is held: a change made after Unlock
// would race with the partition's calls.
func (k *PartitionLock) mustHold() {
	if !k.held {
		panic("runnel/log: use of a released PartitionLock")
	}
}

func (p *Partition) close(how func(*Log) error) error {
	k, err := p.Lock(context.Background()) // a ctx that never ends: no error but a zero Partition's
	if err != nil {
		return nil // a zero Partition: closed
	}
	err = p.closeLocked(how)
	k.Unlock() // and wakes the readers
	return err
}

// closeLocked closes the partition's log with how. The caller holds mu
// exclusively.
func (p *Partition) closeLocked(how func(*Log) error) error {
	// Closed by its owner (a deleted topic, the broker's Close), the
	// partition answers ErrClosed as its log does, not the ErrLogFenced
	// of a Reopen whose open failed: a caller tells the two apart.
	p.retry, p.reopenErr = nil, nil
	return how(p.log.Load())
}
