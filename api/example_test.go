package api_test

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
)

// ExampleForCode ports a Kafka error code, as a test written for
// franz-go's kfake names it (kerr.X.Code), to the error runnel's clients
// see: the table's sentinel where it has one, else an *api.UnknownCodeError
// that keeps the code and Kafka's retriability.
func ExampleForCode() {
	for _, code := range []int16{
		3,  // UNKNOWN_TOPIC_OR_PARTITION: kerr.UnknownTopicOrPartition.Code
		5,  // LEADER_NOT_AVAILABLE: no sentinel here
		8,  // BROKER_NOT_AVAILABLE: a closed broker's
		51, // CONCURRENT_TRANSACTIONS: no sentinel, retriable in Kafka's source
	} {
		err := api.ForCode(code)
		var unknown *api.UnknownCodeError
		fmt.Printf("%d %s: code %d, retriable %t, sentinel %t\n",
			code, api.Name(err), api.Code(err), api.IsRetriable(err), !errors.As(err, &unknown))
	}
	fmt.Println(errors.Is(api.ForCode(3), api.ErrUnknownTopicOrPartition), errors.Is(api.ForCode(8), api.ErrBrokerClosed))
	// Output:
	// 3 UNKNOWN_TOPIC_OR_PARTITION: code 3, retriable true, sentinel true
	// 5 LEADER_NOT_AVAILABLE: code 5, retriable true, sentinel false
	// 8 BROKER_NOT_AVAILABLE: code 8, retriable false, sentinel true
	// 51 CONCURRENT_TRANSACTIONS: code 51, retriable true, sentinel false
	// true true
}

// ExampleCode maps the errors a broker, its log and its clients return to
// the Kafka error codes a wire protocol front end answers with: a wrapped
// error keeps its sentinel's code, and ForCode turns the code back into an
// error matching that sentinel. An error the table does not know is
// UNKNOWN_SERVER_ERROR (-1).
func ExampleCode() {
	for _, err := range []error{
		nil,
		fmt.Errorf("fetch orders-0 at 42: %w", log.ErrOffsetOutOfRange),
		&record.CorruptError{Position: 4096, Reason: "CRC mismatch"},
		api.ValidateTopicName("orders/eu"),
		log.Config{SegmentBytes: 1}.Validate(),
		errors.New("my handler failed"),
	} {
		fmt.Println(api.Code(err), api.Name(err))
	}
	back := api.ForCode(1)
	fmt.Println(errors.Is(back, log.ErrOffsetOutOfRange), back)
	// Output:
	// 0 NONE
	// 1 OFFSET_OUT_OF_RANGE
	// 2 CORRUPT_MESSAGE
	// 17 INVALID_TOPIC_EXCEPTION
	// 40 INVALID_CONFIG
	// -1 UNKNOWN_SERVER_ERROR
	// true runnel/log: offset out of range
}

// ExampleIsRetriable decides whether to send a request again, as Kafka's
// clients decide it. An error that matches several sentinels is retriable
// only if each of them is: a request that timed out because its broker
// closed is not.
func ExampleIsRetriable() {
	fenced := fmt.Errorf("%w: write 00000000000000000000.log: %w", log.ErrLogFenced, syscall.ENOSPC)
	for _, err := range []error{
		api.ErrNotLeader,
		fenced, // a full disk: room may be freed meanwhile
		api.ErrRequestTimedOut,
		errors.Join(api.ErrRequestTimedOut, api.ErrBrokerClosed),
		api.ErrUnknownTopicOrPartition, // stale metadata, or a topic still being created
		log.ErrRecordTooLarge,
	} {
		fmt.Println(api.Name(err), api.IsRetriable(err))
	}
	// Output:
	// NOT_LEADER_OR_FOLLOWER true
	// KAFKA_STORAGE_ERROR true
	// REQUEST_TIMED_OUT true
	// REQUEST_TIMED_OUT false
	// UNKNOWN_TOPIC_OR_PARTITION true
	// MESSAGE_TOO_LARGE false
}
