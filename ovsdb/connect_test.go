package ovsdb

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A connection nobody answers says where, suggests the cause once, and
// keeps the system's reason (still matchable with errors.Is).
func TestConnectErrorSuggestsOVSDBServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	endpoint := "unix:" + filepath.Join(t.TempDir(), "db.sock")
	_, err := Connect(ctx, endpoint, nil)
	if err == nil {
		t.Fatal("Connect to a missing socket succeeded")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "connecting to OVSDB at "+endpoint+" (is ovsdb-server running?): ") {
		t.Errorf("error %q", msg)
	}
	if n := strings.Count(msg, endpoint[len("unix:"):]); n != 1 {
		t.Errorf("error %q names the socket %d times", msg, n)
	}
	if !errors.Is(err, syscall.ENOENT) {
		t.Errorf("error %q does not wrap ENOENT", msg)
	}
}
