package benchmarks

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// ratioPairs are the benchmarks that measure runnel against the raw file
// system, under the same sub-benchmark names, and the goal the issue sets
// for the ratio of their throughputs (0: none). (The end-to-end goals are
// checked by benchmarks/peers/cmd/compare.)
var ratioPairs = []struct {
	runnel, raw string
	goal        func(sub string) float64
}{
	{"BenchmarkAppend", "BenchmarkRawWrite", func(sub string) float64 {
		if strings.Contains(sub, "sync=never") {
			return 0.8
		}
		return 0
	}},
	{"BenchmarkRead", "BenchmarkRawReadAt", func(string) float64 { return 0.5 }},
}

// TestReportRatios prints the throughput ratio runnel/raw of each pair of
// results in the benchmark output files named by RUNNEL_BENCH_REPORT
// (separated by commas). The k-th result of a runnel benchmark is paired
// with the k-th result of its baseline of the same name: with -count 1 per
// round, the results of one round. It prints the median, minimum and
// maximum ratio over the rounds. It is skipped unless RUNNEL_BENCH_REPORT
// is set (benchmarks/run.sh sets it).
func TestReportRatios(t *testing.T) {
	paths := os.Getenv("RUNNEL_BENCH_REPORT")
	if paths == "" {
		t.Skip("RUNNEL_BENCH_REPORT is not set")
	}
	results := map[string][]float64{} // full name (no -procs) → MB/s, in file order
	var order []string
	for _, p := range strings.Split(paths, ",") {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		err = parseThroughputs(f, results, &order)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	if err := writeRatios(os.Stdout, results, order); err != nil {
		t.Fatal(err)
	}
}

// parseThroughputs adds the MB/s of each benchmark result line of r to
// results, by name without the -GOMAXPROCS suffix.
func parseThroughputs(r io.Reader, results map[string][]float64, order *[]string) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		name := fields[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		for i := 2; i+1 < len(fields); i += 2 {
			if fields[i+1] != "MB/s" {
				continue
			}
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return fmt.Errorf("%q: %v", sc.Text(), err)
			}
			if _, seen := results[name]; !seen {
				*order = append(*order, name)
			}
			results[name] = append(results[name], v)
		}
	}
	return sc.Err()
}

// writeRatios writes a table of the paired ratios.
func writeRatios(w io.Writer, results map[string][]float64, order []string) error {
	fmt.Fprintf(w, "%-62s %6s %7s %7s %7s %5s  %s\n", "runnel/baseline MB/s", "rounds", "median", "min", "max", "goal", "per round")
	for _, pair := range ratioPairs {
		for _, name := range order {
			sub, ok := strings.CutPrefix(name, pair.runnel+"/")
			if !ok {
				continue
			}
			ours, raw := results[name], results[pair.raw+"/"+sub]
			n := min(len(ours), len(raw))
			if n == 0 {
				continue
			}
			ratios := make([]float64, n)
			rounds := make([]string, n)
			for i := range n {
				ratios[i] = ours[i] / raw[i]
				rounds[i] = fmt.Sprintf("%.2f", ratios[i])
			}
			sorted := slices.Sorted(slices.Values(ratios))
			med := sorted[n/2]
			if n%2 == 0 {
				med = (sorted[n/2-1] + sorted[n/2]) / 2
			}
			goal := "-"
			if g := pair.goal(sub); g > 0 {
				goal = fmt.Sprintf("%.2f", g)
				if med < g {
					goal += "!"
				}
			}
			label := strings.TrimPrefix(pair.runnel, "Benchmark") + "/" + sub
			if _, err := fmt.Fprintf(w, "%-62s %6d %7.3f %7.3f %7.3f %5s  %s\n",
				label, n, med, sorted[0], sorted[n-1], goal, strings.Join(rounds, " ")); err != nil {
				return err
			}
		}
	}
	_, err := fmt.Fprintln(w, "(goal: the issue's minimum for the median; ! marks a median below it)")
	return err
}

// TestRatioParsing checks the pairing on a small sample.
func TestRatioParsing(t *testing.T) {
	in := `goos: linux
BenchmarkAppend/fs=mem/size=100/sync=never-2   	 100	  20000 ns/op	 500.00 MB/s	 1000 records/s
BenchmarkRawWrite/fs=mem/size=100/sync=never-2 	 100	  10000 ns/op	1000.00 MB/s
BenchmarkRawWrite/fs=mem/size=100/sync=never-2 	 100	  10000 ns/op	 800.00 MB/s
BenchmarkAppend/fs=mem/size=100/sync=never-2   	 100	  20000 ns/op	 600.00 MB/s
BenchmarkAppend/fs=mem/size=100/sync=never-2   	 100	  20000 ns/op	 900.00 MB/s
BenchmarkRawWrite/fs=mem/size=100/sync=never-2 	 100	  10000 ns/op	1000.00 MB/s
BenchmarkOpenClean/fs=os-2 	 10	  20000 ns/op	 2.0 ms/op
BenchmarkRead/fs=os-2 	 10	  100 ns/op	 600.00 MB/s
BenchmarkRawReadAt/fs=os-2 	 10	  100 ns/op	 1000.00 MB/s
`
	results := map[string][]float64{}
	var order []string
	if err := parseThroughputs(strings.NewReader(in), results, &order); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := writeRatios(&out, results, order); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Append/fs=mem/size=100/sync=never 3 0.750 0.500 0.900 0.80! 0.50 0.75 0.90",
		"Read/fs=os 1 0.600 0.600 0.600 0.50 0.60",
	} {
		found := false
		for line := range strings.Lines(out.String()) {
			found = found || strings.Join(strings.Fields(line), " ") == want
		}
		if !found {
			t.Errorf("got\n%s\nwant a line\n%s", out.String(), want)
		}
	}
}
