// interop-goclient: a grpc-go client, the HTTP/2 stack of gitlab-shell and
// Workhorse, for praefect's interoperability tests. It makes one call (or
// -concurrency identical calls on one connection) with raw message bytes
// and prints one JSON line per call: the status code, message and details,
// the response headers and trailers, and the count, size and SHA-256 of the
// payloads sent and received.
//
// Messages are gitaly-shaped: the first request carries a Repository
// (-storage, -repo) in field 1, and every request and response its payload
// in field 2 (deterministic from -seed, -size bytes each). With
// -requests-file the requests are taken verbatim from a file instead, and
// with -responses-file the responses written to one (each message preceded
// by its 4-byte big-endian length), for calls whose messages the test builds.
//
// usage: interop-goclient -addr HOST:PORT -method /pkg.Service/Method -shape unary|server|client|bidi [flags]
package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"hash"
	"io"
	"io/ioutil"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"interop/wire"
)

type mdFlag []string

func (m *mdFlag) String() string     { return strings.Join(*m, ",") }
func (m *mdFlag) Set(v string) error { *m = append(*m, v); return nil }

type options struct {
	addr, method, shape  string
	token, authorization string
	storage, repo        string
	messages, size       int
	seed                 int64
	md                   mdFlag
	deadline             time.Duration
	cancelAfter          time.Duration
	cancelAfterResponses int
	cancelAfterHeaders   bool
	noCloseSend          bool
	sendDelay            time.Duration
	recvDelay            time.Duration
	concurrency          int
	requestsFile         string
	responsesFile        string
	dialTimeout          time.Duration
}

// Result is the JSON line printed per call.
type Result struct {
	Index           int                 `json:"index"`
	Code            int                 `json:"code"`
	CodeName        string              `json:"code_name"`
	Message         string              `json:"message"`
	Details         []map[string]string `json:"details"`
	Headers         map[string][]string `json:"headers"`
	Trailers        map[string][]string `json:"trailers"`
	Responses       int                 `json:"responses"`
	ResponseBytes   int64               `json:"response_bytes"`
	ResponseSHA256  string              `json:"response_sha256"`
	Sent            int                 `json:"sent"`
	SentBytes       int64               `json:"sent_bytes"`
	SentSHA256      string              `json:"sent_sha256"`
	SendDoneMS      float64             `json:"send_done_ms"` // when the last request was handed over; -1: not
	ElapsedMS       float64             `json:"elapsed_ms"`
	ClientCancelled bool                `json:"client_cancelled"`
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "", "server address HOST:PORT")
	flag.StringVar(&o.method, "method", "", "full method name, /pkg.Service/Method")
	flag.StringVar(&o.shape, "shape", "unary", "unary, server, client or bidi")
	flag.StringVar(&o.token, "token", "", "sign a Gitaly v2 token with this secret")
	flag.StringVar(&o.authorization, "authorization", "", "send this authorization value as is (overrides -token)")
	flag.StringVar(&o.storage, "storage", "default", "storage_name of the first request's repository")
	flag.StringVar(&o.repo, "repo", "interop.git", "relative_path of the first request's repository")
	flag.IntVar(&o.messages, "messages", 1, "request messages (unary and server: 1)")
	flag.IntVar(&o.size, "size", 0, "payload bytes per request message")
	flag.Int64Var(&o.seed, "seed", 1, "seed of the request payloads")
	flag.Var(&o.md, "md", "request metadata KEY=VALUE (repeatable; -bin values in hex)")
	flag.DurationVar(&o.deadline, "deadline", 0, "call deadline (0: none)")
	flag.DurationVar(&o.cancelAfter, "cancel-after", 0, "cancel the call after this long")
	flag.IntVar(&o.cancelAfterResponses, "cancel-after-responses", 0, "cancel after this many responses")
	flag.BoolVar(&o.cancelAfterHeaders, "cancel-after-headers", false, "cancel once the response headers arrived")
	flag.BoolVar(&o.noCloseSend, "no-close-send", false, "keep the request stream open after the last message")
	flag.DurationVar(&o.sendDelay, "send-delay", 0, "pause before each request message after the first")
	flag.DurationVar(&o.recvDelay, "recv-delay", 0, "pause before each response read (a slow reader)")
	flag.IntVar(&o.concurrency, "concurrency", 1, "identical calls at once on one connection")
	flag.StringVar(&o.requestsFile, "requests-file", "", "send these length-prefixed messages verbatim")
	flag.StringVar(&o.responsesFile, "responses-file", "", "write the responses here, length-prefixed")
	flag.DurationVar(&o.dialTimeout, "dial-timeout", 30*time.Second, "how long to wait for the connection")
	flag.Parse()
	if o.addr == "" || o.method == "" {
		fmt.Fprintln(os.Stderr, "interop-goclient: -addr and -method are required")
		os.Exit(2)
	}
	var requests [][]byte
	if o.requestsFile != "" {
		var err error
		if requests, err = readFramed(o.requestsFile); err != nil {
			fmt.Fprintln(os.Stderr, "interop-goclient:", err)
			os.Exit(2)
		}
	}
	md, err := requestMetadata(&o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop-goclient:", err)
		os.Exit(2)
	}

	dctx, cancel := context.WithTimeout(context.Background(), o.dialTimeout)
	conn, err := grpc.DialContext(dctx, o.addr, grpc.WithInsecure(), grpc.WithBlock(),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(wire.Raw{}), grpc.MaxCallRecvMsgSize(64<<20),
			grpc.MaxCallSendMsgSize(64<<20)))
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop-goclient: dial:", err)
		os.Exit(1)
	}
	defer conn.Close()

	results := make([]Result, o.concurrency)
	var wg sync.WaitGroup
	for i := 0; i < o.concurrency; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = callOnce(conn, &o, md, requests, i)
		}(i)
	}
	wg.Wait()
	out := json.NewEncoder(os.Stdout)
	for _, r := range results {
		_ = out.Encode(r)
	}
}

