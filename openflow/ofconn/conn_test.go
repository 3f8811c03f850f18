package ofconn

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// peer plays a switch on the other end of a pipe, for the protocol cases
// OVS does not produce on demand (reordering, garbage, silence).
type peer struct {
	t  *testing.T
	nc net.Conn
}

func (p *peer) read() []byte {
	p.t.Helper()
	p.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	f, err := ReadFrame(p.nc)
	if err != nil {
		p.t.Fatalf("peer read: %v", err)
	}
	return f
}

func frame(typ uint8, xid uint32, body []byte) []byte {
	b := make([]byte, HeaderLen, HeaderLen+len(body))
	b[0], b[1] = Version, typ
	binary.BigEndian.PutUint32(b[4:], xid)
	b = append(b, body...)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}

func (p *peer) send(b []byte) {
	p.t.Helper()
	p.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := p.nc.Write(b); err != nil {
		p.t.Fatalf("peer write: %v", err)
	}
}

func xidOf(b []byte) uint32 { return binary.BigEndian.Uint32(b[4:]) }

// handshake plays the switch's side of the handshake.
func (p *peer) handshake() {
	p.t.Helper()
	if h := p.read(); h[1] != TypeHello || h[0] != Version {
		p.t.Fatalf("first message %x, want a 1.3 hello", h)
	}
	p.send(frame(TypeHello, 1, []byte{0, 1, 0, 8, 0, 0, 0, 0x10}))
	req := p.read()
	if req[1] != TypeFeaturesReq {
		p.t.Fatalf("after hello: type %d, want features request", req[1])
	}
	body := make([]byte, 24)
	binary.BigEndian.PutUint64(body, 0x1234)
	p.send(frame(TypeFeaturesReply, xidOf(req), body))
}

// connected returns a Conn that completed its handshake with a peer.
func connected(t *testing.T) (*Conn, *peer) {
	a, b := net.Pipe()
	p := &peer{t: t, nc: b}
	c := NewConn(a, zaptest.NewLogger(t))
	t.Cleanup(func() { c.Close(); b.Close() })
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- c.Handshake(ctx)
	}()
	p.handshake()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c.DatapathID() != 0x1234 {
		t.Fatalf("datapath ID %x", c.DatapathID())
	}
	return c, p
}

func TestRepliesRoutedByXid(t *testing.T) {
	c, p := connected(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	const n = 5
	var wg sync.WaitGroup
	results := make([]Message, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = c.Request(ctx, Raw(TypeEchoRequest, []byte{byte(i)}))
		}()
	}
	var reqs [][]byte
	for range n {
		reqs = append(reqs, p.read())
	}
	// Answer in reverse order, each echoing its request's data.
	for i := n - 1; i >= 0; i-- {
		p.send(frame(TypeEchoReply, xidOf(reqs[i]), reqs[i][8:]))
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || len(results[i].Raw) != 9 || results[i].Raw[8] != byte(i) {
			t.Errorf("request %d got %x, %v", i, results[i].Raw, errs[i])
		}
	}
}

func TestMultipartParts(t *testing.T) {
	c, p := connected(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan []Message)
	go func() {
		parts, err := c.RequestMultipart(ctx, Raw(TypeMultipartReq, []byte{0, 1, 0, 0, 0, 0, 0, 0}))
		if err != nil {
			t.Error(err)
		}
		done <- parts
	}()
	req := p.read()
	for i, flags := range []byte{1, 1, 0} {
		p.send(frame(TypeMultipartReply, xidOf(req), []byte{0, 1, 0, flags, 0, 0, 0, byte(i)}))
	}
	parts := <-done
	if len(parts) != 3 || parts[2].Raw[15] != 2 {
		t.Errorf("got %d parts", len(parts))
	}
}

