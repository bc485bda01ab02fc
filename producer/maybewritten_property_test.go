package producer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// errAfterAppend is an error a client gives after the broker appended
// the batch: not one the producer knows, so not a refusal.
var errAfterAppend = errors.New("connection lost after the append")

// maybeClient fails a broker's requests at random, before and after the
// append, and holds some past their ctx.
type maybeClient struct {
	*runnel.Broker
	*dice
}

func (c *maybeClient) before(ctx context.Context) error {
	switch c.roll(24) {
	case 0:
		return api.ErrNotLeader
	case 1:
		return api.ErrRequestTimedOut
	case 2:
		return api.ErrPolicyViolation
	case 3:
		return api.ErrStorage
	case 4:
		// Held for a while, maybe past the delivery deadline.
		d := time.Duration(c.roll(40)) * time.Millisecond
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (c *maybeClient) after() error {
	switch c.roll(24) {
	case 0:
		return api.ErrRequestTimedOut
	case 1:
		return errAfterAppend
	case 2:
		return api.ErrBrokerClosed
	case 3:
		return api.ErrNotLeader
	}
	return nil
}

func (c *maybeClient) Partitions(ctx context.Context, topic string) (int, error) {
	if c.roll(8) == 0 {
		return 0, api.ErrRequestTimedOut
	}
	return c.Broker.Partitions(ctx, topic)
}

func (c *maybeClient) InitProducerID(ctx context.Context) (int64, int16, error) {
	if c.roll(4) == 0 {
		return 0, 0, api.ErrRequestTimedOut
	}
	return c.Broker.InitProducerID(ctx)
}

func (c *maybeClient) UnwritablePartitions(ctx context.Context, topic string) ([]int32, error) {
	switch c.roll(6) {
	case 0:
		return nil, api.ErrRequestTimedOut
	case 1:
		return []int32{int32(c.roll(3))}, nil
	}
	return c.Broker.UnwritablePartitions(ctx, topic)
}

func (c *maybeClient) Produce(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	if err := c.before(ctx); err != nil {
		return api.ProduceResponse{}, err
	}
	resp, err := c.Broker.Produce(ctx, req)
	if err != nil {
		return resp, err
	}
	if err := c.after(); err != nil {
		return api.ProduceResponse{}, err
	}
	return resp, nil
}

func (c *maybeClient) ProduceAsync(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, api.Ack, error) {
	if err := c.before(ctx); err != nil {
		return api.ProduceResponse{}, nil, err
	}
	resp, ack, err := c.Broker.ProduceAsync(ctx, req)
	if err != nil {
		return resp, ack, err
	}
	if err := c.after(); err != nil {
		if ack != nil {
			if werr := ack.Wait(ctx); werr != nil {
				return api.ProduceResponse{}, nil, werr
			}
		}
		return api.ProduceResponse{}, nil, err
	}
	if c.roll(24) == 0 {
		return resp, faultAck{inner: ack, err: errAfterAppend}, nil
	}
	return resp, ack, nil
}

// answer is what the producer told of one record.
type answer struct {
	topic string
	calls int
	err   error
	part  int32
	off   int64
}

// TestMayBeWrittenAgainstTheLog produces records through a client that
// fails requests before and after their append, with records whose ctx
// ends, records too large for the topic, keyless records on a compacted
// topic, and a Close in the middle, and checks each record's answer
// against the log: a record answered nil is there at its offset (once,
// when idempotent); one MayBeWritten says false for is not there; one
// that is there was not answered with an error MayBeWritten says false
// for. 6 seeds (1 under -short); RUNNEL_MAYBE_PROP=N runs N,
// RUNNEL_MAYBE_PROP_BASE=S from S (see testkit.Seeds).
func TestMayBeWrittenAgainstTheLog(t *testing.T) {
	testkit.Seeds(t, "RUNNEL_MAYBE_PROP", 6, 1, func(t *testing.T, seed uint64) {
		// A seed's variants run side by side, each its own broker on its
		// own memory FS: most of their time is waits (delivery timeouts,
		// held requests), which t.Parallel would take two at a time.
		var wg sync.WaitGroup
		defer wg.Wait()
		for _, idem := range []bool{true, false} {
			for _, manual := range []bool{false, true} {
				for _, inFlight := range []int{1, 5} {
					for _, ev := range []string{"none", "closebroker", "deletetopic"} {
						name := fmt.Sprintf("idem=%v/manual=%v/inflight=%d/%s", idem, manual, inFlight, ev)
						wg.Go(func() {
							t.Run(name, func(t *testing.T) {
								checkMaybeWritten(t, seed, idem, manual, inFlight, ev)
							})
						})
					}
				}
			}
		}
	})
}

func checkMaybeWritten(t *testing.T, seed uint64, idem, manual bool, inFlight int, ev string) {
	const parts = 3
	fs := vfs.NewMem()
	tcfg := log.TopicConfig{Partitions: parts, Config: log.Config{MaxMessageBytes: 2000}}
	open := func() *runnel.Broker {
		return runneltest.NewBroker(t, runneltest.Config(runnel.Config{FS: fs, Dir: "data"}),
			runneltest.TopicConfig("t", tcfg),
			runneltest.TopicConfig("c", log.TopicConfig{Partitions: parts, Config: log.Config{CleanupPolicy: log.Compact}}))
	}
	b := open()
	d := newDice(seed, uint64(inFlight)*4+map[bool]uint64{true: 2}[idem]+map[bool]uint64{true: 1}[manual])
	c := &maybeClient{Broker: b, dice: d}
	opts := []producer.Opt{producer.MaxInFlight(inFlight), producer.RetryBackoff(time.Millisecond),
		producer.BatchMaxBytes(8000), producer.DeliveryTimeout(time.Duration(30+d.roll(200)) * time.Millisecond)}
	if !idem {
		opts = append(opts, producer.DisableIdempotence())
		switch d.roll(3) {
		case 1:
			opts = append(opts, producer.Acks(api.AcksLeader))
		case 2:
			opts = append(opts, producer.Acks(api.AcksNone))
		}
	}
	if manual {
		opts = append(opts, producer.RecordPartitioner(producer.ManualPartitioner()))
	}
	if d.roll(2) == 0 {
		opts = append(opts, producer.Linger(time.Duration(d.roll(3))*time.Millisecond))
	}
	if d.roll(3) == 0 {
		opts = append(opts, producer.Compression(compression.Snappy), producer.MetadataMaxAge(time.Millisecond))
	}
	p, err := producer.New(c, opts...)
	require.NoError(t, err)

	const goroutines, perG = 3, 150
	outs := make([][]answer, goroutines)
	var mu sync.Mutex
	closeAt, evAt := -1, -1
	if d.roll(3) == 0 {
		closeAt = d.roll(perG)
	}
	if ev != "none" {
		evAt = d.roll(perG)
	}
	var evWG sync.WaitGroup
	event := func() {
		defer evWG.Done()
		switch ev {
		case "closebroker":
			_ = b.Close()
		case "deletetopic":
			if err := b.DeleteTopic(context.Background(), "t"); err != nil {
				t.Errorf("delete: %v", err)
				return
			}
			runneltest.CreateTopic(t, b, "t", tcfg)
		}
	}
	var wg sync.WaitGroup
	for g := range goroutines {
		outs[g] = make([]answer, perG)
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := func(i int) func(*record.Record, error) {
				return func(r *record.Record, err error) {
					mu.Lock()
					defer mu.Unlock()
					o := &outs[g][i]
					o.calls++
					o.err = err
					if err == nil {
						o.part, o.off = r.Partition, r.Offset
					}
				}
			}
			for i := 0; i < perG; {
				if g == 0 && closeAt >= 0 && i >= closeAt {
					closeAt = -1
					go p.Close()
				}
				if g == 1 && evAt >= 0 && i >= evAt {
					evAt = -1
					evWG.Add(1)
					go event()
				}
				n := 1 + d.roll(4)
				var recs []*record.Record
				// Some records' ctx ends at a random moment: before
				// Produce, while buffered, or once sent.
				ctx, cancel := context.Background(), context.CancelFunc(func() {})
				if d.roll(6) == 0 {
					ctx, cancel = context.WithTimeout(ctx, time.Duration(d.roll(3000))*time.Microsecond)
				}
				for k := 0; k < n && i+k < perG; k++ {
					r := &record.Record{Topic: "t", Value: []byte(fmt.Sprintf("%d-%d", g, i+k))}
					r.Key = r.Value
					switch d.roll(30) {
					case 0:
						r.Value = []byte(fmt.Sprintf("%d-%d-%s", g, i+k, strings.Repeat("x", 3000)))
					case 1:
						r.Topic, r.Key = "c", nil
					case 2:
						r.Topic = "c"
					}
					r.Partition = int32(d.roll(parts))
					mu.Lock()
					outs[g][i+k].topic = r.Topic
					mu.Unlock()
					recs = append(recs, r)
				}
				if d.roll(2) == 0 {
					err := p.ProduceSync(ctx, recs...)
					failed := map[*record.Record]*producer.RecordError{}
					for _, re := range producer.RecordErrors(err) {
						failed[re.Record] = re
					}
					for k, r := range recs {
						re := failed[r]
						if re == nil {
							done(i+k)(r, nil)
						} else {
							done(i+k)(r, re)
						}
					}
				} else {
					for k, r := range recs {
						p.Produce(ctx, r, done(i+k))
					}
				}
				i += len(recs)
				defer cancel()
			}
		}()
	}
	wg.Wait()
	_ = p.Flush(context.Background())
	_ = p.Close() // maybe closed already
	evWG.Wait()
	if ev == "closebroker" {
		_ = b.Close()
		b = open()
	}

	type at struct {
		part int32
		off  int64
	}
	inLog := map[string][]at{}
	for _, topic := range []string{"t", "c"} {
		for part := range int32(parts) {
			for _, r := range readRecords(t, b, topic, part) {
				v := string(r.Value)
				if i := strings.Index(v, "-x"); i >= 0 {
					v = v[:i]
				}
				inLog[v] = append(inLog[v], at{part, r.Offset})
			}
		}
	}
	var written, maybe, notWritten int
	for g := range goroutines {
		for i := range perG {
			o := outs[g][i]
			v := fmt.Sprintf("%d-%d", g, i)
			there := inLog[v]
			require.Equal(t, 1, o.calls, "%s: promise calls", v)
			switch {
			case o.err == nil:
				written++
				if ev == "deletetopic" && o.topic == "t" {
					break // maybe deleted with its topic
				}
				require.NotEmpty(t, there, "%s answered nil, not in the log", v)
				if o.off >= 0 {
					require.Contains(t, there, at{o.part, o.off}, "%s answered at %d-%d", v, o.part, o.off)
				}
				if idem {
					require.LessOrEqual(t, len(there), 1, "%s in the log more than once", v)
				} else if o.off >= 0 {
					// Told the offset of the last copy (see DisableIdempotence).
					require.Equal(t, at{o.part, o.off}, there[len(there)-1], "%s answered at %d-%d", v, o.part, o.off)
				}
			case !producer.MayBeWritten(o.err):
				notWritten++
				require.Empty(t, there, "%s in the log at %v, answered %v, which MayBeWritten says false for", v, there, o.err)
			default:
				maybe++
				if idem {
					require.LessOrEqual(t, len(there), 1, "%s in the log more than once: %v", v, o.err)
				}
			}
		}
	}
	t.Logf("%d written, %d maybe, %d not written", written, maybe, notWritten)
}
