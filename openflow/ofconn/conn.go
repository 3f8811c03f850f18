// Package ofconn is an OpenFlow 1.3 connection to one switch: framing, the
// hello/features handshake, requests matched to their replies by xid, echo
// answers, and the asynchronous messages (packet-in, port-status,
// flow-removed) on a bounded channel.
//
// It replaces libOpenflow's util.MessageStream, which parses with many
// goroutines (replies arrive out of order) and reuses read buffers that parsed
// packets still point into. Here one goroutine reads each message into a
// buffer of its own and decodes only what it must, with its own decoders;
// libOpenflow only builds the outgoing messages.
package ofconn

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/contiv/libOpenflow/util"
	"go.uber.org/zap"
)

// AsyncQueue is how many asynchronous messages wait for the consumer before
// new ones are dropped (and counted): the reader never blocks on a slow
// consumer, since replies behind it would stall. Its buffer is allocated
// with each connection (64 bytes a message), so it is kept to a little more
// than a controller's packet-in burst per switch.
const AsyncQueue = 256

// DefaultTimeout bounds a request whose context has no deadline: a switch
// that never answers must not hang its caller.
const DefaultTimeout = time.Minute

// WriteTimeout bounds a write whose context has no deadline (echo replies,
// hellos): a peer that stops reading is dropped instead of holding the
// writer, and everything queued behind it, for ever.
const WriteTimeout = 10 * time.Second

// Bounds on one multipart reply (a flow dump): a peer that never ends one
// is dropped instead of filling the memory. OVS splits replies in parts of
// at most 64 KiB; 64 MiB holds several hundred thousand flows.
const (
	MaxMultipartBytes = 64 << 20
	MaxMultipartParts = 1 << 14
)

// ErrReplyTooLarge means a multipart reply went past MaxMultipartBytes or
// MaxMultipartParts; the connection is closed.
var ErrReplyTooLarge = errors.New("multipart reply too large")

// Buffers: every connection keeps small ones, a thousand switches' worth
// of large ones being most of a controller's memory; a large message is
// read straight into its frame, and a batch larger than the buffer is
// written in one writev (writeFramesCtx). A peer that has not completed the
// handshake may send only small messages (hello, features reply, echo,
// error).
const (
	smallBuffer       = 4 << 10
	maxHandshakeFrame = 4 << 10
)

// Echo replies wait in a bounded queue for the one goroutine that writes
// them: a peer sending echo requests without reading the replies costs at
// most echoQueueBytes, and the extra requests are dropped (and counted).
const (
	echoQueue      = 8
	echoQueueBytes = 64 << 10
)

func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, DefaultTimeout)
}

// ErrClosed is returned by requests on a connection that is closed; the
// error wraps the reason the connection ended.
var ErrClosed = errors.New("OpenFlow connection closed")

// Conn is an OpenFlow 1.3 connection. It is safe for concurrent use.
type Conn struct {
	nc  net.Conn
	log *zap.Logger

	wmu sync.Mutex // guards w and the write deadline
	w   *bufio.Writer
	// lastRead: when the last message arrived (unix nanoseconds), any
	// message being proof of life (LastRead).
	lastRead atomic.Int64

	echoQ       chan []byte  // echo replies waiting for echoLoop
	echoBytes   atomic.Int64 // bytes in echoQ and being written
	echoDropped atomic.Uint64

	writeTimeout       time.Duration // WriteTimeout; tests shorten it
	maxParts, maxBytes int           // MaxMultipartParts, MaxMultipartBytes
	budget             *ReplyBudget  // shared with other connections, or nil

	xid atomic.Uint32

	mu      sync.Mutex
	pending map[uint32]*call
	// pendingPeak: the most entries pending held since it was last made;
	// Go maps never shrink, so an emptied map that grew big is remade.
	pendingPeak int
	batches     []xidRange // SendEncoded's batches, by xid range (raw.go)
	err         error      // why the connection ended; set once

	async    chan Message
	dropped  atomic.Uint64
	done     chan struct{}
	started  bool // the reader runs (and will call shutdown)
	shutOnce sync.Once

	datapathID uint64
}

