package ovsruntest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/ovsrun"
)

// TestStartAndCleanup: Start's OVS runs in its own namespace, Run and
// ListenTCP act inside it, and everything is gone once the test ends.
func TestStartAndCleanup(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a real Open vSwitch (skipped with -short)")
	}
	Require(t)
	var inst *ovsrun.Instance
	var pids []int
	t.Run("inside", func(t *testing.T) {
		inst = Start(t, "ort-")
		if !strings.HasPrefix(inst.NetNS, "ort-") || !strings.HasPrefix(inst.Dir, "/tmp/"+inst.NetNS+"-") {
			t.Errorf("namespace %q, directory %q", inst.NetNS, inst.Dir)
		}
		for _, d := range []string{"ovsdb-server", "ovs-vswitchd"} {
			if !inst.Running(d) {
				t.Fatalf("%s not running", d)
			}
			pids = append(pids, Pid(t, inst, d))
		}
		if got := Run(t, inst.NetNS, "ip", "netns", "identify"); strings.TrimSpace(got) != inst.NetNS {
			t.Errorf("Run in %s ran in namespace %q", inst.NetNS, got)
		}
		if got := Run(t, inst.NetNS, "ip", "-o", "link", "show", "lo"); !strings.Contains(got, "UP") {
			t.Errorf("loopback not up: %s", got)
		}
		if got := Run(t, "", "ip", "netns", "list"); !strings.Contains(got, inst.NetNS) {
			t.Errorf("ip netns list lacks %s:\n%s", inst.NetNS, got)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := inst.Vsctl(ctx, "add-br", "br-t", "--", "set", "bridge", "br-t", "datapath_type=netdev"); err != nil {
			t.Fatal(err)
		}

		// The listener is reachable from the namespace, not from here.
		l := ListenTCP(t, inst.NetNS, "127.0.0.1:0")
		defer l.Close()
		port := l.Addr().(*net.TCPAddr).Port
		go func() {
			if c, err := l.Accept(); err == nil {
				c.Close()
			}
		}()
		Run(t, inst.NetNS, "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d", port))
		if c, err := net.DialTimeout("tcp", l.Addr().String(), time.Second); err == nil {
			c.Close()
			t.Errorf("listener in %s reachable from the test's namespace", inst.NetNS)
		}
	})
	if inst == nil || len(pids) != 2 {
		t.Fatal("nothing started")
	}
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil && !isZombie(pid) {
			t.Errorf("OVS process %d still runs after the test", pid)
		}
	}
	if _, err := os.Stat("/var/run/netns/" + inst.NetNS); err == nil {
		t.Errorf("namespace %s still exists", inst.NetNS)
	}
	if _, err := os.Stat(inst.Dir); err == nil {
		t.Errorf("directory %s still exists", inst.Dir)
	}
}

func isZombie(pid int) bool {
	out, err := exec.Command("ps", "-o", "stat=", "-p", fmt.Sprint(pid)).Output()
	return err == nil && strings.HasPrefix(strings.TrimSpace(string(out)), "Z")
}

func TestNetNS(t *testing.T) {
	Require(t)
	var ns string
	t.Run("inside", func(t *testing.T) {
		ns = NetNS(t, "ort-")
		if got := strings.TrimSpace(Run(t, ns, "ip", "netns", "identify")); got != ns {
			t.Errorf("namespace %q, want %q", got, ns)
		}
		if other := NetNS(t, "ort-"); other == ns {
			t.Errorf("two namespaces named %s", ns)
		}
	})
	if _, err := os.Stat("/var/run/netns/" + ns); err == nil {
		t.Errorf("namespace %s still exists", ns)
	}
}

// fatalTB records what Fatalf says and ends the goroutine, as testing does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestRunFailureNamesTheCommand(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("needs sh")
	}
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(f, "", "sh", "-c", "echo oops >&2; exit 3")
	}()
	<-done
	if want := "sh -c echo oops >&2; exit 3: exit status 3: oops"; !strings.HasPrefix(f.msg, want) {
		t.Errorf("Run failed with %q, want it to start with %q", f.msg, want)
	}
	if got := Run(t, "", "sh", "-c", "echo fine"); got != "fine\n" {
		t.Errorf("Run output %q", got)
	}
}
