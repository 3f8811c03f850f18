package ofconn

import (
	"fmt"
	"sync"
)

// ReplyBudget bounds the bytes of the multipart replies being gathered on
// several connections together (a controller's switches), where
// MaxMultipartBytes bounds one. When a part would take the total past the
// budget, the connection gathering the largest reply is closed with
// ErrReplyTooLarge: switches that never end their replies cannot exhaust
// the memory together, and the one hoarding the most goes first rather than
// a switch with a small reply. It is safe for concurrent use.
type ReplyBudget struct {
	max int

	mu    sync.Mutex
	used  int
	calls map[*call]budgetEntry
}

type budgetEntry struct {
	conn  *Conn
	bytes int
}

// NewReplyBudget returns a budget of max bytes.
func NewReplyBudget(max int) *ReplyBudget {
	return &ReplyBudget{max: max, calls: map[*call]budgetEntry{}}
}

// Used is the bytes of the replies being gathered.
func (b *ReplyBudget) Used() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// take charges n bytes of cl (on c) to the budget. Over the budget, the
// largest reply is evicted: its charge is dropped and its connection
// returned, to be closed (it may be c). An evicted call is never charged
// again.
func (b *ReplyBudget) take(c *Conn, cl *call, n int) (victim *Conn, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if cl.evicted {
		return nil, nil
	}
	e := b.calls[cl]
	e.conn, e.bytes = c, e.bytes+n
	b.calls[cl] = e
	b.used += n
	if b.used <= b.max {
		return nil, nil
	}
	var big *call
	for k, v := range b.calls {
		if big == nil || v.bytes > b.calls[big].bytes {
			big = k
		}
	}
	v := b.calls[big]
	delete(b.calls, big)
	b.used -= v.bytes
	big.evicted = true
	return v.conn, fmt.Errorf("%w: the largest of the replies being gathered (%d bytes) when together they exceeded %d bytes",
		ErrReplyTooLarge, v.bytes, b.max)
}

// release drops cl's charge (its request returned).
func (b *ReplyBudget) release(cl *call) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.calls[cl]; ok {
		b.used -= e.bytes
		delete(b.calls, cl)
	}
	cl.evicted = true
}

// SetReplyBudget makes the connection's multipart replies count against b
// (nil: only MaxMultipartBytes applies). Call it before Handshake.
func (c *Conn) SetReplyBudget(b *ReplyBudget) { c.budget = b }
