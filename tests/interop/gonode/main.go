// interop-gonode: a Gitaly node stand-in on grpc-go, the HTTP/2 stack that
// Gitaly itself runs on, for praefect's interoperability tests.
//
// It checks Gitaly's v2 token, answers grpc.health.v1.Health/Check SERVING
// (without a token, as Gitaly does) and gitaly.ServerService/ServerInfo
// (one readable, writeable storage), and answers every other method with a
// behaviour scripted by the request metadata (see script below): how many
// responses of what size, echoing, delays, holding until cancelled, the
// status to end with, metadata echoed back as headers and trailers. What it
// saw of each call that carries `x-test-id` (metadata, deadline, messages
// and their checksum, how the call ended) is served as JSON on a separate
// HTTP port, the side channel the tests read.
//
// With -backchannel it also serves connections that start with a
// backchannel, and votes through them (backchannel.go).
//
// usage: interop-gonode -storage NAME -token SECRET [-listen ADDR] [-control ADDR] [-backchannel]
// prints "listening on tcp://HOST:PORT control http://HOST:PORT" once ready.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang/protobuf/ptypes/any"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"interop/wire"
)

// Record is what the node saw of one call, as the side channel reports it.
type Record struct {
	ID            string              `json:"id"`
	Method        string              `json:"method"`
	Peer          string              `json:"peer"`
	Metadata      map[string][]string `json:"metadata"`
	DeadlineMS    int64               `json:"deadline_ms"` // remaining at the start; -1: none
	Storage       string              `json:"storage"`     // of the first message's repository
	RelativePath  string              `json:"relative_path"`
	RecvCount     int                 `json:"recv_count"`
	RecvBytes     int64               `json:"recv_bytes"`
	RecvSHA256    string              `json:"recv_sha256"`
	SentCount     int                 `json:"sent_count"`
	SentBytes     int64               `json:"sent_bytes"`
	SentSHA256    string              `json:"sent_sha256"`
	Code          string              `json:"code"`        // the status the handler returned
	CtxErr        string              `json:"ctx_err"`     // "", "canceled" or "deadline" when the handler returned
	CtxDoneMS     int64               `json:"ctx_done_ms"` // when the context ended, from the start; -1: not while handled
	RecvErr       string              `json:"recv_err"`
	Done          bool                `json:"done"`
	StartedUnixMS int64               `json:"started_unix_ms"`
	EndedUnixMS   int64               `json:"ended_unix_ms"`
}

type barrier struct {
	arrived int
	all     chan struct{}
}

type node struct {
	storage string
	token   string
	mux     *muxListener // -backchannel

	mu          sync.Mutex
	records     map[string]*Record
	barriers    map[string]*barrier
	handled     map[string]map[string]int // method → code → count
	inflight    int
	maxInflight int
	peers       map[string]bool
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "gRPC listen address")
	control := flag.String("control", "127.0.0.1:0", "side channel (HTTP) listen address")
	storage := flag.String("storage", "", "the storage name this node serves")
	token := flag.String("token", "", "Gitaly auth token (empty: no authentication)")
	backchannel := flag.Bool("backchannel", false, "serve backchannel connections too (yamux; votes back)")
	flag.Parse()
	if *storage == "" {
		fmt.Fprintln(os.Stderr, "interop-gonode: -storage is required")
		os.Exit(2)
	}
	n := &node{storage: *storage, token: *token, records: map[string]*Record{}, barriers: map[string]*barrier{},
		handled: map[string]map[string]int{}, peers: map[string]bool{}}

	var lis net.Listener
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop-gonode:", err)
		os.Exit(1)
	}
	if *backchannel {
		n.mux = newMuxListener(lis)
		lis = n.mux
	}
	clis, err := net.Listen("tcp", *control)
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop-gonode:", err)
		os.Exit(1)
	}
	// Gitaly's own server options as far as they matter here: messages up
	// to its limits, no stream limit (grpc-go's default).
	srv := grpc.NewServer(grpc.CustomCodec(wire.Raw{}), grpc.UnknownServiceHandler(n.handle),
		grpc.MaxRecvMsgSize(64<<20), grpc.MaxSendMsgSize(64<<20))
	mux := http.NewServeMux()
	mux.HandleFunc("/calls/", n.serveCall)
	mux.HandleFunc("/stats", n.serveStats) // calls handled per method and code, calls in flight
	go func() { _ = http.Serve(clis, mux) }()
	fmt.Printf("listening on tcp://%s control http://%s\n", lis.Addr(), clis.Addr())
	os.Stdout.Sync()
	if err := srv.Serve(lis); err != nil {
		fmt.Fprintln(os.Stderr, "interop-gonode:", err)
		os.Exit(1)
	}
}

