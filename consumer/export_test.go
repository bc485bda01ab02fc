package consumer

import (
	"time"

	"github.com/runnel/runnel/record"
)

// SetBeforeAdvance makes c's Records loops call f with each record they
// are about to yield, after their checks and before the position moves
// past it: a test reproduces there a change made by another goroutine at
// the worst moment.
func SetBeforeAdvance(c *Consumer, f func(*record.Record)) {
	if c.hooks == nil {
		c.hooks = &hooks{}
	}
	c.hooks.beforeAdvance = f
}

// SetIdle makes c's Polls call f, when they have nothing to fetch, with
// how long they are about to wait for a change (0: not at all).
func SetIdle(c *Consumer, f func(d time.Duration)) {
	if c.hooks == nil {
		c.hooks = &hooks{}
	}
	c.hooks.idle = f
}