// call collects the replies to one request (several for a multipart request,
// any number of errors for a batch).
type call struct {
	mu     sync.Mutex
	msgs   []Message
	notify chan struct{} // capacity 1: "something was appended"
	// The bounds of a multipart reply (0: none) and what came so far.
	maxParts, maxBytes int
	parts, bytes       int
	evicted            bool // by the ReplyBudget, guarded by its mutex
}

func newCall() *call { return &call{notify: make(chan struct{}, 1)} }

// deliver hands m to the waiter; it fails once the replies exceed the
// call's bounds.
func (c *call) deliver(m Message) error {
	c.mu.Lock()
	c.parts++
	c.bytes += len(m.Raw)
	if (c.maxParts > 0 && c.parts > c.maxParts) || (c.maxBytes > 0 && c.bytes > c.maxBytes) {
		c.mu.Unlock()
		return fmt.Errorf("%w: more than %d parts or %d bytes (xid %d)", ErrReplyTooLarge, c.maxParts, c.maxBytes, m.Xid)
	}
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
	return nil
}

func (c *call) take() []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.msgs
	c.msgs = nil
	return m
}

// Dial connects to a switch ("unix:PATH" for a bridge's management socket,
// "tcp:IP:PORT" for a passive listener) and performs the handshake.
func Dial(ctx context.Context, target string, log *zap.Logger) (*Conn, error) {
	if log == nil {
		log = zap.NewNop()
	}
	network, addr, ok := strings.Cut(target, ":")
	if !ok || addr == "" || (network != "unix" && network != "tcp") {
		return nil, fmt.Errorf("OpenFlow target %q: want unix:PATH or tcp:IP:PORT", target)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", target, err)
	}
	c := NewConn(nc, log.With(zap.String("switch", target)))
	if err := c.Handshake(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("OpenFlow handshake with %s: %w", target, err)
	}
	return c, nil
}

// NewConn wraps an established connection (one the controller accepted, or
// a TLS connection); call Handshake before anything else.
func NewConn(nc net.Conn, log *zap.Logger) *Conn {
	if log == nil {
		log = zap.NewNop()
	}
	BridgeLogrus(log)
	c := &Conn{
		nc:           nc,
		log:          log,
		w:            bufio.NewWriterSize(nc, smallBuffer),
		pending:      map[uint32]*call{},
		async:        make(chan Message, AsyncQueue),
		echoQ:        make(chan []byte, echoQueue),
		done:         make(chan struct{}),
		writeTimeout: WriteTimeout,
		maxParts:     MaxMultipartParts,
		maxBytes:     MaxMultipartBytes,
	}
	return c
}

// DatapathID is the switch's datapath ID, known after Handshake.
func (c *Conn) DatapathID() uint64 { return c.datapathID }

// RemoteAddr is the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// Async delivers packet-ins, port-status, flow-removed and unsolicited
// experimenter messages. It is closed when the connection ends. Messages that
// find it full are dropped and counted (Dropped).
func (c *Conn) Async() <-chan Message { return c.async }

// Dropped counts asynchronous messages dropped because Async was full.
func (c *Conn) Dropped() uint64 { return c.dropped.Load() }

// EchoDropped counts echo requests left unanswered because the replies
// already queued were not being read.
func (c *Conn) EchoDropped() uint64 { return c.echoDropped.Load() }

// Done is closed when the connection has ended; Err then says why.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err is why the connection ended, or nil while it is up.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close ends the connection. Requests in flight fail with ErrClosed.
func (c *Conn) Close() error {
	c.fail(fmt.Errorf("%w: closed by us", ErrClosed))
	c.mu.Lock()
	started := c.started
	c.mu.Unlock()
	if started {
		<-c.done
	} else {
		c.shutdown()
	}
	return nil
}

