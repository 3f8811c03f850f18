package ofconn

import (
	"context"
	"fmt"
	"slices"

	"github.com/contiv/libOpenflow/util"
	"go.uber.org/zap"
)

// FlushBytes is how much SendEncoded encodes before it writes: the switch
// starts on the first messages of a large batch while the rest are still
// being encoded.
const FlushBytes = 64 << 10

// Encoder appends message i of a batch, whole, with its xid, to b. On error
// it returns b as it got it.
type Encoder func(b []byte, i int, xid uint32) ([]byte, error)

// SendEncoded is SendBatch for messages encoded straight into bytes: it
// reserves n xids, encodes message i with the i-th (enc), writes what is
// encoded every FlushBytes, then a barrier, and returns the switch's error
// replies matched to the messages by xid. An encoding error stops the
// batch; what was written is still followed by the barrier, so that the
// replies to it are collected, and the error is returned with them.
func (c *Conn) SendEncoded(ctx context.Context, n int, enc Encoder) ([]BatchError, error) {
	if n <= 0 {
		return nil, nil
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	b, err := c.startBatch(n)
	if err != nil {
		return nil, err
	}
	defer b.release()
	// Sized for the batch when it is small: a per-MAC update to 1,000
	// switches sends a few hundred bytes each, and 80 KB buffers for them
	// made the garbage collector the fan-out's main cost.
	buf := make([]byte, 0, min(FlushBytes+FlushBytes/4, 160*n+64))
	var encErr error
	for i := range n {
		next, err := enc(buf, i, b.first+uint32(i))
		if err != nil {
			encErr = fmt.Errorf("encoding message %d of %d: %w", i, n, err)
			break
		}
		buf = next
		if len(buf) >= FlushBytes {
			if err := c.writeFramesCtx(ctx, buf); err != nil {
				return nil, err
			}
			buf = buf[:0]
		}
	}
	errs, err := b.finish(ctx, buf)
	if err == nil {
		err = encErr
	}
	return errs, err
}

// ReserveXids reserves n consecutive xids, none of them 0, for messages
// encoded ahead of time (SendPreEncoded), and returns the first.
func (c *Conn) ReserveXids(n int) uint32 {
	for {
		last := c.xid.Add(uint32(n))
		if first := last - uint32(n) + 1; first != 0 && first <= last {
			return first
		}
		// The range wrapped through 0: the counter is past it now.
	}
}

// SendPreEncoded writes frames, n whole messages with the xids first,
// first+1, ... (from ReserveXids), in one go, then a barrier, and returns
// the switch's error replies matched to the messages.
func (c *Conn) SendPreEncoded(ctx context.Context, first uint32, n int, frames []byte) ([]BatchError, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	b := &rawBatch{c: c, first: first, n: n}
	if err := b.register(); err != nil {
		return nil, err
	}
	defer b.release()
	return b.finish(ctx, frames)
}

// rawBatch is a batch of pre-encoded messages whose replies are routed to
// one call by xid: the messages' xids as one range (a map entry each would
// cost more than encoding a flow-mod), the barrier's as a pending request.
type rawBatch struct {
	c       *Conn
	first   uint32 // xid of message 0
	n       int
	barrier uint32
	cl      *call
}

// xidRange routes the replies to xids first..first+n-1 to cl.
type xidRange struct {
	first, n uint32
	cl       *call
}

// batchOf is the call of the batch xid belongs to, or nil; c.mu is held.
// There are as many batches as concurrent SendEncoded calls: a few.
func (c *Conn) batchOf(xid uint32) *call {
	for _, r := range c.batches {
		if xid-r.first < r.n {
			return r.cl
		}
	}
	return nil
}

func (c *Conn) startBatch(n int) (*rawBatch, error) {
	b := &rawBatch{c: c, first: c.ReserveXids(n), n: n}
	return b, b.register()
}

// register routes the replies to the messages and to the barrier to b.
func (b *rawBatch) register() error {
	b.barrier = b.c.nextXid()
	b.cl = newCall()
	if err := b.c.register(b.cl, b.barrier); err != nil {
		return err
	}
	b.c.mu.Lock()
	b.c.batches = append(b.c.batches, xidRange{b.first, uint32(b.n), b.cl})
	b.c.mu.Unlock()
	return nil
}

func (b *rawBatch) release() {
	b.c.unregister(b.barrier)
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	b.c.batches = slices.DeleteFunc(b.c.batches, func(r xidRange) bool { return r.cl == b.cl })
}

// finish writes rest and the barrier and gathers the error replies until
// the barrier's reply.
func (b *rawBatch) finish(ctx context.Context, rest []byte) ([]BatchError, error) {
	barrier, _ := Marshal(&rawMessage{typ: TypeBarrierReq}, b.barrier)
	if err := b.c.writeFramesCtx(ctx, rest, barrier); err != nil {
		return nil, err
	}
	var errs []BatchError
	for {
		got, err := b.c.wait(ctx, b.cl)
		if err != nil {
			return errs, err
		}
		for _, m := range got {
			if m.Xid == b.barrier {
				if m.Type == TypeBarrierReply {
					return errs, nil
				}
				if m.Type == TypeError {
					e, _ := DecodeError(m.Raw)
					return errs, fmt.Errorf("barrier after the batch: %w", e)
				}
				continue
			}
			if m.Type != TypeError {
				b.c.log.Debug("ignoring a non-error reply within a batch", zap.Uint8("type", m.Type))
				continue
			}
			e, derr := DecodeError(m.Raw)
			if derr != nil {
				return errs, derr
			}
			errs = append(errs, BatchError{Index: int(m.Xid - b.first), Err: e})
		}
	}
}

// RequestMultipartParts is RequestMultipart handing each part of the reply
// to part, in order, as it arrives, rather than all of them at the end: the
// caller works on a large reply (a flow dump) while the switch still sends
// it. RequestMultipart's bounds apply. An error from part ends the request
// (the parts after it are dropped) and is returned.
func (c *Conn) RequestMultipartParts(ctx context.Context, msg util.Message, part func(Message) error) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	xid := c.nextXid()
	b, err := Marshal(msg, xid)
	if err != nil {
		return err
	}
	cl := newCall()
	cl.maxParts, cl.maxBytes = c.maxParts, c.maxBytes
	if c.budget != nil {
		defer c.budget.release(cl)
	}
	if err := c.register(cl, xid); err != nil {
		return err
	}
	defer c.unregister(xid)
	if err := c.writeFramesCtx(ctx, b); err != nil {
		return err
	}
	for {
		msgs, err := c.wait(ctx, cl)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.Type == TypeError {
				e, derr := DecodeError(m.Raw)
				if derr != nil {
					return derr
				}
				return e
			}
			if err := part(m); err != nil {
				return err
			}
			if m.Type != TypeMultipartReply || m.MultipartFlags()&MultipartReplyMore == 0 {
				return nil
			}
		}
	}
}

