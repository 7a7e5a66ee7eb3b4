// The backchannel as a Gitaly v16 node serves it (-backchannel): a
// connection that starts with the 11 bytes "backchannel" runs a yamux
// session as its server, the client's gRPC on the streams it opens; the
// node votes through streams it opens back (gitaly.RefTransaction). Without
// the bytes a connection is plain gRPC, as Gitaly's listenmux does.
//
// A call with the metadata `x-test-vote: <transaction id>` votes once, over
// the backchannel of the connection it came on, with node "<storage>" and a
// hash of 20 bytes 0x01, and ends with FailedPrecondition and the vote's
// outcome as its message: "vote: state=N" (the VoteTransactionResponse's
// state) or "vote: <the call's error>".
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"interop/wire"
)

const backchannelMagic = "backchannel"

// muxListener hands grpc-go the plain connections and the streams of every
// backchannel session.
type muxListener struct {
	net.Listener
	conns    chan net.Conn
	mu       sync.Mutex
	sessions map[string]*yamux.Session // by the client's address
}

func newMuxListener(lis net.Listener) *muxListener {
	m := &muxListener{Listener: lis, conns: make(chan net.Conn), sessions: map[string]*yamux.Session{}}
	go m.acceptLoop()
	return m
}

func (m *muxListener) Accept() (net.Conn, error) {
	c, ok := <-m.conns
	if !ok {
		return nil, io.EOF
	}
	return c, nil
}

func (m *muxListener) acceptLoop() {
	for {
		c, err := m.Listener.Accept()
		if err != nil {
			close(m.conns)
			return
		}
		go m.sniff(c)
	}
}

// replayConn gives back the bytes sniffed before the rest.
type replayConn struct {
	net.Conn
	head []byte
}

func (r *replayConn) Read(p []byte) (int, error) {
	if len(r.head) > 0 {
		n := copy(p, r.head)
		r.head = r.head[n:]
		return n, nil
	}
	return r.Conn.Read(p)
}

func (m *muxListener) sniff(c net.Conn) {
	head := make([]byte, len(backchannelMagic))
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.ReadFull(c, head)
	_ = c.SetReadDeadline(time.Time{})
	if err != nil || !bytes.Equal(head, []byte(backchannelMagic)) {
		if n == 0 && err != nil {
			c.Close()
			return
		}
		m.conns <- &replayConn{Conn: c, head: head[:n]}
		return
	}
	// Gitaly's server side: accept backlog 1, 16 MiB windows, quiet.
	cfg := yamux.DefaultConfig()
	cfg.AcceptBacklog = 1
	cfg.MaxStreamWindowSize = 16 << 20
	cfg.LogOutput = io.Discard
	session, err := yamux.Server(c, cfg)
	if err != nil {
		c.Close()
		return
	}
	key := c.RemoteAddr().String()
	m.mu.Lock()
	m.sessions[key] = session
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.sessions, key)
		m.mu.Unlock()
	}()
	for {
		s, err := session.Accept()
		if err != nil {
			return
		}
		m.conns <- s
	}
}

func (m *muxListener) session(addr string) *yamux.Session {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sessions[addr]
}

// vote casts one vote over the backchannel of the call's connection.
func (n *node) vote(ctx context.Context, md metadata.MD) error {
	id, err := strconv.ParseUint(md.Get("x-test-vote")[0], 10, 64)
	if err != nil {
		return status.Error(codes.InvalidArgument, "interop-gonode: x-test-vote: "+err.Error())
	}
	p, _ := peer.FromContext(ctx)
	var session *yamux.Session
	if n.mux != nil && p != nil {
		session = n.mux.session(p.Addr.String())
	}
	if session == nil {
		return status.Error(codes.FailedPrecondition, "vote: no backchannel for peer")
	}
	conn, err := grpc.DialContext(ctx, "backchannel", grpc.WithInsecure(), grpc.WithCodec(wire.Raw{}),
		grpc.WithContextDialer(func(context.Context, string) (net.Conn, error) { return session.Open() }))
	if err != nil {
		return status.Error(codes.FailedPrecondition, "vote: "+err.Error())
	}
	defer conn.Close()
	var req []byte
	req = wire.AppendVarint(req, 2<<3|0) // transaction_id
	req = wire.AppendVarint(req, id)
	req = wire.AppendBytes(req, 3, []byte(n.storage))
	req = wire.AppendBytes(req, 4, bytes.Repeat([]byte{1}, 20))
	var resp []byte
	callCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := conn.Invoke(callCtx, "/gitaly.RefTransaction/VoteTransaction", &req, &resp); err != nil {
		return status.Error(codes.FailedPrecondition, "vote: "+err.Error())
	}
	state := 0
	if len(resp) >= 2 && resp[0] == 0x08 {
		state = int(resp[1])
	}
	return status.Error(codes.FailedPrecondition, fmt.Sprintf("vote: state=%d", state))
}
