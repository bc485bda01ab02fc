package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Timer is the part of *testing.B the workloads use to time only their
// measured part: they stop it first thing, and reset and start it around
// that part.
type Timer interface {
	StartTimer()
	StopTimer()
	ResetTimer()
}

// NoTimer is a Timer that does nothing, for running a workload outside a
// benchmark.
type NoTimer struct{}

// StartTimer does nothing.
func (NoTimer) StartTimer() {}

// StopTimer does nothing.
func (NoTimer) StopTimer() {}

// ResetTimer does nothing.
func (NoTimer) ResetTimer() {}

// DirEnv names the environment variable that sets where Disk cases make
// their directories (default: os.TempDir()).
const DirEnv = "RUNNEL_BENCH_DIR"

// Result is what a workload measured.
type Result struct {
	// Records is the number of records in the timed part.
	Records int64
	// Elapsed is the time of the timed part.
	Elapsed time.Duration
	// Latencies holds, for the latency workload, each record's time from
	// Produce to the consumer, sorted.
	Latencies []time.Duration
	// LogBytes is, for Produce against a LogSizer, the bytes of the
	// topic's log afterwards (0 otherwise), and ValueBytes the value
	// bytes of the records it holds (the untimed first record's too).
	LogBytes, ValueBytes int64
}

// RecordsPerSecond is Records / Elapsed.
func (r Result) RecordsPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Records) / r.Elapsed.Seconds()
}

// LogPerValue is LogBytes / ValueBytes: the compression ratio achieved,
// framing included (about 1.1 for 100-byte records without a codec), or 0
// when LogBytes is unknown.
func (r Result) LogPerValue() float64 {
	if r.LogBytes <= 0 || r.ValueBytes <= 0 {
		return 0
	}
	return float64(r.LogBytes) / float64(r.ValueBytes)
}

// Percentile returns the p-th percentile (0 < p ≤ 100) of Latencies by the
// nearest-rank method, or 0 when there are none.
func (r Result) Percentile(p float64) time.Duration {
	n := len(r.Latencies)
	if n == 0 {
		return 0
	}
	rank := int(p/100*float64(n)+0.999999) - 1
	return r.Latencies[min(max(rank, 0), n-1)]
}

// Value returns size pseudo-random bytes, the same in every run.
func Value(size int) []byte {
	r := rand.New(rand.NewPCG(uint64(size), 7))
	v := make([]byte, size)
	for i := range v {
		v[i] = byte(r.Uint32())
	}
	return v
}

// start opens sys for c, in a fresh directory for Disk. stop closes the
// target and removes the directory.
func start(ctx context.Context, sys System, c Case) (t Target, stop func() error, err error) {
	if err := c.Validate(); err != nil {
		return nil, nil, err
	}
	var dir string
	if c.Store == Disk {
		if dir, err = os.MkdirTemp(os.Getenv(DirEnv), "e2e-"+sys.Name+"-"); err != nil {
			return nil, nil, err
		}
	}
	t, err = sys.Open(ctx, Config{Dir: dir, Sync: c.Sync})
	if err != nil {
		if dir != "" {
			err = errors.Join(err, os.RemoveAll(dir))
		}
		return nil, nil, fmt.Errorf("opening %s: %w", sys.Name, err)
	}
	stop = func() error {
		err := t.Close()
		if dir != "" {
			err = errors.Join(err, os.RemoveAll(dir))
		}
		return err
	}
	return t, stop, nil
}

// startTopic opens sys and creates Topic with c's partitions.
func startTopic(ctx context.Context, sys System, c Case) (Target, func() error, error) {
	t, stop, err := start(ctx, sys, c)
	if err != nil {
		return nil, nil, err
	}
	if err := t.CreateTopic(ctx, Topic, c.Partitions); err != nil {
		return nil, nil, errors.Join(fmt.Errorf("creating the topic: %w", err), stop())
	}
	return t, stop, nil
}

func throughputProducer(t Target, c Case) (Producer, error) {
	return t.NewProducer(ProducerConfig{Acks: c.Acks, Codec: c.Codec, Level: c.Level, Linger: ThroughputLinger, BatchMaxBytes: BatchMaxBytes, MaxBuffered: MaxBuffered, MaxInFlight: MaxInFlight})
}

