package ofconn

import (
	"context"
	"errors"
	"testing"
	"time"
)

// readUntilBarrier reads messages until a barrier request, answering none:
// a client that waited for any reply before its last message would never
// get there.
func readUntilBarrier(p *peer) (msgs [][]byte, barrier []byte) {
	for {
		m := p.read()
		if m[1] == TypeBarrierReq {
			return msgs, m
		}
		msgs = append(msgs, m)
	}
}

// TestExchangeIsOneRoundTrip: the messages and the last one are written
// before any reply; the errors, sent only after the last message arrived,
// come back matched to their messages, and the last reply ends the wait.
func TestExchangeIsOneRoundTrip(t *testing.T) {
	c, p := connected(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type result struct {
		last Message
		errs []BatchError
		err  error
	}
	done := make(chan result, 1)
	go func() {
		last, errs, err := c.Exchange(ctx, 3, echo(nil), func(b []byte, xid uint32, encErr error) []byte { return AppendBarrier(b, xid) })
		done <- result{last, errs, err}
	}()
	msgs, barrier := readUntilBarrier(p)
	if len(msgs) != 3 {
		t.Fatalf("switch got %d messages before the barrier, want 3", len(msgs))
	}
	for i, m := range msgs {
		if xidOf(m) != xidOf(barrier)-3+uint32(i) {
			t.Errorf("message %d has xid %d, barrier %d", i, xidOf(m), xidOf(barrier))
		}
	}
	body := append([]byte{0, 5, 0, 1}, msgs[1][:HeaderLen]...) // FLOW_MOD_FAILED
	p.send(frame(TypeError, xidOf(msgs[1]), body))
	p.send(frame(TypeEchoReply, xidOf(msgs[2]), nil)) // not an error: ignored
	p.send(frame(TypeBarrierReply, xidOf(barrier), nil))
	r := <-done
	if r.err != nil || r.last.Type != TypeBarrierReply || len(r.errs) != 1 || r.errs[0].Index != 1 || r.errs[0].Err.Type != 5 {
		t.Fatalf("Exchange: last reply type %d, errors %v, %v; want the barrier reply and message 1's error", r.last.Type, r.errs, r.err)
	}
	c.mu.Lock()
	left := len(c.batches)
	c.mu.Unlock()
	if left != 0 {
		t.Errorf("%d batches still registered", left)
	}
}

// TestExchangeLastReplyAnError: an error reply to the last message is
// what Exchange returns as the last reply; an encoding error stops the
// batch, the closer is told, and the error is returned.
func TestExchangeLastReplyAnError(t *testing.T) {
	c, p := connected(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	boom := errors.New("boom")
	var told error
	done := make(chan error, 1)
	var last Message
	go func() {
		var err error
		last, _, err = c.Exchange(ctx, 4, func(b []byte, i int, xid uint32) ([]byte, error) {
			if i == 2 {
				return b, boom
			}
			return echo(nil)(b, i, xid)
		}, func(b []byte, xid uint32, encErr error) []byte {
			told = encErr
			return AppendBarrier(b, xid)
		})
		done <- err
	}()
	msgs, barrier := readUntilBarrier(p)
	p.send(frame(TypeError, xidOf(barrier), append([]byte{0, 1, 0, 1}, barrier...)))
	err := <-done
	if !errors.Is(err, boom) || !errors.Is(told, boom) || len(msgs) != 2 || last.Type != TypeError {
		t.Errorf("Exchange sent %d messages, closer told %v, last reply type %d, error %v; want 2, boom, an error reply, boom", len(msgs), told, last.Type, err)
	}
}
