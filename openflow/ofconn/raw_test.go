package ofconn

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"
)

// answerBatch plays the switch for a batch: it reads messages until a
// barrier, answering those whose first body byte is 0xee with an error,
// then the barrier; it reports how many messages and bytes came.
func answerBatch(p *peer) (msgs, bytes int) {
	for {
		m := p.read()
		if m[1] == TypeBarrierReq {
			p.send(frame(TypeBarrierReply, xidOf(m), nil))
			return msgs, bytes
		}
		msgs, bytes = msgs+1, bytes+len(m)
		if len(m) > HeaderLen && m[HeaderLen] == 0xee {
			body := append([]byte{0, 5, 0, 1}, m[:HeaderLen]...) // FLOW_MOD_FAILED
			p.send(frame(TypeError, xidOf(m), body))
		}
	}
}

// echo is an encoder of n echo requests of 40 bytes, the ones in bad
// marked for an error reply.
func echo(bad map[int]bool) Encoder {
	return func(b []byte, i int, xid uint32) ([]byte, error) {
		body := make([]byte, 32)
		binary.BigEndian.PutUint32(body[28:], uint32(i))
		if bad[i] {
			body[0] = 0xee
		}
		return append(b, frame(TypeEchoRequest, xid, body)...), nil
	}
}

// TestSendEncoded: thousands of messages, written in several chunks, each
// with its own xid; the switch's errors come back matched to the messages.
func TestSendEncoded(t *testing.T) {
	c, p := connected(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const n = 5000 // 200 KB: several FlushBytes
	bad := map[int]bool{0: true, 1234: true, n - 1: true}
	type result struct {
		errs []BatchError
		err  error
	}
	done := make(chan result, 1)
	go func() {
		errs, err := c.SendEncoded(ctx, n, echo(bad))
		done <- result{errs, err}
	}()
	msgs, bytes := answerBatch(p)
	r := <-done
	if r.err != nil || msgs != n || bytes != 40*n {
		t.Fatalf("switch got %d messages, %d bytes; SendEncoded: %v", msgs, bytes, r.err)
	}
	if len(r.errs) != len(bad) {
		t.Fatalf("errors %v, want one for each of %v", r.errs, bad)
	}
	for _, e := range r.errs {
		if !bad[e.Index] || e.Err.Type != 5 {
			t.Errorf("error for message %d: %v", e.Index, e.Err)
		}
	}
	// The batch's xids route nothing any more.
	c.mu.Lock()
	left := len(c.batches)
	c.mu.Unlock()
	if left != 0 {
		t.Errorf("%d batches still registered", left)
	}
}

// TestSendEncodedStopsOnEncodingError: what was encoded before the error
// is sent and answered (the barrier follows it), and the error returned.
func TestSendEncodedStopsOnEncodingError(t *testing.T) {
	c, p := connected(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	boom := errors.New("boom")
	enc := echo(map[int]bool{2: true})
	done := make(chan error, 1)
	var errs []BatchError
	go func() {
		var err error
		errs, err = c.SendEncoded(ctx, 10, func(b []byte, i int, xid uint32) ([]byte, error) {
			if i == 5 {
				return b, boom
			}
			return enc(b, i, xid)
		})
		done <- err
	}()
	msgs, _ := answerBatch(p)
	if err := <-done; !errors.Is(err, boom) || msgs != 5 || len(errs) != 1 || errs[0].Index != 2 {
		t.Errorf("%d messages sent, errors %v, error %v; want 5, message 2's, boom", msgs, errs, err)
	}
}

// TestSendPreEncoded: messages encoded with reserved xids, written in one
// go; errors matched to them.
func TestSendPreEncoded(t *testing.T) {
	c, p := connected(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const n = 100
	first := c.ReserveXids(n)
	var frames []byte
	enc := echo(map[int]bool{7: true})
	for i := range n {
		frames, _ = enc(frames, i, first+uint32(i))
	}
	if next := c.nextXid(); next-first < n {
		t.Fatalf("xid %d handed out within the reserved %d..%d", next, first, first+n-1)
	}
	done := make(chan error, 1)
	var errs []BatchError
	go func() {
		var err error
		errs, err = c.SendPreEncoded(ctx, first, n, frames)
		done <- err
	}()
	msgs, _ := answerBatch(p)
	if err := <-done; err != nil || msgs != n || len(errs) != 1 || errs[0].Index != 7 {
		t.Errorf("%d messages, errors %v, %v", msgs, errs, err)
	}
}

// TestReserveXidsSkipsZero: a range never holds xid 0, however the counter
// wraps.
func TestReserveXidsSkipsZero(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	c := NewConn(a, nil)
	defer c.Close()
	c.xid.Store(^uint32(0) - 3)
	first := c.ReserveXids(10)
	if first == 0 || first+9 < first {
		t.Errorf("range %d..%d wraps through 0", first, first+9)
	}
}

// TestRequestMultipartParts: each part reaches the caller as it arrives,
// before the next is sent; an error from the caller ends the request.
func TestRequestMultipartParts(t *testing.T) {
	c, p := connected(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := make(chan byte)
	done := make(chan error, 1)
	go func() {
		done <- c.RequestMultipartParts(ctx, Raw(TypeMultipartReq, []byte{0, 1, 0, 0, 0, 0, 0, 0}), func(m Message) error {
			got <- m.Raw[15]
			return nil
		})
	}()
	req := p.read()
	for i, flags := range []byte{1, 1, 0} {
		p.send(frame(TypeMultipartReply, xidOf(req), []byte{0, 1, 0, flags, 0, 0, 0, byte(i)}))
		if n := <-got; n != byte(i) {
			t.Fatalf("part %d arrived as %d", i, n)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	stop := errors.New("stop")
	go func() {
		done <- c.RequestMultipartParts(ctx, Raw(TypeMultipartReq, []byte{0, 1, 0, 0, 0, 0, 0, 0}), func(Message) error { return stop })
	}()
	req = p.read()
	p.send(frame(TypeMultipartReply, xidOf(req), []byte{0, 1, 0, 1, 0, 0, 0, 0}))
	if err := <-done; !errors.Is(err, stop) {
		t.Errorf("error %v, want the caller's", err)
	}
}
