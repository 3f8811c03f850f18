package main

import (
	"encoding/binary"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// ovsDatapathFamily is the generic netlink family of Open vSwitch's kernel
// datapath (OVS_DATAPATH_FAMILY in linux/openvswitch.h).
const ovsDatapathFamily = "ovs_datapath"

// genlHeaderLen is the size of struct genlmsghdr: cmd, version, reserved.
const genlHeaderLen = 4

// kernelHasDatapath reports whether the kernel offers Open vSwitch's
// datapath. It asks generic netlink for the family "ovs_datapath", which is
// how ovs-vswitchd finds it; the kernel loads the openvswitch module to
// answer when the module exists, so a module that is only loadable counts.
func kernelHasDatapath() (bool, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_GENERIC)
	if err != nil {
		return false, fmt.Errorf("opening a generic netlink socket: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.Timeval{Sec: 2}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return false, fmt.Errorf("setting the netlink receive timeout: %w", err)
	}
	if err := unix.Sendto(fd, getFamilyRequest(ovsDatapathFamily), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return false, fmt.Errorf("asking generic netlink for family %s: %w", ovsDatapathFamily, err)
	}
	buf := make([]byte, 16384)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return false, fmt.Errorf("reading generic netlink's answer for family %s: %w", ovsDatapathFamily, err)
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return false, fmt.Errorf("parsing generic netlink's answer for family %s: %w", ovsDatapathFamily, err)
	}
	for _, m := range msgs {
		switch m.Header.Type {
		case unix.GENL_ID_CTRL:
			return true, nil
		case unix.NLMSG_ERROR:
			if len(m.Data) < 4 {
				return false, fmt.Errorf("generic netlink: short error message")
			}
			errno := -int32(binary.NativeEndian.Uint32(m.Data))
			if syscall.Errno(errno) == unix.ENOENT {
				return false, nil
			}
			return false, fmt.Errorf("asking generic netlink for family %s: %w", ovsDatapathFamily, syscall.Errno(errno))
		}
	}
	return false, fmt.Errorf("generic netlink did not answer the request for family %s", ovsDatapathFamily)
}

// getFamilyRequest is the CTRL_CMD_GETFAMILY request for family name: a
// netlink header, a generic netlink header and one CTRL_ATTR_FAMILY_NAME
// attribute holding the NUL-terminated name.
func getFamilyRequest(name string) []byte {
	attrLen := unix.SizeofRtAttr + len(name) + 1
	total := unix.SizeofNlMsghdr + genlHeaderLen + (attrLen+3)&^3
	b := make([]byte, total)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(total))
	ne.PutUint16(b[4:], unix.GENL_ID_CTRL)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(b[8:], 1) // sequence number; the kernel fills in our port ID
	b[unix.SizeofNlMsghdr] = unix.CTRL_CMD_GETFAMILY
	b[unix.SizeofNlMsghdr+1] = 1 // the controller's version
	a := b[unix.SizeofNlMsghdr+genlHeaderLen:]
	ne.PutUint16(a[0:], uint16(attrLen))
	ne.PutUint16(a[2:], unix.CTRL_ATTR_FAMILY_NAME)
	copy(a[unix.SizeofRtAttr:], name)
	return b
}
