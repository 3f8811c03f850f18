package directory

import (
	"context"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/directory/model"
	"go.uber.org/zap/zaptest"
)

// The liveness clock: a replica dies when its heartbeat stands still while
// ours moves; a directory that delivers nothing kills nobody; a restart
// revives everyone it knows.
func TestLivenessClock(t *testing.T) {
	const timeout = time.Second
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	l := newLiveness("me", timeout)
	if l.alive("a") {
		t.Fatal("an unknown replica is alive")
	}
	l.observe("me", 1, at(0))
	l.observe("a", 7, at(0))
	l.observe("b", 3, at(0))
	// a keeps beating, b stops at 3; our own beats move the reference.
	for ms := 250; ms <= 1000; ms += 250 {
		l.observe("me", 1+ms/250, at(ms))
		l.observe("a", 7+ms/250, at(ms))
		l.observe("b", 3, at(ms)) // unchanged: not a sign of life
	}
	if !l.alive("a") || !l.alive("b") {
		t.Fatal("b dead after exactly the timeout; want dead only beyond it")
	}
	l.observe("me", 6, at(1250))
	if !l.alive("a") || l.alive("b") {
		t.Fatalf("at 1.25 s: a alive %v (want true), b alive %v (want false)", l.alive("a"), l.alive("b"))
	}
	if got := l.live(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("live = %v, want [a] (never itself)", got)
	}
	// The directory stalls: nothing arrives, whatever the wall clock says.
	// a stays alive because the reference has not moved.
	if !l.alive("a") {
		t.Error("a judged dead while nothing arrived from the directory")
	}
	// Failover: a new session restarts every clock, b included, with as
	// much again as we were cut off (capped at 3 timeouts).
	l.restart(at(60_000), at(1250))
	if !l.alive("a") || !l.alive("b") {
		t.Error("after a restart, a replica is dead")
	}
	l.observe("me", 7, at(60_250))
	l.observe("a", 20, at(60_250))
	for ms, v := 60_500, 8; ms <= 61_250; ms, v = ms+250, v+1 {
		l.observe("me", v, at(ms))
	}
	if !l.alive("a") || !l.alive("b") {
		t.Errorf("1.25 s after the restart: a %v, b %v (want both alive: b has 3 s of grace)", l.alive("a"), l.alive("b"))
	}
	for ms, v := 61_500, 12; ms <= 64_250; ms, v = ms+250, v+1 {
		l.observe("me", v, at(ms))
		l.observe("a", 20+v, at(ms))
	}
	if !l.alive("a") || l.alive("b") {
		t.Errorf("4.25 s after the restart: a %v (want alive), b %v (want dead)", l.alive("a"), l.alive("b"))
	}
	// A deleted row is forgotten.
	l.forget("a")
	if l.alive("a") || len(l.live()) != 0 {
		t.Errorf("forgotten a: alive %v, live %v", l.alive("a"), l.live())
	}
}

// F3: a big transaction stalls the leader; both replicas lose their
// session; we come back at once, the other 2 s later. It must not be
// judged dead meanwhile; one that never comes back is, within the cap.
func TestLivenessReconnectGap(t *testing.T) {
	const timeout = time.Second
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	l := newLiveness("me", timeout)
	l.restart(at(0), time.Time{})
	l.observe("me", 1, at(0))
	l.observe("slow", 1, at(0))
	l.observe("gone", 1, at(0))
	// Stall from 0 to 2.3 s, our session lost at 1 s, back at 2.5 s.
	l.restart(at(2500), l.last)
	v := 2
	for ms := 2750; ms <= 4500; ms += 250 {
		l.observe("me", v, at(ms))
		v++
	}
	l.observe("slow", 2, at(4500)) // reconnected 2 s after us
	if !l.alive("slow") {
		t.Fatal("a replica that reconnected 2 s after us was judged dead")
	}
	for ms := 4750; ms <= 7000; ms += 250 {
		l.observe("me", v, at(ms))
		l.observe("slow", v, at(ms))
		v++
	}
	if !l.alive("slow") || l.alive("gone") {
		t.Errorf("4.5 s after the restart: slow %v (want alive), gone %v (want dead)", l.alive("slow"), l.alive("gone"))
	}
}

// One slow round of our own heartbeat (a transaction ahead of it) counts
// as half a timeout, however long; steady slow rounds still judge.
func TestLivenessSlowRound(t *testing.T) {
	const timeout = time.Second
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	l := newLiveness("me", timeout)
	l.observe("me", 1, at(0))
	l.observe("b", 1, at(0))
	l.observe("me", 2, at(900)) // slow: 0.5 s on the clock
	l.observe("me", 3, at(1150))
	l.observe("me", 4, at(1400))
	if !l.alive("b") {
		t.Fatal("b dead after one slow round and 0.5 s of normal ones")
	}
	for ms, v := 2000, 5; ms <= 3200; ms, v = ms+600, v+1 { // steadily slow
		l.observe("me", v, at(ms))
	}
	if l.alive("b") {
		t.Fatal("b still alive after 3.2 s of slow rounds: slowness must not stop the clock")
	}
}

