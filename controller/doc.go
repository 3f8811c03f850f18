// Package controller is the controller daemon: it serves remote switches
// over OpenFlow (sessions, handshake identity, allocation checks), keeps the
// knowledge of which MAC sits on which host, and pushes unicast entries to
// every switch through package openflow. Prometheus metrics live here too.
//
// Goroutines and locks. Server.Run starts an accept loop per listener,
// the expiry loop (Knowledge.Expire every AgeInterval) and a loop per
// hardware VTEP in controller mode (hwvtep.go); each connection
// gets a goroutine that identifies it and runs its session. A session's
// goroutine (session.run) owns its switch: the reconciles, the
// incremental-update cache (cache, nextCache), lastFull and lastWarn are
// touched by it alone. Beside it, keepalive sends echo requests and
// readAsync handles packet-ins, which update the Knowledge and mark the
// affected sessions. What these goroutines share sits behind three mutexes,
// taken only in this order: Knowledge.mu, then Server.mu, then session.mu.
// Knowledge.Expire holds Knowledge.mu while it asks Server.live
// (Server.mu); Server.changed and Server.Switches hold Server.mu while they
// mark or read a session (session.mu). Nothing calls into the Knowledge or
// the Server while holding session.mu or Server.mu, and Knowledge events
// reach Server.changed only once Knowledge.mu is released. tokenBucket.mu
// and throttle.mu are leaves; the counters behind Stats and the metrics are
// atomics.
//
// Replicas (replica.go, mastership.go). With a directory, a session's
// goroutine also runs its mastership loop (session.replicate) and, while
// this replica is the switch's master, the programming above under a
// context of its own that demotion cancels. The directory's goroutine calls
// Server.directoryChanged (the knowledge, then Server.mu, as a packet-in
// does) and Server.switchOwnerChanged (Server.mu, then a session's
// mastership.mu, a leaf); nothing calls the directory while holding a lock
// of this package, so the directory's own lock, held around its callbacks,
// comes before all of them. The one call into the directory from inside
// its callbacks, Server.changed queueing the delete of a forgotten MAC
// (Directory.Forget), only sends on the writer's channel and never blocks.
// Server.gaveUp.mu (switches released after a lost connection) is a leaf.
// A hardware VTEP's loop runs only while this replica holds the VTEP's
// claim (replica_hwvtep.go): its goroutine claims, checks the claim every
// masterCheckInterval and cancels the loop it started on losing it, or on
// its lease (Directory.LeaseUntil) running out. One upkeep goroutine
// (replicaUpkeep) owns the orphan sweep's and the re-sync's state: it
// releases rows naming this replica for switches it has no session of
// (replica_orphans.go) and queues again what the directory lacks or kept
// (replica_resync.go), taking Server.mu and the Knowledge one at a time.
package controller
