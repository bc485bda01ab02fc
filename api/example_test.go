package api_test

import (
	"errors"
	"fmt"

	"github.com/runnel/runnel/api"
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