// fail records why the connection ended (the first reason wins) and closes
// the socket, which stops the reader.
func (c *Conn) fail(err error) {
	c.mu.Lock()
	first := c.err == nil
	if first {
		c.err = err
	}
	c.mu.Unlock()
	if first {
		c.nc.Close()
	}
}

// Handshake exchanges hellos (OpenFlow 1.3 only), starts the reader and asks
// for the datapath ID.
func (c *Conn) Handshake(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	stop := c.deadline(ctx, true)
	err := c.hello()
	stop()
	if err != nil {
		c.fail(fmt.Errorf("%w: handshake failed: %v", ErrClosed, err))
		c.shutdown()
		return err
	}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		c.shutdown()
		return c.err
	}
	c.started = true
	c.mu.Unlock()
	go c.readLoop()
	go c.echoLoop()

	reply, err := c.Request(ctx, &rawMessage{typ: TypeFeaturesReq})
	if err != nil {
		return fmt.Errorf("features request: %w", err)
	}
	if reply.Type != TypeFeaturesReply || len(reply.Raw) < 16 {
		return fmt.Errorf("features request: unexpected reply of type %d and %d bytes", reply.Type, len(reply.Raw))
	}
	c.datapathID = binary.BigEndian.Uint64(reply.Raw[8:])
	c.log.Debug("OpenFlow connection up", zap.String("dpid", fmt.Sprintf("%016x", c.datapathID)))
	return nil
}

// hello sends our hello (version 1.3, with a version bitmap) and reads the
// switch's, before the reader goroutine exists.
func (c *Conn) hello() error {
	hello := make([]byte, 16)
	hello[0], hello[1] = Version, TypeHello
	binary.BigEndian.PutUint16(hello[2:], 16)
	binary.BigEndian.PutUint32(hello[4:], c.nextXid())
	binary.BigEndian.PutUint16(hello[8:], 1) // OFPHET_VERSIONBITMAP
	binary.BigEndian.PutUint16(hello[10:], 8)
	binary.BigEndian.PutUint32(hello[12:], 1<<Version)
	if err := c.writeFrames(hello); err != nil {
		return fmt.Errorf("sending hello: %w", err)
	}
	for {
		frame, err := readFrame(c.nc, maxHandshakeFrame)
		if err != nil {
			return fmt.Errorf("waiting for the switch's hello: %w", err)
		}
		switch frame[1] {
		case TypeHello:
			if !helloAccepts13(frame) {
				c.sendHelloFailed(frame)
				return fmt.Errorf("switch does not speak OpenFlow 1.3 (its hello has version 0x%02x)", frame[0])
			}
			return nil
		case TypeError:
			if e, err := DecodeError(frame); err == nil {
				return e
			}
			return errors.New("switch sent a malformed error instead of hello")
		case TypeEchoRequest:
			if err := c.writeFrames(echoReply(frame)); err != nil {
				return err
			}
		default:
			return fmt.Errorf("switch sent message type %d before hello", frame[1])
		}
	}
}

// helloAccepts13 applies OpenFlow's version negotiation: with a version
// bitmap, version 1.3 must be in it; without, the switch's version must be
// at least 1.3 (and we then both speak 1.3).
func helloAccepts13(frame []byte) bool {
	for b := frame[HeaderLen:]; len(b) >= 4; {
		typ, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if n < 4 || n > len(b) {
			break
		}
		if typ == 1 { // OFPHET_VERSIONBITMAP: bit v of the first word is version v
			return n >= 8 && binary.BigEndian.Uint32(b[4:])&(1<<Version) != 0
		}
		padded := (n + 7) / 8 * 8
		if padded >= len(b) {
			break
		}
		b = b[padded:]
	}
	return frame[0] >= Version
}