func TestEchoAnsweredAndErrorsReturned(t *testing.T) {
	c, p := connected(t)
	p.send(frame(TypeEchoRequest, 77, []byte("ping")))
	if r := p.read(); r[1] != TypeEchoReply || xidOf(r) != 77 || string(r[8:]) != "ping" {
		t.Errorf("echo reply %x", r)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	errc := make(chan error)
	go func() {
		_, err := c.Request(ctx, Raw(TypeBarrierReq, nil))
		errc <- err
	}()
	req := p.read()
	p.send(frame(TypeError, xidOf(req), append([]byte{0, 5, 0, 3}, req...))) // FLOW_MOD_FAILED/OVERLAP
	var e *Error
	if err := <-errc; !errors.As(err, &e) || e.Type != 5 || e.Code != 3 {
		t.Errorf("error reply: %v", err)
	} else {
		t.Log(err)
	}

	go func() {
		_, err := c.Request(ctx, Raw(TypeBarrierReq, nil))
		errc <- err
	}()
	req = p.read()
	// An ONF experimenter error (a bundle error).
	p.send(frame(TypeError, xidOf(req), append([]byte{0xff, 0xff, 0x08, 0xfd, 0x4f, 0x4e, 0x46, 0x00}, req...)))
	if err := <-errc; !errors.As(err, &e) || e.Experimenter != ExperimenterONF || e.Code != 2301 {
		t.Errorf("experimenter error reply: %v", err)
	} else {
		t.Log(err)
	}
}

func TestMalformedMessagesDoNotStopTheConnection(t *testing.T) {
	c, p := connected(t)
	// A truncated packet-in, a port-status of garbage, an unknown
	// experimenter message and a message of another version.
	p.send(frame(TypePacketIn, 0, []byte{1, 2, 3}))
	p.send(frame(TypePortStatus, 0, []byte{9}))
	p.send(frame(TypeExperimenter, 0, []byte{0, 0, 0x23, 0x20, 0, 0, 0x99, 0x99}))
	bad := frame(TypeFlowRemoved, 0, nil)
	bad[0] = 1
	p.send(bad)
	for _, want := range []uint8{TypePacketIn, TypePortStatus, TypeExperimenter} {
		select {
		case m := <-c.Async():
			if m.Type != want {
				t.Errorf("async type %d, want %d", m.Type, want)
			}
			if want != TypeExperimenter && m.ParseErr == nil {
				t.Errorf("garbage of type %d parsed: %#v", want, m.Parsed)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no async message of type %d", want)
		}
	}
	// Still working.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() {
		req := p.read()
		p.send(frame(TypeBarrierReply, xidOf(req), nil))
	}()
	if err := c.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestPacketInParsed(t *testing.T) {
	c, p := connected(t)
	// buffer_id, total_len, reason, table, cookie; match in_port=10; pad;
	// an Ethernet frame.
	body := []byte{0xff, 0xff, 0xff, 0xff, 0, 42, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 1, 0, 12, 0x80, 0, 0, 4, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0}
	eth := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0, 0, 1, 0x08, 0x06}
	b := frame(TypePacketIn, 0, append(append(body, eth...), make([]byte, 28)...))
	p.send(b)
	select {
	case m := <-c.Async():
		got, ok := m.Parsed.(*PacketIn)
		if !ok || m.ParseErr != nil {
			t.Fatalf("packet-in not parsed: %v", m.ParseErr)
		}
		port, _ := got.InPort()
		if net.HardwareAddr(got.Data[6:12]).String() != "52:54:00:00:00:01" || got.TableID != 2 || got.Reason != 1 || port != 10 || got.TotalLen != 42 {
			t.Errorf("packet-in: %+v", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no packet-in")
	}
}

func TestBrokenFramingClosesWithReason(t *testing.T) {
	c, p := connected(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	errc := make(chan error)
	go func() {
		_, err := c.Request(ctx, Raw(TypeBarrierReq, nil))
		errc <- err
	}()
	p.read()
	p.send([]byte{4, 21, 0, 3, 0, 0, 0, 0}) // length 3 < header
	err := <-errc
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("request on a broken connection: %v", err)
	}
	t.Log(err)
	<-c.Done()
	if c.Err() == nil {
		t.Error("no reason recorded")
	}
	if _, ok := <-c.Async(); ok {
		t.Error("async channel still open")
	}
}

func TestRequestTimesOut(t *testing.T) {
	c, p := connected(t)
	go p.read() // swallow the request, never answer
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Request(ctx, Raw(TypeBarrierReq, nil)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("unanswered request: %v", err)
	}
}

func TestHelloWithoutVersion13(t *testing.T) {
	a, b := net.Pipe()
	p := &peer{t: t, nc: b}
	c := NewConn(a, zaptest.NewLogger(t))
	defer c.Close()
	errc := make(chan error)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		errc <- c.Handshake(ctx)
	}()
	p.read()
	hello := frame(TypeHello, 1, []byte{0, 1, 0, 8, 0, 0, 0, 0x02}) // bitmap: 1.0 only
	hello[0] = 6
	p.send(hello)
	if r := p.read(); r[1] != TypeError {
		t.Errorf("no HELLO_FAILED error sent: %x", r)
	}
	if err := <-errc; err == nil {
		t.Fatal("handshake with a 1.0-only switch succeeded")
	} else {
		t.Log(err)
	}
}

func TestHelloVersions(t *testing.T) {
	for _, c := range []struct {
		hello []byte
		ok    bool
	}{
		{frame(TypeHello, 1, nil), true}, // 1.3, no bitmap
		{func() []byte { f := frame(TypeHello, 1, nil); f[0] = 1; return f }(), false},
		{func() []byte { f := frame(TypeHello, 1, nil); f[0] = 6; return f }(), true},                               // newer: negotiate down
		{func() []byte { f := frame(TypeHello, 1, []byte{0, 1, 0, 8, 0, 0, 0, 0x52}); f[0] = 6; return f }(), true}, // 1.0, 1.3 and 1.5
		{func() []byte {
			f := frame(TypeHello, 1, []byte{0, 2, 0, 4, 0, 0, 0, 0, 0, 1, 0, 8, 0, 0, 0, 0x10})
			return f
		}(), true}, // unknown element first
		{func() []byte { f := frame(TypeHello, 1, []byte{0, 1, 0, 2}); return f }(), true}, // broken element: fall back to version
	} {
		if got := helloAccepts13(c.hello); got != c.ok {
			t.Errorf("hello %x: accepted %v, want %v", c.hello, got, c.ok)
		}
	}
}

func TestDialTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type result struct {
		c   *Conn
		err error
	}
	dialed := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := Dial(ctx, "tcp:"+l.Addr().String(), zaptest.NewLogger(t))
		dialed <- result{c, err}
	}()
	nc, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	p := &peer{t: t, nc: nc}
	p.handshake()
	r := <-dialed
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.c.Close()
	if r.c.DatapathID() != 0x1234 {
		t.Errorf("datapath ID %x", r.c.DatapathID())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() {
		f, err := ReadFrame(nc)
		if err == nil {
			nc.Write(frame(TypeBarrierReply, xidOf(f), nil))
		}
	}()
	if err := r.c.Barrier(ctx); err != nil {
		t.Error(err)
	}
}
