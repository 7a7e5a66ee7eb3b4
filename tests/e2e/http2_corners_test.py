#!/usr/bin/python3
"""HTTP/2 protocol corners against praefect's gRPC listener: raw frames from
hyper-h2 (Debian's python3-h2) over plain sockets, curl
--http2-prior-knowledge and --http1.1, and h2load.

praefect runs in memory mode in front of interop-gonode (tests/interop), a
Gitaly stand-in on grpc-go whose behaviour each call's metadata scripts and
which reports what it saw of each call (cancellation included) on a side
channel.

What is expected is what a correct gRPC server does, grpc-go's server being
the reference where RFC 9113 leaves a choice; each test says what and why.
Whatever a client does, praefect stays up and keeps serving other streams
and connections, and its memory stays bounded.

usage: http2_corners_test.py PRAEFECT_BIN_DIR WORK_DIR [PEER_BIN_DIR]
  PRAEFECT_BIN_DIR holds praefect; PEER_BIN_DIR (default: the same) holds
  interop-goclient and interop-gonode.

With HTTP2_CORNERS_TARGET=node the same tests run straight against the
grpc-go node instead of praefect: a check of the expectations themselves
against the reference server (the praefect-only parts are skipped).
"""
import contextlib
import hashlib
import itertools
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from hyperframe.frame import GoAwayFrame

BIN, WORK = (os.path.abspath(a) for a in sys.argv[1:3])
PEER_BIN = os.path.abspath(sys.argv[3]) if len(sys.argv) > 3 else BIN
GOCLIENT = os.path.join(PEER_BIN, "interop-goclient")
NODE_TOKEN = "corners-node-secret"
REFERENCE = os.environ.get("HTTP2_CORNERS_TARGET") == "node"
CLIENT_TOKEN = NODE_TOKEN if REFERENCE else "corners-client-secret"
SANITIZED = os.environ.get("PRAEFECT_SANITIZED") == "1"

from harness import GoNode, bearer, free_port, rss_kib, write_praefect_config  # noqa: E402

UNARY = "/gitaly.RefService/FindDefaultBranchName"
SERVER = "/gitaly.BlobService/GetBlob"
BIDI = "/gitaly.SSHService/SSHUploadPack"
CREATE = "/gitaly.RepositoryService/CreateRepository"
REPO = "corners/main.git"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS_EMPTY = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
SETTINGS_ACK = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"
CANCEL, ENHANCE_YOUR_CALM = 0x8, 0xb
MiB = 1024 * 1024

_ids = itertools.count(1)


def new_id(prefix="h"):
    return "%s%d-%d" % (prefix, os.getpid(), next(_ids))


def pb_bytes(num, value):
    def varint(v):
        out = b""
        while v >= 0x80:
            out += bytes([(v & 0x7f) | 0x80])
            v >>= 7
        return out + bytes([v])
    return varint(num << 3 | 2) + varint(len(value)) + value


def request(storage="default", rel=REPO, payload=b""):
    """A first request message: the repository (field 1) and a payload (field 2)."""
    return pb_bytes(1, pb_bytes(2, storage.encode()) + pb_bytes(3, rel.encode())) + pb_bytes(2, payload)


def grpc_frame(message):
    return b"\x00" + struct.pack(">I", len(message)) + message


def grpc_messages(data):
    out = []
    while len(data) >= 5:
        n = struct.unpack(">I", data[1:5])[0]
        out.append(bytes(data[5:5 + n]))
        data = data[5 + n:]
    return out


def payload_of(message):
    """Field 2 of a response message written by interop-gonode."""
    assert message[0] == 0x12, message[:8]
    i, n, shift = 1, 0, 0
    while True:
        b = message[i]
        n |= (b & 0x7f) << shift
        i += 1
        shift += 7
        if b < 0x80:
            break
    return message[i:i + n]


class Stream:
    def __init__(self):
        self.headers = None
        self.trailers = None
        self.data = bytearray()
        self.ended = False
        self.reset = None

    def status(self):
        """grpc-status from the trailers or a trailers-only answer."""
        for block in (self.trailers, self.headers):
            if block and "grpc-status" in block:
                return int(block["grpc-status"])
        return None

    def done(self):
        return self.ended or self.reset is not None


