package runnel_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/log"
)

// TestReview33CloseRacesAdmin: Close, on disk, at a random moment of an
// admin call (CreateTopic, DeleteTopic, CreatePartitions,
// UpdateTopicConfig) on another goroutine: the call succeeds, or fails
// with a typed error (ErrClosed when Close overtook it, ErrTopicExists or
// ErrUnknownTopic as without Close), and the next Open finds what the
// call's answer says: a topic created with its partitions, grown, or
// deleted when the call succeeded, the topics as they were when it failed,
// and a directory for each partition and no other (no half-created
// topic's).
func TestReview33CloseRacesAdmin(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := runnel.Config{Dir: dir}
	rng := rand.New(rand.NewPCG(7, 33))
	b, err := runnel.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b.CreateTopic(ctx, "a", log.TopicConfig{Partitions: 2})
	b.Close()
	counts := map[string]int{}
	for iter := range 300 {
		b, err := runnel.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		before := map[string]int{}
		for _, n := range b.Topics() {
			info, _ := b.DescribeTopic(ctx, n)
			before[n] = len(info.Partitions)
		}
		op := rng.IntN(4)
		name := []string{"a", "b"}[rng.IntN(2)]
		n := 1 + rng.IntN(6)
		seg := int64(1000 + rng.IntN(1000))
		done := make(chan error, 1)
		go func() {
			switch op {
			case 0:
				done <- b.CreateTopic(ctx, name, log.TopicConfig{Partitions: n})
			case 1:
				done <- b.DeleteTopic(ctx, name)
			case 2:
				done <- b.CreatePartitions(ctx, name, before[name]+n)
			case 3:
				done <- b.UpdateTopicConfig(ctx, name, func(c *log.Config) { c.SegmentBytes = seg })
			}
		}()
		for range rng.IntN(200) {
			runtime.Gosched()
		}
		cerr := b.Close()
		err = <-done
		if cerr != nil {
			t.Fatalf("close: %v", cerr)
		}
		b, err2 := runnel.Open(cfg)
		if err2 != nil {
			t.Fatal(err2)
		}
		after := map[string]int{}
		want := map[string]bool{}
		for _, tn := range b.Topics() {
			info, _ := b.DescribeTopic(ctx, tn)
			after[tn] = len(info.Partitions)
			for i := range info.Partitions {
				want[fmt.Sprintf("%s-%d", tn, i)] = true
			}
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if e.IsDir() && e.Name() != "topics" && !want[e.Name()] {
				t.Errorf("iter %d op %d %s: stray dir %s", iter, op, name, e.Name())
			}
		}
		switch {
		case errors.Is(err, runnel.ErrClosed):
			if fmt.Sprint(before) != fmt.Sprint(after) {
				t.Errorf("iter %d op %d %s n %d: ErrClosed but %v -> %v", iter, op, name, n, before, after)
			}
		case err == nil:
			switch op {
			case 0:
				if after[name] != n {
					t.Errorf("create ok but %v", after)
				}
			case 1:
				if _, ok := after[name]; ok {
					t.Errorf("delete ok but %v", after)
				}
			case 2:
				if after[name] != before[name]+n {
					t.Errorf("grow ok but %v -> %v", before, after)
				}
			}
		case errors.Is(err, runnel.ErrTopicExists), errors.Is(err, runnel.ErrUnknownTopic):
			if fmt.Sprint(before) != fmt.Sprint(after) {
				t.Errorf("iter %d: %v but %v -> %v", iter, err, before, after)
			}
		default:
			t.Errorf("iter %d op %d: %v", iter, op, err)
		}
		counts[fmt.Sprintf("op%d %v", op, errors.Is(err, runnel.ErrClosed))]++
		b.Close()
	}
	t.Log(counts) // how often Close overtook each call
}
