package producer

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
)

// checkingClient checks every batch it is sent (CRC, and each record's
// value is its key repeated) and refuses some at random: retriable
// refusals (retried byte for byte), and ErrRecordTooLarge for batches of
// several records (split). It fails the test on a batch whose bytes are
// not what the producer meant to send: corrupt, larger than
// BatchMaxBytes, with records out of order or sequence numbers that do
// not follow the last accepted batch's.
type checkingClient struct {
	t     *testing.T
	parts int
	codec compression.Codec
	max   int // BatchMaxBytes

	mu   sync.Mutex
	rnd  *rand.Rand
	next []int64          // next offset, per partition
	seq  []int32          // next sequence number, per partition
	last []map[string]int // per partition: the last record index taken of each producing goroutine
}

func (c *checkingClient) Partitions(context.Context, string) (int, error) { return c.parts, nil }
func (c *checkingClient) InitProducerID(context.Context) (int64, int16, error) {
	return 7, 0, nil
}

func (c *checkingClient) Produce(_ context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	b := record.Batch(req.Batches)
	if err := b.Validate(0); err != nil {
		c.t.Errorf("partition %d: invalid batch: %v", req.Partition, err)
		return api.ProduceResponse{}, api.ErrInvalidRequest
	}
	if c.codec == compression.None && len(b) > c.max {
		c.t.Errorf("partition %d: a batch of %d bytes, more than BatchMaxBytes %d", req.Partition, len(b), c.max)
	}
	n := 0
	var keys [][]byte
	for r, err := range b.Records() {
		if err != nil {
			c.t.Errorf("partition %d: %v", req.Partition, err)
			return api.ProduceResponse{}, api.ErrInvalidRequest
		}
		if want := bytes.Repeat(r.Key, 5); !bytes.Equal(r.Value, want) {
			c.t.Errorf("partition %d: record %q has value %q", req.Partition, r.Key, r.Value)
		}
		keys = append(keys, r.Key)
		n++
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch x := c.rnd.IntN(10); {
	case x == 0:
		return api.ProduceResponse{}, api.ErrNotEnoughReplicas
	case x == 1 && n > 1:
		return api.ProduceResponse{}, ErrRecordTooLarge
	}
	if got, want := b.BaseSequence(), c.seq[req.Partition]; got != want {
		c.t.Errorf("partition %d: base sequence %d, want %d", req.Partition, got, want)
	}
	c.seq[req.Partition] += int32(n)
	for _, k := range keys { // each goroutine's records in the order produced
		var g, i int
		fmt.Sscanf(string(k), "g%d-%d", &g, &i)
		last := c.last[req.Partition]
		if prev, ok := last[fmt.Sprint(g)]; ok && i <= prev {
			c.t.Errorf("partition %d: record %s after record %d of its goroutine", req.Partition, k, prev)
		}
		last[fmt.Sprint(g)] = i
	}
	base := c.next[req.Partition]
	c.next[req.Partition] += int64(n)
	return api.ProduceResponse{BaseOffset: base, LogAppendTime: -1}, nil
}

// TestStressEncodeAtSeal produces from several goroutines to a few
// partitions whose goroutines come and go (idleKeep of a millisecond:
// builders move between partitions through the pool) while the client
// refuses batches (retries, splits), and checks that every batch sent
// encodes the records produced, and that every record is delivered.
func TestStressEncodeAtSeal(t *testing.T) {
	for _, codec := range []compression.Codec{compression.None, compression.Snappy} {
		t.Run(fmt.Sprint(codec), func(t *testing.T) {
			c := &checkingClient{t: t, parts: 3, codec: codec, max: 2000, rnd: rand.New(rand.NewPCG(1, 2)),
				next: make([]int64, 3), seq: make([]int32, 3), last: make([]map[string]int, 3)}
			for i := range c.last {
				c.last[i] = map[string]int{}
			}
			p, err := New(c, DefaultTopic("t"), Linger(0), BatchMaxBytes(2000), RetryBackoff(time.Microsecond),
				Compression(codec), MaxBufferedBytes(20_000))
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			p.idleKeep.Store(int64(time.Millisecond))
			ctx := context.Background()
			const producers, each = 4, 300
			var wg sync.WaitGroup
			errs := make(chan error, producers*each)
			for g := range producers {
				wg.Go(func() {
					for i := range each {
						key := []byte(fmt.Sprintf("g%d-%d", g, i))
						r := &record.Record{Key: key, Value: bytes.Repeat(key, 5)}
						if i%7 == 0 {
							r.Timestamp = time.Now().Add(time.Duration(i%3-1) * time.Hour)
						}
						p.Produce(ctx, r, func(_ *record.Record, err error) {
							if err != nil {
								errs <- err
							}
						})
						if i%50 == 0 {
							time.Sleep(2 * time.Millisecond) // let goroutines idle out
						}
					}
				})
			}
			wg.Wait()
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			var total int64
			c.mu.Lock()
			for _, n := range c.next {
				total += n
			}
			c.mu.Unlock()
			if total != producers*each {
				t.Fatalf("%d records delivered, want %d", total, producers*each)
			}
		})
	}
}
