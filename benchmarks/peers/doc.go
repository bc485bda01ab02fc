// Package peers runs runnel's end-to-end workloads (package
// benchmarks/internal/e2e) against its peers, in the same process and the
// same go test invocation: franz-go's kfake (an in-process Kafka cluster
// driven by the kgo client, in memory and with its DataDir on disk) and
// NATS JetStream embedded (server.NewServer with DontListen, an in-process
// connection, memory and file storage).
//
// It is a separate Go module so that the library's go.mod does not grow by
// these dependencies. The benchmarks are in peers_test.go; cmd/compare runs
// them interleaved (runnel, peer, runnel, peer, …) and prints one table of
// runnel/peer ratios against the goals; run.sh is its front door. See
// ../README.md. BenchmarkProduceCompressed and BenchmarkConsumeCompressed
// compare runnel with kfake with each codec (JetStream has no per-message
// codec); cmd/compare runs them only when asked (-run Compressed).
// parity_test.go is a differential test of runnel's
// semantics against kfake and Kafka's documented behaviour (go test -run
// Parity); parity_random_test.go's TestParityRandomized runs random
// request sequences on both against a model of Kafka's broker, a short run
// by default and a long one with RUNNEL_PARITY_RUNS, RUNNEL_PARITY_OPS and
// RUNNEL_PARITY_SEED (see its file comment); parity_segments_test.go's
// TestParitySegments does the same for logs of many segments (rolls,
// retention, look-ups by time across segments) against the model alone.
package peers
