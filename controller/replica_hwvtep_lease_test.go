package controller

// A replica cut off from the directory must stop driving the hardware VTEP
// it holds before the others judge it dead: a VTEP database has no roles to
// fence an old writer, so otherwise two replicas would rewrite one
// Ucast_Macs_Remote for as long as the partition lasts.

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/directory"
)

// partitionedDir is a replica's client cut off from the directory: not
// connected, its heartbeats no longer committing, its cache frozen (the
// fake's reads stand in for it).
type partitionedDir struct {
	Directory
	cut   atomic.Bool
	lease atomic.Pointer[time.Time] // LeaseUntil when cut
}

func (d *partitionedDir) Connected() bool { return !d.cut.Load() && d.Directory.Connected() }

func (d *partitionedDir) LeaseUntil() time.Time {
	if d.cut.Load() {
		return *d.lease.Load()
	}
	return d.Directory.LeaseUntil()
}

func TestReplicaHardwareVTEPStopsWhenLeaseRunsOut(t *testing.T) {
	const target = "tcp:10.0.0.9:6640"
	f := newFakeVTEPs()
	dir := newFakeCluster(time.Second)
	var pa *partitionedDir
	openA := func(h DirectoryHooks) (Directory, error) {
		d, err := dir.open(h)
		pa = &partitionedDir{Directory: d}
		return pa, err
	}
	startTestServer(t, ServerOptions{Topology: parseTopo(t, hwTopo), Grace: 10 * time.Millisecond, Name: "ctl-a", OpenDirectory: openA},
		func(s *Server) { s.hw.connect = f.connect })
	open := func() int { n, _, _ := f.state(target); return n }
	eventually(t, 10*time.Second, "ctl-a drives tor1", func() bool { return open() == 1 })
	startTestServer(t, ServerOptions{Topology: parseTopo(t, hwTopo), Grace: 10 * time.Millisecond, Name: "ctl-b", OpenDirectory: dir.open},
		func(s *Server) { s.hw.connect = f.connect })
	time.Sleep(2 * time.Second) // ctl-b settles as a waiting replica
	if open() != 1 {
		t.Fatalf("%d writers before the partition", open())
	}
	// ctl-a loses the directory; the cluster stops hearing its heartbeat
	// now, so the others judge it dead once the timeout has passed.
	l := pa.Directory.LeaseUntil()
	pa.lease.Store(&l)
	pa.cut.Store(true)
	dir.mu.Lock()
	dir.closed["ctl-a"] = time.Now()
	dir.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && open() < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	if n := open(); n > 1 {
		t.Fatalf("tor1 has %d writers at once: ctl-a (cut off from the directory) still drives it and ctl-b took it over", n)
	}
	dir.mu.Lock()
	row := dir.rows[directory.HardwareVTEPKey("tor1")]
	dir.mu.Unlock()
	if row.Master != "ctl-b" || open() != 1 {
		t.Fatalf("after the partition: the claim names %q and tor1 has %d writers; want ctl-b alone", row.Master, open())
	}
}
