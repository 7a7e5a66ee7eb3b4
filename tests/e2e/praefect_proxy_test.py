#!/usr/bin/python3
"""praefect's data path end to end: three praefect-storage-node processes,
praefect in front of them, and clients that are not ours: Python grpcio with
stubs generated now from Debian's packaged Gitaly protos, and real git
through git-remote-gitaly. Covers unary, server-streaming and bidi calls,
authentication, storage-name rewriting, errors, ServerInfo, /metrics and a
node killed with SIGKILL.

usage: praefect_proxy_test.py PRAEFECT_BIN_DIR PROTO_DIR WORK_DIR
  (PRAEFECT_BIN_DIR holds praefect, praefect-storage-node, git-remote-gitaly)
"""
import hashlib
import re
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

BIN, PROTO_DIR, WORK = (os.path.abspath(a) for a in sys.argv[1:4])
CLIENT_TOKEN = "client-secret"
NODE_TOKEN = "node-secret"

from harness import bearer, free_port, generate_stubs  # noqa: E402


def auth():
    return [("authorization", bearer(CLIENT_TOKEN))]


def auth_primary():
    """For reads of what a test wrote straight to the primary's disk (behind
    praefect's back, so the other replicas do not have it): Gitaly's header
    that pins a read to the primary."""
    return auth() + [("gitaly-route-repository-accessor-policy", "primary-only")]


class PraefectProxyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import grpc
        cls.root = tempfile.mkdtemp(prefix="e2e-praefect-", dir=WORK)
        generate_stubs(PROTO_DIR, os.path.join(cls.root, "gen"))
        cls.home = os.path.join(cls.root, "home")
        os.makedirs(cls.home)
        cls.env = dict(os.environ, PATH=BIN + ":" + os.environ["PATH"], HOME=cls.home,
                       GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="E2E", GIT_AUTHOR_EMAIL="e2e@example.com",
                       GIT_COMMITTER_NAME="E2E", GIT_COMMITTER_EMAIL="e2e@example.com",
                       GITALY_TOKEN=CLIENT_TOKEN)
        cls.nodes = []
        for i in (1, 2, 3):
            storage = os.path.join(cls.root, "storage-%d" % i)
            config = os.path.join(cls.root, "node-%d.toml" % i)
            with open(config, "w") as f:
                f.write('listen_addr = "127.0.0.1:0"\n[auth]\ntoken = "%s"\n'
                        '[[storage]]\nname = "gitaly-%d"\npath = "%s"\n' % (NODE_TOKEN, i, storage))
            proc = subprocess.Popen([os.path.join(BIN, "praefect-storage-node"), "-config", config],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            line = proc.stdout.readline().decode()
            assert line.startswith("listening on tcp://"), line
            cls.nodes.append({"proc": proc, "storage": storage,
                              "address": "tcp://" + line.strip()[len("listening on tcp://"):]})
        cls.port = free_port()
        cls.metrics_port = free_port()
        cls.tls_port = free_port()
        cls.cert = os.path.join(cls.root, "cert.pem")
        cls.key = os.path.join(cls.root, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=praefect-e2e", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", cls.key, "-out", cls.cert], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.config = os.path.join(cls.root, "praefect.toml")
        with open(cls.config, "w") as f:
            f.write('listen_addr = "127.0.0.1:%d"\nprometheus_listen_addr = "127.0.0.1:%d"\n'
                    'tls_listen_addr = "127.0.0.1:%d"\n[tls]\ncertificate_path = "%s"\nkey_path = "%s"\n'
                    '[auth]\ntoken = "%s"\n'
                    # The legacy single-primary mode (an operator's 2020
                    # config): every write goes to gitaly-1, which these
                    # tests read straight from disk.
                    '[failover]\nenabled = false\n'
                    '[[virtual_storage]]\nname = "default"\n'
                    % (cls.port, cls.metrics_port, cls.tls_port, cls.cert, cls.key, CLIENT_TOKEN))
            for i, node in enumerate(cls.nodes, 1):
                f.write('[[virtual_storage.node]]\nstorage = "gitaly-%d"\naddress = "%s"\ntoken = "%s"\n%s'
                        % (i, node["address"], NODE_TOKEN, "primary = true\n" if i == 1 else ""))
        cls.log = open(os.path.join(cls.root, "praefect.log"), "w+")
        cls.praefect = subprocess.Popen([os.path.join(BIN, "praefect"), "-config", cls.config],
                                        stdout=cls.log, stderr=subprocess.STDOUT)
        cls.channel = grpc.insecure_channel("127.0.0.1:%d" % cls.port)
        grpc.channel_ready_future(cls.channel).result(timeout=30)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.praefect.send_signal(signal.SIGTERM)
        code = cls.praefect.wait(timeout=60)
        for node in cls.nodes:
            if node["proc"].poll() is None:
                node["proc"].terminate()
                node["proc"].wait(timeout=30)
        cls.log.seek(0)
        log = cls.log.read()
        cls.log.close()
        if code != 0 or "level=error" in log or os.environ.get("PRAEFECT_E2E_LOG") == "1":
            print(log, file=sys.stderr)
        assert code == 0, "praefect exited with %d after SIGTERM" % code
        shutil.rmtree(cls.root)

    def repo(self, rel, storage="default"):
        import shared_pb2
        return shared_pb2.Repository(storage_name=storage, relative_path=rel)

    def git(self, *args, cwd=None, check=True):
        result = subprocess.run(["git"] + list(args), cwd=cwd, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if check and result.returncode != 0:
            self.fail("git %s failed (%d): %s" % (" ".join(args), result.returncode, result.stderr.decode()))
        return result

    def replicas(self, storage):
        import glob
        return set(glob.glob(os.path.join(storage, "@cluster/repositories/*/*/*")))

    def create(self, rel):
        """Creates `rel` through praefect; returns the replica's path on the
        primary (praefect stores it under @cluster/repositories/...)."""
        import repository_service_pb2 as rs
        import repository_service_pb2_grpc as rs_grpc
        before = self.replicas(self.nodes[0]["storage"])
        rs_grpc.RepositoryServiceStub(self.channel).CreateRepository(
            rs.CreateRepositoryRequest(repository=self.repo(rel)), metadata=auth(), timeout=30)
        created = self.replicas(self.nodes[0]["storage"]) - before
        self.assertEqual(len(created), 1, "one new replica on the primary")
        return created.pop()

    def node_checksum(self, i, replica_path):
        """CalculateChecksum directly on node i (1-based) for the replica."""
        import grpc
        import repository_service_pb2 as rs
        import repository_service_pb2_grpc as rs_grpc
        import shared_pb2
        address = self.nodes[i - 1]["address"][len("tcp://"):]
        with grpc.insecure_channel(address) as channel:
            repo = shared_pb2.Repository(storage_name="gitaly-%d" % i, relative_path=replica_path)
            try:
                return rs_grpc.RepositoryServiceStub(channel).CalculateChecksum(
                    rs.CalculateChecksumRequest(repository=repo),
                    metadata=[("authorization", bearer(NODE_TOKEN))], timeout=30).checksum
            except grpc.RpcError as err:
                return "error: %s" % err.code()

    def test_remove_repository_removes_every_replica(self):
        import repository_service_pb2 as rs
        import repository_service_pb2_grpc as rs_grpc
        replica = os.path.relpath(self.create("e2e/remove.git"), self.nodes[0]["storage"])
        paths = [os.path.join(n["storage"], replica) for n in self.nodes]
        deadline = time.monotonic() + 30
        while not all(os.path.isdir(p) for p in paths):
            self.assertLess(time.monotonic(), deadline, "the new repository replicated to every node")
            time.sleep(0.02)
        # RemoveRepository is newer than the packaged protos: its request has
        # RepositoryExistsRequest's layout.
        remove = self.channel.unary_unary("/gitaly.RepositoryService/RemoveRepository",
                                          request_serializer=lambda m: m.SerializeToString(),
                                          response_deserializer=lambda b: b)
        remove(rs.RepositoryExistsRequest(repository=self.repo("e2e/remove.git")), metadata=auth(), timeout=30)
        stub = rs_grpc.RepositoryServiceStub(self.channel)
        self.assertFalse(stub.RepositoryExists(rs.RepositoryExistsRequest(repository=self.repo("e2e/remove.git")),
                                               metadata=auth(), timeout=30).exists)
        deadline = time.monotonic() + 30
        while any(os.path.exists(p) for p in paths):
            self.assertLess(time.monotonic(), deadline, "every replica deleted: %r" % [os.path.exists(p) for p in paths])
            time.sleep(0.02)

    def test_tls_listener(self):
        import grpc
        import repository_service_pb2 as rs
        import repository_service_pb2_grpc as rs_grpc
        with open(self.cert, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        with grpc.secure_channel("127.0.0.1:%d" % self.tls_port, creds) as channel:
            exists = rs_grpc.RepositoryServiceStub(channel).RepositoryExists(
                rs.RepositoryExistsRequest(repository=self.repo("tls/none.git")), metadata=auth(), timeout=30)
            self.assertFalse(exists.exists)

    def test_tls_listener_picks_up_a_renewed_certificate(self):
        """The certificate renewed at the same paths serves new connections
        within seconds (grpc watches the files; SIGHUP is not needed)."""
        import grpc
        import repository_service_pb2 as rs
        import repository_service_pb2_grpc as rs_grpc
        old = os.path.join(self.root, "old-cert.pem")
        shutil.copy(self.cert, old)
        new_cert, new_key = os.path.join(self.root, "new-cert.pem"), os.path.join(self.root, "new-key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=praefect-e2e-renewed", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", new_key, "-out", new_cert], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # The key first, then the certificate: grpc keeps the old pair while
        # the two do not match.
        shutil.copy(new_key, self.key)
        shutil.copy(new_cert, self.cert)

        def serves(ca):
            with open(ca, "rb") as f:
                creds = grpc.ssl_channel_credentials(root_certificates=f.read())
            with grpc.secure_channel("127.0.0.1:%d" % self.tls_port, creds) as channel:
                try:
                    rs_grpc.RepositoryServiceStub(channel).RepositoryExists(
                        rs.RepositoryExistsRequest(repository=self.repo("tls/none.git")), metadata=auth(), timeout=5)
                    return True
                except grpc.RpcError:
                    return False
        deadline = time.monotonic() + 15
        while not serves(new_cert):
            self.assertLess(time.monotonic(), deadline, "the renewed certificate is served")
            time.sleep(0.2)
        self.assertFalse(serves(old), "the old certificate is no longer served")

    def test_health_needs_no_token(self):
        health = self.channel.unary_unary("/grpc.health.v1.Health/Check",
                                          request_serializer=lambda b: b, response_deserializer=lambda b: b)
        self.assertEqual(health(b"", timeout=30), b"\x08\x01")  # status: SERVING

    def test_ref_transaction_is_served(self):
        """gitaly.RefTransaction on praefect's listener, as Praefect serves
        it: a vote in a transaction praefect does not know is NOT_FOUND with
        Praefect's message, a bad hash INVALID_ARGUMENT; the token is
        checked as for every call. (Raw messages: the packaged protos have
        no RefTransaction.)"""
        import grpc
        vote = self.channel.unary_unary("/gitaly.RefTransaction/VoteTransaction",
                                        request_serializer=lambda b: b, response_deserializer=lambda b: b)

        def request(transaction_id, node, digest):
            # VoteTransactionRequest: transaction_id=2 (varint), node=3, reference_updates_hash=4.
            return (b"\x10" + bytes([transaction_id]) + b"\x1a" + bytes([len(node)]) + node.encode() +
                    b"\x22" + bytes([len(digest)]) + digest)
        with self.assertRaises(grpc.RpcError) as err:
            vote(request(42, "gitaly-1", b"\x01" * 20), metadata=auth(), timeout=30)
        self.assertEqual(err.exception.code(), grpc.StatusCode.NOT_FOUND)
        self.assertEqual(err.exception.details(), "transaction not found: 42")
        with self.assertRaises(grpc.RpcError) as err:
            vote(request(42, "gitaly-1", b"\x01" * 3), metadata=auth(), timeout=30)
        self.assertEqual(err.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(err.exception.details(), "invalid reference update hash: invalid vote length 3")
        with self.assertRaises(grpc.RpcError) as err:
            vote(request(42, "gitaly-1", b"\x01" * 20), timeout=30)
        self.assertEqual(err.exception.code(), grpc.StatusCode.UNAUTHENTICATED)

    def test_unauthenticated_calls_refused(self):
        import grpc
        import repository_service_pb2 as rs
        import repository_service_pb2_grpc as rs_grpc
        stub = rs_grpc.RepositoryServiceStub(self.channel)
        request = rs.RepositoryExistsRequest(repository=self.repo("a.git"))
        with self.assertRaises(grpc.RpcError) as err:
            stub.RepositoryExists(request, timeout=30)
        self.assertEqual(err.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        with self.assertRaises(grpc.RpcError) as err:
            stub.RepositoryExists(request, metadata=[("authorization", bearer("wrong"))], timeout=30)
        self.assertEqual(err.exception.code(), grpc.StatusCode.PERMISSION_DENIED)

    def test_unary_rewrites_the_virtual_storage(self):
        import repository_service_pb2 as rs
        import repository_service_pb2_grpc as rs_grpc
        stub = rs_grpc.RepositoryServiceStub(self.channel)
        path = self.create("e2e/unary.git")
        # The primary (the first node) holds it under its own storage.
        self.assertTrue(os.path.isfile(os.path.join(path, "HEAD")))
        self.assertTrue(stub.RepositoryExists(rs.RepositoryExistsRequest(repository=self.repo("e2e/unary.git")),
                                              metadata=auth(), timeout=30).exists)
        self.assertFalse(stub.RepositoryExists(rs.RepositoryExistsRequest(repository=self.repo("e2e/none.git")),
                                               metadata=auth(), timeout=30).exists)

    def access_line(self, needle, timeout=10):
        """The access log line (text format) that contains `needle`."""
        deadline = time.time() + timeout
        while True:
            with open(self.log.name) as f:
                for line in f:
                    if "finished " in line and needle in line:
                        return line
            if time.time() > deadline:
                self.fail("no access log line with %r in praefect's log" % needle)
            time.sleep(0.05)

    def test_access_log(self):
        import blob_pb2, blob_pb2_grpc
        import grpc
        import ref_pb2
        import ref_pb2_grpc
        self.create("e2e/access.git")
        ref_pb2_grpc.RefServiceStub(self.channel).RefExists(
            ref_pb2.RefExistsRequest(repository=self.repo("e2e/access.git"), ref=b"refs/heads/main"),
            metadata=auth() + [("x-gitlab-correlation-id", "e2e-access-ok"), ("client_name", "e2e")], timeout=30)
        line = self.access_line("correlation_id=e2e-access-ok")
        for want in ('level=info', 'msg="finished unary call with code OK"', "grpc.code=OK",
                     "grpc.method=RefExists", "grpc.service=gitaly.RefService",
                     "grpc.request.fullMethod=/gitaly.RefService/RefExists", "grpc.meta.client_name=e2e",
                     "virtual_storage=default", "relative_path=e2e/access.git",
                     "grpc.request.deadline=", "grpc.start_time=", "span.kind=server", "system=grpc"):
            self.assertIn(want, line)
        # The read went to one of the replicas (all three are up to date
        # from the creation on: they voted on it).
        self.assertRegex(line, r" storage=gitaly-[123] ")
        self.assertRegex(line, r" grpc\.time_ms=[0-9]+(\.[0-9]+)? ")
        # A streaming call, and a refused one: the client's error, at info.
        list(blob_pb2_grpc.BlobServiceStub(self.channel).GetBlob(
            blob_pb2.GetBlobRequest(repository=self.repo("e2e/access.git"), oid="0" * 40, limit=-1),
            metadata=auth() + [("x-gitlab-correlation-id", "e2e-access-stream")], timeout=30))
        self.assertIn('msg="finished streaming call with code ', self.access_line("correlation_id=e2e-access-stream"))
        with self.assertRaises(grpc.RpcError):
            ref_pb2_grpc.RefServiceStub(self.channel).RefExists(
                ref_pb2.RefExistsRequest(repository=self.repo("e2e/access.git", storage="nope"), ref=b"refs/heads/x"),
                metadata=auth() + [("x-gitlab-correlation-id", "e2e-access-bad")], timeout=30)
        line = self.access_line("correlation_id=e2e-access-bad")
        self.assertIn('msg="finished unary call with code InvalidArgument"', line)
        self.assertIn("level=info", line)
        self.assertIn('error="virtual storage', line)
        # A call without a correlation id logs the one praefect made.
        ref_pb2_grpc.RefServiceStub(self.channel).RefExists(
            ref_pb2.RefExistsRequest(repository=self.repo("e2e/access.git"), ref=b"refs/heads/nocorr"),
            metadata=auth(), timeout=30)
        self.assertRegex(self.access_line("correlation_id=praefect-"), r"correlation_id=praefect-[0-9a-f]{32} ")
        # Successful health checks are not logged.
        health = self.channel.unary_unary("/grpc.health.v1.Health/Check",
                                          request_serializer=lambda b: b, response_deserializer=lambda b: b)
        health(b"", metadata=[("x-gitlab-correlation-id", "e2e-access-health")], timeout=30)
        ref_pb2_grpc.RefServiceStub(self.channel).RefExists(
            ref_pb2.RefExistsRequest(repository=self.repo("e2e/access.git"), ref=b"refs/heads/after-health"),
            metadata=auth() + [("x-gitlab-correlation-id", "e2e-access-after")], timeout=30)
        self.access_line("correlation_id=e2e-access-after")
        with open(self.log.name) as f:
            self.assertNotIn("e2e-access-health", f.read())

    def test_git_push_and_clone_through_praefect(self):
        path = self.create("e2e/git.git")
        work = os.path.join(self.root, "work-git")
        self.git("init", "-q", "-b", "main", work)
        for i in range(20):
            with open(os.path.join(work, "file"), "w") as f:
                f.write("line %d\n" % i)
            self.git("add", "file", cwd=work)
            self.git("commit", "-q", "-m", "commit %d" % i, cwd=work)
            if i % 5 == 0:
                self.git("tag", "v%d" % i, cwd=work)
        url = "gitaly://127.0.0.1:%d/default/e2e/git.git" % self.port
        # HEAD on main before the push, on the primary (replication copies
        # it) and on every replica that exists already: with transactions
        # the push's reference updates include HEAD where it points to main
        # and the replicas vote on them, so it must agree everywhere; without
        # them a secondary may not exist yet (its creation is replicated).
        replica = os.path.relpath(path, self.nodes[0]["storage"])
        self.git("--git-dir=" + path, "symbolic-ref", "HEAD", "refs/heads/main")
        for node in self.nodes[1:]:
            git_dir = os.path.join(node["storage"], replica)
            if os.path.isdir(git_dir):
                self.git("--git-dir=" + git_dir, "symbolic-ref", "HEAD", "refs/heads/main", check=False)
        self.git("push", "-q", url, "main", "--tags", cwd=work)
        acknowledged = time.monotonic()
        # Both secondaries hold the primary's checksum (they voted on the
        # push: at once).
        want_sum = self.node_checksum(1, replica)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            sums = [self.node_checksum(i, replica) for i in (2, 3)]
            if sums == [want_sum, want_sum]:
                break
            time.sleep(0.01)
        converged = time.monotonic() - acknowledged
        self.assertEqual(sums, [want_sum, want_sum], "the secondaries converge to the primary")
        print("push acknowledged -> both secondaries converged: %.1f ms" % (converged * 1000), file=sys.stderr)
        # Reads now spread over the three up-to-date replicas.
        import repository_service_pb2 as rs
        import repository_service_pb2_grpc as rs_grpc
        stub = rs_grpc.RepositoryServiceStub(self.channel)
        deadline = time.monotonic() + 30
        while True:
            for _ in range(30):
                got = stub.CalculateChecksum(rs.CalculateChecksumRequest(repository=self.repo("e2e/git.git")),
                                             metadata=auth(), timeout=30).checksum
                self.assertEqual(got, want_sum)
            text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port, timeout=30).read()
            storages = set(re.findall(r'gitaly_praefect_read_distribution\{storage="(gitaly-\d)",'
                                      r'virtual_storage="default"\} [1-9]', text.decode()))
            if len(storages) == 3 or time.monotonic() > deadline:
                break
        self.assertEqual(storages, {"gitaly-1", "gitaly-2", "gitaly-3"}, "reads on every up-to-date replica")
        clone = os.path.join(self.root, "clone-git")
        self.git("clone", "-q", url, clone)
        want = self.git("for-each-ref", "--format=%(objectname) %(refname)", "refs/heads", "refs/tags",
                        cwd=work).stdout
        got = self.git("--git-dir=" + path, "for-each-ref", "--format=%(objectname) %(refname)",
                       "refs/heads", "refs/tags").stdout
        self.assertEqual(want, got)
        self.assertEqual(self.git("rev-parse", "HEAD", cwd=clone).stdout,
                         self.git("rev-parse", "HEAD", cwd=work).stdout)
        self.git("fsck", "--no-progress", cwd=clone)
        # A rejected push reaches git as git reports it.
        self.git("reset", "-q", "--hard", "HEAD~1", cwd=work)
        self.git("commit", "-q", "--allow-empty", "-m", "diverged", cwd=work)
        rejected = self.git("push", url, "main", cwd=work, check=False)
        self.assertNotEqual(rejected.returncode, 0)
        self.assertIn(b"[rejected]", rejected.stderr)

    def test_server_streaming_blob(self):
        import blob_pb2, blob_pb2_grpc
        path = self.create("e2e/blob.git")
        blob = os.urandom(1024 * 1024)
        oid = subprocess.run(["git", "--git-dir=" + path, "hash-object", "-w", "--stdin"], input=blob,
                             stdout=subprocess.PIPE, check=True, env=self.env).stdout.decode().strip()
        chunks = list(blob_pb2_grpc.BlobServiceStub(self.channel).GetBlob(
            blob_pb2.GetBlobRequest(repository=self.repo("e2e/blob.git"), oid=oid, limit=-1),
            metadata=auth_primary(), timeout=30))
        self.assertGreater(len(chunks), 1)
        self.assertEqual(b"".join(c.data for c in chunks), blob)

    def test_one_gib_through_praefect_in_constant_memory(self):
        import blob_pb2, blob_pb2_grpc
        path = self.create("e2e/big.git")
        blob = os.urandom(64 * 1024 * 1024)
        oid = subprocess.run(["git", "--git-dir=" + path, "hash-object", "-w", "--stdin"], input=blob,
                             stdout=subprocess.PIPE, check=True, env=self.env).stdout.decode().strip()
        digest = hashlib.sha256(blob).digest()
        del blob

        def peak_rss_kib():
            with open("/proc/%d/status" % self.praefect.pid) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1])
            return -1

        stub = blob_pb2_grpc.BlobServiceStub(self.channel)
        request = blob_pb2.GetBlobRequest(repository=self.repo("e2e/big.git"), oid=oid, limit=-1)
        # One warm-up stream, so that buffers grpc keeps are counted before.
        for _ in stub.GetBlob(request, metadata=auth_primary(), timeout=120):
            pass
        before = peak_rss_kib()
        total = 0
        for _ in range(16):  # 16 x 64 MiB = 1 GiB
            h = hashlib.sha256()
            for msg in stub.GetBlob(request, metadata=auth_primary(), timeout=120):
                h.update(msg.data)
                total += len(msg.data)
            self.assertEqual(h.digest(), digest)
        after = peak_rss_kib()
        print("1 GiB through praefect: VmHWM %d KiB before, %d KiB after" % (before, after), file=sys.stderr)
        self.assertEqual(total, 1024 * 1024 * 1024)
        if os.environ.get("PRAEFECT_SANITIZED") == "1":
            return  # ASan's quarantine keeps freed memory resident: no bound to check
        # The proxy holds at most one message per direction per call; grpc's
        # flow-control windows add a few MiB. A leak or whole-blob buffering
        # would add at least 64 MiB.
        self.assertLess(after - before, 32 * 1024, "praefect's peak RSS grew by %d KiB" % (after - before))
        # And absolutely: holding one 64 MiB blob whole (already during the
        # warm-up) would put the peak above this.
        self.assertLess(after, 80 * 1024, "praefect's peak RSS is %d KiB" % after)

    def test_client_streaming_bundle(self):
        import grpc
        import repository_service_pb2 as rs
        import repository_service_pb2_grpc as rs_grpc
        work = os.path.join(self.root, "work-bundle")
        self.git("init", "-q", "-b", "main", work)
        for i in range(30):
            with open(os.path.join(work, "f%d" % i), "wb") as f:
                f.write(os.urandom(8192))
            self.git("add", ".", cwd=work)
            self.git("commit", "-q", "-m", "c%d" % i, cwd=work)
        self.git("tag", "v1", cwd=work)
        bundle_path = os.path.join(self.root, "repo.bundle")
        self.git("bundle", "create", bundle_path, "--all", cwd=work)
        with open(bundle_path, "rb") as f:
            data = f.read()
        chunk = 16 * 1024

        def requests(rel, payload):
            yield rs.CreateRepositoryFromBundleRequest(repository=self.repo(rel))
            for i in range(0, len(payload), chunk):
                yield rs.CreateRepositoryFromBundleRequest(data=payload[i:i + chunk])

        stub = rs_grpc.RepositoryServiceStub(self.channel)
        before = self.replicas(self.nodes[0]["storage"])
        stub.CreateRepositoryFromBundle(requests("e2e/bundle.git", data), metadata=auth(), timeout=60)
        created = self.replicas(self.nodes[0]["storage"]) - before
        self.assertEqual(len(created), 1, "one new replica on the primary")
        path = created.pop()
        fmt = "--format=%(objectname) %(refname)"
        self.assertEqual(self.git("for-each-ref", fmt, cwd=work).stdout,
                         self.git("--git-dir=" + path, "for-each-ref", fmt).stdout)
        self.assertEqual(self.git("--git-dir=" + path, "symbolic-ref", "HEAD").stdout, b"refs/heads/main\n")
        # The node's refusal of a broken bundle reaches the client unchanged.
        with self.assertRaises(grpc.RpcError) as err:
            stub.CreateRepositoryFromBundle(requests("e2e/broken.git", data[: len(data) // 2]), metadata=auth(),
                                            timeout=60)
        self.assertEqual(err.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("not a usable git bundle", err.exception.details())

    def test_cancel_stops_the_nodes_work(self):
        import queue
        import ssh_pb2, ssh_pb2_grpc
        replica = self.create("e2e/cancel.git")
        node_pid = self.nodes[0]["proc"].pid
        pending = queue.Queue()

        def requests():
            yield ssh_pb2.SSHUploadPackRequest(repository=self.repo("e2e/cancel.git"))
            pending.get()  # hold the stream open, as a slow client would

        def node_children():
            """{pid: argv} of the node's child processes, read from /proc."""
            children = {}
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    with open("/proc/%s/stat" % entry) as f:
                        stat = f.read()
                    with open("/proc/%s/cmdline" % entry, "rb") as f:
                        argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
                except OSError:
                    continue  # exited while we looked
                # the fields after the command name, which may hold spaces or ")"
                if int(stat[stat.rindex(")") + 2:].split()[1]) == node_pid:
                    children[int(entry)] = argv
            return children

        def upload_packs():
            # git upload-pack of exactly this replica: this call's, and those
            # of the replication fetches the creation queued.
            return {pid for pid, argv in node_children().items()
                    if "upload-pack" in argv and argv and argv[-1] == replica}

        def wait_until(condition, seconds):
            deadline = time.time() + seconds
            while not condition() and time.time() < deadline:
                time.sleep(0.05)
            return condition()

        # The creation's replication fetches run upload-pack of the same
        # repository on this node: let them end first (on a loaded machine
        # one outlived the 10 s below and was taken for this call's).
        self.assertTrue(wait_until(lambda: not upload_packs(), 60),
                        "the replication fetches of the new repository end: %r" % node_children())

        call = ssh_pb2_grpc.SSHServiceStub(self.channel).SSHUploadPack(requests(), metadata=auth_primary(),
                                                                       timeout=60)
        first = next(call)  # the advertisement: git upload-pack runs on the node
        mine = set()

        def found():
            mine.update(upload_packs())
            return bool(mine)
        self.assertTrue(wait_until(found, 5),
                        "git upload-pack of %s runs on the node (pid %d) while the call is open; the node's children: "
                        "%r; the call's first response: %r; the call done: %s"
                        % (replica, node_pid, node_children(), first, call.done()))
        call.cancel()
        pending.put(None)
        self.assertTrue(wait_until(lambda: not (mine & upload_packs()), 10),
                        "the node's git upload-pack ends when the client cancels: %r" % node_children())

    def test_auth_transitioning(self):
        import repository_service_pb2 as rs
        import repository_service_pb2_grpc as rs_grpc
        import grpc
        port, metrics_port = free_port(), free_port()
        config = os.path.join(self.root, "transitioning.toml")
        with open(self.config) as f:
            text = f.read()
        text = text.replace("127.0.0.1:%d" % self.port, "127.0.0.1:%d" % port)
        text = text.replace("127.0.0.1:%d" % self.metrics_port, "127.0.0.1:%d" % metrics_port)
        text = text.replace("127.0.0.1:%d" % self.tls_port, "127.0.0.1:%d" % free_port())
        text = text.replace('[auth]\ntoken = "%s"\n' % CLIENT_TOKEN,
                            '[auth]\ntoken = "%s"\ntransitioning = true\n' % CLIENT_TOKEN)
        with open(config, "w") as f:
            f.write(text)
        with open(os.path.join(self.root, "transitioning.log"), "w") as log:
            proc = subprocess.Popen([os.path.join(BIN, "praefect"), "-config", config], stdout=log,
                                    stderr=subprocess.STDOUT)
        try:
            with grpc.insecure_channel("127.0.0.1:%d" % port) as channel:
                grpc.channel_ready_future(channel).result(timeout=30)
                exists = rs_grpc.RepositoryServiceStub(channel).RepositoryExists(
                    rs.RepositoryExistsRequest(repository=self.repo("t.git")), timeout=30)
                self.assertFalse(exists.exists)
            text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics_port, timeout=30).read().decode()
            self.assertRegex(text, r'gitaly_authentications_total\{enforced="false",status="unauthenticated"\} 1')
        finally:
            proc.terminate()
            self.assertEqual(proc.wait(timeout=60), 0)

    def test_bidi_upload_pack_advertisement(self):
        import ssh_pb2, ssh_pb2_grpc
        path = self.create("e2e/bidi.git")
        work = os.path.join(self.root, "work-bidi")
        self.git("init", "-q", "-b", "main", work)
        self.git("commit", "-q", "--allow-empty", "-m", "one", cwd=work)
        self.git("push", "-q", path, "main", cwd=work)
        tip = self.git("rev-parse", "HEAD", cwd=work).stdout.decode().strip()

        def requests():
            yield ssh_pb2.SSHUploadPackRequest(repository=self.repo("e2e/bidi.git"))
            yield ssh_pb2.SSHUploadPackRequest(stdin=b"0000")  # flush: want nothing

        out = b""
        exit_code = None
        for msg in ssh_pb2_grpc.SSHServiceStub(self.channel).SSHUploadPack(requests(), metadata=auth_primary(),
                                                                           timeout=30):
            out += msg.stdout
            if msg.HasField("exit_status"):
                exit_code = msg.exit_status.value
        self.assertIn(("%s refs/heads/main" % tip).encode(), out)
        # As Gitaly, a zero exit ends the stream OK without an exit_status.
        self.assertIn(exit_code, (None, 0))

    def test_errors(self):
        import grpc
        import repository_service_pb2 as rs
        import repository_service_pb2_grpc as rs_grpc
        stub = rs_grpc.RepositoryServiceStub(self.channel)
        with self.assertRaises(grpc.RpcError) as err:
            stub.RepositoryExists(rs.RepositoryExistsRequest(repository=self.repo("a.git", "nope")),
                                  metadata=auth(), timeout=30)
        self.assertEqual(err.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn('virtual storage "nope"', err.exception.details())
        with self.assertRaises(grpc.RpcError) as err:
            stub.RepositoryExists(rs.RepositoryExistsRequest(), metadata=auth(), timeout=30)
        self.assertEqual(err.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        # An unregistered repository is NOT_FOUND, named.
        with self.assertRaises(grpc.RpcError) as err:
            stub.CalculateChecksum(rs.CalculateChecksumRequest(repository=self.repo("e2e/unknown.git")),
                                   metadata=auth(), timeout=30)
        self.assertEqual(err.exception.code(), grpc.StatusCode.NOT_FOUND)
        self.assertIn('"e2e/unknown.git"', err.exception.details())
        # The node's own error passes through with its code and message: the
        # same as the node gives when called directly.
        replica = os.path.relpath(self.create("e2e/errors.git"), self.nodes[0]["storage"])
        request = rs.WriteRefRequest(repository=self.repo("e2e/errors.git"), ref=b"refs/heads/x",
                                     revision=b"0123456789012345678901234567890123456789")
        with self.assertRaises(grpc.RpcError) as through:
            stub.WriteRef(request, metadata=auth(), timeout=30)
        direct_request = rs.WriteRefRequest(repository=self.repo(replica, "gitaly-1"), ref=b"refs/heads/x",
                                            revision=b"0123456789012345678901234567890123456789")
        with grpc.insecure_channel(self.nodes[0]["address"][len("tcp://"):]) as direct:
            with self.assertRaises(grpc.RpcError) as err:
                rs_grpc.RepositoryServiceStub(direct).WriteRef(
                    direct_request, metadata=[("authorization", bearer(NODE_TOKEN))], timeout=30)
        self.assertEqual(through.exception.code(), err.exception.code())
        self.assertEqual(through.exception.details(), err.exception.details())
        unknown = self.channel.unary_unary("/gitaly.NoSuchService/Frobnicate",
                                           request_serializer=lambda b: b, response_deserializer=lambda b: b)
        with self.assertRaises(grpc.RpcError) as err:
            unknown(b"", metadata=auth(), timeout=30)
        self.assertEqual(err.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        self.assertIn("/gitaly.NoSuchService/Frobnicate", err.exception.details())

    def test_server_info_per_virtual_storage(self):
        import server_pb2, server_pb2_grpc
        info = server_pb2_grpc.ServerServiceStub(self.channel).ServerInfo(
            server_pb2.ServerInfoRequest(), metadata=auth(), timeout=30)
        self.assertEqual([s.storage_name for s in info.storage_statuses], ["default"])
        status = info.storage_statuses[0]
        self.assertTrue(status.readable)
        self.assertTrue(status.writeable)
        self.assertEqual(len(status.filesystem_id), 36)
        self.assertTrue(info.git_version)

    def test_metrics(self):
        import repository_service_pb2 as rs
        import repository_service_pb2_grpc as rs_grpc
        rs_grpc.RepositoryServiceStub(self.channel).RepositoryExists(
            rs.RepositoryExistsRequest(repository=self.repo("m.git")), metadata=auth(), timeout=30)
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port, timeout=30).read()
        text = text.decode()
        self.assertRegex(text, r'grpc_server_handled_total\{grpc_code="OK",grpc_method="RepositoryExists",'
                               r'grpc_service="gitaly.RepositoryService",grpc_type="unary"\} [1-9]')
        self.assertRegex(text, r'gitaly_praefect_method_types\{method_type="accessor"\} [1-9]')
        self.assertIn("grpc_server_handling_seconds_bucket", text)
        self.assertRegex(text, r'gitaly_praefect_node_latency_count\{gitaly_storage="gitaly-2"\} [1-9]')
        self.assertRegex(text, r'gitaly_authentications_total\{enforced="true",status="ok"\} [1-9]')

    def dial_nodes(self, config):
        return subprocess.run([os.path.join(BIN, "praefect"), "-config", config, "dial-nodes", "-timeout", "3s"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)

    def test_dial_nodes(self):
        result = self.dial_nodes(self.config)
        out = result.stdout.decode()
        self.assertEqual(result.returncode, 0, out + result.stderr.decode())
        for i, node in enumerate(self.nodes, 1):
            prefix = "[%s]: " % node["address"]
            for line in ("dialed successfully!", "SUCCESS: node is healthy!",
                         'SUCCESS: confirmed Gitaly storage "gitaly-%d" in virtual storages [default] is writeable'
                         % i, "SUCCESS: node configuration is consistent!"):
                self.assertIn(prefix + line, out)
        # A wrong node token is an ERROR naming the cause, and exit status 1.
        wrong = os.path.join(self.root, "wrong-token.toml")
        with open(self.config) as f, open(wrong, "w") as g:
            g.write(f.read().replace('token = "%s"' % NODE_TOKEN, 'token = "not-the-token"'))
        result = self.dial_nodes(wrong)
        self.assertEqual(result.returncode, 1, result.stdout.decode() + result.stderr.decode())
        self.assertIn("check the node's token", result.stdout.decode())

    def test_zz_primary_killed_is_unavailable(self):
        import grpc
        import repository_service_pb2 as rs
        import repository_service_pb2_grpc as rs_grpc
        node = self.nodes[0]
        node["proc"].send_signal(signal.SIGKILL)
        node["proc"].wait(timeout=30)
        stub = rs_grpc.RepositoryServiceStub(self.channel)
        # Writes need the primary, and failover is off: UNAVAILABLE, naming
        # it (the proxy's error while the health checks still see it up,
        # then routing's, which says failover is disabled).
        for _ in range(2):
            with self.assertRaises(grpc.RpcError) as err:
                stub.WriteRef(rs.WriteRefRequest(repository=self.repo("e2e/git.git"), ref=b"refs/heads/x",
                                                 revision=b"0" * 40), metadata=auth(), timeout=30)
            self.assertEqual(err.exception.code(), grpc.StatusCode.UNAVAILABLE)
            self.assertIn('"gitaly-1"', err.exception.details())
            time.sleep(1.5)
        self.assertIn("failover is disabled", err.exception.details())
        # Reads of a repository whose replicas are up to date (the git test
        # waited for that) go on from them once the health checks have seen
        # the primary go.
        time.sleep(2.5)
        for _ in range(10):
            stub.CalculateChecksum(rs.CalculateChecksumRequest(repository=self.repo("e2e/git.git")),
                                   metadata=auth(), timeout=30)
        result = self.dial_nodes(self.config)
        self.assertEqual(result.returncode, 1)
        self.assertIn("[%s]: ERROR: dialing failed" % node["address"], result.stdout.decode())
        self.assertIn("1 of 3 node(s) unhealthy", result.stderr.decode())


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
