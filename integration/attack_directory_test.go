package integration

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/directory"
	"github.com/ovs-vxctl/ovs-vxctl/lab"
)

// TestAttackSwitchRowGenerationOutOfRange: one Switch row of the directory
// written by hand (or left by a bug) naming a master that is no replica,
// with generation 2^63-1, must not leave that switch without a master for
// good. The switch itself never saw that generation (it remembers the
// small one of its real master), so a live replica can claim it safely;
// today every claim fails with "generation out of range" and, once the real
// master dies, the switch stays masterless (no learning, no programming)
// until a person edits the directory.
func TestAttackSwitchRowGenerationOutOfRange(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs root, Open vSwitch and network namespaces")
	}
	l := upLabVariant(t, replicasExample, "-atkgen", func(s string) string { return s })
	warmUpReplicas(t, l)
	masters := l.waitMasters(t, 20*time.Second)
	victim := masters["host1/br-int"]
	t.Logf("masters: %v (directory: %s)", masters, l.switchTable(t))

	// The hostile row: host1's br-int owned by "ghost" at 2^63-1.
	op := `["` + directory.DatabaseName + `",{"op":"update","table":"Switch",` +
		`"where":[["host","==","host1"],["bridge","==","br-int"]],` +
		`"row":{"master":"ghost","generation":9223372036854775807}}]`
	l.directoryTransact(t, op)
	time.Sleep(2 * time.Second) // every replica reads the row
	if err := syscall.Kill(l.replicaPid(t, victim), syscall.SIGKILL); err != nil {
		t.Fatalf("killing replica %s: %v", victim, err)
	}
	killed := time.Now()
	// Loose bound (the README says about 1.5 s): 15 s on a loaded machine.
	for time.Since(killed) < 15*time.Second {
		if m, ok := l.directoryMaster("host1", "br-int"); ok && m != victim && m != "ghost" {
			t.Logf("%s claimed host1/br-int %v after the kill", m, time.Since(killed).Round(time.Millisecond))
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("host1/br-int has no live master 15 s after its master %s was killed (directory: %s)\n%s",
		victim, l.switchTable(t), l.replicaLogs())
}

// directoryTransact runs one ovsdb-client transaction on the first member
// that takes it (a follower may refuse a write).
func (l *labEnv) directoryTransact(t *testing.T, op string) {
	t.Helper()
	var errs []string
	for _, ep := range l.topo.Directory {
		r := run("ip", "netns", "exec", lab.UnderlayNS(l.opts), "ovsdb-client", "--timeout=5", "transact", ep, op)
		if r.code == 0 && !strings.Contains(r.stdout, `"error"`) {
			return
		}
		errs = append(errs, fmt.Sprintf("%s: %v", ep, r))
	}
	t.Fatalf("writing %s to the directory: %s", op, strings.Join(errs, "; "))
}

// TestAttackSwitchRowAtMaxGeneration: a hand-written Switch row naming a
// master that is no replica, at directory.MaxGeneration (in range), makes
// the live master step down at once ("the directory names replica ghost
// master") while no replica can claim above it: the switch is left with
// two slaves, no kill needed. A live replica must take it back.
func TestAttackSwitchRowAtMaxGeneration(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs root, Open vSwitch and network namespaces")
	}
	l := upLabVariant(t, replicasExample, "-atkmax", func(s string) string { return s })
	warmUpReplicas(t, l)
	t.Logf("masters: %v (directory: %s)", l.waitMasters(t, 20*time.Second), l.switchTable(t))
	op := fmt.Sprintf(`["%s",{"op":"update","table":"Switch","where":[["host","==","host2"],["bridge","==","br-tun"]],`+
		`"row":{"master":"ghost","generation":%d}}]`, directory.DatabaseName, uint64(directory.MaxGeneration))
	l.directoryTransact(t, op)
	written := time.Now()
	for time.Since(written) < 15*time.Second {
		if m, ok := l.directoryMaster("host2", "br-tun"); ok && m != "ghost" {
			t.Logf("%s claimed host2/br-tun back %v after the row was written", m, time.Since(written).Round(time.Millisecond))
			l.waitMasters(t, 15*time.Second)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("host2/br-tun still owned by the ghost 15 s after the row was written (directory: %s)\n%s", l.switchTable(t), l.replicaLogs())
}
