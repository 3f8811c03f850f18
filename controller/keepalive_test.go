package controller

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
)

// mutePeer is a switch that completes the handshake, then never answers an
// echo request; while talk is set it sends echo requests of its own (other
// traffic, as a busy switch reporting packets would).
type mutePeer struct {
	nc   net.Conn
	wmu  sync.Mutex
	talk atomic.Bool
}

func (p *mutePeer) send(typ uint8, xid uint32, body []byte) {
	b := make([]byte, ofconn.HeaderLen+len(body))
	b[0], b[1] = ofconn.Version, typ
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	binary.BigEndian.PutUint32(b[4:], xid)
	copy(b[ofconn.HeaderLen:], body)
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.nc.Write(b)
}

// serve answers hello and the features request, and ignores the rest.
func (p *mutePeer) serve() {
	hdr := make([]byte, ofconn.HeaderLen)
	for {
		if _, err := io.ReadFull(p.nc, hdr); err != nil {
			return
		}
		body := make([]byte, int(binary.BigEndian.Uint16(hdr[2:]))-ofconn.HeaderLen)
		if _, err := io.ReadFull(p.nc, body); err != nil {
			return
		}
		xid := binary.BigEndian.Uint32(hdr[4:])
		switch hdr[1] {
		case ofconn.TypeHello:
			p.send(ofconn.TypeHello, xid, nil)
		case ofconn.TypeFeaturesReq:
			p.send(ofconn.TypeFeaturesReply, xid, make([]byte, 24)) // datapath ID 0
		}
	}
}

func (p *mutePeer) chatter(ctx context.Context) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if p.talk.Load() {
				p.send(ofconn.TypeEchoRequest, 7, nil)
			}
		}
	}
}

// mutePeerConn connects a controller-side connection to a mutePeer.
func mutePeerConn(t *testing.T, ctx context.Context) (*ofconn.Conn, *mutePeer) {
	t.Helper()
	a, b := net.Pipe()
	p := &mutePeer{nc: b}
	go p.serve()
	go p.chatter(ctx)
	conn := ofconn.NewConn(a, zap.NewNop())
	t.Cleanup(func() { conn.Close(); b.Close() })
	if err := conn.Handshake(ctx); err != nil {
		t.Fatal(err)
	}
	return conn, p
}

// TestKeepaliveCountsAnyMessage: a switch whose echo replies do not come
// (as when the controller is too busy to read them in time) stays connected
// while it sends anything else, and while its session waits for a
// full-reconcile slot; silent and not waiting, it is dropped.
func TestKeepaliveCountsAnyMessage(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn, peer := mutePeerConn(t, ctx)
	peer.talk.Store(true)
	const interval = 30 * time.Millisecond
	s := &session{srv: &Server{o: ServerOptions{EchoInterval: interval, EchoMisses: 2}}, conn: conn, log: zap.NewNop()}
	go s.keepalive(ctx)

	time.Sleep(15 * interval)
	if err := conn.Err(); err != nil {
		t.Fatalf("a switch that talks was dropped: %v", err)
	}
	s.queued.Store(true)
	peer.talk.Store(false)
	time.Sleep(10 * interval)
	if err := conn.Err(); err != nil {
		t.Fatalf("a switch waiting for a reconcile slot was dropped: %v", err)
	}
	s.queued.Store(false)
	eventually(t, 5*time.Second, "silent switch dropped", func() bool { return conn.Err() != nil })
	if r, _ := s.closeReason.Load().(string); !strings.Contains(r, "echo") {
		t.Errorf("closed for %q, want unanswered echo requests", r)
	}
}
