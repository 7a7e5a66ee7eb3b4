#!/usr/bin/python3
"""h2peer: the HTTP/2 clients bench/more needs beside h2load and grpc_load.

  h2peer.py body OUT STORAGE PATH refexists REF
  h2peer.py body OUT STORAGE PATH getblob OID
      writes one gRPC request message (5-byte prefix and protobuf), the
      request body h2load sends with -d.
  h2peer.py call URL BODY [-H 'name: value']...
      one gRPC call (POST URL, BODY as the request stream); prints
      "grpc_status=N messages=M data_bytes=B" (grpc_status -1: no status).
  h2peer.py idle HOST:PORT N
      opens N connections that send the preface and an empty SETTINGS,
      acknowledge the server's SETTINGS and PINGs, and otherwise stay idle.
  h2peer.py streams HOST:PORT CONNS PER URL_PATH BODY [-H 'name: value']...
      opens CONNS connections with PER gRPC calls in flight on each (headers
      and BODY sent with END_STREAM); a stream counts as in flight once the
      response headers came. Never acknowledges response DATA: a server that
      streams is held at the initial window (SETTINGS_INITIAL_WINDOW_SIZE 0
      here, so not one byte of DATA is taken).

idle and streams print "ready N" once every connection is set up (or
"failed ..." and exit 1), then serve their sockets until stdin closes,
answering each line read on stdin with one status line:
  idle:    "open N closed M goaway G"
  streams: "inflight N ended M reset R closed C"
Sockets are closed with SO_LINGER 0 (RST): no TIME_WAIT left to use up
ephemeral ports between measurements.

Written for bench/more with Debian's python3-h2; raw frames for idle (10,000
h2.connection.H2Connection objects would weigh more than the server side
being measured).
"""
import selectors
import socket
import ssl
import struct
import sys
import time
import urllib.parse

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS_EMPTY = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
SETTINGS_ACK = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"
BATCH = 500          # connections opened at once (praefect's and nginx's backlogs are larger)
SETUP_TIMEOUT = 120  # seconds for all connections or streams to be ready


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(number, payload):
    """A length-delimited protobuf field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def grpc_message(msg):
    return b"\x00" + struct.pack(">I", len(msg)) + msg


def cmd_body(out, storage, path, kind, arg):
    repo = field(2, storage.encode()) + field(3, path.encode())
    if kind == "refexists":
        msg = field(1, repo) + field(2, arg.encode())
    elif kind == "getblob":
        msg = field(1, repo) + field(2, arg.encode()) + varint(3 << 3) + varint((1 << 64) - 1)  # limit -1
    else:
        sys.exit("h2peer: unknown body kind %r" % kind)
    with open(out, "wb") as f:
        f.write(grpc_message(msg))


def parse_headers(args):
    headers = []
    while args:
        if args[0] != "-H" or len(args) < 2:
            sys.exit("h2peer: expected -H 'name: value', found %r" % args[0])
        name, _, value = args[1].partition(":")
        headers.append((name.strip().lower(), value.strip()))
        args = args[2:]
    return headers


def connect(host, port, tls):
    s = socket.create_connection((host, port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        s = ctx.wrap_socket(s, server_hostname=host)
        if s.selected_alpn_protocol() != "h2":
            sys.exit("h2peer: ALPN chose %r, not h2" % s.selected_alpn_protocol())
    return s


def rst_close(s):
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


def cmd_call(url, body_path, args):
    import h2.config
    import h2.connection
    import h2.events
    u = urllib.parse.urlsplit(url)
    tls = u.scheme == "https"
    s = connect(u.hostname, u.port or (443 if tls else 80), tls)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "POST"), (":scheme", u.scheme), (":authority", u.netloc),
                            (":path", u.path)] + parse_headers(args))
    with open(body_path, "rb") as f:
        conn.send_data(sid, f.read(), end_stream=True)
    s.sendall(conn.data_to_send())
    status, data = -1, b""
    deadline = time.monotonic() + 30
    done = False
    while not done and time.monotonic() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            break
        for ev in conn.receive_data(chunk):
            if isinstance(ev, h2.events.DataReceived):
                data += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                for k, v in ev.headers:
                    if k == "grpc-status":
                        status = int(v)
            elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                done = True
        s.sendall(conn.data_to_send())
    rst_close(s)
    messages, off = 0, 0
    while off + 5 <= len(data):
        off += 5 + struct.unpack(">I", data[off + 1:off + 5])[0]
        messages += 1
    print("grpc_status=%d messages=%d data_bytes=%d" % (status, messages, len(data)))


class Status:
    """Reads stdin lines without blocking the loop: one status line each."""

    def __init__(self, sel, report):
        self.report = report
        self.open = True
        sel.register(sys.stdin, selectors.EVENT_READ, self)

    def on_event(self, sel):
        line = sys.stdin.readline()
        if not line:
            sel.unregister(sys.stdin)
            self.open = False
            return
        print(self.report(), flush=True)


class IdleConn:
    def __init__(self, host, port, counts):
        self.counts = counts
        self.sock = socket.socket()
        self.sock.setblocking(False)
        self.sock.connect_ex((host, port))
        self.buf = b""
        self.connected = False
        self.ready = False
        self.closed = False

    def on_event(self, sel):
        if not self.connected:
            if self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                return self.close(sel)
            self.connected = True
            self.sock.sendall(PREFACE + SETTINGS_EMPTY)
            sel.modify(self.sock, selectors.EVENT_READ, self)
            return
        try:
            chunk = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            return self.close(sel)
        self.buf += chunk
        while len(self.buf) >= 9:
            length = int.from_bytes(self.buf[:3], "big")
            if len(self.buf) < 9 + length:
                break
            kind, flags, payload = self.buf[3], self.buf[4], self.buf[9:9 + length]
            self.buf = self.buf[9 + length:]
            if kind == 4 and not flags & 1:
                self.sock.sendall(SETTINGS_ACK)
                if not self.ready:
                    self.ready = True
                    self.counts["ready"] += 1
            elif kind == 6 and not flags & 1:
                self.sock.sendall(b"\x00\x00\x08\x06\x01\x00\x00\x00\x00" + payload)
            elif kind == 7:
                self.counts["goaway"] += 1

    def close(self, sel):
        if not self.closed:
            self.closed = True
            self.counts["closed"] += 1
            sel.unregister(self.sock)
            self.sock.close()


def cmd_idle(target, n):
    host, port = target.rsplit(":", 1)
    port = int(port)
    sel = selectors.DefaultSelector()
    counts = {"ready": 0, "closed": 0, "goaway": 0}
    conns = []
    deadline = time.monotonic() + SETUP_TIMEOUT
    while counts["ready"] < n:
        if time.monotonic() > deadline or counts["closed"]:
            print("failed: %d of %d connections ready, %d closed by the server"
                  % (counts["ready"], n, counts["closed"]), flush=True)
            sys.exit(1)
        # At most BATCH handshakes outstanding: the listen backlog is finite.
        while len(conns) < n and len(conns) - counts["ready"] < BATCH:
            c = IdleConn(host, port, counts)
            conns.append(c)
            sel.register(c.sock, selectors.EVENT_WRITE, c)
        for key, _ in sel.select(0.5):
            key.data.on_event(sel)
    print("ready %d" % n, flush=True)
    status = Status(sel, lambda: "open %d closed %d goaway %d" % (
        n - counts["closed"], counts["closed"], counts["goaway"]))
    while status.open:
        for key, _ in sel.select():
            key.data.on_event(sel)
    for c in conns:
        if not c.closed:
            rst_close(c.sock)


class StreamConn:
    """One h2 connection with PER gRPC calls started on it."""

    def __init__(self, host, port, path, body, headers, per, counts):
        import h2.config
        import h2.connection
        import h2.events
        self.ev = h2.events
        self.counts = counts
        self.sock = socket.create_connection((host, port), timeout=30)
        self.sock.setblocking(False)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        # Window 0: a streaming response stays at the server (and the proxy).
        self.conn.local_settings = h2.settings.Settings(client=True, initial_values={
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0,
            h2.settings.SettingCodes.ENABLE_PUSH: 0})
        self.conn.initiate_connection()
        self.pending = per  # calls still to start (the server's MAX_CONCURRENT_STREAMS comes first)
        self.settings_seen = False
        self.req = [(":method", "POST"), (":scheme", "http"), (":authority", "%s:%d" % (host, port)),
                    (":path", path)] + headers
        self.body = body
        self.headers_seen = set()
        self.ended = set()
        self.closed = False
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.setblocking(True)
            self.sock.sendall(data)
            self.sock.setblocking(False)

    def start_calls(self):
        while self.pending and self.conn.open_outbound_streams < self.conn.remote_settings.max_concurrent_streams:
            sid = self.conn.get_next_available_stream_id()
            self.conn.send_headers(sid, self.req)
            self.conn.send_data(sid, self.body, end_stream=True)
            self.pending -= 1
        self.flush()

    def on_event(self, sel):
        try:
            chunk = self.sock.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.closed = True
            self.counts["closed"] += 1
            sel.unregister(self.sock)
            return
        for ev in self.conn.receive_data(chunk):
            if isinstance(ev, self.ev.RemoteSettingsChanged) and not self.settings_seen:
                self.settings_seen = True
            elif isinstance(ev, self.ev.ResponseReceived):
                self.headers_seen.add(ev.stream_id)
                self.counts["inflight"] += 1
            elif isinstance(ev, self.ev.StreamEnded):
                self.stream_gone(ev.stream_id, "ended")
            elif isinstance(ev, self.ev.StreamReset):
                self.stream_gone(ev.stream_id, "reset")
        if self.settings_seen:
            self.start_calls()
        self.flush()

    def stream_gone(self, sid, how):
        if sid in self.ended:
            return
        self.ended.add(sid)
        self.counts[how] += 1
        if sid in self.headers_seen:
            self.counts["inflight"] -= 1


def cmd_streams(target, nconns, per, path, body_path, args):
    import h2.settings  # noqa: F401 (StreamConn uses it)
    host, port = target.rsplit(":", 1)
    port = int(port)
    with open(body_path, "rb") as f:
        body = f.read()
    headers = parse_headers(args)
    sel = selectors.DefaultSelector()
    counts = {"inflight": 0, "ended": 0, "reset": 0, "closed": 0}
    conns = []
    for _ in range(nconns):
        c = StreamConn(host, port, path, body, headers, per, counts)
        conns.append(c)
        sel.register(c.sock, selectors.EVENT_READ, c)
    want = nconns * per
    deadline = time.monotonic() + SETUP_TIMEOUT
    while counts["inflight"] < want:
        if time.monotonic() > deadline or counts["ended"] or counts["reset"] or counts["closed"]:
            print("failed: %d of %d streams in flight, %d ended, %d reset, %d connections closed"
                  % (counts["inflight"], want, counts["ended"], counts["reset"], counts["closed"]), flush=True)
            sys.exit(1)
        for key, _ in sel.select(0.5):
            key.data.on_event(sel)
    print("ready %d" % want, flush=True)
    status = Status(sel, lambda: "inflight %d ended %d reset %d closed %d" % (
        counts["inflight"], counts["ended"], counts["reset"], counts["closed"]))
    while status.open:
        for key, _ in sel.select():
            key.data.on_event(sel)
    for c in conns:
        if not c.closed:
            rst_close(c.sock)


def main(argv):
    if len(argv) >= 6 and argv[0] == "body":
        cmd_body(*argv[1:6])
    elif len(argv) >= 3 and argv[0] == "call":
        cmd_call(argv[1], argv[2], argv[3:])
    elif len(argv) == 3 and argv[0] == "idle":
        cmd_idle(argv[1], int(argv[2]))
    elif len(argv) >= 6 and argv[0] == "streams":
        cmd_streams(argv[1], int(argv[2]), int(argv[3]), argv[4], argv[5], argv[6:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
