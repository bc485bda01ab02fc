package producer_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
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

				err := testkit.Await(t, firstErr, "the first record's promise")
				require.ErrorIs(t, err, refusal)
				require.ErrorIs(t, err, producer.ErrMaybeWritten, "the first attempt was appended: %v", err)
				require.Equal(t, 1, lost.Hits())
				require.Equal(t, 1, refused.Hits())

				err = testkit.Await(t, secondErr, "the second record's promise")
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

// A log fenced while a produce waited for its fsync answers with
// log.ErrLogFenced and the cause beside it, which may be one of the
// refusals the producer knows (record.ErrCorrupt: a compaction's swap
// that met corrupt data, say). The batch was appended, so the error is
// no refusal, and the producer's doc says that log.ErrLogFenced means a
// record may have been written: the producer counted it as a refusal
// (not written; an idempotent batch's sequence numbers then free for
// the next batch), and with AcksNone the record failed without
// ErrMaybeWritten. (MaxInFlight 1: the acknowledgement's error comes
// from Produce itself; above 1 the pipeline's acknowledgements already
// counted as appended.)
func TestFencedWithARefusalMayHaveBeenWritten(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	f := runneltest.NewFaults(t, b)
	fenced := fmt.Errorf("%w: %w", log.ErrLogFenced, record.ErrCorrupt)
	rule := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.FailAck, Err: fenced, Count: 1})
	p := newProducer(t, f, producer.DefaultTopic("t"), producer.Acks(producer.AcksNone), producer.MaxInFlight(1),
		producer.RetryBackoff(time.Millisecond))
	ctx := testCtx(t)

	err := p.ProduceSync(ctx, &record.Record{Value: []byte("first")})
	require.Equal(t, 1, rule.Hits())
	require.ErrorIs(t, err, log.ErrLogFenced)
	require.ErrorIs(t, err, producer.ErrMaybeWritten, "appended, then fenced: %v", err)
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Value: []byte("second")}))
	require.Equal(t, []string{"first", "second"}, values(runneltest.ConsumeAll(t, b, "t")))
}

// MayBeWritten reads the errors of real failures as ProduceSync's doc
// says: a refusal of the broker's, a done ctx and a failure before the
// record was partitioned mean not written; an answer lost after the
// append, an error the producer does not know, and ErrMaybeWritten mean
// it may have been.
func TestMayBeWritten(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault runneltest.Fault
		want  bool
	}{
		{"refused", runneltest.Fault{Op: runneltest.OpProduce, Err: api.ErrPolicyViolation, Count: 1}, false},
		{"record too large", runneltest.Fault{Op: runneltest.OpProduce, Err: producer.ErrRecordTooLarge, Count: 1}, false},
		{"appended, answer lost", runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.LoseResponse, Err: api.ErrBrokerClosed, Count: 1}, true},
		{"appended, ack failed", runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.FailAck, Err: errors.New("fsync failed"), Count: 1}, true},
		{"unknown error", runneltest.Fault{Op: runneltest.OpProduce, Err: errors.New("connection reset"), Count: 1}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBroker(t, runneltest.Topic("t", 1))
			f := runneltest.NewFaults(t, b)
			f.Add(tc.fault)
			p := runneltest.NewProducer(t, f)
			err := p.ProduceSync(t.Context(), &record.Record{Topic: "t", Value: []byte("v")})
			require.Error(t, err)
			require.Equal(t, tc.want, producer.MayBeWritten(err), "%v", err)
			require.Equal(t, tc.want, producer.MayBeWritten(fmt.Errorf("wrapped: %w", err)), "%v", err)
			recs := runneltest.ConsumeAll(t, b, "t")
			if !tc.want {
				require.Empty(t, recs, "not written, as MayBeWritten said")
			}
		})
	}
	t.Run("ctx done", func(t *testing.T) {
		b := newBroker(t, runneltest.Topic("t", 1))
		p := runneltest.NewProducer(t, b)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := p.ProduceSync(ctx, &record.Record{Topic: "t", Value: []byte("v")})
		require.ErrorIs(t, err, context.Canceled)
		require.False(t, producer.MayBeWritten(err))
	})
	t.Run("partition count not learned", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newBroker(t, runneltest.Topic("t", 1))
			f := runneltest.NewFaults(t, b)
			f.Add(runneltest.Fault{Op: runneltest.OpPartitions, Err: api.ErrRequestTimedOut, Count: runneltest.Unlimited})
			p := runneltest.NewProducer(t, f, producer.DeliveryTimeout(time.Second))
			err := p.ProduceSync(t.Context(), &record.Record{Topic: "t", Value: []byte("v")})
			require.ErrorIs(t, err, producer.ErrDeliveryTimeout)
			require.False(t, producer.MayBeWritten(err), "%v", err)
		})
	})
	require.False(t, producer.MayBeWritten(nil))
	require.True(t, producer.MayBeWritten(producer.ErrMaybeWritten))
	require.True(t, producer.MayBeWritten(fmt.Errorf("%w (%w)", api.ErrPolicyViolation, producer.ErrMaybeWritten)),
		"a refusal after an earlier attempt that may have been appended")
	require.True(t, producer.MayBeWritten(errors.Join(
		&producer.RecordError{Partition: producer.UnknownPartition, Err: producer.ErrMaxBuffered},
		&producer.RecordError{Partition: 0, Err: producer.ErrDeliveryTimeout})), "one of two records")
}

