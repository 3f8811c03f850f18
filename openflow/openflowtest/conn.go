package openflowtest

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
)

// Timeouts of the switch's side of a connection: a controller that takes
// longer to accept a connection or to read what the switch writes is as
// good as gone (and must not hang a test).
const (
	dialTimeout  = 10 * time.Second
	writeTimeout = 10 * time.Second
)

// Conn is one controller connection of a switch.
type Conn struct {
	sw      *Switch
	nc      net.Conn
	primary bool // the switch dialled it (a controller target), rather than accepted it
	done    chan struct{}

	wmu sync.Mutex // guards w
	w   *bufio.Writer

	// Guarded by sw.mu.
	role        ofcodec.Role
	missSendLen uint16

	// Only the connection's goroutine uses them.
	bundles map[uint32]*bundle
}

// Role is the connection's current role.
func (c *Conn) Role() ofcodec.Role {
	c.sw.mu.Lock()
	defer c.sw.mu.Unlock()
	return c.role
}

// Primary reports whether the switch dialled the connection (Connect) rather
// than accepted it (Serve, Pipe).
func (c *Conn) Primary() bool { return c.primary }

// Close ends the connection; a Connect target dials again.
func (c *Conn) Close() error { return c.nc.Close() }

// Done is closed once the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Connect dials a controller ("tcp:IP:PORT", "unix:PATH" or plain
// "IP:PORT") and serves the connection in the background. Like OVS, the
// switch dials again when the connection ends, after the backoff, keeping
// its flows, until Close.
func (s *Switch) Connect(target string) error {
	network, addr := "tcp", target
	if n, a, ok := strings.Cut(target, ":"); ok && (n == "tcp" || n == "unix") {
		network, addr = n, a
	}
	nc, err := net.DialTimeout(network, addr, dialTimeout)
	if err != nil {
		return fmt.Errorf("switch %016x connecting to %s: %w", s.dpid, target, err)
	}
	s.wg.Add(1)
	go s.redial(network, addr, nc)
	return nil
}

// redial serves nc, then dials again whenever the connection ends, waiting
// as OVS's rconn does: the backoff doubles while connections fail or end
// sooner than it, and starts over after one that lasted.
func (s *Switch) redial(network, addr string, nc net.Conn) {
	defer s.wg.Done()
	wait := s.backoff
	for {
		start := time.Now()
		s.newConn(nc, true).run()
		if s.stopped() {
			return
		}
		s.reconnects.Add(1)
		if time.Since(start) >= wait {
			wait = s.backoff
		}
		for {
			select {
			case <-s.stop:
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, s.maxBackoff)
			var err error
			if nc, err = net.DialTimeout(network, addr, dialTimeout); err == nil {
				break
			}
		}
	}
}

// Serve answers a connection the switch accepted (as OVS serves a passive
// ptcp: target or a bridge's management socket) in the background.
func (s *Switch) Serve(nc net.Conn) *Conn {
	c := s.newConn(nc, false)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.run()
	}()
	return c
}

// Pipe connects a controller in memory: it returns the controller's end of
// a connection the switch serves (as its management socket).
func (s *Switch) Pipe() net.Conn {
	ctl, sw := net.Pipe()
	s.Serve(sw)
	return ctl
}

// Conns returns the switch's connections.
func (s *Switch) Conns() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

// Disconnect ends every connection, as a network outage would; Connect
// targets dial again after the backoff.
func (s *Switch) Disconnect() {
	for _, c := range s.Conns() {
		c.Close()
	}
}

// Close ends every connection for good and waits until the switch's
// goroutines are gone. The flow table stays readable.
func (s *Switch) Close() {
	s.stopOnce.Do(func() { close(s.stop) })
	s.Disconnect()
	s.wg.Wait()
}

func (s *Switch) stopped() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

func (s *Switch) newConn(nc net.Conn, primary bool) *Conn {
	c := &Conn{sw: s, nc: nc, primary: primary, done: make(chan struct{}), w: bufio.NewWriterSize(nc, 64<<10),
		role: ofcodec.RoleEqual, bundles: map[uint32]*bundle{}}
	if primary {
		c.missSendLen = defaultMissSendLen
	}
	return c
}

// run says hello and answers the connection until it ends.
func (c *Conn) run() {
	s := c.sw
	defer close(c.done)
	s.mu.Lock()
	if s.stopped() {
		s.mu.Unlock()
		c.nc.Close()
		return
	}
	s.conns[c] = true
	s.mu.Unlock()
	defer func() {
		c.nc.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	c.hello()
	r := bufio.NewReaderSize(c.nc, 64<<10)
	for {
		m, err := ofconn.ReadFrame(r)
		if err != nil {
			return // open bundles go with the connection, as in OVS
		}
		c.handle(m)
		// Answer in batches: flush once nothing more is waiting.
		if r.Buffered() == 0 {
			c.flush()
		}
	}
}

// hello sends the switch's hello while the connection is read: the
// controller may be writing its own, and over net.Pipe neither write ends
// before the other side reads. Everything else the switch writes waits for
// it (the lock is released by the goroutine that flushes).
func (c *Conn) hello() {
	c.wmu.Lock()
	c.w.Write(header(ofconn.TypeHello, ofconn.HeaderLen, 1))
	c.sw.wg.Add(1)
	go func() {
		defer c.sw.wg.Done()
		defer c.wmu.Unlock()
		c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
		c.w.Flush()
	}()
}

// write queues b; flush sends what is queued.
func (c *Conn) write(b []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.w.Write(b)
}

func (c *Conn) flush() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	c.w.Flush()
}

// send writes msgs and flushes them: what the switch sends unasked.
func (c *Conn) send(msgs ...[]byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for _, m := range msgs {
		c.w.Write(m)
	}
	c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	c.w.Flush()
}

// fail answers req with error e.
func (c *Conn) fail(req []byte, e ofError) {
	c.sw.errorsSent.Add(1)
	c.write(errorMsg(req, e))
}

// takesAsync reports whether the connection receives asynchronous messages:
// a passive one only once it asked (OVS), packet-ins only when not a slave;
// s.mu is held.
func (c *Conn) takesAsync(packetIn bool) bool {
	if packetIn && c.role == ofcodec.RoleSlave {
		return false
	}
	return c.primary || c.missSendLen > 0
}

// asyncConns are the connections that take packet-ins (or, when packetIn
// is false, port-status messages).
func (s *Switch) asyncConns(packetIn bool) []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Conn
	for c := range s.conns {
		if c.takesAsync(packetIn) {
			out = append(out, c)
		}
	}
	return out
}
