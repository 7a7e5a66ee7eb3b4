#!/usr/bin/python3
"""Interoperability with grpc-go, the HTTP/2 stack of GitLab's real peers
(gitlab-shell, Workhorse and Gitaly are Go programs on grpc-go, whereas
praefect and every other client and node of the tests are built on gRPC's C
core).

Set-up: praefect in memory mode (no [database]) in front of
  * virtual storage "default": interop-gonode (tests/interop/gonode), a
    Gitaly stand-in on grpc-go whose behaviour each call's metadata scripts
    and which reports what it saw of each call on a side channel;
  * virtual storage "cpp": the real praefect-storage-node (grpc++, git).
Clients: interop-goclient (grpc-go) for everything, Python grpcio (gRPC's C
core) for a few calls to the grpc-go node.

Expected behaviour is that of a transparent gRPC proxy, with grpc-go's
behaviour as the reference: every byte of every message arrives (checked
with SHA-256 both ways, for all four call shapes, payloads of 0 bytes to
several MiB), metadata and trailers pass both ways unchanged, a node's
status (code, message, details) reaches the client unchanged, a client's
cancellation and deadline reach the node, many streams share one client
connection, and a slow reader slows its writer (praefect's memory stays
bounded).

usage: interop_go_test.py PRAEFECT_BIN_DIR PROTO_DIR WORK_DIR [PEER_BIN_DIR]
  PRAEFECT_BIN_DIR holds praefect and praefect-storage-node; PEER_BIN_DIR
  (default: the same) holds interop-goclient and interop-gonode.
"""
import hashlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

BIN, PROTO_DIR, WORK = (os.path.abspath(a) for a in sys.argv[1:4])
PEER_BIN = os.path.abspath(sys.argv[4]) if len(sys.argv) > 4 else BIN
GOCLIENT = os.path.join(PEER_BIN, "interop-goclient")
CLIENT_TOKEN = "interop-client-secret"
NODE_TOKEN = "interop-node-secret"
SANITIZED = os.environ.get("PRAEFECT_SANITIZED") == "1"
# INTEROP_BACKCHANNEL=1 (ctest e2e/interop-go-backchannel): [backchannel]
# enabled and interop-gonode -backchannel, as Praefect v16 dials Gitaly; the
# unary and bidi shapes use transactional writes, which run over the
# backchannel connections (reads run over plain ones); the grpc++ storage
# node, which has no backchannel, is left out.
BACKCHANNEL = os.environ.get("INTEROP_BACKCHANNEL") == "1"

from harness import GoNode, StorageNode, bearer, free_port, generate_stubs, rss_kib, write_praefect_config  # noqa: E402

# Real Gitaly methods of each call shape that praefect's registry routes:
# accessors of a registered repository, and a creating mutator.
UNARY = "/gitaly.RefService/FindDefaultBranchName"
SERVER = "/gitaly.BlobService/GetBlob"
CLIENT = "/gitaly.RepositoryService/CreateRepositoryFromBundle"
BIDI = "/gitaly.SSHService/SSHUploadPack"
CREATE = "/gitaly.RepositoryService/CreateRepository"
READ_UNARY = UNARY
if BACKCHANNEL:
    # Only transactional writes take the backchannel connections (reads take
    # plain ones): the shapes that have such a write use it. No
    # transactional method is server-streaming; GetBlob stays, on a plain
    # connection.
    UNARY = "/gitaly.RepositoryService/WriteRef"
    BIDI = "/gitaly.SSHService/SSHReceivePack"
METHODS = {"unary": UNARY, "server": SERVER, "client": CLIENT, "bidi": BIDI}
REPO = "interop/main.git"
MiB = 1024 * 1024
# praefect's default [limits] max_message_bytes: 4 MiB per message.
MAX_MESSAGE = 4 * MiB

_ids = itertools.count(1)


def praefect_config(path, listen, virtual_storages, top=""):
    """The tests' memory-mode praefect config; node connections with a
    backchannel with BACKCHANNEL only (interop-gonode speaks it only with
    -backchannel; [backchannel] is on by default)."""
    write_praefect_config(path, listen, CLIENT_TOKEN, virtual_storages, top=top)
    with open(path, "a") as f:
        f.write("[backchannel]\nenabled = %s\n" % ("true" if BACKCHANNEL else "false"))


def new_id(prefix="c"):
    return "%s%d-%d" % (prefix, os.getpid(), next(_ids))


def framed(messages):
    """The length-prefixed file format of interop-goclient's -requests-file."""
    return b"".join(len(m).to_bytes(4, "big") + m for m in messages)


def unframed(data):
    out = []
    while data:
        n = int.from_bytes(data[:4], "big")
        out.append(data[4:4 + n])
        data = data[4 + n:]
    return out


def pb_bytes(num, value):
    """A length-delimited protobuf field (for the grpcio calls' raw messages)."""
    def varint(v):
        out = b""
        while v >= 0x80:
            out += bytes([(v & 0x7f) | 0x80])
            v >>= 7
        return out + bytes([v])
    return varint(num << 3 | 2) + varint(len(value)) + value


def repository(storage, rel):
    return pb_bytes(2, storage.encode()) + pb_bytes(3, rel.encode())


class InteropGoTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="e2e-interop-go-", dir=WORK)
        generate_stubs(PROTO_DIR, os.path.join(cls.root, "gen"))
        cls.gonode = GoNode(PEER_BIN, "go-1", NODE_TOKEN, os.path.join(cls.root, "gonode.log"),
                            flags=["-backchannel"] if BACKCHANNEL else [])
        # Class cleanups run even when setUpClass fails half way.
        cls.addClassCleanup(cls.gonode.stop)
        cls.cppnode = StorageNode(BIN, cls.root, 1, NODE_TOKEN)
        cls.addClassCleanup(cls.cppnode.stop)
        cls.cppnode.start()
        cls.starts, cls.crashes = 0, []
        cls.addClassCleanup(lambda: getattr(cls, "praefect", None) and cls.praefect.poll() is None
                            and cls.praefect.kill())
        cls.start_praefect()

    @classmethod
    def start_praefect(cls):
        """Starts the praefect the tests use, on a new port, and registers
        REPO (the memory store starts empty)."""
        cls.starts += 1
        cls.port = free_port()
        cls.addr = "127.0.0.1:%d" % cls.port
        cls.config = os.path.join(cls.root, "praefect-%d.toml" % cls.starts)
        praefect_config(cls.config, cls.addr, cls.virtual_storages())
        cls.log = open(os.path.join(cls.root, "praefect-%d.log" % cls.starts), "w+")
        cls.praefect = subprocess.Popen([os.path.join(BIN, "praefect"), "-config", cls.config],
                                        stdout=cls.log, stderr=subprocess.STDOUT)
        # The first creation waits for the listener and the first health check.
        deadline = time.monotonic() + 30
        while True:
            res = cls.go_static(CREATE, "unary", repo=REPO, dial_timeout="30s")
            if res["code"] == 0:
                break
            assert res["code"] == 14 and time.monotonic() < deadline, "CreateRepository: %r" % res
            time.sleep(0.1)

    def tearDown(self):
        # A praefect that died is recorded (tearDownClass fails naming the
        # test) and replaced, so that one crash does not hide the other results.
        if self.praefect.poll() is not None:
            type(self).crashes.append("praefect exited with %d during %s; its log ends with:\n%s"
                                      % (self.praefect.returncode, self.id(), self.log_tail()))
            self.log.close()
            type(self).start_praefect()

    @classmethod
    def virtual_storages(cls):
        if BACKCHANNEL:
            return [("default", [("go-1", cls.gonode.address, NODE_TOKEN)])]
        return [("default", [("go-1", cls.gonode.address, NODE_TOKEN)]),
                ("cpp", [(cls.cppnode.name, cls.cppnode.address, NODE_TOKEN)])]

    @classmethod
    def tearDownClass(cls):
        cls.praefect.send_signal(signal.SIGTERM)
        code = cls.praefect.wait(timeout=60)
        cls.gonode.stop()
        cls.cppnode.stop()
        cls.log.seek(0)
        log = cls.log.read()
        cls.log.close()
        if code != 0 or os.environ.get("PRAEFECT_E2E_LOG") == "1":
            print(log, file=sys.stderr)
        assert not cls.crashes, "praefect crashed %d time(s):\n%s" % (len(cls.crashes), "\n\n".join(cls.crashes))
        assert code == 0, "praefect exited with %d after SIGTERM" % code
        shutil.rmtree(cls.root)

    # ---- helpers -------------------------------------------------------------

    @classmethod
    def go_static(cls, method, shape, *, md=(), token=CLIENT_TOKEN, addr=None, repo=REPO, storage="default",
                  messages=1, size=0, seed=1, deadline=None, flags=(), dial_timeout="10s", timeout=120):
        """Runs interop-goclient; its JSON result (a list with -concurrency)."""
        if addr is None and cls.praefect.poll() is not None:
            raise AssertionError("praefect is not running (exit %d)" % cls.praefect.returncode)
        args = [GOCLIENT, "-addr", addr or cls.addr, "-method", method, "-shape", shape, "-storage", storage,
                "-repo", repo, "-messages", str(messages), "-size", str(size), "-seed", str(seed),
                "-dial-timeout", dial_timeout]
        if token:
            args += ["-token", token]
        for k, v in md:
            args += ["-md", "%s=%s" % (k, v)]
        if deadline:
            args += ["-deadline", deadline]
        args += list(flags)
        out = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        assert out.returncode == 0, "interop-goclient failed (%d): %s" % (out.returncode, out.stderr.decode())
        results = [json.loads(line) for line in out.stdout.decode().splitlines()]
        return results[0] if len(results) == 1 else results

    def go(self, shape, *, md=(), repo=None, **kwargs):
        """A call of `shape` through praefect to the grpc-go node; a fresh
        repository for the creating client-streaming method."""
        if repo is None:
            repo = REPO if shape != "client" else "interop/%s.git" % new_id("bundle")
        return self.go_static(METHODS[shape], shape, md=md, repo=repo, **kwargs)

    def assertDelivered(self, res, rec):
        """Every payload byte arrived, both ways, in order."""
        self.assertEqual(res["code_name"], "OK", res)
        self.assertEqual((rec["recv_count"], rec["recv_bytes"], rec["recv_sha256"]),
                         (res["sent"], res["sent_bytes"], res["sent_sha256"]), "requests as the node got them")
        self.assertEqual((res["responses"], res["response_bytes"], res["response_sha256"]),
                         (rec["sent_count"], rec["sent_bytes"], rec["sent_sha256"]), "responses as the client got them")

    def assertHealthy(self):
        """praefect still serves a call end to end."""
        call = new_id("health")
        res = self.go("unary", md=[("x-test-id", call)])
        self.assertEqual(res["code_name"], "OK", "praefect serves calls afterwards: %r" % res)
        self.assertIsNone(self.praefect.poll(), "praefect is running")

    # ---- the four shapes, payload sizes --------------------------------------

    def test_unary_payloads(self):
        """Unary: requests and responses from 0 bytes to just under praefect's
        4 MiB message limit (around HTTP/2's 16 KiB frame and 64 KiB window
        edges) arrive whole; the node sees its own storage name and the
        replica path in the first message (praefect's rewrite)."""
        for size in (0, 1, 16383, 16384, 16385, 65535, 65536, 1 * MiB, MAX_MESSAGE - 4096):
            with self.subTest(size=size):
                call = new_id()
                res = self.go("unary", size=size, seed=size,
                              md=[("x-test-id", call), ("x-test-respond", "1:%d" % size), ("x-test-seed", str(size))])
                rec = self.gonode.wait_done(call)
                self.assertDelivered(res, rec)
                self.assertEqual(rec["storage"], "go-1")
                self.assertTrue(rec["relative_path"].startswith("@cluster/repositories/"), rec["relative_path"])

    def test_unary_over_the_limit(self):
        """A request message over praefect's 4 MiB limit is RESOURCE_EXHAUSTED
        and never reaches the node."""
        call = new_id()
        res = self.go("unary", size=MAX_MESSAGE + 1, md=[("x-test-id", call)])
        self.assertEqual(res["code_name"], "ResourceExhausted", res)
        self.assertIsNone(self.gonode.record(call))
        self.assertHealthy()

    def test_server_streaming_payloads(self):
        """Server streaming: no response at all, empty responses, many small
        ones, and several MiB in large messages, checksummed."""
        for n, size in ((0, 0), (1, 0), (200, 0), (1000, 100), (8, 1 * MiB), (3, MAX_MESSAGE - 4096)):
            with self.subTest(n=n, size=size):
                call = new_id()
                res = self.go("server", md=[("x-test-id", call), ("x-test-respond", "%d:%d" % (n, size)),
                                            ("x-test-seed", str(n * 7 + size))])
                rec = self.gonode.wait_done(call)
                self.assertDelivered(res, rec)
                self.assertEqual(res["responses"], n)

    def test_client_streaming_payloads(self):
        """Client streaming (a creation): one empty message, many small ones,
        and several MiB in large ones."""
        for n, size in ((1, 0), (500, 0), (300, 1000), (64, 64 * 1024), (3, MAX_MESSAGE - 4096)):
            with self.subTest(n=n, size=size):
                call = new_id()
                res = self.go("client", messages=n, size=size, seed=n + size,
                              md=[("x-test-id", call), ("x-test-respond", "1:16")])
                rec = self.gonode.wait_done(call)
                self.assertDelivered(res, rec)
                self.assertEqual(rec["recv_count"], n)

    def test_bidi_payloads(self):
        """Bidi: the node echoes each message as it reads it, so both
        directions are in flight at once; then more responses after the
        client half-closed."""
        for n, size, after in ((1, 0, 0), (500, 100, 3), (40, 256 * 1024, 1), (4, 3 * MiB, 2)):
            with self.subTest(n=n, size=size):
                call = new_id()
                res = self.go("bidi", messages=n, size=size, seed=n,
                              md=[("x-test-id", call), ("x-test-echo", "1"), ("x-test-respond", "%d:%d" % (after, size))])
                rec = self.gonode.wait_done(call)
                self.assertDelivered(res, rec)
                self.assertEqual(res["responses"], n + after)

    # ---- metadata, trailers, status --------------------------------------------

    def test_metadata_and_trailers_both_ways(self):
        """Client metadata reaches the node unchanged (several values of one
        key in order, binary values with every byte value); the node's
        response headers and trailers reach the client unchanged. praefect
        replaces the client's token with the node's and adds a correlation
        id."""
        blob = bytes(range(256))
        sent = [("x-echo-plain", "hello"), ("x-echo-multi", "first"), ("x-echo-multi", "second"),
                ("x-echo-blob-bin", blob.hex()), ("x-echo-empty", "")]
        expected = {"x-echo-plain": ["hello"], "x-echo-multi": ["first", "second"],
                    "x-echo-blob-bin": [blob.hex()], "x-echo-empty": [""]}
        for shape in ("unary", "server", "client", "bidi"):
            with self.subTest(shape=shape):
                call = new_id()
                res = self.go(shape, md=[("x-test-id", call)] + sent)
                self.assertEqual(res["code_name"], "OK", res)
                rec = self.gonode.wait_done(call)
                for key, values in expected.items():
                    self.assertEqual(rec["metadata"].get(key), values, "the node got %s" % key)
                    self.assertEqual(res["headers"].get(key), values, "response header %s" % key)
                    self.assertEqual(res["trailers"].get(key), values, "trailer %s" % key)
                self.assertEqual(res["headers"].get("x-test-node"), ["go-1"])
                self.assertEqual(res["trailers"].get("x-test-recv-sha256"), [rec["recv_sha256"]])
                self.assertEqual(len(rec["metadata"]["authorization"]), 1)
                self.assertNotEqual(rec["metadata"]["authorization"][0], bearer(CLIENT_TOKEN))
                self.assertEqual(len(rec["metadata"].get("x-gitlab-correlation-id", [])), 1)
        # A correlation id the client sets is kept.
        call = new_id()
        self.go("unary", md=[("x-test-id", call), ("x-gitlab-correlation-id", "interop-corr-1")])
        self.assertEqual(self.gonode.wait_done(call)["metadata"]["x-gitlab-correlation-id"], ["interop-corr-1"])

    def test_large_metadata(self):
        """Header lists that Gitaly accepts pass through praefect both ways:
        one 8 KiB value, and 64 KiB of metadata in 16 values. Gitaly (grpc-go)
        accepts header lists up to 16 MiB by default, and GitLab sends many
        values (feature flags, correlation and client identifiers); a proxy in
        front of Gitaly must not refuse what Gitaly takes."""
        cases = {"one 8 KiB value": [("x-big-0", "v" * 8192)],
                 "16 values of 4 KiB": [("x-big-%d" % i, chr(ord("a") + i) * 4096) for i in range(16)]}
        for name, md in cases.items():
            with self.subTest(direction="request", case=name):
                call = new_id()
                res = self.go("unary", md=[("x-test-id", call)] + md)
                self.assertEqual(res["code_name"], "OK", res)
                rec = self.gonode.wait_done(call)
                for key, value in md:
                    self.assertEqual(rec["metadata"].get(key), [value])
            with self.subTest(direction="response", case=name):
                echo = [("x-echo-" + key, value) for key, value in md]
                res = self.go("unary", md=echo)
                self.assertEqual(res["code_name"], "OK", res)
                for key, value in echo:
                    self.assertEqual(res["headers"].get(key), [value])
                    self.assertEqual(res["trailers"].get(key), [value])

    def test_node_status_reaches_client_unchanged(self):
        """The node's status code, message (non-ASCII, '%', a newline: grpc
        percent-encodes it on the wire) and details reach the client as the
        node sent them, for every shape, both as a trailers-only answer and
        after response messages."""
        message = "precondition failed: caf\u00e9 \u2615 100% done\nsecond line"
        details = bytes(range(256)) * 4
        for shape in ("unary", "server", "client", "bidi"):
            for responses in ((0, 1) if shape in ("server", "bidi") else (0,)):
                with self.subTest(shape=shape, responses=responses):
                    call = new_id()
                    res = self.go(shape, md=[("x-test-id", call), ("x-test-status", "9"),
                                             ("x-test-message-bin", message.encode().hex()),
                                             ("x-test-details-bin", details.hex()),
                                             ("x-test-respond", "%d:10" % responses)])
                    self.assertEqual((res["code_name"], res["message"]), ("FailedPrecondition", message), res)
                    self.assertEqual(res["details"], [{"type_url": "type.googleapis.com/praefect.test.Detail",
                                                       "value_hex": details.hex()}])
                    self.assertEqual(res["responses"], responses)
                    self.gonode.wait_done(call)

    def test_every_status_code(self):
        """Each of gRPC's codes 1..16 from the node reaches the client as that
        code with its message (a proxy must not map them)."""
        for code in range(1, 17):
            with self.subTest(code=code):
                res = self.go("unary", md=[("x-test-status", str(code)), ("x-test-message", "node says %d" % code),
                                           ("x-test-respond", "0:0")])
                self.assertEqual((res["code"], res["message"]), (code, "node says %d" % code), res)

    def test_authentication(self):
        """praefect checks the client's token before anything reaches a
        node: none is UNAUTHENTICATED, a wrong one PERMISSION_DENIED."""
        for token, code in ((None, "Unauthenticated"), ("wrong-secret", "PermissionDenied")):
            with self.subTest(code=code):
                call = new_id()
                res = self.go("unary", token=token, md=[("x-test-id", call)])
                self.assertEqual(res["code_name"], code, res)
                self.assertIsNone(self.gonode.record(call), "the node never saw the call")

    # ---- cancellation and deadlines -----------------------------------------------

    def assertCancelledAtNode(self, call, within_ms):
        rec = self.gonode.wait_done(call)
        self.assertEqual(rec["ctx_err"], "canceled", "the node's context was cancelled: %r" % rec)
        self.assertGreaterEqual(rec["ctx_done_ms"], 0, rec)
        self.assertLess(rec["ctx_done_ms"], within_ms, "the cancellation reached the node promptly: %r" % rec)
        return rec

    def test_client_cancellation_reaches_the_node(self):
        """A client's cancellation reaches the node's handler as a cancelled
        context, for every shape, while the node holds the call (unary, bidi),
        streams responses (server) or reads requests (client)."""
        # The node holds the call and sends its headers at once; the client
        # cancels as soon as they arrive.
        for shape in ("unary", "bidi"):
            with self.subTest(shape=shape):
                call = new_id()
                res = self.go(shape, md=[("x-test-id", call), ("x-test-hold", "1"), ("x-test-headers-first", "1")],
                              flags=["-cancel-after-headers", "-no-close-send"])
                self.assertEqual(res["code_name"], "Canceled", res)
                self.assertCancelledAtNode(call, 10000)
        # The node sends a response every 50 ms; the client cancels after 3.
        call = new_id()
        res = self.go("server", md=[("x-test-id", call), ("x-test-respond", "1000:1024"),
                                    ("x-test-send-delay-ms", "50")], flags=["-cancel-after-responses", "3"])
        self.assertEqual((res["code_name"], res["responses"]), ("Canceled", 3), res)
        rec = self.assertCancelledAtNode(call, 10000)
        self.assertLess(rec["sent_count"], 1000)
        # The client sends a request every 50 ms and cancels once the node's
        # headers have come back (so the node has the call, whatever the load).
        call = new_id()
        res = self.go("client", messages=1000, size=10, md=[("x-test-id", call), ("x-test-headers-first", "1")],
                      flags=["-send-delay", "50ms", "-cancel-after-headers"])
        self.assertEqual(res["code_name"], "Canceled", res)
        rec = self.assertCancelledAtNode(call, 10000)
        self.assertLess(rec["recv_count"], 1000)
        self.assertHealthy()

    def test_deadline_reaches_the_node(self):
        """The client's deadline reaches the node as its context's deadline
        (grpc-timeout re-encoded by praefect), within a tolerance, from
        short to long."""
        for shape, deadline, seconds in (("unary", "10s", 10), ("bidi", "10s", 10), ("server", "1h", 3600),
                                         ("client", "2s", 2)):
            with self.subTest(shape=shape, deadline=deadline):
                call = new_id()
                res = self.go(shape, deadline=deadline, md=[("x-test-id", call)])
                self.assertEqual(res["code_name"], "OK", res)
                rec = self.gonode.wait_done(call)
                self.assertLessEqual(rec["deadline_ms"], seconds * 1000)
                self.assertGreater(rec["deadline_ms"], seconds * 1000 - 2000, rec)
        call = new_id()
        self.go("unary", md=[("x-test-id", call)])
        self.assertEqual(self.gonode.wait_done(call)["deadline_ms"], -1, "no deadline when the client sets none")

    def test_deadline_exceeded_when_the_node_is_slow(self):
        """A node slower than the client's deadline: the client gets
        DEADLINE_EXCEEDED at its deadline, and the node's context ends then
        too (expired or cancelled by the proxy), for a unary call and for a
        server stream that had already sent responses."""
        for shape, md in (("unary", [("x-test-delay-ms", "30000")]),
                          ("server", [("x-test-respond", "100:10"), ("x-test-send-delay-ms", "400")])):
            with self.subTest(shape=shape):
                call = new_id()
                res = self.go(shape, deadline="1s", md=[("x-test-id", call)] + md)
                self.assertEqual(res["code_name"], "DeadlineExceeded", res)
                self.assertGreaterEqual(res["elapsed_ms"], 990)
                # Bounds far from the node's 30 s (or 40 s) but loose enough
                # for a sanitizer build on a loaded machine.
                self.assertLess(res["elapsed_ms"], 5000, "the client's deadline is kept")
                rec = self.gonode.wait_done(call)
                self.assertIn(rec["ctx_err"], ("deadline", "canceled"), rec)
                self.assertLess(rec["ctx_done_ms"], 5000, "the node's call ended about the deadline: %r" % rec)
        self.assertHealthy()

    # ---- concurrency and flow control ---------------------------------------------

    def test_many_concurrent_streams_on_one_connection(self):
        """200 calls at once on one client connection all reach the node at
        the same time (the node holds each until all 200 are in its handler,
        at most 30 s) and all succeed."""
        n = 200
        group = new_id("barrier")
        t0 = time.monotonic()
        results = self.go("unary", size=1024, md=[("x-test-barrier", "%s:%d" % (group, n)),
                                                  ("x-test-respond", "1:1024")],
                          flags=["-concurrency", str(n)])
        elapsed = time.monotonic() - t0
        codes = {}
        for r in results:
            codes[r["code_name"]] = codes.get(r["code_name"], 0) + 1
        stats = self.gonode.stats()
        print("%d concurrent streams on one connection: %s in %.2f s; node: max %d in flight, %d connection(s) "
              "from praefect so far" % (n, codes, elapsed, stats["max_inflight"], stats["peers"]), file=sys.stderr)
        self.assertEqual(codes, {"OK": n}, [r for r in results if r["code"] != 0][:3])
        self.assertGreaterEqual(stats["max_inflight"], n)

    def test_large_bidi_with_a_slow_reader(self):
        """A bidi call of 128 MiB each way where the node reads slowly (4 ms
        before each 512 KiB message) and echoes: everything arrives, and
        praefect's peak memory grows by far less than what was in flight:
        HTTP/2 flow control holds the client back instead of praefect
        buffering (at most a few windows and one message per direction)."""
        self.assertHealthy()
        before = rss_kib(self.praefect.pid, "VmHWM")
        start_rss = rss_kib(self.praefect.pid)
        samples = []
        stop = threading.Event()

        def sample():
            while not stop.wait(0.05):
                samples.append(rss_kib(self.praefect.pid))

        sampler = threading.Thread(target=sample)
        sampler.start()
        call = new_id()
        n, size = 256, 512 * 1024
        try:
            res = self.go("bidi", messages=n, size=size, md=[("x-test-id", call), ("x-test-echo", "1"),
                                                             ("x-test-read-delay-ms", "4"), ("x-test-respond", "0:0")],
                          timeout=300)
        finally:
            stop.set()
            sampler.join()
        rec = self.gonode.wait_done(call)
        after = rss_kib(self.praefect.pid, "VmHWM")
        print("128 MiB each way, bidi, slow node reader: %.1f s; praefect VmRSS %d KiB at the start, at most %d KiB "
              "during; VmHWM %d KiB before, %d KiB after" % (res["elapsed_ms"] / 1000, start_rss,
                                                            max(samples, default=-1), before, after), file=sys.stderr)
        self.assertDelivered(res, rec)
        self.assertEqual(res["sent_sha256"], res["response_sha256"], "the echo is what was sent")
        self.assertGreaterEqual(res["elapsed_ms"], n * 4, "the node's reading paced the call")
        if SANITIZED:
            return  # ASan's quarantine keeps freed memory resident: no bound to check
        self.assertLess(after - before, 32 * 1024, "praefect's peak RSS grew by %d KiB" % (after - before))

    def test_node_ends_the_call_while_the_client_streams(self):
        """A node that answers (here with an error) after reading 3 of a
        client's 1000 requests: its status reaches the client at once, not
        after the client has sent everything (grpc-go's server ends the
        stream with its trailers and RST_STREAM(NO_ERROR); praefect must stop
        forwarding and pass the status on)."""
        for shape in ("client", "bidi"):
            with self.subTest(shape=shape):
                call = new_id()
                res = self.go(shape, messages=1000, size=100, flags=["-send-delay", "10ms"],
                              md=[("x-test-id", call), ("x-test-read-max", "3"), ("x-test-status", "9"),
                                  ("x-test-message", "enough"), ("x-test-respond", "0:0")])
                self.assertEqual((res["code_name"], res["message"]), ("FailedPrecondition", "enough"), res)
                self.assertLess(res["elapsed_ms"], 5000, "the status arrived before the client finished sending")
                self.assertEqual(self.gonode.wait_done(call)["recv_count"], 3)
        self.assertHealthy()

    def test_server_info_and_dial_nodes_with_a_grpc_go_node(self):
        """praefect's own calls to a grpc-go node (grpc++ client side): its
        ServerInfo fan-out reports the grpc-go node's storage readable and
        writeable, and `dial-nodes` finds it healthy and writeable."""
        import server_pb2
        requests, responses = os.path.join(self.root, "si-req"), os.path.join(self.root, "si-resp")
        with open(requests, "wb") as f:
            f.write(framed([b""]))
        res = self.go_static("/gitaly.ServerService/ServerInfo", "unary",
                             flags=["-requests-file", requests, "-responses-file", responses])
        self.assertEqual(res["code_name"], "OK", res)
        with open(responses, "rb") as f:
            info = server_pb2.ServerInfoResponse.FromString(unframed(f.read())[0])
        statuses = {s.storage_name: (s.readable, s.writeable) for s in info.storage_statuses}
        self.assertEqual(statuses.get("default"), (True, True), info)
        out = subprocess.run([os.path.join(BIN, "praefect"), "-config", self.config, "dial-nodes", "-timeout", "5s"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        text = out.stdout.decode()
        self.assertEqual(out.returncode, 0, text + out.stderr.decode())
        prefix = "[%s]: " % self.gonode.address
        for line in ("dialed successfully!", "SUCCESS: node is healthy!",
                     'SUCCESS: confirmed Gitaly storage "go-1" in virtual storages [default] is writeable'):
            self.assertIn(prefix + line, text)

    def test_graceful_stop_lets_a_grpc_go_call_finish(self):
        """SIGTERM to praefect while a grpc-go client's call is in flight
        (the node answers 1.5 s later): praefect tells the client (GOAWAY) and
        waits for the call, which completes OK, then exits 0 within
        graceful_stop_timeout."""
        port = free_port()
        config = os.path.join(self.root, "graceful.toml")
        praefect_config(config, "127.0.0.1:%d" % port, self.virtual_storages(), top='graceful_stop_timeout = "20s"\n')
        with open(os.path.join(self.root, "graceful.log"), "w") as log:
            proc = subprocess.Popen([os.path.join(BIN, "praefect"), "-config", config], stdout=log,
                                    stderr=subprocess.STDOUT)
        try:
            addr = "127.0.0.1:%d" % port
            deadline = time.monotonic() + 30
            while self.go_static(CREATE, "unary", addr=addr, repo=REPO, dial_timeout="30s")["code"] != 0:
                self.assertLess(time.monotonic(), deadline, "the second praefect serves")
                time.sleep(0.1)
            call = new_id()
            client = subprocess.Popen(
                [GOCLIENT, "-addr", addr, "-method", BIDI, "-shape", "bidi", "-token", CLIENT_TOKEN, "-repo", REPO,
                 "-md", "x-test-id=" + call, "-md", "x-test-delay-ms=1500", "-md", "x-test-respond=2:1000"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 10
            while self.gonode.record(call) is None:
                self.assertLess(time.monotonic(), deadline, "the call reached the node")
                time.sleep(0.01)
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            out, err = client.communicate(timeout=30)
            self.assertEqual(client.returncode, 0, err.decode())
            res = json.loads(out)
            self.assertEqual((res["code_name"], res["responses"]), ("OK", 2), res)
            self.assertEqual(proc.wait(timeout=30), 0, "praefect exits 0 after a graceful stop")
            print("graceful stop: praefect exited %.1f s after SIGTERM, the call in flight completed"
                  % (time.monotonic() - t0), file=sys.stderr)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    # ---- other stacks on either side ------------------------------------------------

    def test_vote_over_the_backchannel(self):
        """A grpc-go node votes through the backchannel of the connection a
        call came on, as Gitaly does: praefect's backchannel server answers
        (here NOT_FOUND: praefect runs no transaction 4242), and the answer
        reaches the node. Without a backchannel the node cannot vote."""
        res = self.go("unary", md=[("x-test-vote", "4242")])
        self.assertEqual(res["code_name"], "FailedPrecondition", res)
        if BACKCHANNEL:
            self.assertEqual(res["message"], "vote: rpc error: code = NotFound desc = transaction not found: 4242", res)
        else:
            self.assertEqual(res["message"], "vote: no backchannel for peer", res)
        # A read never votes: it takes a plain connection, backchannel or not.
        res = self.go_static(READ_UNARY, "unary", md=[("x-test-vote", "4242")], repo=REPO)
        self.assertEqual((res["code_name"], res["message"]), ("FailedPrecondition", "vote: no backchannel for peer"), res)

    @unittest.skipIf(BACKCHANNEL, "the grpc++ storage node has no backchannel")
    def test_goclient_to_grpcpp_node(self):
        """grpc-go client → praefect → praefect-storage-node (grpc++ over real
        git): a bundle uploaded (client streaming), its default branch
        (unary), a 3 MiB blob (server streaming) and the upload-pack
        advertisement (bidi)."""
        import blob_pb2
        import ref_pb2
        import repository_service_pb2 as rs
        import shared_pb2
        import ssh_pb2
        env = dict(os.environ, HOME=self.root, GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="I", GIT_AUTHOR_EMAIL="i@x",
                   GIT_COMMITTER_NAME="I", GIT_COMMITTER_EMAIL="i@x")
        work = os.path.join(self.root, "work")
        blob = os.urandom(3 * MiB)
        subprocess.run(["git", "init", "-q", "-b", "main", work], check=True, env=env)
        with open(os.path.join(work, "big"), "wb") as f:
            f.write(blob)
        subprocess.run(["git", "add", "big"], cwd=work, check=True, env=env)
        subprocess.run(["git", "commit", "-q", "-m", "big"], cwd=work, check=True, env=env)
        tip = subprocess.run(["git", "rev-parse", "HEAD"], cwd=work, check=True, env=env,
                             stdout=subprocess.PIPE).stdout.decode().strip()
        oid = subprocess.run(["git", "rev-parse", "HEAD:big"], cwd=work, check=True, env=env,
                             stdout=subprocess.PIPE).stdout.decode().strip()
        bundle = os.path.join(self.root, "real.bundle")
        subprocess.run(["git", "bundle", "create", bundle, "--all"], cwd=work, check=True, env=env,
                       stderr=subprocess.DEVNULL)
        with open(bundle, "rb") as f:
            data = f.read()
        repo = shared_pb2.Repository(storage_name="cpp", relative_path="interop/real.git")

        def call(method, shape, messages):
            requests, responses = os.path.join(self.root, "req"), os.path.join(self.root, "resp")
            with open(requests, "wb") as f:
                f.write(framed([m.SerializeToString() for m in messages]))
            res = self.go_static(method, shape, flags=["-requests-file", requests, "-responses-file", responses])
            self.assertEqual(res["code_name"], "OK", res)
            with open(responses, "rb") as f:
                return unframed(f.read())

        chunks = [rs.CreateRepositoryFromBundleRequest(repository=repo)] + [
            rs.CreateRepositoryFromBundleRequest(data=data[i:i + 64 * 1024]) for i in range(0, len(data), 64 * 1024)]
        call(CLIENT, "client", chunks)
        [answer] = call(UNARY, "unary", [ref_pb2.FindDefaultBranchNameRequest(repository=repo)])
        self.assertEqual(ref_pb2.FindDefaultBranchNameResponse.FromString(answer).name, b"refs/heads/main")
        parts = call(SERVER, "server", [blob_pb2.GetBlobRequest(repository=repo, oid=oid, limit=-1)])
        self.assertEqual(b"".join(blob_pb2.GetBlobResponse.FromString(p).data for p in parts), blob)
        out = call(BIDI, "bidi", [ssh_pb2.SSHUploadPackRequest(repository=repo),
                                  ssh_pb2.SSHUploadPackRequest(stdin=b"0000")])
        stdout = b"".join(ssh_pb2.SSHUploadPackResponse.FromString(p).stdout for p in out)
        self.assertIn(("%s refs/heads/main" % tip).encode(), stdout)

    def test_grpcio_client_to_gonode(self):
        """Python grpcio (gRPC's C core) → praefect → the grpc-go node:
        metadata and trailers both ways, a streamed response checksummed, a
        status with details, a cancellation and a deadline reaching the node."""
        import grpc
        identity = dict(request_serializer=lambda b: b, response_deserializer=lambda b: b)
        first = pb_bytes(1, repository("default", REPO)) + pb_bytes(2, b"grpcio-payload")
        auth = [("authorization", bearer(CLIENT_TOKEN))]
        with grpc.insecure_channel(self.addr) as channel:
            unary = channel.unary_unary(UNARY, **identity)
            call = new_id()
            response, c = unary.with_call(first, timeout=30, metadata=auth + [
                ("x-test-id", call), ("x-echo-py", "value"), ("x-echo-py-bin", b"\x00\x01\xfe\xff"),
                ("x-test-respond", "1:100")])
            rec = self.gonode.wait_done(call)
            self.assertEqual(rec["metadata"]["x-echo-py-bin"], ["0001feff"])
            self.assertIn(("x-echo-py", "value"), c.initial_metadata())
            self.assertIn(("x-echo-py-bin", b"\x00\x01\xfe\xff"), c.trailing_metadata())
            self.assertEqual(hashlib.sha256(response[2:]).hexdigest(), rec["sent_sha256"])
            self.assertLess(abs(rec["deadline_ms"] - 30000), 2000, rec)

            stream = channel.unary_stream(SERVER, **identity)
            call = new_id()
            h = hashlib.sha256()
            for msg in stream(first, timeout=30, metadata=auth + [("x-test-id", call), ("x-test-respond", "5:%d" % MiB)]):
                self.assertEqual(msg[:4], b"\x12\x80\x80\x40")  # field 2, 1 MiB
                h.update(msg[4:])
            self.assertEqual(h.hexdigest(), self.gonode.wait_done(call)["sent_sha256"])

            with self.assertRaises(grpc.RpcError) as err:
                unary(first, timeout=30, metadata=auth + [("x-test-status", "10"), ("x-test-message", "aborted here"),
                                                          ("x-test-details-bin", b"\x07\x08"), ("x-test-respond", "0:0")])
            self.assertEqual((err.exception.code(), err.exception.details()), (grpc.StatusCode.ABORTED, "aborted here"))
            details = dict(err.exception.trailing_metadata()).get("grpc-status-details-bin")
            self.assertIsNotNone(details, "the status details reach a grpcio client")
            self.assertIn(b"type.googleapis.com/praefect.test.Detail", details)

            call = new_id()
            future = unary.future(first, timeout=30, metadata=auth + [("x-test-id", call), ("x-test-hold", "1")])
            deadline = time.monotonic() + 10
            while self.gonode.record(call) is None:
                self.assertLess(time.monotonic(), deadline, "the held call reached the node")
                time.sleep(0.01)
            future.cancel()
            self.assertCancelledAtNode(call, 10000)

    # Last (zz): on today's plane the first case kills praefect.
    def test_zz_metadata_values_outside_printable_ascii(self):
        """grpc-go clients send metadata values byte for byte, without
        checking them (UTF-8 text, even control characters). A correct
        server never falls over on them: grpc-go takes them; RFC 9113 8.2.1
        lets a server refuse a value with CR, LF or NUL as malformed (a
        stream error). So each call ends OK with the value passed on, or
        with an error status for that call alone, and praefect keeps serving."""
        for name, value in (("UTF-8", "caf\u00e9 \u2615"), ("newline", "line one\nline two"), ("DEL", "a\x7fb")):
            call = new_id()
            res = self.go("unary", md=[("x-test-id", call), ("x-odd", value)])
            if self.praefect.poll() is not None:
                self.fail("praefect died (%d) when a client sent %s in a metadata value; its log ends with: %s"
                          % (self.praefect.returncode, name, self.log_tail()))
            with self.subTest(value=name):
                if res["code_name"] == "OK":
                    self.assertEqual(self.gonode.wait_done(call)["metadata"].get("x-odd"), [value])
                else:
                    self.assertIn(res["code_name"], ("Internal", "InvalidArgument"), res)
                self.assertHealthy()

    @classmethod
    def log_tail(cls):
        cls.log.flush()
        with open(cls.log.name) as f:
            return f.read()[-3000:]


if __name__ == "__main__":
    # E2E_TEST_ARGS: more unittest arguments, e.g. "-k cancellation" to run some tests only.
    unittest.main(argv=[sys.argv[0], "-v"] + os.environ.get("E2E_TEST_ARGS", "").split())
