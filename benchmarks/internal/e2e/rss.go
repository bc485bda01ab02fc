package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// RSSEnv names the environment variable that turns a test binary into the
// child process of MeasureRSS (see RunRSSChild).
const RSSEnv = "RUNNEL_E2E_RSS_CHILD"

// ErrNoProcStatus is returned where /proc/self/status cannot be read (any
// OS but Linux): there is no peak RSS to measure.
var ErrNoProcStatus = errors.New("e2e: no /proc/self/status to read RSS from")

// RSS is what MeasureRSS found in the child process.
type RSS struct {
	// Peak is the child's peak resident set size (VmHWM) after producing
	// the payload and while holding it.
	Peak int64
	// Held is its resident set size (VmRSS) at that moment.
	Held int64
	// Baseline is its VmRSS before the broker was opened: the runtime and
	// the test binary.
	Baseline int64
	// Live is the Go heap still reachable then (HeapAlloc right after a
	// forced collection, measured after Peak and Held): what the broker
	// and the clients keep, without garbage and free pages.
	Live int64
	// Payload is the value bytes produced.
	Payload int64
}

// Ratio is Peak / Payload.
func (r RSS) Ratio() float64 { return float64(r.Peak) / float64(r.Payload) }

// ProcStatus returns a field of /proc/self/status in bytes, e.g.
// ProcStatus("VmHWM") for the peak RSS.
//
// Errors: ErrNoProcStatus; an error when the field is missing.
func ProcStatus(field string) (int64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNoProcStatus, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		f := strings.Fields(rest) // "123456 kB"
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("e2e: /proc/self/status: %q", sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("e2e: /proc/self/status: %q: %w", sc.Text(), err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("e2e: /proc/self/status has no %s", field)
}

const rssLine = "e2e-rss"

// MeasureRSS runs a child process (this test binary again, with RSSEnv
// set) that opens sys in memory, produces payload bytes of values of size
// bytes to a one-partition topic, flushes, checks the count, and reports
// its RSS while it holds them. The test binary's TestMain must call
// RunRSSChild.
//
// Errors: ErrNoProcStatus; ErrInvalidCase; the child's failure, with its
// output.
func MeasureRSS(ctx context.Context, sys System, size int, payload int64) (RSS, error) {
	if _, err := ProcStatus("VmHWM"); err != nil {
		return RSS{}, err
	}
	if err := (Case{Store: Mem, Size: size, Partitions: 1, Acks: AcksAll}).Validate(); err != nil {
		return RSS{}, err
	}
	if payload < int64(size) {
		return RSS{}, fmt.Errorf("%w: size %d, payload %d", ErrInvalidCase, size, payload)
	}
	exe, err := os.Executable()
	if err != nil {
		return RSS{}, err
	}
	cmd := exec.CommandContext(ctx, exe, "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d,%d", RSSEnv, sys.Name, size, payload))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return RSS{}, fmt.Errorf("e2e: RSS child: %w\n%s", err, out)
	}
	for line := range strings.Lines(string(out)) {
		var r RSS
		if _, err := fmt.Sscanf(line, rssLine+" peak=%d held=%d baseline=%d live=%d payload=%d", &r.Peak, &r.Held, &r.Baseline, &r.Live, &r.Payload); err == nil {
			return r, nil
		}
	}
	return RSS{}, fmt.Errorf("e2e: the RSS child printed no result (does TestMain call e2e.RunRSSChild?):\n%s", out)
}

// RunRSSChild does nothing unless RSSEnv is set; then it is the child of
// MeasureRSS: it runs the measurement against the system of that name
// among systems, prints the result, and exits the process. Call it first
// thing in TestMain.
func RunRSSChild(systems ...System) {
	spec, ok := os.LookupEnv(RSSEnv)
	if !ok {
		return
	}
	r, err := rssChild(spec, systems)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: RSS child:", err)
		os.Exit(1)
	}
	fmt.Printf("%s peak=%d held=%d baseline=%d live=%d payload=%d\n", rssLine, r.Peak, r.Held, r.Baseline, r.Live, r.Payload)
	os.Exit(0)
}

func rssChild(spec string, systems []System) (r RSS, err error) {
	f := strings.Split(spec, ",")
	if len(f) != 3 {
		return r, fmt.Errorf("%w: %s=%q", ErrInvalidCase, RSSEnv, spec)
	}
	size, err1 := strconv.Atoi(f[1])
	payload, err2 := strconv.ParseInt(f[2], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return r, fmt.Errorf("%w: %s=%q: %v", ErrInvalidCase, RSSEnv, spec, err)
	}
	var sys *System
	for i := range systems {
		if systems[i].Name == f[0] {
			sys = &systems[i]
		}
	}
	if sys == nil {
		return r, fmt.Errorf("%w: no system %q", ErrInvalidCase, f[0])
	}
	if r.Baseline, err = ProcStatus("VmRSS"); err != nil {
		return r, err
	}
	ctx := context.Background()
	c := Case{Store: Mem, Size: size, Partitions: 1, Acks: AcksAll}
	t, stop, err := startTopic(ctx, *sys, c)
	if err != nil {
		return r, err
	}
	defer func() { err = errors.Join(err, stop()) }()
	n := payload / int64(size)
	if err := fillTopic(ctx, t, c, int(n), nil); err != nil {
		return r, err
	}
	r.Payload = n * int64(size)
	if r.Peak, err = ProcStatus("VmHWM"); err != nil {
		return r, err
	}
	if r.Held, err = ProcStatus("VmRSS"); err != nil {
		return r, err
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.Live = int64(ms.HeapAlloc)
	return r, nil
}