// TestMayBeWrittenTable: MayBeWritten's doc, error by error: false
// for nil, a ctx's errors, the errors before a record is buffered and the
// broker's refusals alone; true for ErrMaybeWritten whatever else the
// error matches, ErrDeliveryTimeout, ErrClosed, log.ErrLogFenced,
// api.ErrBrokerClosed, ErrOutOfOrderSequence (a refusal, but listed
// apart) and an error the producer does not know; a RecordError of no
// partition is false whatever its error. Each also wrapped.
func TestMayBeWrittenTable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{context.Canceled, false},
		{context.DeadlineExceeded, false},
		{producer.ErrMaxBuffered, false},
		{producer.ErrNoTopic, false},
		{producer.ErrNilRecord, false},
		{producer.ErrInvalidPartition, false},
		{producer.ErrInvalidOption, false},
		{producer.ErrRecordTooLarge, false},
		{log.ErrInvalidRecord, false},
		{api.ErrPolicyViolation, false},
		{producer.ErrProducerFenced, false},
		{api.ErrUnknownTopicOrPartition, false},
		{producer.ErrMaybeWritten, true},
		{errors.Join(context.Canceled, producer.ErrMaybeWritten), true},
		{producer.ErrDeliveryTimeout, true},
		{producer.ErrClosed, true},
		{log.ErrLogFenced, true},
		{api.ErrBrokerClosed, true},
		{producer.ErrOutOfOrderSequence, true},
		{errors.New("connection reset"), true},
		{&producer.RecordError{Partition: producer.UnknownPartition, Err: producer.ErrDeliveryTimeout}, false},
		{&producer.RecordError{Partition: 3, Err: producer.ErrDeliveryTimeout}, true},
		{&producer.RecordError{Partition: 3, Err: context.DeadlineExceeded}, false},
	} {
		require.Equal(t, tc.want, producer.MayBeWritten(tc.err), "%v", tc.err)
		require.Equal(t, tc.want, producer.MayBeWritten(fmt.Errorf("wrapped: %w", tc.err)), "wrapped %v", tc.err)
	}
}