func (c *Conn) sendHelloFailed(hello []byte) {
	msg := make([]byte, 12, 12+len(hello))
	msg[0], msg[1] = Version, TypeError
	binary.BigEndian.PutUint32(msg[4:], binary.BigEndian.Uint32(hello[4:]))
	binary.BigEndian.PutUint16(msg[8:], 0) // OFPET_HELLO_FAILED
	binary.BigEndian.PutUint16(msg[10:], 0)
	msg = append(msg, "we speak OpenFlow 1.3 only"...)
	binary.BigEndian.PutUint16(msg[2:], uint16(len(msg)))
	c.writeFrames(msg)
}

func echoReply(req []byte) []byte {
	rep := append([]byte(nil), req...)
	rep[0], rep[1] = Version, TypeEchoReply
	return rep
}

// readLoop is the one reader: frame, decode, route. Until the features
// reply it reads through a small buffer and accepts only small messages.
func (c *Conn) readLoop() {
	defer c.shutdown()
	r := bufio.NewReaderSize(c.nc, smallBuffer)
	limit := maxHandshakeFrame
	for {
		frame, err := readFrame(r, limit)
		if err != nil {
			c.fail(fmt.Errorf("%w: reading from the switch: %v", ErrClosed, err))
			return
		}
		c.lastRead.Store(time.Now().UnixNano())
		m := Decode(frame)
		if limit < maxFrame && m.Type == TypeFeaturesReply {
			limit = maxFrame
		}
		c.dispatch(m)
	}
}

// echoLoop writes the queued echo replies until the connection ends.
func (c *Conn) echoLoop() {
	for {
		select {
		case rep := <-c.echoQ:
			err := c.writeFrames(rep)
			c.echoBytes.Add(-int64(len(rep)))
			if err != nil {
				c.log.Debug("answering echo request", zap.Error(err))
				return
			}
		case <-c.done:
			return
		}
	}
}

// queueEcho queues an echo reply, or drops it when the queue is full.
func (c *Conn) queueEcho(rep []byte) {
	n := int64(len(rep))
	if c.echoBytes.Add(n) <= echoQueueBytes {
		select {
		case c.echoQ <- rep:
			return
		default:
		}
	}
	c.echoBytes.Add(-n)
	// Counted (EchoDropped); a line per connection would let a peer that
	// reconnects fill the log.
	if c.echoDropped.Add(1)%1000 == 1 {
		c.log.Debug("echo replies not read by the peer: dropping echo requests", zap.Uint64("dropped", c.echoDropped.Load()))
	}
}

// shutdown runs when the reader stops (or when it never started): every
// waiter is woken (it sees c.err) and the async channel closes.
func (c *Conn) shutdown() {
	c.shutOnce.Do(c.doShutdown)
}

func (c *Conn) doShutdown() {
	c.mu.Lock()
	calls := c.pending
	c.pending = map[uint32]*call{}
	c.mu.Unlock()
	close(c.done)
	for _, cl := range calls {
		select {
		case cl.notify <- struct{}{}:
		default:
		}
	}
	close(c.async)
}

func (c *Conn) dispatch(m Message) {
	if m.Version != Version {
		c.log.Warn("dropping a message of another OpenFlow version", zap.Uint8("version", m.Version), zap.Uint8("type", m.Type))
		return
	}
	switch m.Type {
	case TypeEchoRequest:
		// Written by echoLoop: the reader must never wait on a write, or
		// a switch blocked on its own writes would deadlock us.
		c.queueEcho(echoReply(m.Raw))
		return
	case TypeHello:
		c.log.Debug("ignoring a repeated hello")
		return
	case TypePacketIn, TypeFlowRemoved, TypePortStatus:
		if m.ParseErr != nil {
			c.log.Debug("asynchronous message not parsed", zap.Uint8("type", m.Type), zap.Error(m.ParseErr))
		}
		c.queueAsync(m)
		return
	}
	c.mu.Lock()
	cl := c.pending[m.Xid]
	if cl == nil {
		cl = c.batchOf(m.Xid)
	}
	c.mu.Unlock()
	switch {
	case cl != nil:
		if err := c.deliver(cl, m); err != nil {
			c.log.Debug("closing the connection", zap.Error(err)) // the requester reports it
			c.fail(fmt.Errorf("%w: %w", ErrClosed, err))
		}
	case m.Type == TypeExperimenter:
		c.queueAsync(m)
	case m.Type == TypeError:
		if e, err := DecodeError(m.Raw); err == nil {
			c.log.Warn("switch sent an error for no pending request", zap.Uint32("xid", m.Xid), zap.Error(e))
		} else {
			c.log.Warn("dropping a malformed error message", zap.Error(err))
		}
	default:
		c.log.Debug("dropping an unexpected message", zap.Uint8("type", m.Type), zap.Uint32("xid", m.Xid))
	}
}