class H2Client:
    """One HTTP/2 connection to praefect driven frame by frame with hyper-h2.
    h2 checks what praefect sends, flow control included: DATA beyond the
    window this client granted raises h2.exceptions.FlowControlError."""

    def __init__(self, port, settings=None, rcvbuf=None):
        self.port = port
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.streams = {}
        self.goaway = None
        self.eof = False
        self.reset = False  # the connection was reset (ECONNRESET / EPIPE)
        self.pings = []
        self.settings_acked = 0
        self.remote_settings_seen = False
        self.auto_ack = True
        self.unacked = {}  # stream id → bytes received but not yet acknowledged
        self.flush()

    def close(self):
        self.sock.close()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            try:
                self.sock.sendall(data)
            except (ConnectionResetError, BrokenPipeError):
                self.reset = self.eof = True

    def pump(self, timeout=0.1):
        """Reads once (up to `timeout` s) and handles what came; False when
        nothing did."""
        if self.eof:
            return False
        readable, _, _ = select.select([self.sock], [], [], timeout)
        if not readable:
            return False
        try:
            data = self.sock.recv(1 << 20)
        except ConnectionResetError:
            self.reset, data = True, b""
        if not data:
            self.eof = True
            return False
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.FlowControlError:
            raise
        except h2.exceptions.ProtocolError as err:
            raise AssertionError("praefect broke the HTTP/2 protocol (hyper-h2: %r): e.g. a frame on a stream "
                                 "it had already closed (RFC 9113 5.1)" % err) from err
        for event in events:
            self.handle(event)
        self.flush()
        return True

    def handle(self, ev):
        if isinstance(ev, h2.events.ResponseReceived):
            self.streams[ev.stream_id].headers = dict(ev.headers)
        elif isinstance(ev, h2.events.DataReceived):
            s = self.streams[ev.stream_id]
            s.data += ev.data
            if self.auto_ack:
                self.ack(ev.stream_id, ev.flow_controlled_length)
            else:
                self.unacked[ev.stream_id] = self.unacked.get(ev.stream_id, 0) + ev.flow_controlled_length
        elif isinstance(ev, h2.events.TrailersReceived):
            self.streams[ev.stream_id].trailers = dict(ev.headers)
        elif isinstance(ev, h2.events.StreamEnded):
            self.streams[ev.stream_id].ended = True
        elif isinstance(ev, h2.events.StreamReset):
            self.streams[ev.stream_id].reset = ev.error_code
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = ev
        elif isinstance(ev, h2.events.PingAckReceived):
            self.pings.append(ev.ping_data)
        elif isinstance(ev, h2.events.SettingsAcknowledged):
            self.settings_acked += 1
        elif isinstance(ev, h2.events.RemoteSettingsChanged):
            self.remote_settings_seen = True

    def ack(self, stream_id, n):
        try:
            self.conn.acknowledge_received_data(n, stream_id)
        except h2.exceptions.StreamClosedError:
            pass

    def ack_pending(self):
        for stream_id, n in self.unacked.items():
            self.ack(stream_id, n)
        self.unacked = {}
        self.flush()

    def summary(self):
        """Each stream's state, for failure messages."""
        return "; ".join("stream %d: headers %r, %d data bytes, trailers %r, %s" % (
            sid, s.headers, len(s.data), s.trailers,
            "reset %d" % s.reset if s.reset is not None else "ended" if s.ended else "open")
            for sid, s in sorted(self.streams.items()))

    def until(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.eof or self.goaway is not None:
                raise AssertionError("the connection ended (GOAWAY %r, reset %s) while waiting for %s; %s"
                                     % (self.goaway, self.reset, what, self.summary()))
            if time.monotonic() > deadline:
                raise AssertionError("no %s within %d s; %s" % (what, timeout, self.summary()))
            try:
                self.pump()
            except AssertionError as err:
                raise AssertionError("%s (while waiting for %s); %s" % (err, what, self.summary())) from err

    def start(self, path, message=None, md=(), end=True, token=CLIENT_TOKEN):
        """Opens a gRPC stream; sends `message` (if any) and ends the request
        stream when `end`. Returns the stream id."""
        sid = self.conn.get_next_available_stream_id()
        headers = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "127.0.0.1:%d" % self.port),
                   ("content-type", "application/grpc"), ("te", "trailers"), ("authorization", bearer(token))]
        self.streams[sid] = Stream()
        self.conn.send_headers(sid, headers + list(md), end_stream=message is None and end)
        self.flush()
        if message is not None:
            self.send(sid, grpc_frame(message), end)
        return sid

    def send(self, sid, data, end=False):
        """Sends DATA within the flow-control windows praefect grants."""
        data = memoryview(data)
        if not data and end:
            self.end(sid)
        while data:
            window = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
            if window <= 0:
                self.until(lambda: self.conn.local_flow_control_window(sid) > 0, 30, "WINDOW_UPDATE")
                continue
            chunk, data = data[:window], data[window:]
            self.conn.send_data(sid, bytes(chunk), end_stream=end and not data)
            self.flush()

    def end(self, sid):
        self.conn.end_stream(sid)
        self.flush()

    def call(self, path, message, md=(), timeout=30):
        """A whole unary call on this connection; its Stream."""
        sid = self.start(path, message, md)
        self.until(lambda: self.streams[sid].done(), timeout, "the end of stream %d" % sid)
        return self.streams[sid]