// Closer appends the last message of an Exchange, with xid, to b: the
// request whose reply ends the wait. encErr is why encoding the others
// stopped (nil: all were encoded), so that it can write a discard where
// it would have written a commit.
type Closer func(b []byte, xid uint32, encErr error) []byte

// Exchange is one round trip for a batch: it writes n messages, message i
// encoded by enc with xid first+i, then the one end appends (index n), all
// in one write when they fit in FlushBytes, and waits only for the reply
// to that last message, which must be a request the switch answers (a
// barrier, a bundle commit). A switch handles a connection's messages in
// order, so every error reply to the others has arrived by then. It
// returns the last reply (an error reply too, as it came) and the error
// replies to the others, by index. An encoding error stops the batch: what
// was encoded is still sent, followed by end, and the error is returned.
func (c *Conn) Exchange(ctx context.Context, n int, enc Encoder, end Closer) (last Message, errs []BatchError, err error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	b := &rawBatch{c: c, first: c.ReserveXids(n + 1), n: n + 1, cl: newCall()}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return Message{}, nil, c.err
	}
	c.batches = append(c.batches, xidRange{b.first, uint32(b.n), b.cl})
	c.mu.Unlock()
	defer b.release()
	buf := make([]byte, 0, min(FlushBytes+FlushBytes/4, 160*n+128))
	var encErr error
	for i := range n {
		next, err := enc(buf, i, b.first+uint32(i))
		if err != nil {
			encErr = fmt.Errorf("encoding message %d of %d: %w", i, n, err)
			break
		}
		buf = next
		if len(buf) >= FlushBytes {
			if err := c.writeFramesCtx(ctx, buf); err != nil {
				return Message{}, nil, err
			}
			buf = buf[:0]
		}
	}
	buf = end(buf, b.first+uint32(n), encErr)
	if err := c.writeFramesCtx(ctx, buf); err != nil {
		return Message{}, nil, err
	}
	last, errs, err = b.collect(ctx, n)
	if err == nil {
		err = encErr
	}
	return last, errs, err
}

// collect gathers the error replies to messages 0..last-1 of the batch
// until the reply to message last, which it returns.
func (b *rawBatch) collect(ctx context.Context, last int) (Message, []BatchError, error) {
	var errs []BatchError
	for {
		got, err := b.c.wait(ctx, b.cl)
		if err != nil {
			return Message{}, errs, err
		}
		for _, m := range got {
			i := int(m.Xid - b.first)
			if i == last {
				return m, errs, nil
			}
			if m.Type != TypeError {
				continue // a bundle open's reply
			}
			e, derr := DecodeError(m.Raw)
			if derr != nil {
				return Message{}, errs, derr
			}
			errs = append(errs, BatchError{Index: i, Err: e})
		}
	}
}

// AppendBarrier appends a barrier request with xid to b.
func AppendBarrier(b []byte, xid uint32) []byte {
	return append(b, Version, TypeBarrierReq, 0, HeaderLen, byte(xid>>24), byte(xid>>16), byte(xid>>8), byte(xid))
}