// deliver hands m to cl and charges a multipart reply to the budget; an
// error means this connection must close. A budget overrun closes the
// connection with the largest reply, which may be another.
func (c *Conn) deliver(cl *call, m Message) error {
	if err := cl.deliver(m); err != nil {
		return err
	}
	if c.budget == nil || cl.maxBytes == 0 {
		return nil
	}
	victim, err := c.budget.take(c, cl, len(m.Raw))
	switch victim {
	case nil:
		return nil
	case c:
		return err
	}
	victim.log.Debug("closing the connection", zap.Error(err))
	victim.fail(fmt.Errorf("%w: %w", ErrClosed, err))
	return nil
}

func (c *Conn) queueAsync(m Message) {
	select {
	case c.async <- m:
	default:
		if c.dropped.Add(1)%1000 == 1 {
			c.log.Warn("asynchronous message queue full: dropping", zap.Uint8("type", m.Type), zap.Uint64("dropped", c.dropped.Load()))
		}
	}
}

func (c *Conn) nextXid() uint32 {
	for {
		if x := c.xid.Add(1); x != 0 {
			return x
		}
	}
}

// deadline applies ctx's deadline and cancellation to the socket's writes
// (and reads, during the handshake); the returned func lifts them. A write
// without a deadline gets writeTimeout. An interrupted write leaves a partial
// frame behind, so writeFrames closes the connection when one fails.
func (c *Conn) deadline(ctx context.Context, read bool) func() {
	set := c.nc.SetWriteDeadline
	if read {
		set = c.nc.SetDeadline
	}
	d, ok := ctx.Deadline()
	if !ok && !read {
		d, ok = time.Now().Add(c.writeTimeout), true
	}
	if ok {
		set(d)
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		set(time.Unix(1, 0))
		close(fired)
	})
	return func() {
		if !stop() {
			<-fired // it ran: let it finish before lifting the deadline
		}
		set(time.Time{})
	}
}

// writeFrames writes whole frames and flushes them.
func (c *Conn) writeFrames(frames ...[]byte) error {
	return c.writeFramesCtx(context.Background(), frames...)
}

func (c *Conn) writeFramesCtx(ctx context.Context, frames ...[]byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.Err(); err != nil {
		return err
	}
	stop := c.deadline(ctx, false)
	defer stop()
	total := 0
	for _, f := range frames {
		total += len(f)
	}
	if total > c.w.Size() {
		// w is empty (every write flushes): a batch too big for it goes
		// out straight from the frames, in one writev where possible.
		bufs := append(net.Buffers(nil), frames...)
		if _, err := bufs.WriteTo(c.nc); err != nil {
			c.fail(fmt.Errorf("%w: writing to the switch: %v", ErrClosed, err))
			return fmt.Errorf("writing to the switch: %w", err)
		}
		return nil
	}
	for _, f := range frames {
		if _, err := c.w.Write(f); err != nil {
			c.fail(fmt.Errorf("%w: writing to the switch: %v", ErrClosed, err))
			return fmt.Errorf("writing to the switch: %w", err)
		}
	}
	if err := c.w.Flush(); err != nil {
		c.fail(fmt.Errorf("%w: writing to the switch: %v", ErrClosed, err))
		return fmt.Errorf("writing to the switch: %w", err)
	}
	return nil
}

