package producer_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"pgregory.net/rapid"
)

// TestCloseConcurrentProperty: goroutines call Produce, TryProduce,
// ProduceSync and Flush, with contexts that end or not, while another
// closes the producer at a random moment, through a client that fails
// requests before and after their append (faultClient). Whatever the
// interleaving: every promise runs exactly once, and ProduceSync returns;
// each goroutine's promises on a partition run in its produce order; a
// record acknowledged is in the log at its offset; one that failed with
// its ctx's error is not in the log; no record is in the log twice; a
// promise gets only the errors its call may give; the buffer is empty
// afterwards, and every call after Close fails with ErrClosed.
func TestCloseConcurrentProperty(t *testing.T) {
	checks := math.MaxInt // -rapid.checks (default 100)
	if testing.Short() {
		checks = 15
	}
	n := 0
	rapid.Check(t, func(rt *rapid.T) {
		if n++; n > checks {
			return // under -short: the first few cases only
		}
		closeConcurrentCase(rt)
	})
}

// propRec is one produced record and what became of it.
type propRec struct {
	g, i     int
	call     string // produce, try, sync
	cancelly bool   // its ctx may end (cancel or a past deadline)
	calls    atomic.Int32
	err      error
	part     int32
	off      int64
}

func closeConcurrentCase(rt *rapid.T) {
	const parts = 3
	seed := rapid.Uint64().Draw(rt, "seed")
	inFlight := rapid.IntRange(1, 5).Draw(rt, "maxInFlight")
	linger := time.Duration(rapid.SampledFrom([]int{0, 0, 200, 2000}).Draw(rt, "lingerMicros")) * time.Microsecond
	maxRecs := rapid.SampledFrom([]int{4, 50, 10000}).Draw(rt, "maxBufferedRecords")
	sync0 := rapid.Bool().Draw(rt, "syncAlways")
	goroutines := rapid.IntRange(1, 4).Draw(rt, "goroutines")
	ops := rapid.IntRange(1, 40).Draw(rt, "ops")
	closeAfter := rapid.IntRange(0, goroutines*ops).Draw(rt, "closeAfterOps")

	cfg := runnel.Config{TopicDefaults: log.Config{Sync: log.SyncNever}}
	if sync0 {
		cfg.TopicDefaults.Sync = log.SyncAlways
	}
	b, err := runnel.Open(cfg)
	if err != nil {
		rt.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	if err := b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: parts}); err != nil {
		rt.Fatal(err)
	}
	c := &faultClient{Broker: b, dice: newDice(seed, 1)}
	p, err := producer.New(c, producer.DefaultTopic("t"), producer.MaxInFlight(inFlight),
		producer.Linger(linger), producer.MaxBufferedRecords(maxRecs),
		producer.RetryBackoff(50*time.Microsecond), producer.BatchMaxBytes(300))
	if err != nil {
		rt.Fatal(err)
	}

	// Each goroutine's plan is drawn up front (rapid draws on one goroutine).
	type op struct {
		kind   int // 0 produce, 1 try, 2 sync of n, 3 flush
		n      int
		ctxEnd int // 0 background, 1 cancelled later, 2 already done
	}
	plans := make([][]op, goroutines)
	for g := range plans {
		plans[g] = make([]op, ops)
		for k := range plans[g] {
			plans[g][k] = op{
				kind:   rapid.IntRange(0, 3).Draw(rt, "kind"),
				n:      rapid.IntRange(1, 4).Draw(rt, "n"),
				ctxEnd: rapid.SampledFrom([]int{0, 0, 0, 1, 2}).Draw(rt, "ctxEnd"),
			}
		}
	}

	var (
		mu       sync.Mutex
		problems []string
		all      []*propRec
		lastSeen = map[[2]int]int{}
		opsDone  atomic.Int64
		closed   = make(chan struct{})
		idx      atomic.Int64
	)
	problem := func(format string, args ...any) {
		mu.Lock()
		problems = append(problems, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	newRec := func(g int, call string, cancelly bool) (*propRec, *record.Record, func(*record.Record, error)) {
		pr := &propRec{g: g, i: int(idx.Add(1)), call: call, cancelly: cancelly}
		mu.Lock()
		all = append(all, pr)
		mu.Unlock()
		r := &record.Record{Key: []byte(fmt.Sprintf("k%d", pr.i%5)), Value: []byte(fmt.Sprintf("%d-%d", g, pr.i))}
		return pr, r, func(r *record.Record, err error) {
			if pr.calls.Add(1) != 1 {
				problem("promise of %d-%d ran again (%v)", g, pr.i, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			pr.err, pr.part, pr.off = err, r.Partition, r.Offset
			if err == nil {
				k := [2]int{g, int(r.Partition)}
				if last, ok := lastSeen[k]; ok && last >= pr.i {
					problems = append(problems, fmt.Sprintf("%d-%d acknowledged after %d-%d", g, pr.i, g, last))
				}
				lastSeen[k] = pr.i
			}
		}
	}
	step := func() {
		if opsDone.Add(1) == int64(closeAfter) {
			close(closed)
		}
	}
	if closeAfter == 0 {
		close(closed)
	}
	var wg sync.WaitGroup
	var cancels []context.CancelFunc
	var cancelMu sync.Mutex
	for g, plan := range plans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, o := range plan {
				rctx := context.Background()
				switch o.ctxEnd {
				case 1:
					c, cancel := context.WithCancel(context.Background())
					cancelMu.Lock()
					cancels = append(cancels, cancel)
					cancelMu.Unlock()
					rctx = c
				case 2:
					c, cancel := context.WithCancel(context.Background())
					cancel()
					rctx = c
				}
				switch o.kind {
				case 0, 1:
					name := map[int]string{0: "produce", 1: "try"}[o.kind]
					_, r, promise := newRec(g, name, o.ctxEnd != 0)
					if o.kind == 0 {
						p.Produce(rctx, r, promise)
					} else {
						p.TryProduce(rctx, r, promise)
					}
				case 2:
					rs := make([]*record.Record, o.n)
					prs := make([]*propRec, o.n)
					promises := make([]func(*record.Record, error), o.n)
					for k := range rs {
						prs[k], rs[k], promises[k] = newRec(g, "sync", o.ctxEnd != 0)
					}
					err := p.ProduceSync(rctx, rs...)
					// ProduceSync has returned: every record's outcome is
					// known; the promises record it for the checks.
					failed := map[*record.Record]error{}
					for _, e := range unjoin(err) {
						var re *producer.RecordError
						if !errors.As(e, &re) {
							problem("ProduceSync: %v is not a *RecordError", e)
							continue
						}
						failed[re.Record] = re.Err
					}
					for k, r := range rs {
						promises[k](r, failed[r])
					}
				case 3:
					fctx, cancel := context.WithTimeout(context.Background(), time.Duration(o.n)*time.Millisecond)
					err := p.Flush(fctx)
					cancel()
					if err != nil && !errors.Is(err, producer.ErrClosed) && !errors.Is(err, context.DeadlineExceeded) {
						problem("Flush: %v", err)
					}
				}
				step()
			}
		}()
	}
	// Some record ctxs end while their records are buffered.
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(time.Duration(seed%500) * time.Microsecond)
		cancelMu.Lock()
		for _, cancel := range cancels {
			cancel()
		}
		cancelMu.Unlock()
	}()
	closeDone := make(chan struct{})
	go func() {
		defer close(closeDone)
		<-closed
		if err := p.Close(); err != nil {
			problem("Close: %v", err)
		}
	}()
	wg.Wait()
	if closeAfter > goroutines*ops || closeAfter == 0 {
		// closed already, or never by the ops: close now.
		select {
		case <-closed:
		default:
			close(closed)
		}
	}
	<-closeDone
	cancelMu.Lock()
	for _, cancel := range cancels {
		cancel()
	}
	cancelMu.Unlock()

	// Every call after Close fails with ErrClosed.
	if err := p.Flush(context.Background()); !errors.Is(err, producer.ErrClosed) {
		problem("Flush after Close: %v", err)
	}
	if err := p.ProduceSync(context.Background(), &record.Record{Value: []byte("late")}); !errors.Is(err, producer.ErrClosed) {
		problem("ProduceSync after Close: %v", err)
	}
	if n := p.BufferedRecords(); n != 0 {
		problem("%d records still buffered after Close", n)
	}
	if n := p.BufferedBytes(); n != 0 {
		problem("%d bytes still buffered after Close", n)
	}

	inLog := map[string][2]int64{}
	for part := range int32(parts) {
		for _, r := range readAllRecords(rt, b, "t", part) {
			v := string(r.Value)
			if _, dup := inLog[v]; dup {
				problem("%s twice in the log", v)
			}
			inLog[v] = [2]int64{int64(part), r.Offset}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, pr := range all {
		v := fmt.Sprintf("%d-%d", pr.g, pr.i)
		if n := pr.calls.Load(); n != 1 {
			problems = append(problems, fmt.Sprintf("%s: promise ran %d times", v, n))
			continue
		}
		at, there := inLog[v]
		err := pr.err
		switch {
		case err == nil:
			if !there || at != [2]int64{int64(pr.part), pr.off} {
				problems = append(problems, fmt.Sprintf("%s acknowledged at %d/%d, in the log: %v at %v", v, pr.part, pr.off, there, at))
			}
		case errors.Is(err, context.Canceled):
			if !pr.cancelly {
				problems = append(problems, fmt.Sprintf("%s: ctx error %v for a record whose ctx never ends", v, err))
			}
			if there {
				problems = append(problems, fmt.Sprintf("%s failed with its ctx's error, yet is in the log", v))
			}
		case errors.Is(err, producer.ErrClosed), errors.Is(err, errAckLost):
		case errors.Is(err, producer.ErrMaxBuffered):
			if pr.call != "try" {
				problems = append(problems, fmt.Sprintf("%s (%s): %v", v, pr.call, err))
			}
		default:
			problems = append(problems, fmt.Sprintf("%s (%s): unexpected error %v", v, pr.call, err))
		}
	}
	if len(problems) > 0 {
		rt.Fatalf("%d problems, the first: %v", len(problems), problems[:min(len(problems), 10)])
	}
}

// unjoin returns the errors joined in err (ProduceSync's).
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// readAllRecords is readRecords for a rapid.T, up to the log end (a
// closed producer's last batches may still wait for an fsync, which the
// broker runs on its own).
func readAllRecords(rt *rapid.T, b *runnel.Broker, topic string, partition int32) []*record.Record {
	var out []*record.Record
	ctx, cancel := context.WithTimeout(context.Background(), testkit.HangGuard)
	defer cancel()
	for off := int64(0); ; {
		resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: topic, Partition: partition, Offset: off}}})
		if err != nil {
			rt.Fatal(err)
		}
		fp := resp.Partitions[0]
		if fp.Err != nil {
			rt.Fatal(fp.Err)
		}
		if len(fp.Records) == 0 {
			return out
		}
		for batch, err := range record.Batches(fp.Records) {
			if err != nil {
				rt.Fatal(err)
			}
			if batch.NextOffset() <= off {
				continue
			}
			for r, err := range batch.Records() {
				if err != nil {
					rt.Fatal(err)
				}
				if r.Offset >= off {
					out = append(out, r)
				}
			}
			off = batch.NextOffset()
		}
	}
}
