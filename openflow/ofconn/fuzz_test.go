package ofconn

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/zap"
)

// sink is a net.Conn that reads nothing and swallows writes, so that
// dispatch (which answers echoes) can run on fuzz input.
type sink struct{}

func (sink) Read([]byte) (int, error)         { return 0, io.EOF }
func (sink) Write(b []byte) (int, error)      { return len(b), nil }
func (sink) Close() error                     { return nil }
func (sink) LocalAddr() net.Addr              { return &net.UnixAddr{} }
func (sink) RemoteAddr() net.Addr             { return &net.UnixAddr{} }
func (sink) SetDeadline(time.Time) error      { return nil }
func (sink) SetReadDeadline(time.Time) error  { return nil }
func (sink) SetWriteDeadline(time.Time) error { return nil }

// FuzzReadMessage runs the frame reader, the decoder and the dispatcher on
// arbitrary bytes: no panic, no hang, and every frame is whole.
func FuzzReadMessage(f *testing.F) {
	f.Add(frame(TypeHello, 1, []byte{0, 1, 0, 8, 0, 0, 0, 0x10}))
	f.Add(frame(TypeEchoRequest, 2, []byte("ping")))
	f.Add(frame(TypeError, 3, []byte{0xff, 0xff, 0x08, 0xfd, 0x4f, 0x4e, 0x46, 0x00, 4, 14, 0, 8}))
	f.Add(frame(TypeError, 3, []byte{0, 5, 0, 3}))
	f.Add(frame(TypeMultipartReply, 4, []byte{0, 1, 0, 1, 0, 0, 0, 0}))
	f.Add(frame(TypeExperimenter, 5, []byte{0x4f, 0x4e, 0x46, 0x00, 0, 0, 0x08, 0xfc, 0, 0, 0, 1, 0, 1, 0, 1}))
	f.Add(frame(TypePacketIn, 0, []byte{0xff, 0xff, 0xff, 0xff, 0, 42, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 1, 0, 12, 0x80, 0, 0, 4, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 1, 2, 3}))
	f.Add(frame(TypePortStatus, 0, make([]byte, 72)))
	f.Add(frame(TypeFlowRemoved, 0, append(make([]byte, 40), 0, 1, 0, 4, 0, 0, 0, 0)))
	f.Add(frame(TypePacketOut, 0, make([]byte, 16)))
	f.Add([]byte{4, 0, 0, 3})
	c := NewConn(sink{}, zap.NewNop())
	c.pending[7] = newCall() // a waiter, so replies with xid 7 are routed
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for {
			fr, err := ReadFrame(r)
			if err != nil {
				break
			}
			if n := int(binary.BigEndian.Uint16(fr[2:])); n != len(fr) {
				t.Fatalf("frame of %d bytes says %d", len(fr), n)
			}
			m := Decode(fr)
			if (m.Parsed == nil) == (m.ParseErr == nil) && (m.Type == TypePacketIn || m.Type == TypePortStatus || m.Type == TypeFlowRemoved) && m.Version == Version {
				t.Fatalf("type %d: parsed %v, error %v", m.Type, m.Parsed, m.ParseErr)
			}
			m.Experimenter()
			m.MultipartFlags()
			if m.Type == TypeError {
				if e, err := DecodeError(fr); err == nil {
					_ = e.Error()
				}
			}
			if m.Type == TypeHello {
				helloAccepts13(fr)
			}
			c.dispatch(m)
			c.pending[7].take()
			for len(c.async) > 0 {
				<-c.async
			}
		}
	})
}