// Marshal encodes msg with xid, fixing the header's version and length. A
// bundle-add's inner message gets the same xid: OVS rejects every add whose
// inner xid differs (and still commits the empty bundle).
func Marshal(msg util.Message, xid uint32) ([]byte, error) {
	b, err := msg.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encoding OpenFlow message: %w", err)
	}
	if len(b) < HeaderLen {
		return nil, fmt.Errorf("encoding OpenFlow message: %d bytes is shorter than a header", len(b))
	}
	if len(b) > 0xffff {
		return nil, fmt.Errorf("encoding OpenFlow message: %d bytes is longer than OpenFlow allows", len(b))
	}
	b[0] = Version
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	binary.BigEndian.PutUint32(b[4:], xid)
	if b[1] == TypeExperimenter && len(b) >= 32 && binary.BigEndian.Uint32(b[8:]) == ExperimenterONF &&
		binary.BigEndian.Uint32(b[12:]) == bundleAddType {
		binary.BigEndian.PutUint32(b[28:], xid)
	}
	return b, nil
}

const (
	bundleCtrlType uint32 = 2300
	bundleAddType  uint32 = 2301
)

// register makes replies with xid reach cl.
func (c *Conn) register(cl *call, xids ...uint32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	for _, x := range xids {
		c.pending[x] = cl
	}
	c.pendingPeak = max(c.pendingPeak, len(c.pending))
	return nil
}

func (c *Conn) unregister(xids ...uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, x := range xids {
		delete(c.pending, x)
	}
	if len(c.pending) == 0 && c.pendingPeak > shrinkPending {
		c.pending, c.pendingPeak = map[uint32]*call{}, 0
	}
}

// shrinkPending: past this many requests pending at once (a batch of
// flow-mods), the emptied map is remade rather than kept at its peak size.
const shrinkPending = 64

