package main

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/ovsrun/ovsruntest"
)

// systemTopology is three-hosts with the kernel datapath (the default).
func systemTopology(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(threeHosts)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(data), "datapath: netdev", "datapath: system", 1)
	if s == string(data) {
		t.Fatal("three-hosts no longer sets datapath: netdev")
	}
	return writeFile(t, "system.yaml", s)
}

func TestCheckKernelDatapath(t *testing.T) {
	system := systemTopology(t)
	none := func() (bool, error) { return false, nil }
	has := func() (bool, error) { return true, nil }
	unknown := func() (bool, error) { return false, errors.New("no netlink here") }
	for _, tc := range []struct {
		file, db string
		probe    func() (bool, error)
		refuse   bool
	}{
		{system, "unix:/run/x/db.sock", none, true},
		{system, "unix:/run/x/db.sock", has, false},
		{system, "unix:/run/x/db.sock", unknown, false},
		{system, "tcp:192.0.2.1:6640", none, false}, // another machine's OVS
		{threeHosts, "unix:/run/x/db.sock", none, false},
	} {
		g := &globalOptions{file: tc.file, host: "host1", db: tc.db}
		err := g.checkKernelDatapath(tc.probe)
		if (err != nil) != tc.refuse {
			t.Errorf("%s, %s: %v, want refusal %v", tc.file, tc.db, err, tc.refuse)
		}
		if err != nil && (!strings.Contains(err.Error(), "datapath: netdev") || !strings.Contains(err.Error(), "host host1")) {
			t.Errorf("refusal does not say what to do: %v", err)
		}
	}
}

func TestKernelHasDatapath(t *testing.T) {
	ok, err := kernelHasDatapath()
	if err != nil {
		t.Skipf("cannot ask generic netlink here: %v", err)
	}
	_, statErr := os.Stat("/sys/module/openvswitch")
	if !ok && statErr == nil {
		t.Error("the openvswitch module is loaded but its generic netlink family was not found")
	}
	t.Logf("kernel datapath: %v", ok)
}

// TestApplyRefusesMissingKernelDatapath applies a datapath: system host to
// a real OVS: on a kernel without the OVS datapath it must say so and touch
// nothing.
func TestApplyRefusesMissingKernelDatapath(t *testing.T) {
	inst := ovsruntest.Start(t, "vxdp")
	if ok, err := kernelHasDatapath(); err != nil || ok {
		t.Skipf("this kernel has the OVS datapath (%v, %v): nothing to refuse", ok, err)
	}
	code, _, stderr := runCLI(t, "apply", "-f", systemTopology(t), "--host", "host1", "--db", inst.DBEndpoint())
	if code != 1 || !strings.Contains(stderr, "no Open vSwitch datapath") || !strings.Contains(stderr, "datapath: netdev") {
		t.Errorf("apply: exit %d, stderr %q", code, stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := inst.Vsctl(ctx, "list-br"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("after the refusal, bridges %q (%v)", out, err)
	}
}
