package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// TestPeerHandshakeIdentifies: the hostile peer's raw handshake is one the
// controller's connection accepts, with the datapath ID claimed.
func TestPeerHandshakeIdentifies(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const dpid = 0x00001234abcd5678
	got := make(chan uint64, 1)
	go func() {
		nc, err := l.Accept()
		if err != nil {
			got <- 0
			return
		}
		c := ofconn.NewConn(nc, nil)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Handshake(ctx); err != nil {
			t.Errorf("controller side: %v", err)
			got <- 0
			return
		}
		got <- c.DatapathID()
	}()
	p, err := dialPeer(context.Background(), l.Addr().String(), net.IPv4(127, 0, 0, 1), dpid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.nc.Close()
	if d := <-got; d != dpid {
		t.Fatalf("the controller side read datapath ID %016x, want %016x", d, uint64(dpid))
	}
	// The controller side closed: a claim ended that way counts as refused.
	if out := p.claimOutcome(2 * time.Second); out != claimRefused {
		t.Fatalf("claim outcome after the controller closed: %q, want %q", out, claimRefused)
	}
}

// TestHostileFrames: the flood frames are the largest OpenFlow allows and
// decode as what they claim to be; an endless part answers its request's
// xid and multipart type with MORE set.
func TestHostileFrames(t *testing.T) {
	echo := bigEchoRequest()
	m, err := ofconn.ReadFrame(bytes.NewReader(echo))
	if err != nil || len(m) != maxFrameLen || m[1] != ofconn.TypeEchoRequest {
		t.Fatalf("echo request: %d bytes, type %d, %v", len(m), m[1], err)
	}
	req := ofFrame(ofconn.TypeMultipartReq, 77, []byte{0, 1, 0, 0, 0, 0, 0, 0})
	part := ofconn.Decode(endlessPart(req))
	if part.Type != ofconn.TypeMultipartReply || part.Xid != 77 || len(part.Raw) != maxFrameLen {
		t.Fatalf("endless part: type %d xid %d %d bytes", part.Type, part.Xid, len(part.Raw))
	}
	if typ, flags := binary.BigEndian.Uint16(part.Body()), binary.BigEndian.Uint16(part.Body()[2:]); typ != 1 || flags != ofconn.MultipartReplyMore {
		t.Fatalf("endless part: multipart type %d flags %d, want 1 and MORE", typ, flags)
	}
	f := ofconn.Decode(featuresReply(5, 0xabcdef))
	if f.Type != ofconn.TypeFeaturesReply || f.Xid != 5 || binary.BigEndian.Uint64(f.Body()) != 0xabcdef {
		t.Fatalf("features reply %+v", f)
	}
}

func TestParseMetrics(t *testing.T) {
	text := "# HELP go_goroutines x\n# TYPE go_goroutines gauge\ngo_goroutines 42\n" +
		`ovs_vxctl_controller_switches_refused_total{reason="claimed"} 3` + "\n" +
		`ovs_vxctl_controller_packet_ins_total{host="h0000",result="damped"} 5` + "\n" +
		`ovs_vxctl_controller_packet_ins_total{host="h0001",result="damped"} 2` + "\n"
	m, err := parseMetrics(bufio.NewScanner(strings.NewReader(text)))
	if err != nil {
		t.Fatal(err)
	}
	if m["go_goroutines"] != 42 || m[refusedSeries("claimed")] != 3 || packetInSeries(m, "damped") != 7 {
		t.Fatalf("parsed %v", m)
	}
	if _, err := parseMetrics(bufio.NewScanner(strings.NewReader("novalue\n"))); err == nil {
		t.Fatal("a line without a value parsed")
	}
}

// TestAttackTopology: the attacked topology is valid, with the real and
// absent hosts the attacks count on.
func TestAttackTopology(t *testing.T) {
	tp, err := topology.Parse([]byte(attackTopology("127.0.0.1:6653")))
	if err != nil {
		t.Fatal(err)
	}
	if len(tp.Hosts) != attackRealHosts+attackAbsentHosts || len(tp.Networks) != 1 || tp.Networks[0].VNI != attackVNI {
		t.Fatalf("%d hosts, networks %+v", len(tp.Hosts), tp.Networks)
	}
	e := &attackEnv{t: tp}
	if err := e.makeSwitches(); err != nil {
		t.Fatal(err)
	}
	defer e.stop()
	// The echo flood gives every other peer a known datapath ID.
	if len(e.tun) != attackRealHosts || len(e.absentTun)+len(e.absentInt) < echoPeers/2 || len(e.absentTun) < repliers {
		t.Fatalf("%d real hosts, %d+%d absent datapath IDs", len(e.tun), len(e.absentTun), len(e.absentInt))
	}
}
