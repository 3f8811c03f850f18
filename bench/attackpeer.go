package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
)

// The hostile peers of the attacks section speak OpenFlow 1.3 with raw
// frames: no library that would read replies, bound its writes or end a
// multipart reply gets in the way of misbehaving.

// maxFrameLen is the largest OpenFlow message: its length is 16 bits.
const maxFrameLen = 0xffff

// peerHandshakeTimeout bounds a peer's hello and features exchange.
const peerHandshakeTimeout = 5 * time.Second

// ofFrame is an OpenFlow 1.3 message of type typ: header and body.
func ofFrame(typ uint8, xid uint32, body []byte) []byte {
	b := make([]byte, ofconn.HeaderLen+len(body))
	b[0], b[1] = ofconn.Version, typ
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	binary.BigEndian.PutUint32(b[4:], xid)
	copy(b[ofconn.HeaderLen:], body)
	return b
}

// frameXid is the transaction ID of a frame.
func frameXid(m []byte) uint32 { return binary.BigEndian.Uint32(m[4:]) }

// featuresReply answers a features request as a switch with datapath ID
// dpid and 254 tables.
func featuresReply(xid uint32, dpid uint64) []byte {
	body := make([]byte, 24)
	binary.BigEndian.PutUint64(body, dpid)
	body[12] = 254 // n_tables
	return ofFrame(ofconn.TypeFeaturesReply, xid, body)
}

// bigEchoRequest is the largest echo request there is (64 KiB).
func bigEchoRequest() []byte {
	return ofFrame(ofconn.TypeEchoRequest, 0, make([]byte, maxFrameLen-ofconn.HeaderLen))
}

// endlessPart is one 64 KiB part of a reply to the multipart request req,
// with the MORE flag set: a reply made of these never ends.
func endlessPart(req []byte) []byte {
	body := make([]byte, maxFrameLen-ofconn.HeaderLen)
	if len(req) >= ofconn.HeaderLen+2 {
		copy(body, req[ofconn.HeaderLen:ofconn.HeaderLen+2]) // the multipart type asked for
	}
	binary.BigEndian.PutUint16(body[2:], ofconn.MultipartReplyMore)
	return ofFrame(ofconn.TypeMultipartReply, frameXid(req), body)
}

// ofPeer is one hostile peer's connection to the controller.
type ofPeer struct {
	nc net.Conn
	r  *bufio.Reader
}

// dialPeer connects to the controller at addr from src and completes the
// handshake as the switch dpid: hello, then the features reply.
func dialPeer(ctx context.Context, addr string, src net.IP, dpid uint64) (*ofPeer, error) {
	d := net.Dialer{Timeout: peerHandshakeTimeout, LocalAddr: &net.TCPAddr{IP: src}}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dialling the controller from %s: %w", src, err)
	}
	p := &ofPeer{nc: nc, r: bufio.NewReaderSize(nc, 64<<10)}
	nc.SetDeadline(time.Now().Add(peerHandshakeTimeout))
	if err := p.handshake(dpid); err != nil {
		nc.Close()
		return nil, fmt.Errorf("handshake as %016x: %w", dpid, err)
	}
	nc.SetDeadline(time.Time{})
	return p, nil
}

func (p *ofPeer) handshake(dpid uint64) error {
	if _, err := p.nc.Write(ofFrame(ofconn.TypeHello, 1, nil)); err != nil {
		return fmt.Errorf("sending hello: %w", err)
	}
	for {
		m, err := ofconn.ReadFrame(p.r)
		if err != nil {
			return fmt.Errorf("waiting for the features request: %w", err)
		}
		switch m[1] {
		case ofconn.TypeEchoRequest:
			p.answerEcho(m)
		case ofconn.TypeFeaturesReq:
			if _, err := p.nc.Write(featuresReply(frameXid(m), dpid)); err != nil {
				return fmt.Errorf("sending the features reply: %w", err)
			}
			return nil
		}
	}
}

func (p *ofPeer) answerEcho(req []byte) error {
	rep := append([]byte(nil), req...)
	rep[1] = ofconn.TypeEchoReply
	_, err := p.nc.Write(rep)
	return err
}

// Outcomes of a claim: what the controller did with a peer that completed
// the handshake with a datapath ID.
const (
	claimRefused = "refused" // closed the connection
	claimServed  = "served"  // sent it a request only a switch it serves gets
	claimPending = "pending" // neither, within the wait
)

// claimOutcome reads what the controller sends until it closes the
// connection, sends a request a served switch gets (anything but hello,
// echo and error), or within passes. Echo requests are answered.
func (p *ofPeer) claimOutcome(within time.Duration) string {
	p.nc.SetReadDeadline(time.Now().Add(within))
	for {
		m, err := ofconn.ReadFrame(p.r)
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
			return claimPending
		case err != nil:
			return claimRefused
		}
		switch m[1] {
		case ofconn.TypeEchoRequest:
			p.answerEcho(m)
		case ofconn.TypeHello, ofconn.TypeError:
		default:
			return claimServed
		}
	}
}

// firstMultipart reads until the controller's first multipart request,
// answering echo requests; nil when the connection ended first.
func (p *ofPeer) firstMultipart(within time.Duration) []byte {
	p.nc.SetReadDeadline(time.Now().Add(within))
	defer p.nc.SetReadDeadline(time.Time{})
	for {
		m, err := ofconn.ReadFrame(p.r)
		if err != nil {
			return nil
		}
		switch m[1] {
		case ofconn.TypeEchoRequest:
			p.answerEcho(m)
		case ofconn.TypeMultipartReq:
			return m
		}
	}
}

// drain reads and drops everything until the connection ends, so that the
// controller's writes never wait on this peer.
func (p *ofPeer) drain() {
	buf := make([]byte, 32<<10)
	for {
		if _, err := p.r.Read(buf); err != nil {
			return
		}
	}
}