// openReplica opens a named replica with fast heartbeats, and records the
// Switch rows its OnSwitch sees.
func openReplica(t *testing.T, ms []*member, name string, seen *switchLog) *Client {
	t.Helper()
	o := Options{Endpoints: endpoints(ms), Name: name, Address: "tcp:127.0.0.1:6653", Logger: zaptest.NewLogger(t).Named(name),
		HeartbeatInterval: 100 * time.Millisecond, ReplicaTimeout: time.Second}
	if seen != nil {
		o.OnSwitch = seen.add
	}
	c, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

type switchLog struct {
	mu   sync.Mutex
	rows []SwitchOwner
}

func (l *switchLog) add(o SwitchOwner) { l.mu.Lock(); l.rows = append(l.rows, o); l.mu.Unlock() }

func (l *switchLog) has(o SwitchOwner) bool { return l.count(o) > 0 }

func (l *switchLog) count(o SwitchOwner) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.rows {
		if r == o {
			n++
		}
	}
	return n
}

// bothAlive waits until each of cs sees every one of them alive.
func bothAlive(t *testing.T, cs ...*Client) {
	t.Helper()
	waitFor(t, 5*time.Second, "replicas see each other", func() bool {
		for _, c := range cs {
			if len(c.LiveReplicas()) != len(cs) {
				return false
			}
		}
		return true
	})
}

func TestClusterClaimRace(t *testing.T) {
	ms := startCluster(t, 3)
	a := openReplica(t, ms, "ctl-a", nil)
	b := openReplica(t, ms, "ctl-b", nil)
	bothAlive(t, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	type result struct {
		o   SwitchOwner
		won bool
		err error
	}
	const switches = 20
	var wg sync.WaitGroup
	res := make([][2]result, switches)
	start := make(chan struct{})
	for i := range switches {
		for j, c := range []*Client{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				o, won, err := c.Claim(ctx, uint64(0x100+i), "host1", "br0")
				res[i][j] = result{o, won, err}
			}()
		}
	}
	close(start)
	wg.Wait()
	wins := map[string]int{}
	for i, r := range res {
		dpid := uint64(0x100 + i)
		if r[0].err != nil || r[1].err != nil {
			t.Fatalf("switch %x: errors %v, %v", dpid, r[0].err, r[1].err)
		}
		if r[0].won == r[1].won {
			t.Fatalf("switch %x: a won %v, b won %v; want exactly one", dpid, r[0].won, r[1].won)
		}
		winner := map[bool]string{true: "ctl-a", false: "ctl-b"}[r[0].won]
		wins[winner]++
		want := SwitchOwner{DatapathID: dpid, Host: "host1", Bridge: "br0", Master: winner, Generation: 1}
		if r[0].o != want || r[1].o != want {
			t.Fatalf("switch %x: a got %+v, b got %+v; want both %+v", dpid, r[0].o, r[1].o, want)
		}
		for _, c := range []*Client{a, b} {
			waitFor(t, 2*time.Second, "owner cached", func() bool { o, ok := c.Owner(dpid); return ok && o == want })
		}
	}
	t.Logf("wins %v; a %+v; b %+v", wins, a.Stats(), b.Stats())
	if s := a.Stats(); s.ClaimsWon+s.ClaimsLost != switches {
		t.Errorf("a counted %d claims, want %d", s.ClaimsWon+s.ClaimsLost, switches)
	}
}