func requestMetadata(o *options) (metadata.MD, error) {
	md := metadata.MD{}
	for _, kv := range o.md {
		i := strings.IndexByte(kv, '=')
		if i <= 0 {
			return nil, fmt.Errorf("-md %q: want KEY=VALUE", kv)
		}
		k, v := strings.ToLower(kv[:i]), kv[i+1:]
		if strings.HasSuffix(k, "-bin") {
			b, err := hex.DecodeString(v)
			if err != nil {
				return nil, fmt.Errorf("-md %q: a -bin value is given in hex", kv)
			}
			v = string(b)
		}
		md.Append(k, v)
	}
	switch {
	case o.authorization != "":
		md.Set("authorization", o.authorization)
	case o.token != "":
		md.Set("authorization", wire.Bearer(o.token, time.Now()))
	}
	return md, nil
}

func readFramed(path string) ([][]byte, error) {
	data, err := ioutil.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for len(data) > 0 {
		if len(data) < 4 || uint32(len(data)-4) < wire.BigEndianLength(data) {
			return nil, fmt.Errorf("%s: truncated message", path)
		}
		l := wire.BigEndianLength(data)
		out = append(out, data[4:4+l])
		data = data[4+l:]
	}
	return out, nil
}

// exchange is one call's state.
type exchange struct {
	o        *options
	res      *Result
	sentSum  hash.Hash
	recvSum  hash.Hash
	payloads *wire.Payloads
	verbatim [][]byte
	out      *os.File
	start    time.Time
}

// request returns the i-th request message and its payload.
func (e *exchange) request(i int) ([]byte, []byte) {
	if e.verbatim != nil {
		return e.verbatim[i], e.verbatim[i]
	}
	payload := e.payloads.Next(e.o.size)
	var repo []byte
	if i == 0 {
		repo = wire.Repository(e.o.storage, e.o.repo)
	}
	return wire.Message(repo, payload), payload
}

func (e *exchange) requestCount() int {
	if e.verbatim != nil {
		return len(e.verbatim)
	}
	return e.o.messages
}

func (e *exchange) sent(payload []byte) {
	e.sentSum.Write(payload)
	e.res.Sent++
	e.res.SentBytes += int64(len(payload))
}

func (e *exchange) received(msg []byte) {
	payload := msg
	if e.verbatim == nil {
		if p, _, err := wire.Get(msg, wire.PayloadField); err == nil {
			payload = p
		}
	}
	if e.out != nil {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(msg)))
		_, _ = e.out.Write(l[:])
		_, _ = e.out.Write(msg)
	}
	e.recvSum.Write(payload)
	e.res.Responses++
	e.res.ResponseBytes += int64(len(payload))
}

