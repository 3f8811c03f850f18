package directory

import (
	"syscall"
	"testing"
	"time"
)

// The lease follows this replica's committed heartbeats: it is ahead of now
// while they commit, and runs out (three quarters of ReplicaTimeout after
// the last) once the directory has no quorum, before any other replica
// could judge this one dead.
func TestClusterLeaseFollowsHeartbeats(t *testing.T) {
	ms := startCluster(t, 3)
	a := openReplica(t, ms, "ctl-a", nil)
	if !a.LeaseUntil().IsZero() && a.LastHeartbeat().IsZero() {
		t.Fatal("a lease without a heartbeat")
	}
	waitFor(t, 10*time.Second, "a's heartbeats", func() bool { return a.Stats().Heartbeats > 2 })
	last, lease := a.LastHeartbeat(), a.LeaseUntil()
	if want := last.Add(a.o.ReplicaTimeout * 3 / 4); !lease.Equal(want) {
		t.Fatalf("lease %v, want the last heartbeat %v plus 3/4 of the timeout", lease, last)
	}
	if !time.Now().Before(lease) {
		t.Fatalf("lease %v already over while heartbeats commit", lease)
	}
	// Two of three members stopped: no quorum, no heartbeat commits.
	for _, m := range ms[:2] {
		if err := m.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "the lease runs out", func() bool { return !time.Now().Before(a.LeaseUntil()) })
	if got := a.LeaseUntil().Sub(a.LastHeartbeat()); got != a.o.ReplicaTimeout*3/4 {
		t.Fatalf("lease %v after the last heartbeat", got)
	}
}