func (n *node) serveCall(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/calls/")
	n.mu.Lock()
	rec, ok := n.records[id]
	var body []byte
	if ok {
		body, _ = json.Marshal(rec)
	}
	n.mu.Unlock()
	if !ok {
		http.Error(w, "no call "+id, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func (n *node) serveStats(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	body, _ := json.Marshal(map[string]interface{}{"handled": n.handled, "inflight": n.inflight,
		"max_inflight": n.maxInflight, "peers": len(n.peers)})
	n.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func (n *node) count(method string, code codes.Code) {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := n.handled[method]
	if m == nil {
		m = map[string]int{}
		n.handled[method] = m
	}
	m[code.String()]++
}

func (n *node) handle(_ interface{}, stream grpc.ServerStream) (err error) {
	method, _ := grpc.MethodFromServerStream(stream)
	scriptedStatus := false // err is the status the script asked for
	defer func() {
		// A call its client abandoned (reset, connection closed) fails in
		// whatever way the write or read noticed first, and grpc-go cancels
		// its context at about the same time: it counts as Canceled.
		code := status.Code(err)
		if err != nil && !scriptedStatus {
			t := time.NewTimer(200 * time.Millisecond)
			select {
			case <-stream.Context().Done():
				code = codes.Canceled
			case <-t.C:
			}
			t.Stop()
		}
		n.count(method, code)
	}()
	if method == "/grpc.health.v1.Health/Check" {
		var req []byte
		if err := stream.RecvMsg(&req); err != nil {
			return err
		}
		resp := []byte{0x08, 0x01} // HealthCheckResponse{status: SERVING}
		return stream.SendMsg(&resp)
	}
	md, _ := metadata.FromIncomingContext(stream.Context())
	if n.token != "" {
		auth := md.Get("authorization")
		if len(auth) == 0 {
			return status.Error(codes.Unauthenticated, "interop-gonode: no authorization metadata")
		}
		if err := wire.CheckBearer(auth[0], n.token, time.Now()); err != nil {
			if errors.Is(err, wire.ErrMalformed) {
				return status.Error(codes.Unauthenticated, "interop-gonode: "+err.Error())
			}
			return status.Error(codes.PermissionDenied, "interop-gonode: "+err.Error())
		}
	}
	if method == "/gitaly.ServerService/ServerInfo" {
		var req []byte
		if err := stream.RecvMsg(&req); err != nil {
			return err
		}
		var st []byte
		st = wire.AppendBytes(st, 1, []byte(n.storage))
		st = wire.AppendBool(st, 2, true)
		st = wire.AppendBool(st, 3, true)
		st = wire.AppendBytes(st, 4, []byte("ext4"))
		st = wire.AppendBytes(st, 5, []byte("00000000-0000-4000-8000-"+fmt.Sprintf("%012x", len(n.storage))))
		var resp []byte
		resp = wire.AppendBytes(resp, 1, []byte("interop-gonode"))
		resp = wire.AppendBytes(resp, 2, []byte("2.39.2"))
		resp = wire.AppendBytes(resp, 3, st)
		return stream.SendMsg(&resp)
	}
	if len(md.Get("x-test-vote")) > 0 {
		var req []byte
		if err := stream.RecvMsg(&req); err != nil {
			return err
		}
		scriptedStatus = true
		return n.vote(stream.Context(), md)
	}
	scriptedStatus, err = n.scripted(method, stream, md)
	return err
}

// script is the behaviour a call's metadata asks for:
//
//	x-test-id: ID            record the call under ID (side channel /calls/ID)
//	x-test-respond: N:B      after reading the requests, send N responses of B payload bytes (default 1:0)
//	x-test-seed: S           seed of the response payloads (default 1)
//	x-test-echo: 1           send each request's payload back as soon as it is read
//	x-test-read-delay-ms: D  wait D ms before each read (a slow reader)
//	x-test-delay-ms: D       wait D ms after reading, before responding (ends early if the call ends)
//	x-test-send-delay-ms: D  wait D ms before each response after the first
//	x-test-hold: 1           after reading the first message, wait until the call is cancelled or expires
//	x-test-read-max: N       stop reading after N requests and answer (the client may still be sending)
//	x-test-headers-first: 1  send the response headers at once, before reading
//	x-test-barrier: G:N      wait (≤ 30 s) until N calls of group G are in the handler together
//	x-test-status: CODE      end with this status code (after the responses)
//	x-test-message: TEXT     ... and this message (x-test-message-bin: any bytes)
//	x-test-details-bin: B    ... and one detail, Any{type.googleapis.com/praefect.test.Detail, B}
//	x-echo-*                 sent back unchanged, as response headers and as trailers
type script struct {
	id           string
	respondN     int
	respondB     int
	seed         int64
	echo         bool
	readDelay    time.Duration
	delay        time.Duration
	sendDelay    time.Duration
	hold         bool
	readMax      int64
	headersFirst bool
	barrierGroup string
	barrierN     int
	code         codes.Code
	message      string
	details      []byte
	hasDetails   bool
}

func first(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func parseScript(md metadata.MD) (script, error) {
	s := script{id: first(md, "x-test-id"), respondN: 1, seed: 1}
	if v := first(md, "x-test-respond"); v != "" {
		if _, err := fmt.Sscanf(v, "%d:%d", &s.respondN, &s.respondB); err != nil {
			return s, fmt.Errorf("x-test-respond %q: want N:B", v)
		}
	}
	ints := []struct {
		key string
		set func(int64)
	}{
		{"x-test-seed", func(v int64) { s.seed = v }},
		{"x-test-read-delay-ms", func(v int64) { s.readDelay = time.Duration(v) * time.Millisecond }},
		{"x-test-delay-ms", func(v int64) { s.delay = time.Duration(v) * time.Millisecond }},
		{"x-test-send-delay-ms", func(v int64) { s.sendDelay = time.Duration(v) * time.Millisecond }},
		{"x-test-status", func(v int64) { s.code = codes.Code(v) }},
		{"x-test-read-max", func(v int64) { s.readMax = v }},
	}
	for _, i := range ints {
		if v := first(md, i.key); v != "" {
			x, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return s, fmt.Errorf("%s %q: want an integer", i.key, v)
			}
			i.set(x)
		}
	}
	s.echo = first(md, "x-test-echo") == "1"
	s.hold = first(md, "x-test-hold") == "1"
	s.headersFirst = first(md, "x-test-headers-first") == "1"
	s.message = first(md, "x-test-message")
	if v := md.Get("x-test-message-bin"); len(v) > 0 {
		s.message = v[0]
	}
	if v := md.Get("x-test-details-bin"); len(v) > 0 {
		s.details, s.hasDetails = []byte(v[0]), true
	}
	if v := first(md, "x-test-barrier"); v != "" {
		i := strings.LastIndexByte(v, ':')
		n, err := strconv.Atoi(v[i+1:])
		if i < 0 || err != nil {
			return s, fmt.Errorf("x-test-barrier %q: want GROUP:N", v)
		}
		s.barrierGroup, s.barrierN = v[:i], n
	}
	return s, nil
}

// call is one scripted call in progress.
type call struct {
	n       *node
	stream  grpc.ServerStream
	rec     *Record // shared with the side channel: written under n.mu
	start   time.Time
	recvSum hash.Hash
	sentSum hash.Hash
}

func (c *call) update(f func(r *Record)) {
	c.n.mu.Lock()
	f(c.rec)
	c.n.mu.Unlock()
}

func ctxErrName(err error) string {
	switch err {
	case nil:
		return ""
	case context.Canceled:
		return "canceled"
	case context.DeadlineExceeded:
		return "deadline"
	}
	return err.Error()
}

func (c *call) send(payload []byte) error {
	msg := wire.Message(nil, payload)
	if err := c.stream.SendMsg(&msg); err != nil {
		return err
	}
	c.sentSum.Write(payload)
	c.update(func(r *Record) { r.SentCount++; r.SentBytes += int64(len(payload)) })
	return nil
}

// wait waits for d, or until the call ends; false if it ended.
func (c *call) wait(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.stream.Context().Done():
		return false
	}
}

// scripted handles a call as its script says; whether its error is the
// status the script asked for, and the error.
func (n *node) scripted(method string, stream grpc.ServerStream, md metadata.MD) (bool, error) {
	ctx := stream.Context()
	s, err := parseScript(md)
	if err != nil {
		return true, status.Error(codes.InvalidArgument, "interop-gonode: "+err.Error())
	}
	rec := &Record{ID: s.id, Method: method, Metadata: wire.MetadataJSON(md), DeadlineMS: -1, CtxDoneMS: -1,
		StartedUnixMS: time.Now().UnixNano() / 1e6}
	if p, ok := peer.FromContext(ctx); ok {
		rec.Peer = p.Addr.String()
	}
	if d, ok := ctx.Deadline(); ok {
		rec.DeadlineMS = time.Until(d).Milliseconds()
	}
	c := &call{n: n, stream: stream, rec: rec, start: time.Now(), recvSum: sha256.New(), sentSum: sha256.New()}
	n.mu.Lock()
	if s.id != "" {
		n.records[s.id] = rec
	}
	n.inflight++
	if n.inflight > n.maxInflight {
		n.maxInflight = n.inflight
	}
	n.peers[rec.Peer] = true
	n.mu.Unlock()
	// When the context ends while the call is handled: the moment it did.
	stop := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			ms := time.Since(c.start).Milliseconds()
			c.update(func(r *Record) { r.CtxDoneMS = ms })
		case <-stop:
		}
	}()
	asked, err := c.run(s, md)
	close(stop)
	c.update(func(r *Record) {
		r.RecvSHA256 = hex.EncodeToString(c.recvSum.Sum(nil))
		r.SentSHA256 = hex.EncodeToString(c.sentSum.Sum(nil))
		r.Code = status.Code(err).String()
		r.CtxErr = ctxErrName(ctx.Err())
		r.Done = true
		r.EndedUnixMS = time.Now().UnixNano() / 1e6
		c.n.inflight--
	})
	return asked, err
}

// run plays the script; whether its error is the status the script asked
// for (rather than the end of a call gone wrong), and the error.
func (c *call) run(s script, md metadata.MD) (bool, error) {
	err := c.play(s, md)
	if err == nil {
		return false, nil
	}
	st, _ := status.FromError(err)
	return s.code != codes.OK && st.Code() == s.code && c.stream.Context().Err() == nil, err
}

func (c *call) play(s script, md metadata.MD) error {
	ctx := c.stream.Context()
	header := metadata.Pairs("x-test-node", c.n.storage)
	trailer := metadata.MD{}
	for k, vs := range md {
		if strings.HasPrefix(k, "x-echo-") {
			header[k] = append(header[k], vs...)
			trailer[k] = append(trailer[k], vs...)
		}
	}
	if err := c.stream.SetHeader(header); err != nil {
		return err
	}
	if s.headersFirst {
		if err := c.stream.SendHeader(nil); err != nil {
			return err
		}
	}
	if s.barrierN > 0 {
		if err := c.n.await(ctx, s.barrierGroup, s.barrierN); err != nil {
			return err
		}
	}

	// Requests: until the client half-closes, or only the first when holding.
	for i := 0; ; i++ {
		if !c.wait(s.readDelay) {
			break
		}
		var msg []byte
		err := c.stream.RecvMsg(&msg)
		if err == io.EOF {
			break
		}
		if err != nil {
			c.update(func(r *Record) { r.RecvErr = err.Error() })
			return err
		}
		payload, _, perr := wire.Get(msg, wire.PayloadField)
		if perr != nil {
			return status.Errorf(codes.InvalidArgument, "interop-gonode: request %d: %v", i, perr)
		}
		if i == 0 {
			repo, _, _ := wire.Get(msg, 1)
			st, _, _ := wire.Get(repo, 2)
			rel, _, _ := wire.Get(repo, 3)
			c.update(func(r *Record) { r.Storage, r.RelativePath = string(st), string(rel) })
		}
		c.recvSum.Write(payload)
		c.update(func(r *Record) { r.RecvCount++; r.RecvBytes += int64(len(payload)) })
		if s.echo {
			if err := c.send(payload); err != nil {
				return err
			}
		}
		if s.hold {
			<-ctx.Done()
			break
		}
		if s.readMax > 0 && int64(i+1) >= s.readMax {
			break
		}
	}
	if ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	if !c.wait(s.delay) {
		return status.FromContextError(ctx.Err()).Err()
	}
	payloads := wire.NewPayloads(s.seed)
	for i := 0; i < s.respondN; i++ {
		if i > 0 && !c.wait(s.sendDelay) {
			return status.FromContextError(ctx.Err()).Err()
		}
		if err := c.send(payloads.Next(s.respondB)); err != nil {
			return err
		}
	}
	trailer.Set("x-test-recv-sha256", hex.EncodeToString(c.recvSum.Sum(nil)))
	trailer.Set("x-test-sent-sha256", hex.EncodeToString(c.sentSum.Sum(nil)))
	c.stream.SetTrailer(trailer)
	if s.code == codes.OK {
		return nil
	}
	p := &spb.Status{Code: int32(s.code), Message: s.message}
	if s.hasDetails {
		p.Details = []*any.Any{{TypeUrl: "type.googleapis.com/praefect.test.Detail", Value: s.details}}
	}
	return status.ErrorProto(p)
}

// await waits until n calls of `group` are here together.
func (n *node) await(ctx context.Context, group string, want int) error {
	n.mu.Lock()
	b := n.barriers[group]
	if b == nil {
		b = &barrier{all: make(chan struct{})}
		n.barriers[group] = b
	}
	b.arrived++
	if b.arrived == want {
		close(b.all)
	}
	n.mu.Unlock()
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case <-b.all:
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	case <-t.C:
		n.mu.Lock()
		arrived := b.arrived
		n.mu.Unlock()
		return status.Errorf(codes.Aborted, "interop-gonode: barrier %q: %d of %d calls arrived within 30 s",
			group, arrived, want)
	}
}
