// interop-yamuxpeer: the reference yamux implementation (hashicorp/yamux,
// from Debian's golang-github-hashicorp-yamux-dev) on the node's side of
// Gitaly's backchannel, for praefect's yamux interoperability test
// (tests/interop/yamux_interop_test.cc).
//
// Like a Gitaly node, it takes one TCP connection, expects the 11 bytes
// "backchannel" first, and runs a yamux *server* session on it. The first
// line of each stream the other side opens is a command:
//
//	echo            echoes everything until FIN, then closes
//	sum             reads until FIN, answers "LEN FNV1A64HEX\n", closes
//	send N SEED     sends N bytes of pattern(SEED), closes, reads until FIN
//	open K N        opens K streams toward the other side at once (as a node
//	                opens backchannel streams); on stream i (1..K) sends N bytes
//	                of pattern(1000+i), expects them echoed back, then closes;
//	                answers "ok K\n" or "fail REASON\n"
//	refusal K       opens K streams, sends "x" on each and waits for it to come
//	                back (or a reset); answers "echoed E reset R\n"
//	watch           answers "watching\n", reads until FIN or reset; the
//	                outcome goes to await
//	await           answers the next watch outcome: "reset\n" or "eof LEN\n"
//	ping            pings the other side; answers "pong\n" or "fail REASON\n"
//	goaway          sends GoAway, answers "sent\n"
//
// pattern(SEED) is the byte stream of xorshift64 words (x ^= x<<13,
// x ^= x>>7, x ^= x<<17; little endian) from x = SEED*0x9E3779B97F4A7C15+1.
//
// usage: interop-yamuxpeer [-listen ADDR] [-backlog N] [-window BYTES]
//
//	[-keepalive DURATION] [-accept=false]
//
// prints "listening on HOST:PORT" once ready. Exits once the session ends:
// 0 if every command went as expected, 1 otherwise (reasons on stderr).
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
)

var failures int32

func fail(format string, args ...interface{}) {
	atomic.AddInt32(&failures, 1)
	fmt.Fprintf(os.Stderr, "yamuxpeer: "+format+"\n", args...)
}

// patternReader yields the bytes of pattern(seed), n of them.
type patternReader struct {
	x    uint64
	left int64
	word [8]byte
	used int // bytes of word already given
}

func newPattern(seed uint64, n int64) *patternReader {
	return &patternReader{x: seed*0x9E3779B97F4A7C15 + 1, left: n, used: 8}
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	n := 0
	for n < len(b) {
		if p.used == 8 {
			p.x ^= p.x << 13
			p.x ^= p.x >> 7
			p.x ^= p.x << 17
			binary.LittleEndian.PutUint64(p.word[:], p.x)
			p.used = 0
		}
		c := copy(b[n:], p.word[p.used:])
		p.used += c
		n += c
	}
	p.left -= int64(n)
	return n, nil
}

// compareWith reads r to the end and checks it is exactly pattern(seed, n).
func compareWith(r io.Reader, seed uint64, n int64) error {
	want := newPattern(seed, n)
	got := make([]byte, 64*1024)
	exp := make([]byte, 64*1024)
	var off int64
	for {
		k, err := r.Read(got)
		if k > 0 {
			if off+int64(k) > n {
				return fmt.Errorf("more than the %d bytes sent", n)
			}
			io.ReadFull(want, exp[:k])
			for i := 0; i < k; i++ {
				if got[i] != exp[i] {
					return fmt.Errorf("byte %d differs", off+int64(i))
				}
			}
			off += int64(k)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("after %d bytes: %v", off, err)
		}
	}
	if off != n {
		return fmt.Errorf("%d bytes of %d came back", off, n)
	}
	return nil
}

type peer struct {
	session *yamux.Session
	watched chan string
}

// readLine reads the command line byte by byte, so that nothing after it is
// taken from the stream.
func readLine(s *yamux.Stream) (string, error) {
	var line []byte
	b := make([]byte, 1)
	for {
		if _, err := io.ReadFull(s, b); err != nil {
			return "", err
		}
		if b[0] == '\n' {
			return string(line), nil
		}
		line = append(line, b[0])
	}
}

func (p *peer) serve(s *yamux.Stream) {
	defer s.Close()
	line, err := readLine(s)
	if err != nil {
		fail("stream %d: no command: %v", s.StreamID(), err)
		return
	}
	args := strings.Fields(line)
	if len(args) == 0 {
		fail("stream %d: empty command", s.StreamID())
		return
	}
	num := func(i int) int64 {
		if i >= len(args) {
			fail("stream %d: %q: argument %d missing", s.StreamID(), line, i)
			return 0
		}
		v, err := strconv.ParseInt(args[i], 10, 64)
		if err != nil {
			fail("stream %d: %q: %v", s.StreamID(), line, err)
		}
		return v
	}
	switch args[0] {
	case "echo":
		if _, err := io.Copy(s, s); err != nil {
			fail("echo on stream %d: %v", s.StreamID(), err)
		}
	case "sum":
		h := fnv.New64a()
		n, err := io.Copy(h, s)
		if err != nil {
			fail("sum on stream %d: %v", s.StreamID(), err)
			return
		}
		fmt.Fprintf(s, "%d %016x\n", n, h.Sum64())
	case "send":
		if _, err := io.Copy(s, newPattern(uint64(num(2)), num(1))); err != nil {
			fail("send on stream %d: %v", s.StreamID(), err)
			return
		}
		s.Close()
		io.Copy(io.Discard, s)
	case "open":
		fmt.Fprintf(s, "%s\n", p.openMany(int(num(1)), num(2)))
	case "refusal":
		fmt.Fprintf(s, "%s\n", p.refusal(int(num(1))))
	case "watch":
		fmt.Fprintf(s, "watching\n")
		n, err := io.Copy(io.Discard, s)
		switch {
		case errors.Is(err, yamux.ErrConnectionReset):
			p.watched <- "reset"
		case err != nil:
			p.watched <- "error " + err.Error()
		default:
			p.watched <- fmt.Sprintf("eof %d", n)
		}
	case "await":
		select {
		case outcome := <-p.watched:
			fmt.Fprintf(s, "%s\n", outcome)
		case <-time.After(30 * time.Second):
			fmt.Fprintf(s, "timeout\n")
		}
	case "ping":
		if _, err := p.session.Ping(); err != nil {
			fmt.Fprintf(s, "fail %v\n", err)
			return
		}
		fmt.Fprintf(s, "pong\n")
	case "goaway":
		if err := p.session.GoAway(); err != nil {
			fail("goaway: %v", err)
		}
		fmt.Fprintf(s, "sent\n")
	default:
		fail("stream %d: unknown command %q", s.StreamID(), line)
	}
}

