package producer_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// A batch the broker appended and whose answer was lost, then refused
// for good on its retry (an error that is not retriable: one ProduceSync
// calls a refusal, which alone means "not written"), is in the log: its
// records' error must say that they may have been written
// (ErrMaybeWritten), beside the refusal. Records buffered behind it that
// fail with it (ErrProducerFenced fails the partition's) were never sent,
// and their error says nothing of the kind. Found by TestFaultsProperty
// (runneltest), seed 38.
func TestRefusedAfterMaybeAppended(t *testing.T) {
	paths := []struct {
		name string
		opts []producer.Opt
	}{
		{"ProduceAsync", nil},
		{"Produce", []producer.Opt{producer.MaxInFlight(1)}},
	}
	refusals := []error{api.ErrPolicyViolation, api.ErrInvalidRequest, producer.ErrRecordTooLarge,
		producer.ErrProducerFenced, api.ErrUnknownProducerID}
	for _, path := range paths {
		for _, refusal := range refusals {
			t.Run(fmt.Sprintf("%s/%s", path.name, api.Name(refusal)), func(t *testing.T) {
				b := newBroker(t, runneltest.Topic("t", 1))
				f := runneltest.NewFaults(t, b)
				// The first batch's first attempt is appended and its
				// answer lost; its retry waits, while a second record is
				// buffered behind it, and is refused.
				lost := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.LoseResponse, Err: api.ErrRequestTimedOut, Count: 1})
				retrying, buffered := make(chan struct{}), make(chan struct{})
				ctx := testCtx(t)
				refused := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: refusal, Count: 1, Match: func(runneltest.Request) bool {
					close(retrying)
					select {
					case <-buffered:
					case <-ctx.Done():
					}
					return true
				}})
				p := newProducer(t, f, append(path.opts, producer.DefaultTopic("t"), producer.RetryBackoff(time.Millisecond))...)

				firstErr, secondErr := make(chan error, 1), make(chan error, 1)
				p.Produce(ctx, &record.Record{Value: []byte("first")}, func(_ *record.Record, err error) { firstErr <- err })
				select {
				case <-retrying:
				case <-ctx.Done():
					t.Fatal("the retry never came")
				}
				p.Produce(ctx, &record.Record{Value: []byte("second")}, func(_ *record.Record, err error) { secondErr <- err })
				close(buffered)

				err := <-firstErr
				require.ErrorIs(t, err, refusal)
				require.ErrorIs(t, err, producer.ErrMaybeWritten, "the first attempt was appended: %v", err)
				require.Equal(t, 1, lost.Hits())
				require.Equal(t, 1, refused.Hits())

				err = <-secondErr
				got := values(runneltest.ConsumeAll(t, b, "t"))
				if errors.Is(refusal, producer.ErrProducerFenced) {
					require.ErrorIs(t, err, producer.ErrProducerFenced, "failed with the partition's records")
					require.NotErrorIs(t, err, producer.ErrMaybeWritten, "never sent")
					require.Equal(t, []string{"first"}, got)
					return
				}
				require.NoError(t, err)
				require.Equal(t, []string{"first", "second"}, got, "once each")
			})
		}
	}
}

// A batch refused at its first attempt (an error of Kafka's that comes
// before the append and is not retriable) was never written: its error
// must not say it may have been, and the producer keeps its id, which it
// would give up for a batch it is unsure of. api.ErrPolicyViolation was
// missing from the refusals the producer knows. So was Kafka's
// INVALID_TIMESTAMP (a timestamp outside message.timestamp.before.max.ms
// or .after.max.ms) as api.ForCode gives it — what a Client that speaks
// Kafka's protocol hands the producer — whose sentinel is also the
// producer's own ErrInvalidTimestamp: the producer took the batch for one
// that may have been appended, and the next came under a new producer id
// (the INVALID_TIMESTAMP subtest failed so).
func TestRefusedAtFirstAttemptNotMaybeWritten(t *testing.T) {
	refusals := []error{api.ErrPolicyViolation, api.ErrInvalidRequest, producer.ErrRecordTooLarge, api.ErrInvalidTopic}
	for _, code := range []int16{10, 17, 21, 32, 42, 44, 87} { // every non-retriable refusal code
		if e := api.ForCode(code); !slices.Contains(refusals, e) {
			refusals = append(refusals, e)
		}
	}
	for _, refusal := range refusals {
		t.Run(api.Name(refusal), func(t *testing.T) {
			require.False(t, api.IsRetriable(refusal))
			b := newBroker(t, runneltest.Topic("t", 1))
			f := runneltest.NewFaults(t, b)
			p := newProducer(t, f, producer.DefaultTopic("t"), producer.RetryBackoff(time.Millisecond))
			ctx := testCtx(t)
			first := &record.Record{Value: []byte("first")}
			require.NoError(t, p.ProduceSync(ctx, first))

			f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: refusal, Count: 1})
			err := p.ProduceSync(ctx, &record.Record{Value: []byte("refused")})
			require.ErrorIs(t, err, refusal)
			require.NotErrorIs(t, err, producer.ErrMaybeWritten, "refused before the append: %v", err)
			require.False(t, producer.MayBeWritten(err), "refused before the append: %v", err)

			last := &record.Record{Value: []byte("last")}
			require.NoError(t, p.ProduceSync(ctx, last))
			require.Equal(t, first.ProducerID, last.ProducerID, "a new producer id for a batch that was never written")
			require.Equal(t, []string{"first", "last"}, values(runneltest.ConsumeAll(t, b, "t")))
		})
	}
}

// A batch refused as too large after an earlier attempt of it that may
// have been appended is not split (see Producer): the halves would write
// its records again. It fails whole, with ErrMaybeWritten, idempotent or
// not, and its records are in the log once, from that earlier attempt.
func TestTooLargeAfterMaybeAppendedNotSplit(t *testing.T) {
	for _, mode := range []struct {
		name string
		opts []producer.Opt
	}{
		{"idempotent", nil},
		{"acks=1", []producer.Opt{producer.Acks(producer.AcksLeader)}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			b := newBroker(t, runneltest.Topic("t", 1))
			f := runneltest.NewFaults(t, b)
			f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.LoseResponse, Err: api.ErrRequestTimedOut, Count: 1})
			tooLarge := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: producer.ErrRecordTooLarge, Count: 1})
			p := newProducer(t, f, append(mode.opts, producer.DefaultTopic("t"), producer.RetryBackoff(time.Millisecond),
				producer.Linger(time.Minute))...)
			ctx := testCtx(t)

			// One batch of both, lingering until Flush. (A ProduceSync of
			// the two without Linger sent "a" alone at once: a batch of
			// one record, which is never split, and the test passed with
			// the split allowed, as a mutation-testing pass found.)
			o := newOutcome()
			recs := []*record.Record{{Value: []byte("a")}, {Value: []byte("b")}}
			for _, r := range recs {
				p.Produce(ctx, r, o.promise())
			}
			require.NoError(t, p.Flush(ctx))
			o.wait()
			for _, r := range recs {
				require.ErrorIs(t, o.err(r), producer.ErrRecordTooLarge)
				require.ErrorIs(t, o.err(r), producer.ErrMaybeWritten)
			}
			require.Equal(t, 1, tooLarge.Hits())
			require.Equal(t, []string{"a", "b"}, values(runneltest.ConsumeAll(t, b, "t")))
		})
	}
}