func TestClusterClaimTakeover(t *testing.T) {
	ms := startCluster(t, 3)
	var bSeen switchLog
	a := openReplica(t, ms, "ctl-a", nil)
	b := openReplica(t, ms, "ctl-b", &bSeen)
	bothAlive(t, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The Replica rows hold each replica's address and a moving heartbeat.
	var reps []model.Replica
	if err := a.sess.cli.List(ctx, &reps); err != nil || len(reps) != 2 {
		t.Fatalf("Replica rows %+v, err %v; want 2", reps, err)
	}
	for _, r := range reps {
		if r.Address != "tcp:127.0.0.1:6653" || r.Heartbeat < 1 {
			t.Errorf("Replica row %+v", r)
		}
	}
	const dpid = 0xabc
	first, won, err := a.Claim(ctx, dpid, "host1", "br0")
	if err != nil || !won || first.Generation != 1 || first.Master != "ctl-a" {
		t.Fatalf("a's first claim: %+v won %v err %v", first, won, err)
	}
	// A live master claiming again keeps its generation.
	again, won, err := a.Claim(ctx, dpid, "host1", "br0")
	if err != nil || !won || again != first {
		t.Fatalf("a's second claim: %+v won %v err %v; want %+v won", again, won, err, first)
	}
	// b sees a's row (OnSwitch) and cannot take a live master's switch.
	waitFor(t, 2*time.Second, "b's OnSwitch sees a's row", func() bool { return bSeen.has(first) })
	got, won, err := b.Claim(ctx, dpid, "host1", "br0")
	if err != nil || won || got != first {
		t.Fatalf("b's claim of a live master's switch: %+v won %v err %v", got, won, err)
	}
	if !b.Alive("ctl-a") || !b.Alive("ctl-b") || !slices.Equal(b.LiveReplicas(), []string{"ctl-a", "ctl-b"}) {
		t.Fatalf("b: alive a %v, self %v, live %v", b.Alive("ctl-a"), b.Alive("ctl-b"), b.LiveReplicas())
	}
	// a dies.
	a.Close()
	closed := time.Now()
	waitFor(t, 3*time.Second, "b judges a dead", func() bool { return !b.Alive("ctl-a") })
	t.Logf("a judged dead %v after its Close (timeout 1 s, heartbeat 100 ms)", time.Since(closed))
	// Loose: a's last heartbeat may have been late under load.
	if d := time.Since(closed); d < 500*time.Millisecond {
		t.Errorf("a judged dead after %v, long before the 1 s timeout", d)
	}
	got, won, err = b.Claim(ctx, dpid, "host2", "br1")
	want := SwitchOwner{DatapathID: dpid, Host: "host2", Bridge: "br1", Master: "ctl-b", Generation: 2}
	if err != nil || !won || got != want {
		t.Fatalf("b's takeover: %+v won %v err %v; want %+v won", got, won, err, want)
	}
	// Owner is right as soon as Claim returns; OnSwitch comes with the
	// monitor's event, once.
	if o, _ := b.Owner(dpid); o != want {
		t.Errorf("b's cache after its claim: %+v", o)
	}
	waitFor(t, 2*time.Second, "b's OnSwitch sees its claim", func() bool { return bSeen.has(want) })
	time.Sleep(200 * time.Millisecond)
	if n := bSeen.count(want); n != 1 {
		t.Errorf("OnSwitch saw b's claim %d times, want once", n)
	}
	if s := b.Stats(); s.Heartbeats == 0 || s.ClaimsWon != 1 || s.ClaimsLost != 1 {
		t.Errorf("b's stats %+v", s)
	}
}

// A replica restarted under the same name finds its switches as it left
// them and re-claims them without a new generation; a stale cached owner
// loses to the row the leader holds.
func TestClusterClaimStaleCache(t *testing.T) {
	ms := startCluster(t, 3)
	a := openReplica(t, ms, "ctl-a", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, won, err := a.Claim(ctx, 7, "h", "br0"); !won || err != nil {
		t.Fatalf("claim: won %v err %v", won, err)
	}
	a.Close()
	a2 := openReplica(t, ms, "ctl-a", nil)
	o, won, err := a2.Claim(ctx, 7, "h", "br0")
	if err != nil || !won || o.Generation != 1 {
		t.Fatalf("restarted a re-claims: %+v won %v err %v; want generation 1 won", o, won, err)
	}
	// c, whose cache has not seen a's row yet, inserts and is refused by
	// the index: it must answer with a's row, not an error.
	c := openReplica(t, ms, "ctl-c", nil)
	c.mu.Lock()
	delete(c.switches, 7)
	c.mu.Unlock()
	got, won, err := c.Claim(ctx, 7, "h", "br0")
	if err != nil || won || got.Master != "ctl-a" || got.Generation != 1 {
		t.Fatalf("claim on a stale cache: %+v won %v err %v; want ctl-a's row, lost", got, won, err)
	}
	// c's cache holds an owner that is gone: the wait on it fails, and
	// c answers with the row the leader holds.
	c.mu.Lock()
	c.switches[7] = SwitchOwner{DatapathID: 7, Host: "h", Bridge: "br0", Master: "ctl-gone", Generation: 1}
	c.mu.Unlock()
	got, won, err = c.Claim(ctx, 7, "h", "br0")
	if err != nil || won || got.Master != "ctl-a" || got.Generation != 1 {
		t.Fatalf("claim after a failed wait: %+v won %v err %v; want ctl-a's row, lost", got, won, err)
	}
	if o, _ := a2.Owner(7); o.Master != "ctl-a" || o.Generation != 1 {
		t.Errorf("the failed claim changed the row: %+v", o)
	}
}

func TestClusterClaimAfterLeaderKilled(t *testing.T)  { claimAcrossFailover(t, syscall.SIGKILL) }
func TestClusterClaimAfterLeaderStopped(t *testing.T) { claimAcrossFailover(t, syscall.SIGSTOP) }

// claimAcrossFailover takes the directory's leader away with sig: claims
// work again within 5 s, and no live replica was judged dead meanwhile.
func claimAcrossFailover(t *testing.T, sig syscall.Signal) {
	ms := startCluster(t, 3)
	a := openReplica(t, ms, "ctl-a", nil)
	b := openReplica(t, ms, "ctl-b", nil)
	bothAlive(t, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first, won, err := a.Claim(ctx, 1, "host1", "br0")
	if err != nil || !won {
		t.Fatalf("a's claim: won %v err %v", won, err)
	}
	// Watch b's view of a from the kill until well after claims resume.
	stop := make(chan struct{})
	deadAt := make(chan time.Duration, 1)
	leader := memberAt(t, ms, a.Leader())
	if err := leader.Cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	go func() {
		defer close(deadAt)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				if !b.Alive("ctl-a") {
					deadAt <- time.Since(killed)
					return
				}
			}
		}
	}()
	cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
	defer ccancel()
	got, won, err := b.Claim(cctx, 2, "host2", "br0")
	if err != nil || !won || got.Generation != 1 {
		t.Fatalf("no claim within 5 s of %v to the leader: %+v won %v err %v", sig, got, won, err)
	}
	t.Logf("claim committed %v after %v, on %s (was %s)", time.Since(killed), sig, b.Leader(), leader.Remote)
	// a is still a's master, b still may not take it.
	if o, won, err := b.Claim(cctx, 1, "host1", "br0"); err != nil || won || o != first {
		t.Fatalf("b's claim of a's switch after the failover: %+v won %v err %v", o, won, err)
	}
	time.Sleep(2 * time.Second) // longer than the replica timeout
	close(stop)
	if d, dead := <-deadAt; dead {
		t.Fatalf("b judged a dead %v after %v to the leader", d, sig)
	}
	if o, won, err := a.Claim(ctx, 1, "host1", "br0"); err != nil || !won || o != first {
		t.Fatalf("a re-claims after the failover: %+v won %v err %v; want %+v, no new generation", o, won, err, first)
	}
}

// Without a directory: heartbeats fail and are counted, nobody is alive,
// and a claim gives up when its context ends instead of guessing.
func TestNoDirectoryClaimFails(t *testing.T) {
	c, err := Open(Options{Endpoints: []string{"tcp:127.0.0.1:1"}, Name: "ctl-a", ConnectTimeout: 50 * time.Millisecond,
		HeartbeatInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitFor(t, 5*time.Second, "heartbeat failures counted", func() bool { return c.Stats().HeartbeatFailures >= 3 })
	if c.Connected() || c.Alive("ctl-a") || len(c.LiveReplicas()) != 0 {
		t.Errorf("connected %v, self alive %v, live %v; want false, false, none", c.Connected(), c.Alive("ctl-a"), c.LiveReplicas())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if o, won, err := c.Claim(ctx, 1, "h", "br0"); err == nil || won {
		t.Errorf("claim without a directory: %+v won %v err %v; want an error", o, won, err)
	}
	if _, ok := c.Owner(1); ok {
		t.Error("a failed claim left a cached owner")
	}
	anon, err := Open(Options{Endpoints: []string{"tcp:127.0.0.1:1"}, ConnectTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if _, _, err := anon.Claim(ctx, 1, "h", "br0"); err == nil || !strings.Contains(err.Error(), "no replica name") {
		t.Errorf("claim by a client without a name: %v", err)
	}
}

// Endpoints is a sorted copy of the cache.
func TestClusterEndpointsCopy(t *testing.T) {
	ms := startCluster(t, 3)
	a := openReplica(t, ms, "ctl-a", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Write(ctx, ep(200, 2, "h2"), ep(100, 9, "h1"), ep(200, 1, "h1")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "cached", func() bool { return a.Len() == 3 })
	got := a.Endpoints()
	var keys []Key
	for _, e := range got {
		keys = append(keys, e.Key)
	}
	want := []Key{ep(100, 9, "").Key, ep(200, 1, "").Key, ep(200, 2, "").Key}
	if !slices.Equal(keys, want) || got[0].Host != "h1" || got[0].Writer != "ctl-a" {
		t.Fatalf("Endpoints = %+v, want keys %v", got, want)
	}
	got[0].IPs[0] = "changed"
	if e, _ := a.Endpoint(want[0]); e.IPs[0] == "changed" {
		t.Error("Endpoints shares its IPs with the cache")
	}
}