class Http2CornersTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Room for the idle-connection test (2000 sockets here and in
        # praefect, which inherits the limit).
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 8192 and hard > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
        cls.root = tempfile.mkdtemp(prefix="e2e-http2-corners-", dir=WORK)
        cls.gonode = GoNode(PEER_BIN, "go-1", NODE_TOKEN, os.path.join(cls.root, "gonode.log"))
        # Class cleanups run even when setUpClass fails half way.
        cls.addClassCleanup(cls.gonode.stop)
        cls.addClassCleanup(lambda: getattr(cls, "praefect", None) and cls.praefect.poll() is None
                            and cls.praefect.kill())
        cls.starts, cls.crashes = 0, []
        if REFERENCE:
            cls.praefect, cls.log = cls.gonode.proc, None
            cls.port = int(cls.gonode.hostport.rsplit(":", 1)[1])
            cls.register_main()
        else:
            cls.start_main()
        cls.figures = []

    @classmethod
    def tearDownClass(cls):
        if cls.figures:
            print("\n==== http2 corners: figures\n" + "\n".join(cls.figures), file=sys.stderr)
        if REFERENCE:
            cls.gonode.stop()
            shutil.rmtree(cls.root)
            return
        cls.praefect.send_signal(signal.SIGTERM)
        try:
            code = cls.praefect.wait(timeout=60)
        finally:
            cls.gonode.stop()
        cls.log.seek(0)
        log = cls.log.read()
        cls.log.close()
        if code != 0 or os.environ.get("PRAEFECT_E2E_LOG") == "1":
            print(log[-20000:], file=sys.stderr)
        assert not cls.crashes, "praefect crashed %d time(s):\n%s" % (len(cls.crashes), "\n\n".join(cls.crashes))
        assert code == 0, "praefect exited with %d after SIGTERM" % code
        shutil.rmtree(cls.root)

    @classmethod
    def start_main(cls):
        """Starts the praefect most tests use and registers REPO there."""
        cls.starts += 1
        cls.praefect, cls.port, cls.log = cls.start_praefect("praefect-%d" % cls.starts)
        cls.register_main()

    @classmethod
    def register_main(cls):
        call = "create-main-%d" % cls.starts
        deadline = time.monotonic() + 30
        while True:
            res = cls.goclient(CREATE, md=[("x-test-id", call)], dial_timeout="30s")
            if res["code"] == 0:
                break
            assert res["code"] == 14 and time.monotonic() < deadline, "CreateRepository: %r" % res
            time.sleep(0.1)
        cls.replica = cls.gonode.wait_done(call)["relative_path"]

    def tearDown(self):
        # A praefect that died is recorded (tearDownClass fails naming the
        # test) and replaced, so that one crash does not hide the other results.
        if not REFERENCE and self.praefect.poll() is not None:
            self.log.flush()
            with open(self.log.name) as f:
                tail = f.read()[-3000:]
            type(self).crashes.append("praefect exited with %d during %s; its log ends with:\n%s"
                                      % (self.praefect.returncode, self.id(), tail))
            self.log.close()
            type(self).start_main()

    @classmethod
    def start_praefect(cls, name):
        """A memory-mode praefect in front of the grpc-go node: (process,
        port, log file)."""
        port = free_port()
        config = os.path.join(cls.root, name + ".toml")
        write_praefect_config(config, "127.0.0.1:%d" % port, CLIENT_TOKEN,
                              [("default", [("go-1", cls.gonode.address, NODE_TOKEN)])])
        with open(config, "a") as f:
            f.write("[backchannel]\nenabled = false\n")  # interop-gonode runs without -backchannel
        log = open(os.path.join(cls.root, name + ".log"), "w+")
        proc = subprocess.Popen([os.path.join(BIN, "praefect"), "-config", config], stdout=log,
                                stderr=subprocess.STDOUT)
        return proc, port, log

    @contextlib.contextmanager
    def fresh_praefect(self, name):
        """A praefect of its own for a memory measurement (memory that earlier
        tests made the main one free and keep would hide growth), serving
        once it yields (process, port); stopped cleanly after."""
        if REFERENCE:
            node = GoNode(PEER_BIN, "go-1", NODE_TOKEN, os.path.join(self.root, name + ".log"))
            try:
                yield node.proc, int(node.hostport.rsplit(":", 1)[1])
            finally:
                node.stop()
            return
        proc, port, log = self.start_praefect(name)
        try:
            deadline = time.monotonic() + 30
            while True:
                res = self.goclient(CREATE, port=port, repo="corners/%s.git" % name, dial_timeout="30s")
                if res["code"] == 0:
                    break
                self.assertTrue(res["code"] == 14 and time.monotonic() < deadline, res)
                time.sleep(0.1)
            yield proc, port
            self.assertIsNone(proc.poll(), "the praefect of %s is running" % name)
            res = self.goclient(UNARY, port=port, repo="corners/%s.git" % name)
            self.assertEqual(res["code_name"], "OK", "the praefect of %s serves a new connection: %r" % (name, res))
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
            log.seek(0)
            text = log.read()
            log.close()
            if code != 0:
                print("--- %s: praefect's log (tail)\n%s" % (name, text[-20000:]), file=sys.stderr)
            self.assertEqual(code, 0, "the praefect of %s exited with %d after SIGTERM" % (name, code))

    @classmethod
    def goclient(cls, method, md=(), dial_timeout="10s", port=None, repo=REPO):
        if port is None and cls.praefect.poll() is not None:
            raise AssertionError("praefect is not running (exit %d)" % cls.praefect.returncode)
        args = [GOCLIENT, "-addr", "127.0.0.1:%d" % (port or cls.port), "-method", method, "-repo", repo,
                "-token", CLIENT_TOKEN, "-dial-timeout", dial_timeout]
        for k, v in md:
            args += ["-md", "%s=%s" % (k, v)]
        out = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        assert out.returncode == 0, "interop-goclient: %s" % out.stderr.decode()
        return json.loads(out.stdout)

    def figure(self, text):
        if REFERENCE:
            text = "[grpc-go node as the target] " + text.replace("praefect VmRSS", "node VmRSS")
        print(text, file=sys.stderr)
        self.figures.append(text)

    def assertHealthy(self):
        """praefect is up and serves a call on a new connection."""
        self.assertIsNone(self.praefect.poll(), "praefect is running")
        res = self.goclient(UNARY)
        self.assertEqual(res["code_name"], "OK", "praefect serves a new connection: %r" % res)

    def assertCancelledAtNode(self, call):
        rec = self.gonode.wait_done(call)
        self.assertEqual(rec["ctx_err"], "canceled", "the node's call was cancelled: %r" % rec)
        return rec

    def rss(self):
        return rss_kib(self.praefect.pid)

    # ---- RST_STREAM ----------------------------------------------------------

    def test_rst_stream_from_the_client(self):
        """RST_STREAM(CANCEL) from the client cancels the call at the node
        (grpc-go's server cancels the stream's context), whether the node
        holds the call, streams responses or has not been called yet; the
        connection and praefect go on serving."""
        c = H2Client(self.port)
        try:
            call = new_id()
            sid = c.start(BIDI, request(), md=[("x-test-id", call), ("x-test-hold", "1"),
                                               ("x-test-headers-first", "1")], end=False)
            c.until(lambda: c.streams[sid].headers is not None, 10, "response headers")
            c.conn.reset_stream(sid, CANCEL)
            c.flush()
            self.assertCancelledAtNode(call)

            call = new_id()
            sid = c.start(SERVER, request(), md=[("x-test-id", call), ("x-test-respond", "10000:16384"),
                                                 ("x-test-send-delay-ms", "5")])
            c.until(lambda: len(c.streams[sid].data) >= 3 * 16384, 10, "response data")
            c.conn.reset_stream(sid, CANCEL)
            c.flush()
            self.assertLess(self.assertCancelledAtNode(call)["sent_count"], 10000)

            # Reset before any message: praefect has not called the node yet.
            sid = c.start(UNARY, None, end=False)
            c.conn.reset_stream(sid, CANCEL)
            c.flush()

            s = c.call(UNARY, request())
            self.assertEqual((s.headers.get(":status"), s.status()), ("200", 0), "the connection still serves")
            self.assertIsNone(c.goaway)
        finally:
            c.close()
        self.assertHealthy()

    # ---- SETTINGS ------------------------------------------------------------

    def test_initial_window_size_up(self):
        """A client that raises SETTINGS_INITIAL_WINDOW_SIZE (8 MiB) and the
        connection window gets its SETTINGS acknowledged and every byte of a
        4 MiB response stream."""
        c = H2Client(self.port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 8 * MiB})
        try:
            c.conn.increment_flow_control_window(8 * MiB)
            c.flush()
            c.until(lambda: c.settings_acked >= 1, 10, "SETTINGS ACK")
            call = new_id()
            sid = c.start(SERVER, request(), md=[("x-test-id", call), ("x-test-respond", "4:%d" % (MiB - 64))])
            c.until(lambda: c.streams[sid].done(), 30, "the end of the stream")
            s = c.streams[sid]
            self.assertEqual(s.status(), 0, s.trailers)
            data = b"".join(payload_of(m) for m in grpc_messages(s.data))
            self.assertEqual(hashlib.sha256(data).hexdigest(), self.gonode.wait_done(call)["sent_sha256"])
        finally:
            c.close()

    def test_initial_window_size_down_to_zero_and_up_mid_stream(self):
        """A client that lowers SETTINGS_INITIAL_WINDOW_SIZE to 0 in the middle
        of a response stream: once praefect acknowledged the SETTINGS, it
        sends no DATA on the stream (RFC 9113 6.9.2: the window may even be
        negative; h2 here fails on any DATA beyond it); raised again, the
        stream resumes and completes with every byte."""
        c = H2Client(self.port)
        try:
            call = new_id()
            sid = c.start(SERVER, request(), md=[("x-test-id", call), ("x-test-respond", "64:65536")])
            s = c.streams[sid]
            c.until(lambda: len(s.data) > 0, 10, "the first response bytes")
            c.auto_ack = False
            acked = c.settings_acked
            c.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
            c.flush()
            try:
                c.until(lambda: c.settings_acked > acked, 10, "SETTINGS ACK")
                held = len(s.data)
                # Any DATA now would be beyond the window: h2 raises.
                deadline = time.monotonic() + 1.0
                while time.monotonic() < deadline:
                    c.pump(0.05)
            except h2.exceptions.FlowControlError as err:
                self.fail("praefect sent DATA beyond the flow-control window after a SETTINGS of 0: %s" % err)
            self.assertEqual(len(s.data), held, "no DATA while the window is 0")
            self.assertFalse(s.done())
            c.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 65535})
            c.auto_ack = True
            c.flush()
            c.until(lambda: c.settings_acked > acked + 1, 10, "SETTINGS ACK")
            c.ack_pending()
            c.until(lambda: s.done(), 30, "the end of the stream")
            self.assertEqual(s.status(), 0, s.trailers)
            data = b"".join(payload_of(m) for m in grpc_messages(s.data))
            self.assertEqual(hashlib.sha256(data).hexdigest(), self.gonode.wait_done(call)["sent_sha256"])
        finally:
            c.close()

    # ---- PING ------------------------------------------------------------------

    def test_ping_flood(self):
        """10,000 PINGs at once (170 KB): praefect acknowledges each with its
        payload, or drops the connection with GOAWAY(ENHANCE_YOUR_CALM) as
        grpc-go's server does for abusive pings (the GOAWAY may be lost in
        the TCP reset of a connection closed with PINGs unread: a reset is
        accepted, a clean close without GOAWAY is not); either way it keeps
        serving other connections, and the flood costs it little memory
        (grpc-go stops reading a connection with 50 control frames queued)."""
        n = 10000
        with self.fresh_praefect("ping-flood") as (proc, port):
            before = rss_kib(proc.pid)
            c = H2Client(port)
            try:
                for i in range(n):
                    c.conn.ping(struct.pack(">Q", i))
                c.flush()
                deadline = time.monotonic() + 30
                while len(c.pings) < n and c.goaway is None and not c.eof:
                    self.assertLess(time.monotonic(), deadline, "PING ACKs: %d of %d" % (len(c.pings), n))
                    c.pump()
                if c.goaway is not None:
                    self.assertEqual(c.goaway.error_code, ENHANCE_YOUR_CALM, c.goaway)
                    outcome = "GOAWAY(ENHANCE_YOUR_CALM) after %d ACKs" % len(c.pings)
                elif c.reset:
                    outcome = "connection reset after %d ACKs" % len(c.pings)
                else:
                    self.assertFalse(c.eof, "praefect closed the connection without a GOAWAY after %d ACKs"
                                     % len(c.pings))
                    self.assertEqual(sorted(c.pings), [struct.pack(">Q", i) for i in range(n)])
                    outcome = "all %d acknowledged" % n
                after = rss_kib(proc.pid)
            finally:
                c.close()
            self.figure("PING flood of %d: %s; praefect VmRSS %d -> %d KiB" % (n, outcome, before, after))
            if not SANITIZED:
                self.assertLess(after - before, 32 * 1024, "praefect's RSS grew by %d KiB" % (after - before))
        self.assertHealthy()

    def test_ping_flood_without_reading(self):
        """A client that floods PINGs and never reads the ACKs (CVE-2019-9512):
        praefect stops reading from it or drops it; its memory does not grow
        with the flood (as for the flood that reads: grpc-go stops reading
        with 50 control frames queued, nghttp2 drops a peer with 1000
        unsent ACKs), and other connections are served meanwhile."""
        with self.fresh_praefect("ping-no-read") as (proc, port):
            before = rss_kib(proc.pid)
            sock = socket.create_connection(("127.0.0.1", port))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(PREFACE + SETTINGS_EMPTY)
            sock.setblocking(False)
            ping = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"flooding"
            batch = ping * 1024
            sent, limit, blocked_since, closed = 0, 2 * 1000 * 1000, None, False
            while sent < limit:
                try:
                    n = sock.send(batch)
                except BlockingIOError:
                    n = 0
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                sent += n // len(ping)
                if n == 0:
                    blocked_since = blocked_since or time.monotonic()
                    if time.monotonic() - blocked_since > 2:
                        break
                    select.select([], [sock], [], 0.1)
                else:
                    blocked_since = None
            after = rss_kib(proc.pid)
            self.assertHealthy()
            sock.close()
        self.figure("PING flood without reading: %d PINGs written before praefect %s; praefect VmRSS %d -> %d KiB"
                    % (sent, "closed the connection" if closed else "stopped reading" if sent < limit
                       else "had read them all", before, after))
        if not SANITIZED:
            self.assertLess(after - before, 32 * 1024, "praefect's RSS grew by %d KiB" % (after - before))

    # ---- headers -----------------------------------------------------------------

    def test_header_list_over_the_limit(self):
        """A request whose header list exceeds the limit praefect advertises
        (SETTINGS_MAX_HEADER_LIST_SIZE; grpc-go's 16 MiB when none is
        advertised), in values of 4 KiB, is refused on its own: RST_STREAM
        or an error status for that stream, while another stream on the same connection goes on and
        the connection stays up (grpc-go resets the stream alone)."""
        c = H2Client(self.port)
        try:
            c.until(lambda: c.remote_settings_seen, 10, "praefect's SETTINGS")
            advertised = c.conn.remote_settings.get(h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE)
            limit = advertised if advertised else 16 * MiB
            call = new_id()
            a = c.start(BIDI, request(payload=b"a1"), md=[("x-test-id", call), ("x-test-echo", "1"),
                                                         ("x-test-respond", "0:0")], end=False)
            c.until(lambda: len(c.streams[a].data) > 0, 10, "stream A's first echo")
            # Literal, not Huffman-coded: the size on the wire is the size.
            encode = c.conn.encoder.encode
            c.conn.encoder.encode = lambda headers, huffman=True: encode(headers, huffman=False)
            # Values of 4 KiB: over the limit together, none alone (grpc-go
            # drops the connection for one value longer than the limit).
            big = [("x-big-%d" % i, "v" * 4096) for i in range(limit // 4096 + 2)]
            b = c.start(UNARY, request(), md=big)
            c.until(lambda: c.streams[b].done(), 30, "praefect's answer to the oversized header list")
            sb = c.streams[b]
            self.assertTrue(sb.reset is not None or sb.status() not in (None, 0)
                            or (sb.headers or {}).get(":status") not in (None, "200"),
                            "the oversized request is refused: reset %r, headers %r, trailers %r"
                            % (sb.reset, sb.headers, sb.trailers))
            c.send(a, grpc_frame(request(payload=b"a2")))
            echoed = len(grpc_messages(c.streams[a].data))
            c.until(lambda: len(grpc_messages(c.streams[a].data)) > echoed, 10, "stream A's second echo")
            c.end(a)
            c.until(lambda: c.streams[a].done(), 10, "the end of stream A")
            self.assertEqual(c.streams[a].status(), 0, c.streams[a].trailers)
            self.assertEqual(c.call(UNARY, request()).status(), 0)
            self.figure("header list of %d bytes (advertised limit: %s): %s" % (
                sum(len(k) + len(v) for k, v in big), advertised, "RST_STREAM(%d)" % sb.reset if sb.reset is not None else
                "status %s / HTTP %s" % (sb.status(), (sb.headers or {}).get(":status"))))
        finally:
            c.close()

    # ---- a client that stops reading -------------------------------------------------

    def test_client_that_stops_reading(self):
        """A client grants huge windows, asks for 512 MiB and stops reading the
        socket: praefect stops reading from the node (flow control back to the
        node, which stops sending), its memory stays bounded, other
        connections are served, and closing the socket cancels the node's call."""
        before = self.rss()
        big = (1 << 31) - 1
        c = H2Client(self.port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: big}, rcvbuf=65536)
        try:
            c.conn.increment_flow_control_window(big - 65535)
            c.flush()
            call = new_id()
            c.start(SERVER, request(), md=[("x-test-id", call), ("x-test-respond", "512:%d" % MiB)])
            # Never read again. Wait until the node's sending has stalled.
            deadline = time.monotonic() + 30
            last, since = -1, time.monotonic()
            while True:
                rec = self.gonode.record(call)
                sent = rec["sent_bytes"] if rec else -1
                if sent != last:
                    last, since = sent, time.monotonic()
                elif time.monotonic() - since > 1.0 and sent >= 0:
                    break
                self.assertLess(time.monotonic(), deadline, "the node's sending did not stall: %r" % rec)
                time.sleep(0.05)
            self.assertFalse(rec["done"], "the call is still open")
            stalled = self.rss()
            self.assertHealthy()
        finally:
            c.close()
        self.assertCancelledAtNode(call)
        self.figure("client stops reading a 512 MiB stream: the node stalled after %.1f MiB; praefect VmRSS %d -> %d KiB"
                    % (last / MiB, before, stalled))
        self.assertLess(last, 512 * MiB - MiB, "flow control reached the node")
        if not SANITIZED:
            self.assertLess(stalled - before, 64 * 1024, "praefect's RSS grew by %d KiB" % (stalled - before))

    def test_streams_that_stop_reading_do_not_stall_other_calls(self):
        """200 streams whose clients stop reading, over 20 connections: each
        holds what its windows let the node send ahead, and the connection
        to the node they share (one per event loop) still carries other
        calls: its window is not theirs to exhaust."""
        clients, calls = [], []
        try:
            for _ in range(20):
                c = H2Client(self.port, rcvbuf=65536)
                c.auto_ack = False  # never grants more window
                clients.append(c)
                for _ in range(10):
                    call = new_id()
                    calls.append(call)
                    c.start(SERVER, request(), md=[("x-test-id", call), ("x-test-respond", "64:%d" % MiB)])
            # Until the node's sending has stalled on every stream.
            deadline = time.monotonic() + 60
            last, since = None, time.monotonic()
            while True:
                for c in clients:
                    while c.pump(0):
                        pass
                sent = [((self.gonode.record(call) or {}).get("sent_bytes", -1)) for call in calls]
                if sent != last:
                    last, since = sent, time.monotonic()
                elif time.monotonic() - since > 1.0 and min(sent) > 0:
                    break
                self.assertLess(time.monotonic(), deadline, "the node's sending did not stall: %r" % sent)
                time.sleep(0.1)
            held = sum(last)
            self.assertLess(max(last), 64 * MiB, "flow control reached the node on every stream")
            started = time.monotonic()
            for _ in range(4):  # new connections: both event loops
                self.assertHealthy()
            self.figure("200 streams that stop reading: the node sent %.1f MiB ahead in all; calls beside them "
                        "took %.2f s for 4" % (held / MiB, time.monotonic() - started))
        finally:
            for c in clients:
                c.close()
        for call in calls:
            self.assertCancelledAtNode(call)

    # ---- GOAWAY ------------------------------------------------------------------------

    def test_goaway_from_the_client(self):
        """GOAWAY(NO_ERROR) from a client announces it opens no more streams;
        a call already in flight completes normally (grpc-go's server ignores
        a client's GOAWAY). A client that sends GOAWAY and closes mid-call
        gets its call cancelled at the node."""
        c = H2Client(self.port)
        try:
            call = new_id()
            sid = c.start(UNARY, request(), md=[("x-test-id", call), ("x-test-delay-ms", "300"),
                                                ("x-test-respond", "1:1000")])
            c.sock.sendall(GoAwayFrame(0, last_stream_id=0, error_code=0).serialize())
            c.until(lambda: c.streams[sid].done() or c.eof, 10, "the in-flight call's end")
            s = c.streams[sid]
            self.assertEqual(s.status(), 0, "the call in flight completes: reset %r, trailers %r" % (s.reset, s.trailers))
            self.assertEqual(len(payload_of(grpc_messages(s.data)[0])), 1000)
        finally:
            c.close()
        c = H2Client(self.port)
        call = new_id()
        sid = c.start(BIDI, request(), md=[("x-test-id", call), ("x-test-hold", "1"), ("x-test-headers-first", "1")],
                      end=False)
        c.until(lambda: c.streams[sid].headers is not None, 10, "response headers")
        c.sock.sendall(GoAwayFrame(0, last_stream_id=0, error_code=0).serialize())
        c.close()
        self.assertCancelledAtNode(call)
        self.assertHealthy()

    # ---- not gRPC, not HTTP/2 ------------------------------------------------------------

    def curl(self, *args):
        headers = os.path.join(self.root, "curl-headers")
        out = subprocess.run(["curl", "-sS", "-m", "10", "-o", "/dev/null", "-D", headers, "-w", "%{http_code}"]
                             + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        text = ""
        if os.path.exists(headers):
            with open(headers, errors="replace") as f:
                text = f.read()
            os.unlink(headers)
        return out.returncode, out.stdout.decode(), text, out.stderr.decode().strip()

    def test_non_grpc_requests(self):
        """HTTP/2 requests that are not gRPC (GET /, a POST of text/plain, a
        GET of a gRPC method) get a clear error for that stream: an HTTP
        error status, a gRPC error status, or RST_STREAM (curl exit 92);
        grpc-go answers a wrong content-type with 415 and a GET with
        RST_STREAM. Never a hang, a 200 without grpc-status, or a dropped
        connection."""
        url = "http://127.0.0.1:%d" % self.port
        cases = {"GET /": [url + "/"],
                 "POST text/plain": ["-X", "POST", "-H", "content-type: text/plain", "--data-binary", "hello",
                                     url + UNARY],
                 "GET of a method": ["-H", "content-type: application/grpc", url + UNARY]}
        for name, args in cases.items():
            with self.subTest(request=name):
                code, http, headers, err = self.curl("--http2-prior-knowledge", *args)
                status = re.search(r"^grpc-status: *(\d+)", headers, re.M | re.I)
                message = re.search(r"^grpc-message: *(.*?)\r?$", headers, re.M | re.I)
                self.figure("curl --http2-prior-knowledge %s: exit %d, HTTP %s, grpc-status %s %r %s"
                            % (name, code, http, status.group(1) if status else "-",
                               message.group(1) if message else "", err))
                self.assertIn(code, (0, 92), "a clean answer for the stream: %s" % err)
                if code == 0:
                    self.assertTrue(int(http) >= 400 or (status and status.group(1) != "0"),
                                    "an error: HTTP %s, headers %r" % (http, headers))
                self.assertIsNone(self.praefect.poll())
        self.assertHealthy()

    def test_http1_to_the_grpc_port(self):
        """HTTP/1.1 to the gRPC port (plain, and with an h2c Upgrade) is
        refused promptly: an HTTP error status or the connection closed
        (grpc-go closes on a bogus preface, having sent its SETTINGS first,
        which curl reports as an HTTP/0.9 answer); never a hang or a success."""
        url = "http://127.0.0.1:%d/" % self.port
        for name, args in {"HTTP/1.1": ["--http1.1", url], "h2c upgrade": ["--http2", url]}.items():
            with self.subTest(request=name):
                code, http, headers, err = self.curl(*args)
                self.figure("curl %s to the gRPC port: exit %d, HTTP %s %s" % (name, code, http, err))
                if code == 1:
                    self.assertIn("HTTP/0.9", err, "curl's exit 1 is for the server's HTTP/2 SETTINGS")
                else:
                    self.assertIn(code, (0, 52, 56, 92), "refused promptly: %s" % err)
                if code == 0:
                    self.assertGreaterEqual(int(http), 400)
        # The same by hand: the connection is closed within 10 s.
        with socket.create_connection(("127.0.0.1", self.port)) as s:
            s.settimeout(10)
            s.sendall(b"GET / HTTP/1.1\r\nHost: praefect\r\n\r\n")
            data = b""
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                    if data.startswith(b"HTTP/1.") and b"\r\n\r\n" in data:
                        break  # an HTTP/1.x answer is clean too
            except socket.timeout:
                self.fail("praefect neither answered nor closed an HTTP/1.1 connection within 10 s: %r" % data[:200])
            except ConnectionResetError:
                pass
            self.assertFalse(data.startswith(b"HTTP/1.1 2"), data[:200])
        self.assertHealthy()

    def test_truncated_and_bad_prefaces(self):
        """Truncated prefaces (closed, or held open), a wrong preface and
        garbage after a good one: a bad preface or garbage closes that
        connection (RFC 9113 3.4: a connection error, GOAWAY optional) within
        10 s; nothing affects the other connections."""
        for _ in range(50):
            with socket.create_connection(("127.0.0.1", self.port)) as s:
                s.sendall(PREFACE[:10])
        held = []
        for _ in range(50):
            s = socket.create_connection(("127.0.0.1", self.port))
            s.sendall(PREFACE[:12])
            held.append(s)
        self.assertHealthy()
        for name, data in (("a wrong preface", b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + SETTINGS_EMPTY),
                           ("garbage after the preface", PREFACE + SETTINGS_EMPTY + bytes(range(256)) * 4)):
            with self.subTest(case=name), socket.create_connection(("127.0.0.1", self.port)) as s:
                s.settimeout(10)
                s.sendall(data)
                closed = False
                try:
                    while s.recv(65536):
                        pass
                    closed = True
                except ConnectionResetError:
                    closed = True
                except socket.timeout:
                    pass
                self.assertTrue(closed, "praefect closes a connection after %s" % name)
        for s in held:
            s.close()
        self.assertHealthy()

    # ---- many idle connections ------------------------------------------------------------

    def test_many_idle_connections(self):
        """2000 client connections that complete the HTTP/2 handshake and then
        stay idle are all held (none closed), praefect serves a call while
        they are open, and its RSS per idle connection is reported (a
        praefect of its own: memory freed by earlier tests would hide it)."""
        n = 2000
        socks = []
        with self.fresh_praefect("idle") as (praefect, port):
            try:
                before = rss_kib(praefect.pid)
                for _ in range(n):
                    s = socket.create_connection(("127.0.0.1", port))
                    s.sendall(PREFACE + SETTINGS_EMPTY)
                    socks.append(s)
                self.handshake(socks)
                # RSS once it has settled (two equal readings 200 ms apart, at most 5 s).
                settle = time.monotonic() + 5
                after = rss_kib(praefect.pid)
                while time.monotonic() < settle:
                    time.sleep(0.2)
                    now = rss_kib(praefect.pid)
                    if now == after:
                        break
                    after = now
                res = self.goclient(UNARY, port=port, repo="corners/idle.git")
                self.assertEqual(res["code_name"], "OK", "a call while %d connections are idle: %r" % (n, res))
                closed = sum(1 for s in socks if self.closed_by_peer(s))
                self.figure("%d idle connections: praefect VmRSS %d -> %d KiB, %.1f KiB per connection"
                            % (n, before, after, (after - before) / n))
                self.assertEqual(closed, 0, "praefect closed %d of %d idle connections" % (closed, n))
            finally:
                for s in socks:
                    s.close()

    def handshake(self, socks):
        """Waits for praefect's SETTINGS on each socket and acknowledges them."""
        pending = {s.fileno(): (s, b"") for s in socks}
        poller = select.epoll()
        for fd in pending:
            poller.register(fd, select.EPOLLIN)
        deadline = time.monotonic() + 60
        try:
            while pending:
                self.assertLess(time.monotonic(), deadline, "%d connections got no SETTINGS" % len(pending))
                for fd, _ in poller.poll(0.5):
                    if fd not in pending:
                        continue
                    s, buf = pending[fd]
                    chunk = s.recv(65536)
                    self.assertTrue(chunk, "praefect closed a new connection")
                    buf += chunk
                    while len(buf) >= 9:
                        length = int.from_bytes(buf[:3], "big")
                        if buf[3] == 4 and not buf[4] & 1:
                            s.sendall(SETTINGS_ACK)
                            del pending[fd]
                            poller.unregister(fd)
                            break
                        buf = buf[9 + length:]
                    else:
                        pending[fd] = (s, buf)
        finally:
            poller.close()

    @staticmethod
    def closed_by_peer(s):
        s.setblocking(False)
        try:
            while True:
                if not s.recv(65536):
                    return True
        except BlockingIOError:
            return False
        except ConnectionResetError:
            return True

    # ---- h2load ------------------------------------------------------------------------------

    def h2load(self, port, token, storage, rel, clients, streams):
        body = os.path.join(self.root, "h2load-body")
        with open(body, "wb") as f:
            f.write(grpc_frame(request(storage, rel)))
        out = subprocess.run(["h2load", "-D", "3", "--warm-up-time", "1", "-c", str(clients), "-m", str(streams),
                              "-H", "content-type: application/grpc", "-H", "te: trailers",
                              "-H", "authorization: " + bearer(token), "-d", body,
                              "http://127.0.0.1:%d%s" % (port, UNARY)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        text = out.stdout.decode()
        self.assertEqual(out.returncode, 0, text)
        rps = float(re.search(r"finished in .*?, ([\d.]+) req/s", text).group(1))
        succeeded = int(re.search(r"requests: .* (\d+) succeeded", text).group(1))
        lat = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", text)
        return rps, succeeded, lat.groups() if lat else ("?",) * 4, text

    def settled_unary_stats(self):
        """The node's handled counts of UNARY once two reads 0.3 s apart agree
        (at most 10 s)."""
        last = self.gonode.stats()["handled"].get(UNARY, {})
        deadline = time.time() + 10
        while time.time() < deadline:
            time.sleep(0.3)
            now = self.gonode.stats()["handled"].get(UNARY, {})
            if now == last:
                return now
            last = now
        return last

    # zz: last, as it leaves praefect's heap large, which would hide growth
    # that the memory checks of the other tests look for.
    def test_zz_h2load_unary(self):
        """h2load, unary gRPC (FindDefaultBranchName) at 1, 64 and 1024
        concurrent streams, through praefect and straight to the node: a
        measurement printed for the record. Checked: every request h2load
        counted as a success was an OK call at the node (h2load counts HTTP
        200s; a gRPC error is an HTTP 200 too), and none failed there."""
        rows = []
        node_port = int(self.gonode.hostport.rsplit(":", 1)[1])
        for streams, clients, per in ((1, 1, 1), (64, 1, 64), (1024, 16, 64)):
            targets = [("praefect", self.port, CLIENT_TOKEN, "default", REPO)] if not REFERENCE else []
            for target, port, token, storage, rel in targets + [("node", node_port, NODE_TOKEN, "go-1", self.replica)]:
                before = self.settled_unary_stats()
                rps, ok, lat, text = self.h2load(port, token, storage, rel, clients, per)
                # The calls h2load reset at its end reach the node's counters
                # a moment after h2load exits (on a loaded machine, after the
                # next run began: 1075 Canceled for 1024 streams).
                after = self.settled_unary_stats()
                failed = {k: after.get(k, 0) - before.get(k, 0) for k in after if k != "OK"}
                # h2load resets the streams in flight when its time is up (the
                # node counts a call whose client went away as Canceled).
                self.assertLessEqual(failed.pop("Canceled", 0), clients * per)
                self.assertTrue(ok > 0, text)
                self.assertEqual({k: v for k, v in failed.items() if v}, {}, "calls failed at the node")
                self.assertGreaterEqual(after.get("OK", 0) - before.get("OK", 0), ok)
                rows.append("%5d streams (%2d conn x %3d)  %-8s %9.0f req/s  latency min %s max %s mean %s sd %s"
                            % (streams, clients, per, target, rps, *lat))
        self.figure("h2load unary FindDefaultBranchName, 3 s each (h2load, praefect and the node share 2 cores):\n"
                    + "\n".join(rows))


if __name__ == "__main__":
    # E2E_TEST_ARGS: more unittest arguments, e.g. "-k cancellation" to run some tests only.
    unittest.main(argv=[sys.argv[0], "-v"] + os.environ.get("E2E_TEST_ARGS", "").split())