// produceN produces n records of value and flushes.
func produceN(ctx context.Context, p Producer, value []byte, n int) error {
	return produceFrom(ctx, p, [][]byte{value}, 0, n)
}

// produceFrom produces n records with the values vs[from%len(vs)],
// vs[(from+1)%len(vs)], … and flushes.
func produceFrom(ctx context.Context, p Producer, vs [][]byte, from, n int) error {
	j := from % len(vs)
	for i := range n {
		if err := p.Produce(ctx, Topic, vs[j]); err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		if j++; j == len(vs) {
			j = 0
		}
	}
	return p.Flush(ctx)
}

// fillTopic writes n records of c.Size bytes to Topic with a producer
// configured as Produce's, closes it, and checks that the topic holds
// exactly n records. The i-th record's value is value(i), or Value(c.Size)
// when value is nil.
func fillTopic(ctx context.Context, t Target, c Case, n int, value func(i int) []byte) error {
	p, err := throughputProducer(t, c)
	if err != nil {
		return err
	}
	if value == nil {
		err = produceN(ctx, p, Value(c.Size), n)
	} else {
		for i := range n {
			if err = p.Produce(ctx, Topic, value(i)); err != nil {
				err = fmt.Errorf("record %d: %w", i, err)
				break
			}
		}
		if err == nil {
			err = p.Flush(ctx)
		}
	}
	if err = errors.Join(err, p.Close()); err != nil {
		return fmt.Errorf("filling the topic: %w", err)
	}
	return checkCount(ctx, t, c, int64(n))
}

// seqValues returns n distinct values of size bytes (size ≥ 8), the i-th
// starting with i as a little-endian uint64, as windows of one array of
// n×8+size bytes instead of n values: value i is the numbers i, i+1, …
// (as many as fit, then a part of the next). The values are read-only.
func seqValues(size, n int) func(i int) []byte {
	buf := make([]byte, 8*n+size+8)
	for i := range len(buf) / 8 {
		binary.LittleEndian.PutUint64(buf[8*i:], uint64(i))
	}
	return func(i int) []byte { return buf[8*i : 8*i+size : 8*i+size] }
}

// checkCount fails unless the topic holds want records.
func checkCount(ctx context.Context, t Target, c Case, want int64) error {
	got, err := t.Count(ctx, Topic, c.Partitions)
	if err != nil {
		return fmt.Errorf("counting: %w", err)
	}
	if got != want {
		return fmt.Errorf("%w: the topic holds %d records, want %d", ErrMismatch, got, want)
	}
	return nil
}

// Produce measures one producer sending n records of c.Size bytes
// (asynchronously, then Flush) to a new topic: all alike (Value), or, for
// a case with a codec, the values of TextValues in turn. One record
// produced and flushed first, untimed, sets up the connection and
// producer state. Afterwards it checks that the topic holds all n+1
// records and, if the Target is a LogSizer, sets the Result's LogBytes.
//
// Errors: ErrInvalidCase; ErrMismatch; the system's errors.
func Produce(ctx context.Context, tm Timer, sys System, c Case, n int) (res Result, err error) {
	tm.StopTimer()
	t, stop, err := startTopic(ctx, sys, c)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, stop()) }()
	p, err := throughputProducer(t, c)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, p.Close()) }()
	vs := values(c)
	if err := produceFrom(ctx, p, vs, 0, 1); err != nil {
		return res, fmt.Errorf("warm-up: %w", err)
	}

	tm.ResetTimer()
	tm.StartTimer()
	begin := time.Now()
	err = produceFrom(ctx, p, vs, 1, n)
	res.Elapsed = time.Since(begin)
	tm.StopTimer()
	if err != nil {
		return res, err
	}
	res.Records = int64(n)
	if err := checkCount(ctx, t, c, int64(n)+1); err != nil {
		return res, err
	}
	if ls, ok := t.(LogSizer); ok {
		if res.LogBytes, err = ls.LogBytes(ctx, Topic, c.Partitions); err != nil {
			return res, fmt.Errorf("log bytes: %w", err)
		}
		res.ValueBytes = int64(n+1) * int64(c.Size)
	}
	return res, nil
}

