package ofconn

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"runtime"
	"strings"
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

// connected returns a Conn that completed its handshake with a peer; setup
// may change the Conn's settings before anything runs.
func connected(t *testing.T, setup ...func(*Conn)) (*Conn, *peer) {
	a, b := net.Pipe()
	p := &peer{t: t, nc: b}
	c := NewConn(a, zaptest.NewLogger(t))
	for _, f := range setup {
		f(c)
	}
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

// liveHeap is the heap in use after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestEchoFloodWithoutReading: a peer that sends large echo requests and
// never reads the replies costs no goroutine per request and a bounded
// amount of memory, and is dropped once a reply cannot be written within
// the write timeout.
func TestEchoFloodWithoutReading(t *testing.T) {
	c, p := connected(t, func(c *Conn) { c.writeTimeout = time.Second })
	goroutines, heap := runtime.NumGoroutine(), liveHeap()
	maxGoroutines, maxHeap := goroutines, heap
	req := frame(TypeEchoRequest, 9, make([]byte, maxFrame-HeaderLen))
	start := time.Now()
	sent := 0
	for ; time.Since(start) < 10*time.Second; sent++ {
		p.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := p.nc.Write(req); err != nil {
			break // the connection was dropped
		}
		if sent%200 == 0 {
			maxGoroutines, maxHeap = max(maxGoroutines, runtime.NumGoroutine()), max(maxHeap, liveHeap())
		}
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the connection of a peer that does not read is still up")
	}
	t.Logf("%d echo requests of 64 KiB (%d MiB) in %v, %d dropped; goroutines %d -> at most %d, live heap %d KiB -> at most %d KiB; ended: %v",
		sent, sent*len(req)>>20, time.Since(start).Round(time.Millisecond), c.EchoDropped(), goroutines, maxGoroutines, heap>>10, maxHeap>>10, c.Err())
	if sent < 200 {
		t.Errorf("only %d echo requests read before the connection ended", sent)
	}
	if maxGoroutines > goroutines+1 {
		t.Errorf("goroutines grew from %d to %d under the flood", goroutines, maxGoroutines)
	}
	if maxHeap > heap+4<<20 {
		t.Errorf("live heap grew from %d KiB to %d KiB under the flood", heap>>10, maxHeap>>10)
	}
	if c.EchoDropped() == 0 {
		t.Error("no echo request dropped")
	}
	if !errors.Is(c.Err(), ErrClosed) || !strings.Contains(c.Err().Error(), "writing") {
		t.Errorf("ended with %v, want a write failure", c.Err())
	}
}

// TestEndlessMultipartReply: a reply whose parts never stop is cut at the
// bound, in bytes and in parts, and ends the connection.
func TestEndlessMultipartReply(t *testing.T) {
	for _, tc := range []struct {
		name  string
		part  int // body bytes after the multipart header
		limit int // bytes the peer may get in before the cut
	}{
		{"bytes", 60 << 10, MaxMultipartBytes + 2*(60<<10+16)},
		{"parts", 0, (MaxMultipartParts + 1) * 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, p := connected(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			errc := make(chan error, 1)
			go func() {
				_, err := c.RequestMultipart(ctx, Raw(TypeMultipartReq, []byte{0, 1, 0, 0, 0, 0, 0, 0}))
				errc <- err
			}()
			req := p.read()
			part := frame(TypeMultipartReply, xidOf(req), append([]byte{0, 1, 0, MultipartReplyMore, 0, 0, 0, 0}, make([]byte, tc.part)...))
			sent := 0
			for sent <= 4*tc.limit {
				p.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
				if _, err := p.nc.Write(part); err != nil {
					break
				}
				sent += len(part)
			}
			err := <-errc
			t.Logf("cut after %d bytes (%d parts): %v", sent, sent/len(part), err)
			if !errors.Is(err, ErrReplyTooLarge) || !errors.Is(err, ErrClosed) {
				t.Fatalf("endless reply: %v, want ErrReplyTooLarge and ErrClosed", err)
			}
			if sent > tc.limit {
				t.Errorf("%d bytes read before the cut, want at most %d", sent, tc.limit)
			}
			<-c.Done()
		})
	}
}

// TestLargeMessageBeforeHandshake: before the features reply, a peer may
// send only small messages.
func TestLargeMessageBeforeHandshake(t *testing.T) {
	a, b := net.Pipe()
	p := &peer{t: t, nc: b}
	c := NewConn(a, zaptest.NewLogger(t))
	defer c.Close()
	defer b.Close()
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		errc <- c.Handshake(ctx)
	}()
	p.read()
	p.send(frame(TypeHello, 1, nil))
	p.read() // features request
	go p.nc.Write(frame(TypeEchoRequest, 2, make([]byte, 32<<10)))
	if err := <-errc; err == nil || !strings.Contains(c.Err().Error(), "before the handshake completed") {
		t.Fatalf("handshake with a 32 KiB echo before the features reply: %v (%v)", err, c.Err())
	}
}

// TestReplyBudgetEvictsTheLargest: connections sharing a ReplyBudget; when
// a small reply on one takes the total past the budget, the connection
// gathering the largest reply is closed and the small reply completes.
func TestReplyBudgetEvictsTheLargest(t *testing.T) {
	budget := NewReplyBudget(1 << 20)
	share := func(c *Conn) { c.SetReplyBudget(budget) }
	big, pb := connected(t, share)
	small, ps := connected(t, share)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type result struct {
		parts []Message
		err   error
	}
	ask := func(c *Conn, p *peer) (<-chan result, uint32) {
		ch := make(chan result, 1)
		go func() {
			parts, err := c.RequestMultipart(ctx, Raw(TypeMultipartReq, []byte{0, 1, 0, 0, 0, 0, 0, 0}))
			ch <- result{parts, err}
		}()
		return ch, xidOf(p.read())
	}
	part := func(xid uint32, more bool) []byte {
		flags := byte(0)
		if more {
			flags = MultipartReplyMore
		}
		return frame(TypeMultipartReply, xid, append([]byte{0, 1, 0, flags, 0, 0, 0, 0}, make([]byte, 60<<10)...))
	}
	bigc, bigXid := ask(big, pb)
	smallc, smallXid := ask(small, ps)
	for range 15 { // 900 KiB, unfinished
		pb.send(part(bigXid, true))
	}
	eventually(t, 5*time.Second, "the big reply charged", func() bool { return budget.Used() >= 15*60<<10 })
	ps.send(part(smallXid, true))
	ps.send(part(smallXid, true)) // past 1 MiB together
	ps.send(part(smallXid, false))
	if r := <-smallc; r.err != nil || len(r.parts) != 3 {
		t.Fatalf("small reply: %d parts, %v", len(r.parts), r.err)
	}
	r := <-bigc
	if !errors.Is(r.err, ErrReplyTooLarge) {
		t.Fatalf("big reply: %v, want ErrReplyTooLarge", r.err)
	}
	t.Log(r.err)
	<-big.Done()
	if small.Err() != nil {
		t.Errorf("the small reply's connection ended: %v", small.Err())
	}
	if u := budget.Used(); u != 0 {
		t.Errorf("%d bytes still charged", u)
	}
}

func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(time.Millisecond) {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
	}
}