// wait blocks until cl has messages, the connection ends or ctx is done.
func (c *Conn) wait(ctx context.Context, cl *call) ([]Message, error) {
	for {
		if m := cl.take(); len(m) > 0 {
			return m, nil
		}
		select {
		case <-cl.notify:
		case <-c.done:
			if m := cl.take(); len(m) > 0 {
				return m, nil
			}
			return nil, c.Err()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Send writes msg with a fresh xid and returns the xid; replies to it
// (errors included) are not waited for and reach no one.
func (c *Conn) Send(ctx context.Context, msg util.Message) (uint32, error) {
	xid := c.nextXid()
	b, err := Marshal(msg, xid)
	if err != nil {
		return 0, err
	}
	return xid, c.writeFramesCtx(ctx, b)
}

// Request sends msg and waits for its reply. An error reply is returned as
// *Error (with the message).
func (c *Conn) Request(ctx context.Context, msg util.Message) (Message, error) {
	msgs, err := c.request(ctx, msg, false)
	if err != nil {
		return Message{}, err
	}
	return msgs[0], nil
}

// RequestMultipart sends a multipart request and gathers every part of the
// reply (until one comes without the MORE flag).
func (c *Conn) RequestMultipart(ctx context.Context, msg util.Message) ([]Message, error) {
	return c.request(ctx, msg, true)
}

func (c *Conn) request(ctx context.Context, msg util.Message, multipart bool) ([]Message, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	xid := c.nextXid()
	b, err := Marshal(msg, xid)
	if err != nil {
		return nil, err
	}
	cl := newCall()
	if multipart {
		cl.maxParts, cl.maxBytes = c.maxParts, c.maxBytes
		if c.budget != nil {
			defer c.budget.release(cl)
		}
	}
	if err := c.register(cl, xid); err != nil {
		return nil, err
	}
	defer c.unregister(xid)
	if err := c.writeFramesCtx(ctx, b); err != nil {
		return nil, err
	}
	var parts []Message
	for {
		msgs, err := c.wait(ctx, cl)
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			if m.Type == TypeError {
				e, derr := DecodeError(m.Raw)
				if derr != nil {
					return nil, derr
				}
				return []Message{m}, e
			}
			parts = append(parts, m)
			if !multipart || m.Type != TypeMultipartReply || m.MultipartFlags()&MultipartReplyMore == 0 {
				return parts, nil
			}
		}
	}
}

// Barrier sends a barrier request and waits for its reply: every message
// sent before it has then been processed (and answered, if it failed).
func (c *Conn) Barrier(ctx context.Context) error {
	m, err := c.Request(ctx, &rawMessage{typ: TypeBarrierReq})
	if err != nil {
		return fmt.Errorf("barrier: %w", err)
	}
	if m.Type != TypeBarrierReply {
		return fmt.Errorf("barrier: unexpected reply of type %d", m.Type)
	}
	return nil
}

// LastRead is when the last message of any kind arrived from the switch
// (zero before the first): a switch that talks is alive, whether or not
// its echo replies are read in time.
func (c *Conn) LastRead() time.Time {
	if n := c.lastRead.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Echo sends an echo request and waits for the reply: a liveness check.
func (c *Conn) Echo(ctx context.Context) error {
	m, err := c.Request(ctx, &rawMessage{typ: TypeEchoRequest})
	if err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	if m.Type != TypeEchoReply {
		return fmt.Errorf("echo: unexpected reply of type %d", m.Type)
	}
	return nil
}

// BatchError is the switch's error reply to one message of a batch.
type BatchError struct {
	Index int // into the batch
	Err   *Error
}

// SendBatch writes msgs in order, then a barrier, and returns the error
// replies the switch sent for any of them (OpenFlow answers every message
// before the barrier's reply). The returned error is for the connection.
func (c *Conn) SendBatch(ctx context.Context, msgs []util.Message) ([]BatchError, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	xids := make([]uint32, len(msgs))
	index := make(map[uint32]int, len(msgs))
	frames := make([][]byte, 0, len(msgs)+1)
	for i, m := range msgs {
		xids[i] = c.nextXid()
		index[xids[i]] = i
		b, err := Marshal(m, xids[i])
		if err != nil {
			return nil, fmt.Errorf("message %d of the batch: %w", i, err)
		}
		frames = append(frames, b)
	}
	barrierXid := c.nextXid()
	barrier, _ := Marshal(&rawMessage{typ: TypeBarrierReq}, barrierXid)
	frames = append(frames, barrier)

	cl := newCall()
	all := append(xids, barrierXid)
	if err := c.register(cl, all...); err != nil {
		return nil, err
	}
	defer c.unregister(all...)
	if err := c.writeFramesCtx(ctx, frames...); err != nil {
		return nil, err
	}
	var errs []BatchError
	for {
		got, err := c.wait(ctx, cl)
		if err != nil {
			return errs, err
		}
		for _, m := range got {
			if m.Xid == barrierXid {
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
				c.log.Debug("ignoring a non-error reply within a batch", zap.Uint8("type", m.Type))
				continue
			}
			e, derr := DecodeError(m.Raw)
			if derr != nil {
				return errs, derr
			}
			errs = append(errs, BatchError{Index: index[m.Xid], Err: e})
		}
	}
}

// rawMessage is a header-only (or raw-bodied) message: barrier, echo,
// features request.
type rawMessage struct {
	typ  uint8
	body []byte
}

func (m *rawMessage) Len() uint16 { return uint16(HeaderLen + len(m.body)) }

func (m *rawMessage) MarshalBinary() ([]byte, error) {
	b := make([]byte, HeaderLen, HeaderLen+len(m.body))
	b[0], b[1] = Version, m.typ
	b = append(b, m.body...)
	return b, nil
}

func (m *rawMessage) UnmarshalBinary(data []byte) error {
	return errors.New("rawMessage is only sent")
}

// Raw returns a message of type typ with body, for messages libOpenflow has
// no type for (the header's version, length and xid are filled in on send).
func Raw(typ uint8, body []byte) util.Message { return &rawMessage{typ: typ, body: body} }