// Consume measures one consumer reading n records of c.Size bytes, from
// the start of a topic that holds exactly them (written untimed by a
// producer as in Produce). The consumer is created untimed; its first
// fetch is timed. It checks that each of the n records arrives once, with
// the right size: every value starts with its record's number, 0 to n-1
// (seqValues; for a case with a codec, the values of TextValues with the
// number in their first 8 bytes).
//
// Errors: ErrInvalidCase; ErrMismatch; the system's errors.
func Consume(ctx context.Context, tm Timer, sys System, c Case, n int) (res Result, err error) {
	tm.StopTimer()
	t, stop, err := startTopic(ctx, sys, c)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, stop()) }()
	value := seqValues(c.Size, n)
	if c.Codec != "" {
		value = seqText(c, n)
	}
	if err := fillTopic(ctx, t, c, n, value); err != nil {
		return res, err
	}
	cons, err := t.NewConsumer(ConsumerConfig{Topic: Topic, Partitions: c.Partitions, MaxWait: FetchMaxWait})
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, cons.Close()) }()

	var got, badSize, again int
	seen := make([]bool, n)
	count := func(v []byte) {
		if len(v) != c.Size {
			badSize++
			return
		}
		if seq := binary.LittleEndian.Uint64(v); seq >= uint64(n) || seen[seq] {
			again++ // read twice, or not one of the n
		} else {
			seen[seq] = true
		}
	}
	tm.ResetTimer()
	tm.StartTimer()
	begin := time.Now()
	for got < n {
		k, err := cons.Poll(ctx, count)
		if err != nil {
			tm.StopTimer()
			return res, fmt.Errorf("after %d of %d records: %w", got, n, err)
		}
		got += k
	}
	res.Elapsed = time.Since(begin)
	tm.StopTimer()
	res.Records = int64(got)
	if got != n || badSize > 0 || again > 0 {
		return res, fmt.Errorf("%w: consumed %d records (want %d), %d of the wrong size, %d read twice or unknown", ErrMismatch, got, n, badSize, again)
	}
	return res, nil
}

