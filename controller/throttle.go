package controller

import (
	"sync"
	"time"
)

// throttle lets through the first event of each key per interval: a
// condition that repeats with every packet or every reconnection attempt is
// logged once in a while, not each time.
type throttle struct {
	every time.Duration

	mu   sync.Mutex
	last map[string]time.Time
}

// logInterval is how often a repeating condition is logged again.
const logInterval = time.Minute

// maxThrottleKeys bounds the keys remembered, whoever keeps knocking.
const maxThrottleKeys = 4096

func newThrottle(every time.Duration) *throttle {
	return &throttle{every: every, last: map[string]time.Time{}}
}

// allow reports whether an event of key at now is the first of its
// interval.
func (t *throttle) allow(key string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if last, ok := t.last[key]; ok && now.Sub(last) < t.every && !now.Before(last) {
		return false
	}
	if len(t.last) >= maxThrottleKeys {
		for k, last := range t.last {
			if now.Sub(last) >= t.every {
				delete(t.last, k)
			}
		}
		if len(t.last) >= maxThrottleKeys {
			clear(t.last)
		}
	}
	t.last[key] = now
	return true
}
