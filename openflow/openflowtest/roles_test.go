package openflowtest_test

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/contiv/libOpenflow/util"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/openflowtest"
)

// controllers has s dial n controllers, as OVS dials its controller
// targets, and returns the controllers' ends, handshaken.
func controllers(t *testing.T, s *openflowtest.Switch, n int) []*ofconn.Conn {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var out []*ofconn.Conn
	for range n {
		if err := s.Connect(l.Addr().String()); err != nil {
			t.Fatal(err)
		}
		nc, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c := ofconn.NewConn(nc, nil)
		if err := c.Handshake(ctxFor(t)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		out = append(out, c)
	}
	return out
}

func askRole(t *testing.T, c *ofconn.Conn, r ofcodec.Role, gen uint64) (ofcodec.RoleMessage, error) {
	t.Helper()
	rep, err := c.Request(ctxFor(t), ofcodec.NewRoleRequest(r, gen))
	if err != nil {
		return ofcodec.RoleMessage{}, err
	}
	return ofcodec.DecodeRole(rep.Raw)
}

// wantRole asks for role r with generation gen and checks the reply.
func wantRole(t *testing.T, c *ofconn.Conn, r ofcodec.Role, gen uint64, role ofcodec.Role, replyGen uint64) {
	t.Helper()
	got, err := askRole(t, c, r, gen)
	if err != nil || got.Role != role || got.GenerationID != replyGen || got.Type != ofcodec.TypeRoleReply {
		t.Fatalf("role request %s/%d: %+v, %v; want a reply with %s/%d", r, gen, got, err, role, replyGen)
	}
}

// wantError checks that err is the switch's error typ/code.
func wantError(t *testing.T, what string, err error, typ, code uint16) {
	t.Helper()
	var e *ofconn.Error
	if !errors.As(err, &e) || e.Type != typ || e.Code != code {
		t.Fatalf("%s: %v, want error type %d code %d", what, err, typ, code)
	}
}

// flowModError sends one flow-mod on c and returns the switch's error.
func flowModError(t *testing.T, c *ofconn.Conn) error {
	t.Helper()
	fm, err := ofcodec.FlowMod(flows.Flow{Table: 7, Priority: 1, Cookie: flows.CookieOwned | 1}, ofcodec.CommandAdd)
	if err != nil {
		t.Fatal(err)
	}
	failed, err := c.SendBatch(ctxFor(t), []util.Message{fm})
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) > 0 {
		return failed[0].Err
	}
	return nil
}