// Latency measures the time from Produce to the consumer for n records
// sent at rate records per second (one every 1/rate, on a fixed
// schedule) by a producer with linger 0, with a consumer long-polling in
// another goroutine. Each value starts with the send time. One record
// sent and received first, untimed, sets up both sides.
//
// Errors: ErrInvalidCase; ErrMismatch (a record lost, duplicated or
// corrupted); the system's errors.
func Latency(ctx context.Context, tm Timer, sys System, c Case, n int, rate float64) (res Result, err error) {
	tm.StopTimer()
	if rate <= 0 {
		return res, fmt.Errorf("%w: rate %v", ErrInvalidCase, rate)
	}
	t, stop, err := startTopic(ctx, sys, c)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, stop()) }()
	p, err := t.NewProducer(ProducerConfig{Acks: c.Acks, Codec: c.Codec, Level: c.Level, Linger: 0, BatchMaxBytes: BatchMaxBytes, MaxBuffered: MaxBuffered, MaxInFlight: MaxInFlight})
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, p.Close()) }()
	cons, err := t.NewConsumer(ConsumerConfig{Topic: Topic, Partitions: c.Partitions, MaxWait: FetchMaxWait})
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, cons.Close()) }()

	// Values, written before the clock starts; each is stamped just
	// before its Produce and not touched again.
	pad := values(c)[0]
	values := make([][]byte, n+1)
	for i := range values {
		values[i] = slices.Clone(pad)
		binary.LittleEndian.PutUint64(values[i][8:], uint64(i)) // after the time
	}
	base := time.Now()
	stamp := func(v []byte) { binary.LittleEndian.PutUint64(v, uint64(time.Since(base))) }

	// The consumer goroutine: it records each record's latency and
	// sequence number, and stops after n+1 records or when cctx ends.
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lat := make([]time.Duration, 0, n+1)
	var (
		received atomic.Int64
		seen     = make([]bool, n+1)
		dups     int
		pollErr  error
		wg       sync.WaitGroup
	)
	first := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		onValue := func(v []byte) {
			lat = append(lat, time.Since(base)-time.Duration(binary.LittleEndian.Uint64(v)))
			if len(v) >= 16 {
				if seq := binary.LittleEndian.Uint64(v[8:]); seq < uint64(len(seen)) {
					if seen[seq] {
						dups++
					}
					seen[seq] = true
				}
			}
			if received.Add(1) == 1 {
				close(first)
			}
		}
		for received.Load() < int64(n+1) {
			if _, err := cons.Poll(cctx, onValue); err != nil {
				if cctx.Err() == nil {
					pollErr = err
				}
				return
			}
		}
	}()
	wait := func(ch <-chan struct{}) error {
		select {
		case <-ch:
			return nil
		case <-time.After(30 * time.Second):
			return fmt.Errorf("%w: %d records of %d arrived in 30 s", ErrMismatch, received.Load(), n+1)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	finish := func() error {
		cancel()
		wg.Wait()
		return pollErr
	}

	stamp(values[0])
	if err := p.Produce(ctx, Topic, values[0]); err != nil {
		return res, errors.Join(err, finish())
	}
	if err := wait(first); err != nil {
		return res, errors.Join(fmt.Errorf("warm-up: %w", err), finish())
	}

	tm.ResetTimer()
	tm.StartTimer()
	sched := newSchedule(rate)
	for i := 1; i <= n; i++ {
		sched.wait(i - 1)
		stamp(values[i])
		if err := p.Produce(ctx, Topic, values[i]); err != nil {
			tm.StopTimer()
			return res, errors.Join(fmt.Errorf("record %d: %w", i, err), finish())
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	waitErr := wait(done)
	res.Elapsed = time.Since(sched.begin)
	tm.StopTimer()
	err = errors.Join(waitErr, finish(), p.Flush(ctx))
	if err != nil {
		return res, err
	}
	missing := 0
	for _, ok := range seen {
		if !ok {
			missing++
		}
	}
	if dups > 0 || missing > 0 {
		return res, fmt.Errorf("%w: %d records missing, %d duplicated", ErrMismatch, missing, dups)
	}
	res.Records = int64(n)
	res.Latencies = slices.Sorted(slices.Values(lat[1:])) // without the warm-up
	return res, nil
}

// GroupCommit measures producers concurrent producers sending n records
// of c.Size bytes between them (each its share, then Flush) to one topic,
// with c.Sync deciding whether each batch is fsynced before it is
// acknowledged: with group commit, concurrent batches share one fsync.
// Each producer first sends one record untimed. Afterwards it checks that
// the topic holds every record.
//
// Errors: ErrInvalidCase; ErrMismatch; the system's errors.
func GroupCommit(ctx context.Context, tm Timer, sys System, c Case, producers, n int) (res Result, err error) {
	tm.StopTimer()
	if producers < 1 {
		return res, fmt.Errorf("%w: %d producers", ErrInvalidCase, producers)
	}
	t, stop, err := startTopic(ctx, sys, c)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, stop()) }()
	vs := values(c)
	ps := make([]Producer, producers)
	defer func() {
		for _, p := range ps {
			if p != nil {
				err = errors.Join(err, p.Close())
			}
		}
	}()
	for i := range ps {
		if ps[i], err = throughputProducer(t, c); err != nil {
			return res, err
		}
		if err := produceFrom(ctx, ps[i], vs, 0, 1); err != nil {
			return res, fmt.Errorf("warm-up: %w", err)
		}
	}

	errs := make([]error, producers)
	var wg sync.WaitGroup
	tm.ResetTimer()
	tm.StartTimer()
	begin := time.Now()
	for i, p := range ps {
		share := n / producers
		if i < n%producers {
			share++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = produceFrom(ctx, p, vs, i*len(vs)/producers, share)
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(begin)
	tm.StopTimer()
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	res.Records = int64(n)
	return res, checkCount(ctx, t, c, int64(n+producers))
}

// schedule paces a workload at a fixed rate: the i-th send is due
// i/rate after the schedule began, whenever the ones before it ended.
type schedule struct {
	begin    time.Time
	interval time.Duration
}

// newSchedule starts a schedule of rate sends per second now.
func newSchedule(rate float64) schedule {
	return schedule{begin: time.Now(), interval: time.Duration(float64(time.Second) / rate)}
}

// wait sleeps until the i-th send (from 0) is due.
func (s schedule) wait(i int) {
	if d := time.Until(s.begin.Add(time.Duration(i) * s.interval)); d > 0 {
		time.Sleep(d)
	}
}