func callOnce(conn *grpc.ClientConn, o *options, md metadata.MD, verbatim [][]byte, index int) Result {
	res := Result{Index: index, SendDoneMS: -1}
	e := &exchange{o: o, res: &res, sentSum: sha256.New(), recvSum: sha256.New(),
		payloads: wire.NewPayloads(o.seed), verbatim: verbatim, start: time.Now()}
	if o.responsesFile != "" && index == 0 {
		f, err := os.Create(o.responsesFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "interop-goclient:", err)
			os.Exit(2)
		}
		defer f.Close()
		e.out = f
	}
	ctx := metadata.NewOutgoingContext(context.Background(), md.Copy())
	var cancelCtx context.CancelFunc
	if o.deadline > 0 {
		ctx, cancelCtx = context.WithTimeout(ctx, o.deadline)
	} else {
		ctx, cancelCtx = context.WithCancel(ctx)
	}
	defer cancelCtx()
	var cancelled sync.Once
	cancel := func() { cancelled.Do(func() { res.ClientCancelled = true; cancelCtx() }) }
	if o.cancelAfter > 0 {
		t := time.AfterFunc(o.cancelAfter, cancel)
		defer t.Stop()
	}

	// Unary calls too go through a stream (as grpc-go's Invoke does), so
	// that -cancel-after-headers works for every shape.
	header, trailer, err := e.stream(ctx, conn, cancel)
	res.ElapsedMS = ms(e.start)
	st := status.Convert(err)
	res.Code = int(st.Code())
	res.CodeName = st.Code().String()
	res.Message = st.Message()
	res.Details = []map[string]string{}
	for _, d := range st.Proto().GetDetails() {
		res.Details = append(res.Details, map[string]string{"type_url": d.GetTypeUrl(),
			"value_hex": hex.EncodeToString(d.GetValue())})
	}
	res.Headers = wire.MetadataJSON(header)
	res.Trailers = wire.MetadataJSON(trailer)
	res.SentSHA256 = hex.EncodeToString(e.sentSum.Sum(nil))
	res.ResponseSHA256 = hex.EncodeToString(e.recvSum.Sum(nil))
	return res
}

func ms(since time.Time) float64 { return float64(time.Since(since).Microseconds()) / 1000 }

func (e *exchange) stream(ctx context.Context, conn *grpc.ClientConn, cancel func()) (metadata.MD, metadata.MD, error) {
	o := e.o
	desc := &grpc.StreamDesc{StreamName: o.method, ServerStreams: o.shape == "server" || o.shape == "bidi",
		ClientStreams: o.shape == "client" || o.shape == "bidi"}
	cs, err := conn.NewStream(ctx, desc, o.method)
	if err != nil {
		return nil, nil, err
	}
	count := e.requestCount()
	if !desc.ClientStreams && e.verbatim == nil {
		count = 1
	}
	// Requests on their own goroutine, so that a bidi call reads while it
	// writes (flow control in both directions at once).
	sendErr := make(chan error, 1)
	go func() {
		for i := 0; i < count; i++ {
			if i > 0 && o.sendDelay > 0 {
				time.Sleep(o.sendDelay)
			}
			req, payload := e.request(i)
			if err := cs.SendMsg(&req); err != nil {
				sendErr <- err // io.EOF: the server ended the call; RecvMsg tells why
				return
			}
			e.sent(payload)
		}
		e.res.SendDoneMS = ms(e.start)
		if !o.noCloseSend {
			sendErr <- cs.CloseSend()
			return
		}
		sendErr <- nil
	}()
	header, herr := cs.Header()
	if herr == nil && o.cancelAfterHeaders {
		cancel()
	}
	for {
		if o.recvDelay > 0 {
			time.Sleep(o.recvDelay)
		}
		var msg []byte
		err = cs.RecvMsg(&msg)
		if err != nil {
			break
		}
		e.received(msg)
		if o.cancelAfterResponses > 0 && e.res.Responses == o.cancelAfterResponses {
			cancel()
		}
		if !desc.ServerStreams {
			break // grpc-go has checked that the one response was the last
		}
	}
	if err == io.EOF {
		err = nil
	}
	// The sender ends once the call has (a blocked SendMsg returns when the
	// stream ends); its counts are final only then.
	<-sendErr
	return header, cs.Trailer(), err
}
