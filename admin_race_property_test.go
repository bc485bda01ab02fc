package runnel_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"go.uber.org/goleak"
)

// TestAdminRacesDataPath runs DeleteTopic, CreateTopic (of the
// same name, with another partition count), CreatePartitions and
// UpdateTopicConfig (max.message.bytes, cleanup.policy,
// message.timestamp.type, retention.bytes, segment.bytes) on a topic
// while producers write to it — idempotent with a linger, idempotent with
// five requests in flight, without idempotence, by Produce and
// ProduceSync — and consumers long-poll it (FetchMaxWait of an hour,
// FetchMinBytes above what ever comes), with the broker auto-creating
// topics, and closes the broker at a random moment among the admin calls,
// in memory and on disk. It checks:
//
//   - every record's outcome is nil or a typed error (one with a Kafka
//     code, or one of the producer's);
//   - no Poll waits for its ctx: a deletion wakes the long polls;
//   - every consumer's partition error is a typed one;
//   - no goroutine is left once producers, consumers and broker are
//     closed;
//   - on disk, the next Open finds a directory for each partition of
//     each topic it has, and none other.
//
// Two seeds in memory and two on disk (-short: one of each).
func TestAdminRacesDataPath(t *testing.T) {
	seeds := uint64(2)
	if testing.Short() {
		seeds = 1
	}
	for _, disk := range []bool{false, true} {
		for seed := range seeds {
			t.Run(fmt.Sprintf("disk=%v/seed=%d", disk, seed), func(t *testing.T) { runAdminRace(t, disk, seed) })
		}
	}
}

// adminRaceTyped reports whether err is nil or an error a caller can tell by
// errors.Is: one with a Kafka error code, or one of the producer's.
func adminRaceTyped(err error) bool {
	if err == nil || api.Code(err) > 0 {
		return true
	}
	for _, e := range []error{producer.ErrClosed, producer.ErrDeliveryTimeout, producer.ErrMaybeWritten, producer.ErrInvalidPartition} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func runAdminRace(t *testing.T, disk bool, seed uint64) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 0x33a))
	cfg := runnel.Config{AutoCreateTopics: true, DefaultPartitions: 2, MaintenanceInterval: 5 * time.Millisecond}
	if disk {
		cfg.Dir = testkit.FastTempDir(t) // its fsyncs, on a disk, were most of its time
	}
	b, err := runnel.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		untyped []error
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		prods   []*producer.Producer
	)
	note := func(err error) {
		if !adminRaceTyped(err) {
			mu.Lock()
			untyped = append(untyped, err)
			mu.Unlock()
		}
	}
	for i, opts := range [][]producer.Opt{
		{producer.Linger(2 * time.Millisecond)},
		{producer.MaxInFlight(5), producer.Linger(time.Millisecond), producer.RecordPartitioner(producer.RoundRobinPartitioner())},
		{producer.DisableIdempotence()},
	} {
		opts = append(opts, producer.RetryBackoff(time.Millisecond), producer.MetadataMaxAge(5*time.Millisecond))
		p, err := producer.New(b, opts...)
		if err != nil {
			t.Fatal(err)
		}
		prods = append(prods, p)
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				r := &record.Record{Topic: "t", Key: []byte(fmt.Sprint(n % 7)), Value: fmt.Appendf(nil, "p%d-%d", i, n)}
				if n%3 == 0 {
					note(p.ProduceSync(ctx, r))
				} else {
					p.Produce(ctx, r, func(_ *record.Record, err error) { note(err) })
				}
				if n%64 == 0 {
					time.Sleep(100 * time.Microsecond)
				}
			}
		})
	}
	var hung []string
	for range 2 {
		c, err := consumer.New(b, consumer.FetchMaxWait(time.Hour), consumer.FetchMinBytes(1<<30), consumer.RetryBackoff(time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		for p := range int32(2) {
			if err := c.Assign("t", p, consumer.Start()); err != nil {
				t.Fatal(err)
			}
		}
		wg.Go(func() {
			defer c.Close()
			for {
				select {
				case <-stop:
					return
				default:
				}
				// A hang guard: a deletion, an append or Close ends the wait.
				pctx, cancel := context.WithTimeout(ctx, time.Minute)
				fs, err := c.Poll(pctx)
				timedOut := pctx.Err() != nil
				cancel()
				mu.Lock()
				if timedOut {
					hung = append(hung, fmt.Sprint(err))
				}
				for _, f := range fs {
					if !adminRaceTyped(f.Err) {
						untyped = append(untyped, f.Err)
					}
				}
				mu.Unlock()
				if errors.Is(err, runnel.ErrClosed) {
					<-stop
					return
				}
			}
		})
	}
	calls := 100 + rng.IntN(100) // the broker closes in the second half
	if !disk {
		calls *= 10 // in memory the calls are quick
	}
	closeAt := calls/2 + rng.IntN(calls/2)
	for i := range calls {
		if i == closeAt {
			go b.Close()
		}
		var err error
		switch rng.IntN(5) {
		case 0:
			err = b.DeleteTopic(ctx, "t")
		case 1:
			err = b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1 + rng.IntN(3)})
		case 2:
			info, derr := b.DescribeTopic(ctx, "t")
			if err = derr; err == nil {
				err = b.CreatePartitions(ctx, "t", len(info.Partitions)+1)
			}
		case 3:
			err = b.UpdateTopicConfig(ctx, "t", func(c *log.Config) {
				c.MaxMessageBytes = []int{0, 100}[rng.IntN(2)]
				c.CleanupPolicy = []log.CleanupPolicy{0, log.Compact, log.Delete | log.Compact}[rng.IntN(3)]
				c.TimestampType = []log.TimestampType{0, log.LogAppendTime}[rng.IntN(2)]
				c.RetentionBytes = []int64{0, 100}[rng.IntN(2)]
				c.SegmentBytes = []int64{0, 1024}[rng.IntN(2)]
			})
		case 4:
			time.Sleep(time.Millisecond)
		}
		if !adminRaceTyped(err) {
			t.Errorf("admin call %d: %v", i, err)
		}
	}
	b.Close()
	close(stop)
	wg.Wait()
	for _, p := range prods {
		p.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	for _, err := range untyped {
		t.Errorf("untyped error: %v", err)
	}
	for _, err := range hung {
		t.Errorf("a Poll waited for its ctx: %v", err)
	}
	if !disk {
		return
	}
	b, err = runnel.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	want := map[string]bool{}
	for _, name := range b.Topics() {
		info, err := b.DescribeTopic(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		for i := range info.Partitions {
			want[fmt.Sprintf("%s-%d", name, i)] = true
		}
	}
	ents, err := os.ReadDir(cfg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() && e.Name() != "topics" {
			if !want[e.Name()] {
				t.Errorf("a directory no partition has: %s (topics %v)", e.Name(), b.Topics())
			}
			delete(want, e.Name())
		}
	}
	if len(want) > 0 {
		t.Errorf("partitions without a directory: %v", want)
	}
}