// TestMayBeWrittenInvalidTimestamp: a record whose Timestamp is
// before the Unix epoch fails with ErrInvalidTimestamp before it is
// buffered (Produce's doc; api.ErrInvalidTimestamp is "a record timestamp
// a client refuses to send"), so it was never sent, and MayBeWritten,
// whose doc says false "for an error before the record was buffered",
// must say so of its promise's error. It said true: the error is in
// neither of the lists mayBeWritten checks, and fell to "an error the
// producer does not know".
func TestMayBeWrittenInvalidTimestamp(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	p := newProducer(t, b)
	got := make(chan error, 1)
	p.Produce(t.Context(), &record.Record{Topic: "t", Timestamp: time.UnixMilli(-5), Value: []byte("v")},
		func(_ *record.Record, err error) { got <- err })
	err := testkit.Await(t, got, "the record's promise")
	require.ErrorIs(t, err, producer.ErrInvalidTimestamp)
	require.False(t, producer.MayBeWritten(err), "%v", err)
	require.False(t, producer.MayBeWritten(producer.ErrInvalidTimestamp))
	require.Empty(t, runneltest.ConsumeAll(t, b, "t"))
}

// A promise's error for a record that failed before it was buffered —
// produced once the producer is closed, its topic's partition count not
// learnt within DeliveryTimeout, or asked of a closed broker — reads as
// not written, as MayBeWritten's doc says ("false ... for an error
// before the record was buffered") and as ProduceSync's RecordError of
// the same record reads: the record was never sent. MayBeWritten said
// true of the promise's ErrClosed, ErrDeliveryTimeout and
// api.ErrBrokerClosed, which alone cannot tell, so a Produce caller that
// produces a record again only when it was surely not written dropped
// records never sent. The error still matches what it did, with the
// same message.
func TestMayBeWrittenPromiseNotSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		promiseErr := func(p *producer.Producer) error {
			got := make(chan error, 1)
			p.Produce(t.Context(), &record.Record{Topic: "t", Value: []byte("v")}, func(_ *record.Record, err error) { got <- err })
			return <-got
		}
		check := func(name string, p *producer.Producer, want error) {
			err := promiseErr(p)
			require.ErrorIs(t, err, want, name)
			require.False(t, producer.MayBeWritten(err), "%s: never sent: %v", name, err)
			require.False(t, producer.MayBeWritten(fmt.Errorf("wrapped: %w", err)), "%s: never sent, wrapped: %v", name, err)
			serr := p.ProduceSync(t.Context(), &record.Record{Topic: "t", Value: []byte("v")})
			require.ErrorIs(t, serr, want, name)
			require.False(t, producer.MayBeWritten(serr), "%s: ProduceSync's: %v", name, serr)
		}

		b := newBroker(t, runneltest.Topic("t", 1))
		f := runneltest.NewFaults(t, b)
		lookUps := f.Add(runneltest.Fault{Op: runneltest.OpPartitions, Err: api.ErrRequestTimedOut, Count: runneltest.Unlimited})
		check("partition count not learnt", newProducer(t, f, producer.DeliveryTimeout(time.Second)), producer.ErrDeliveryTimeout)

		p := newProducer(t, b)
		require.NoError(t, p.Close())
		err := promiseErr(p)
		require.Equal(t, producer.ErrClosed.Error(), err.Error())
		check("produced after Close", p, producer.ErrClosed)

		closed := newBroker(t)
		require.NoError(t, closed.Close())
		check("broker closed", newProducer(t, closed), api.ErrBrokerClosed)

		// A record that was sent still reads as maybe written.
		lookUps.Remove()

		// A partition past the count the producer knows, whose look-up
		// does not answer by DeliveryTimeout.
		manual := newProducer(t, f, producer.DeliveryTimeout(time.Second), producer.RecordPartitioner(producer.ManualPartitioner()))
		require.NoError(t, manual.ProduceSync(t.Context(), &record.Record{Topic: "t", Value: []byte("v")}))
		lookUps = f.Add(runneltest.Fault{Op: runneltest.OpPartitions, Err: api.ErrRequestTimedOut, Count: runneltest.Unlimited})
		got := make(chan error, 1)
		manual.Produce(t.Context(), &record.Record{Topic: "t", Partition: 5, Value: []byte("v")}, func(_ *record.Record, err error) { got <- err })
		err = <-got
		require.ErrorIs(t, err, producer.ErrDeliveryTimeout)
		require.False(t, producer.MayBeWritten(err), "a partition past the count: never sent: %v", err)
		lookUps.Remove()

		// Close ends a Produce that waits for buffer space.
		held := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.HoldRequest, Count: 1})
		full := newProducer(t, f, producer.MaxBufferedRecords(1))
		full.Produce(t.Context(), &record.Record{Topic: "t", Value: []byte("first")}, nil)
		require.NoError(t, held.Wait(t.Context(), 1))
		go full.Produce(t.Context(), &record.Record{Topic: "t", Value: []byte("waits")}, func(_ *record.Record, err error) { got <- err })
		synctest.Wait() // it waits for space
		require.NoError(t, full.Close())
		err = <-got
		require.ErrorIs(t, err, producer.ErrClosed)
		require.False(t, producer.MayBeWritten(err), "waited for space: never sent: %v", err)

		lost := errors.New("connection reset")
		f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.LoseResponse, Err: lost, Count: 1})
		err = promiseErr(newProducer(t, f))
		require.ErrorIs(t, err, lost)
		require.True(t, producer.MayBeWritten(err), "%v", err)
	})
}

