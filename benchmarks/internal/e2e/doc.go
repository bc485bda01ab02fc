// Package e2e holds the end-to-end workloads of runnel's benchmarks:
// produce, consume, produce→consume latency, group commit, the raw
// sequential write that produce is measured against, and peak RSS.
//
// A workload runs against a System: something that opens a broker (or a
// cluster) in this process and hands out producers and consumers through
// the small Target, Producer and Consumer interfaces. runnel is one System
// (package runnelsys, through the public producer and consumer packages);
// the separate module benchmarks/peers adds franz-go's kfake and NATS
// JetStream. Both that module and the benchmarks package run these very
// functions, so "the same workload" means the same code.
//
// Every workload is a plain function that takes the number of records and
// a Timer (a *testing.B, or NoTimer in tests) and returns a Result; the
// Bench* functions wrap them as benchmarks whose op is one record, so that
// ns/op, B/s (payload) and allocs/op are per record. Every workload checks
// its own outcome (records counted on the broker, every record consumed
// once) and fails with an error otherwise.
//
// It is an internal package of the benchmarks: it sits at the programs
// layer, above producer and consumer, and nothing in the library imports
// it.
package e2e
