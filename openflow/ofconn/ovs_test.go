package ofconn

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ovs-vxctl/ovs-vxctl/internal/ovstest"
)

// TestDialOVS: handshake, datapath ID, echo and barrier against a real
// switch, over its management socket.
func TestDialOVS(t *testing.T) {
	env := ovstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Dial(ctx, env.Target, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	show := env.MustOfctl(t, "show")
	if want := fmt.Sprintf("dpid:%016x", c.DatapathID()); !strings.Contains(show, want) {
		t.Errorf("datapath ID %s not in ovs-ofctl show:\n%s", want, show)
	}
	if err := c.Echo(ctx); err != nil {
		t.Error(err)
	}
	if err := c.Barrier(ctx); err != nil {
		t.Error(err)
	}
}

func TestDialBadTargets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, target := range []string{"", "ssl:1.2.3.4:6653", "unix:", "unix:/nonexistent/br.mgmt"} {
		if _, err := Dial(ctx, target, zaptest.NewLogger(t)); err == nil {
			t.Errorf("Dial(%q) succeeded", target)
		} else {
			t.Logf("%q: %v", target, err)
		}
	}
}

// TestAcceptedConnection: OVS dials us as its controller; the accepted
// connection handshakes and receives the packet-ins.
func TestAcceptedConnection(t *testing.T) {
	env := ovstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sock := filepath.Join(env.Dir, "ctl.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := env.Vsctl(ctx, "set-controller", ovstest.Bridge, "unix:"+sock); err != nil {
		t.Fatal(err)
	}
	nc, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c := NewConn(nc, zaptest.NewLogger(t))
	defer c.Close()
	if err := c.Handshake(ctx); err != nil {
		t.Fatal(err)
	}
	env.MustOfctl(t, "packet-out", "in_port=10 packet=ffffffffffff525400000007080600010800060400015254000000070a0000070000000000000a000001 actions=CONTROLLER")
	waitAsync(ctx, t, c, "a packet-in", func(m Message) bool {
		pi, ok := m.Parsed.(*PacketIn)
		if !ok {
			return false
		}
		port, _ := pi.InPort()
		if src := net.HardwareAddr(pi.Data[6:12]).String(); src != "52:54:00:00:00:07" || port != 10 {
			t.Errorf("packet-in from %s on port %d", src, port)
		}
		return true
	})
	if _, err := env.Vsctl(ctx, "add-port", ovstest.Bridge, "p-new", "--", "set", "interface", "p-new", "type=internal"); err != nil {
		t.Fatal(err)
	}
	waitAsync(ctx, t, c, "a port-status for the new port", func(m Message) bool {
		ps, ok := m.Parsed.(*PortStatus)
		if ok {
			t.Logf("port-status: %+v", ps)
		}
		return ok && ps.Port.Name == "p-new" && ps.Reason == 0 && ps.Port.No != 0
	})
}

// waitAsync reads c's asynchronous messages until one satisfies ok.
func waitAsync(ctx context.Context, t *testing.T, c *Conn, what string, ok func(Message) bool) {
	t.Helper()
	for {
		select {
		case m := <-c.Async():
			if ok(m) {
				return
			}
			t.Logf("async message of type %d (%v): %#v", m.Type, m.ParseErr, m.Parsed)
		case <-ctx.Done():
			t.Fatalf("no %s", what)
		}
	}
}