// async returns what c received unasked, once a barrier made sure that
// everything the switch sent before it has arrived.
func async(t *testing.T, c *ofconn.Conn) []ofconn.Message {
	t.Helper()
	if err := c.Barrier(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	var out []ofconn.Message
	for {
		select {
		case m := <-c.Async():
			out = append(out, m)
		default:
			return out
		}
	}
}

func countType(ms []ofconn.Message, typ uint8) int {
	n := 0
	for _, m := range ms {
		if m.Type == typ {
			n++
		}
	}
	return n
}

func unknownSource() openflowtest.PacketIn {
	return openflowtest.UnknownSource(openflowtest.ARPRequest(net.HardwareAddr{0x52, 0x54, 0, 0, 0, 9},
		netip.MustParseAddr("10.1.0.9"), netip.MustParseAddr("10.1.0.1"), 1))
}

// TestRolesAsOVS follows OVS 3.1's role rules (ofproto's
// handle_role_request, connmgr's ofconn_set_role) through a master change.
func TestRolesAsOVS(t *testing.T) {
	b := newTunnelBridge(t)
	cs := controllers(t, b.sw, 3)
	a, c2, c3 := cs[0], cs[1], cs[2]

	// Every connection starts EQUAL; no generation ID has been seen.
	wantRole(t, c3, ofcodec.RoleNoChange, 0, ofcodec.RoleEqual, ofcodec.GenerationIDNone)
	wantRole(t, a, ofcodec.RoleMaster, 10, ofcodec.RoleMaster, 10)
	wantRole(t, c2, ofcodec.RoleSlave, 10, ofcodec.RoleSlave, 10)

	// A slave reads but changes nothing; master and equal write.
	wantError(t, "slave flow-mod", flowModError(t, c2), ofcodec.ErrorTypeBadRequest, ofcodec.BadRequestIsSlave)
	if err := flowModError(t, a); err != nil {
		t.Fatalf("master flow-mod: %v", err)
	}
	if err := flowModError(t, c3); err != nil {
		t.Fatalf("equal flow-mod: %v", err)
	}
	slave := openflow.New(c2, nil)
	fm, _ := ofcodec.FlowMod(flows.Flow{Table: 8, Priority: 1, Cookie: flows.CookieOwned | 2}, ofcodec.CommandAdd)
	wantError(t, "slave bundle", slave.Bundle(ctxFor(t), []util.Message{fm}, nil), ofcodec.ErrorTypeBadRequest, ofcodec.BadRequestIsSlave)
	// An incremental update of either form (plain flow-mods; a pipelined
	// bundle) is refused as a whole.
	one := flows.Flow{Table: 8, Priority: 3, Cookie: flows.CookieOwned | 3}
	_, err := slave.ReconcileKnown(ctxFor(t), []flows.Flow{one}, nil)
	wantError(t, "slave flow-mods", err, ofcodec.ErrorTypeBadRequest, ofcodec.BadRequestIsSlave)
	_, err = slave.ReconcileKnown(ctxFor(t), []flows.Flow{one}, []flows.Flow{{Table: 8, Priority: 4, Cookie: flows.CookieOwned | 4}})
	wantError(t, "slave pipelined bundle", err, ofcodec.ErrorTypeBadRequest, ofcodec.BadRequestIsSlave)
	failed, err := c2.SendBatch(ctxFor(t), []util.Message{ofconn.Raw(ofconn.TypePacketOut, make([]byte, 16))})
	if err != nil || len(failed) != 1 {
		t.Fatalf("slave packet-out: %v, %v; want one error", failed, err)
	}
	wantError(t, "slave packet-out", failed[0].Err, ofcodec.ErrorTypeBadRequest, ofcodec.BadRequestIsSlave)
	if fl, err := slave.Dump(ctxFor(t), flows.CookieOwned, flows.CookieOwnerMask); err != nil || len(fl) != 1 {
		t.Fatalf("slave dump: %d flows, %v; want the one the master and the equal added", len(fl), err)
	}

	// Packet-ins go to the master and the equal, not to the slave.
	if n := b.sw.SendPacketIn(unknownSource()); n != 2 {
		t.Fatalf("packet-in sent to %d connections, want 2", n)
	}
	for i, c := range cs {
		if got, want := countType(async(t, c), ofconn.TypePacketIn), map[int]int{0: 1, 1: 0, 2: 1}[i]; got != want {
			t.Errorf("connection %d received %d packet-ins, want %d", i, got, want)
		}
	}

	// An older generation ID is refused and changes nothing.
	_, err = askRole(t, c2, ofcodec.RoleMaster, 9)
	wantError(t, "stale master request", err, ofcodec.ErrorTypeRoleRequestFailed, ofcodec.RoleErrorStale)
	_, err = askRole(t, c3, ofcodec.RoleSlave, 10+1<<63) // half the ring away counts as older
	wantError(t, "stale slave request", err, ofcodec.ErrorTypeRoleRequestFailed, ofcodec.RoleErrorStale)
	wantRole(t, c2, ofcodec.RoleNoChange, 0, ofcodec.RoleSlave, 10)

	// A new master demotes the old one, which is told.
	wantRole(t, c2, ofcodec.RoleMaster, 11, ofcodec.RoleMaster, 11)
	var statuses []ofcodec.RoleStatus
	for _, m := range async(t, a) {
		if st, ok := ofcodec.DecodeRoleStatus(m.Raw); ok {
			statuses = append(statuses, st)
		}
	}
	if want := (ofcodec.RoleStatus{Role: ofcodec.RoleSlave, Reason: ofcodec.RoleStatusMasterRequest, GenerationID: 11}); !slices.Equal(statuses, []ofcodec.RoleStatus{want}) {
		t.Fatalf("the old master was told %+v, want %+v", statuses, want)
	}
	wantRole(t, a, ofcodec.RoleNoChange, 0, ofcodec.RoleSlave, 11)
	wantError(t, "demoted master's flow-mod", flowModError(t, a), ofcodec.ErrorTypeBadRequest, ofcodec.BadRequestIsSlave)

	// EQUAL ignores the generation ID; an unknown role is refused.
	wantRole(t, a, ofcodec.RoleEqual, 0, ofcodec.RoleEqual, 11)
	_, err = askRole(t, a, ofcodec.Role(5), 12)
	wantError(t, "role 5", err, ofcodec.ErrorTypeRoleRequestFailed, ofcodec.RoleErrorBadRole)

	// The master leaves: nobody is promoted.
	c2.Close()
	deadline := time.Now().Add(5 * time.Second)
	for len(b.sw.Conns()) != 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	wantRole(t, c3, ofcodec.RoleNoChange, 0, ofcodec.RoleEqual, 11)
	wantRole(t, a, ofcodec.RoleNoChange, 0, ofcodec.RoleEqual, 11)
	if n := b.sw.Counters().RoleRequests; n < 10 {
		t.Errorf("%d role requests counted", n)
	}
}

// TestPassiveConnectionsAskForAsync: as in OVS, a connection the switch
// accepted gets no packet-in or port-status until it sends SET_ASYNC; one
// it dialled gets them from the start.
func TestPassiveConnectionsAskForAsync(t *testing.T) {
	b := newTunnelBridge(t)
	primary := controllers(t, b.sw, 1)[0]
	passive := client(t, b.sw).Conn()
	if n := b.sw.SendPacketIn(unknownSource()); n != 1 {
		t.Fatalf("packet-in sent to %d connections, want 1", n)
	}
	ports := b.sw.Ports()
	b.sw.SetPorts(append(ports, ofconn.Port{No: 50, Name: "vx-new"}))
	got := async(t, primary)
	if countType(got, ofconn.TypePacketIn) != 1 || countType(got, ofconn.TypePortStatus) != 1 {
		t.Fatalf("the primary connection received %d messages, want a packet-in and a port-status", len(got))
	}
	for _, m := range got {
		if ps, ok := m.Parsed.(*ofconn.PortStatus); ok && (ps.Reason != 0 || ps.Port.Name != "vx-new" || ps.Port.No != 50) {
			t.Errorf("port-status %+v, want vx-new (50) added", ps)
		}
	}
	if got := async(t, passive); len(got) != 0 {
		t.Fatalf("the passive connection received %d messages before asking", len(got))
	}
	if _, err := passive.Send(ctxFor(t), ofconn.Raw(28, make([]byte, 24))); err != nil { // OFPT_SET_ASYNC
		t.Fatal(err)
	}
	if err := passive.Barrier(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	b.sw.SetPorts(ports)
	if n := b.sw.SendPacketIn(unknownSource()); n != 2 {
		t.Fatalf("after SET_ASYNC, packet-in sent to %d connections, want 2", n)
	}
	if got := async(t, passive); countType(got, ofconn.TypePacketIn) != 1 || countType(got, ofconn.TypePortStatus) != 1 {
		t.Fatalf("after SET_ASYNC the passive connection received %d messages, want a port-status and a packet-in", len(got))
	}
}