// The mark that makes MayBeWritten read a promise's error as of a record
// never sent (TestMayBeWrittenPromiseNotSent) is given only to the errors
// that alone would read as maybe written: the others a promise gets
// before its record is buffered are the errors themselves, as before,
// which a caller may compare with == (TryProduce's ErrMaxBuffered, the
// ctx's error of a wait that ctx cut short). And a join of such an error
// with one of a record that may have been written (the promises' errors
// of several records, joined by the caller) still reads as maybe
// written: the mark is one record's.
func TestMayBeWrittenPromiseErrorsOtherwiseAsTheyWere(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, runneltest.Topic("t", 1))
		f := runneltest.NewFaults(t, b)
		held := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.HoldRequest, Count: 1})
		p := newProducer(t, f, producer.MaxBufferedRecords(1))
		p.Produce(t.Context(), &record.Record{Topic: "t", Value: []byte("first")}, nil)
		require.NoError(t, held.Wait(t.Context(), 1)) // the buffer is full until it is answered

		got := make(chan error, 1)
		promise := func(_ *record.Record, err error) { got <- err }
		p.TryProduce(t.Context(), &record.Record{Topic: "t", Value: []byte("v")}, promise)
		err := <-got
		require.True(t, err == producer.ErrMaxBuffered, "TryProduce on a full buffer: %T %v", err, err)

		ctx, cancel := context.WithCancel(t.Context())
		go p.Produce(ctx, &record.Record{Topic: "t", Value: []byte("v")}, promise)
		synctest.Wait() // it waits for space
		cancel()
		err = <-got
		require.True(t, err == context.Canceled, "a wait for space its ctx cut short: %T %v", err, err)

		held.Remove()
		require.NoError(t, p.Flush(t.Context())) // space again

		// The look-up of a topic's partition count, cut short by ctx.
		lookUp := f.Add(runneltest.Fault{Op: runneltest.OpPartitions, Action: runneltest.HoldRequest, Count: 1})
		ctx, cancel = context.WithCancel(t.Context())
		go p.Produce(ctx, &record.Record{Topic: "other", Value: []byte("v")}, promise)
		require.NoError(t, lookUp.Wait(t.Context(), 1))
		cancel()
		err = <-got
		require.True(t, err == context.Canceled, "a look-up its ctx cut short: %T %v", err, err)
		lookUp.Remove()

		require.NoError(t, p.Close())
		p.Produce(t.Context(), &record.Record{Topic: "t", Value: []byte("v")}, promise)
		notSent := <-got
		require.False(t, producer.MayBeWritten(notSent))
		require.True(t, producer.MayBeWritten(errors.Join(notSent, log.ErrLogFenced)), "one record never sent, another maybe written")
		require.True(t, producer.MayBeWritten(errors.Join(log.ErrLogFenced, notSent)), "one record maybe written, another never sent")
	})
}
