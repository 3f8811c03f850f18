// Package controller is the controller daemon: it serves remote switches
// over OpenFlow (sessions, handshake identity, allocation checks), keeps the
// knowledge of which MAC sits on which host, and pushes unicast entries to
// every switch through package openflow. Prometheus metrics live here too.
package controller