// openMany opens k streams at once, sends n bytes on each and checks the
// echo. Each stream is closed only once its echo is complete: in this
// version of hashicorp/yamux, a Read after the stream's own Close returns
// io.EOF as soon as its buffer is empty, before the other side's FIN.
func (p *peer) openMany(k int, n int64) string {
	var wg sync.WaitGroup
	errs := make(chan error, 2*k)
	for i := 1; i <= k; i++ {
		s, err := p.session.OpenStream()
		if err != nil {
			return fmt.Sprintf("fail open %d: %v", i, err)
		}
		wg.Add(1)
		go func(i int, s *yamux.Stream) {
			defer wg.Done()
			defer s.Close()
			seed := uint64(1000 + i)
			go func() {
				if _, err := io.Copy(s, newPattern(seed, n)); err != nil {
					errs <- fmt.Errorf("stream %d: send: %v", s.StreamID(), err)
				}
			}()
			if err := compareWith(io.LimitReader(s, n), seed, n); err != nil {
				errs <- fmt.Errorf("stream %d: echo: %v", s.StreamID(), err)
			}
		}(i, s)
	}
	wg.Wait()
	select {
	case err := <-errs:
		return "fail " + err.Error()
	default:
		return fmt.Sprintf("ok %d", k)
	}
}

// refusal opens k streams, sends "x" on each and waits for it to come back,
// counting how many were echoed and how many reset.
func (p *peer) refusal(k int) string {
	var wg sync.WaitGroup
	var echoed, reset int32
	for i := 0; i < k; i++ {
		s, err := p.session.OpenStream()
		if err != nil {
			return fmt.Sprintf("fail open %d: %v", i, err)
		}
		wg.Add(1)
		go func(s *yamux.Stream) {
			defer wg.Done()
			defer s.Close()
			b := make([]byte, 1)
			_, werr := s.Write([]byte("x"))
			_, rerr := io.ReadFull(s, b)
			switch {
			case errors.Is(werr, yamux.ErrConnectionReset) || errors.Is(rerr, yamux.ErrConnectionReset):
				atomic.AddInt32(&reset, 1)
			case werr == nil && rerr == nil && b[0] == 'x':
				atomic.AddInt32(&echoed, 1)
			default:
				fail("refusal stream %d: write %v, read %q %v", s.StreamID(), werr, b, rerr)
			}
		}(s)
	}
	wg.Wait()
	return fmt.Sprintf("echoed %d reset %d", echoed, reset)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	backlog := flag.Int("backlog", 64, "yamux AcceptBacklog")
	window := flag.Uint("window", 256*1024, "yamux MaxStreamWindowSize")
	keepalive := flag.Duration("keepalive", 0, "yamux keep-alive interval (0: off)")
	accept := flag.Bool("accept", true, "accept the streams the other side opens")
	flag.Parse()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "yamuxpeer: %v\n", err)
		os.Exit(2)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	os.Stdout.Sync()
	conn, err := ln.Accept()
	if err != nil {
		fmt.Fprintf(os.Stderr, "yamuxpeer: accept: %v\n", err)
		os.Exit(2)
	}
	ln.Close()

	// The backchannel handshake: the dialler names the protocol first.
	magic := make([]byte, len("backchannel"))
	if _, err := io.ReadFull(conn, magic); err != nil || string(magic) != "backchannel" {
		fmt.Fprintf(os.Stderr, "yamuxpeer: expected \"backchannel\", got %q (%v)\n", magic, err)
		os.Exit(1)
	}
	cfg := yamux.DefaultConfig()
	cfg.AcceptBacklog = *backlog
	cfg.MaxStreamWindowSize = uint32(*window)
	cfg.EnableKeepAlive = *keepalive > 0
	if *keepalive > 0 {
		cfg.KeepAliveInterval = *keepalive
	}
	session, err := yamux.Server(conn, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "yamuxpeer: %v\n", err)
		os.Exit(2)
	}
	p := &peer{session: session, watched: make(chan string, 16)}
	var wg sync.WaitGroup
	if *accept {
		for {
			s, err := session.AcceptStream()
			if err != nil {
				break
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.serve(s)
			}()
		}
	} else {
		<-session.CloseChan()
	}
	wg.Wait()
	if atomic.LoadInt32(&failures) > 0 {
		os.Exit(1)
	}
}
