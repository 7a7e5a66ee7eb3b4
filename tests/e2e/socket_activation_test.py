#!/usr/bin/python3
"""praefect under systemd socket activation: systemd-socket-activate (the
tool systemd ships for this) binds three listening sockets and names them
with --fdname as the .socket units would with FileDescriptorName=; praefect
must serve plain gRPC, gRPC over TLS (checked by a client that verifies the
certificate) and /metrics on them, ignore the configured addresses of those
roles, refuse unknown names at start-up, and exit 0 on SIGTERM.

usage: socket_activation_test.py PRAEFECT_BIN_DIR PROTO_DIR WORK_DIR
"""
import hashlib
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
ACTIVATE = "/usr/bin/systemd-socket-activate"

from harness import bearer, free_port, generate_stubs  # noqa: E402


def auth():
    return [("authorization", bearer(CLIENT_TOKEN))]


def make_cert(root, name):
    cert, key = os.path.join(root, name + ".pem"), os.path.join(root, name + "-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=" + name, "-addext", "subjectAltName=DNS:praefect.test,IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


def sanitizer_env():
    """systemd-socket-activate passes only the variables named by -E."""
    flags = []
    for name in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if name in os.environ:
            flags += ["-E", name]
    return flags


def activate(sockets, names, config, log):
    """Starts praefect under systemd-socket-activate. It execs praefect (same
    pid) at the first connection on any of the sockets."""
    args = [ACTIVATE]
    for address in sockets:
        args += ["-l", address]
    args += ["--fdname=" + ":".join(names)] + sanitizer_env()
    args += [os.path.join(BIN, "praefect"), "-config", config]
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while "Listening on %s" % sockets[-1] not in read(log):
        assert proc.poll() is None, "systemd-socket-activate exited: %s" % read(log)
        assert time.monotonic() < deadline, "systemd-socket-activate did not listen: %s" % read(log)
        time.sleep(0.02)
    return proc


def read(log):
    log.flush()
    with open(log.name) as f:
        return f.read()


def refused(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


class SocketActivationTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import grpc
        cls.root = tempfile.mkdtemp(prefix="e2e-socket-activation-", dir=WORK)
        generate_stubs(PROTO_DIR, os.path.join(cls.root, "gen"))
        cls.storage = os.path.join(cls.root, "storage")
        node_config = os.path.join(cls.root, "node.toml")
        with open(node_config, "w") as f:
            f.write('listen_addr = "127.0.0.1:0"\n[auth]\ntoken = "%s"\n'
                    '[[storage]]\nname = "gitaly-1"\npath = "%s"\n' % (NODE_TOKEN, cls.storage))
        cls.node = subprocess.Popen([os.path.join(BIN, "praefect-storage-node"), "-config", node_config],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = cls.node.stdout.readline().decode()
        assert line.startswith("listening on tcp://"), line
        node_address = "tcp://" + line.strip()[len("listening on tcp://"):]

        cls.cert, cls.key = make_cert(cls.root, "praefect")
        cls.other_ca, _ = make_cert(cls.root, "other")
        # The configured addresses: the passed sockets replace every one.
        cls.cfg_port, cls.cfg_tls_port, cls.cfg_metrics_port = free_port(), free_port(), free_port()
        cls.config = os.path.join(cls.root, "praefect.toml")
        with open(cls.config, "w") as f:
            f.write('listen_addr = "127.0.0.1:%d"\ntls_listen_addr = "127.0.0.1:%d"\n'
                    'prometheus_listen_addr = "127.0.0.1:%d"\n'
                    '[tls]\ncertificate_path = "%s"\nkey_path = "%s"\n[auth]\ntoken = "%s"\n'
                    '[failover]\nenabled = false\n'
                    '[[virtual_storage]]\nname = "default"\n'
                    '[[virtual_storage.node]]\nstorage = "gitaly-1"\naddress = "%s"\ntoken = "%s"\nprimary = true\n'
                    % (cls.cfg_port, cls.cfg_tls_port, cls.cfg_metrics_port, cls.cert, cls.key, CLIENT_TOKEN,
                       node_address, NODE_TOKEN))
        cls.port, cls.tls_port, cls.metrics_port = free_port(), free_port(), free_port()
        cls.log = open(os.path.join(cls.root, "praefect.log"), "w")
        cls.praefect = activate(["127.0.0.1:%d" % p for p in (cls.port, cls.tls_port, cls.metrics_port)],
                                ["praefect", "praefect-tls", "praefect-metrics"], cls.config, cls.log)
        cls.channel = grpc.insecure_channel("127.0.0.1:%d" % cls.port)
        try:
            grpc.channel_ready_future(cls.channel).result(timeout=60)
        except grpc.FutureTimeoutError:
            print(read(cls.log), file=sys.stderr)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        if cls.praefect.poll() is None:
            cls.praefect.kill()
            cls.praefect.wait()
        cls.node.terminate()
        cls.node.wait(timeout=30)
        if os.environ.get("PRAEFECT_E2E_LOG") == "1":
            print(read(cls.log), file=sys.stderr)
        cls.log.close()
        shutil.rmtree(cls.root)

    def tls_channel(self, ca, target="127.0.0.1"):
        import grpc
        with open(ca, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        options = [] if target == "127.0.0.1" else [("grpc.ssl_target_name_override", target)]
        return grpc.secure_channel("127.0.0.1:%d" % self.tls_port, creds, options=options)

    def repo(self, rel):
        import shared_pb2
        return shared_pb2.Repository(storage_name="default", relative_path=rel)

    def test_plain_socket_serves_grpc(self):
        import repository_service_pb2 as rs
        import repository_service_pb2_grpc as rs_grpc
        health = self.channel.unary_unary("/grpc.health.v1.Health/Check",
                                          request_serializer=lambda b: b, response_deserializer=lambda b: b)
        self.assertEqual(health(b"", timeout=30), b"\x08\x01")  # SERVING
        self.assertFalse(rs_grpc.RepositoryServiceStub(self.channel).RepositoryExists(
            rs.RepositoryExistsRequest(repository=self.repo("plain/none.git")), metadata=auth(), timeout=30).exists)

    def test_tls_socket_serves_grpc_to_a_verifying_client(self):
        import server_pb2, server_pb2_grpc
        for target in ("127.0.0.1", "praefect.test"):
            with self.tls_channel(self.cert, target) as channel:
                info = server_pb2_grpc.ServerServiceStub(channel).ServerInfo(
                    server_pb2.ServerInfoRequest(), metadata=auth(), timeout=30)
                self.assertEqual([s.storage_name for s in info.storage_statuses], ["default"])
                self.assertTrue(info.storage_statuses[0].writeable)

    def test_tls_socket_refused_by_a_client_trusting_another_ca(self):
        import grpc
        import server_pb2, server_pb2_grpc
        with self.tls_channel(self.other_ca) as channel:
            with self.assertRaises(grpc.RpcError) as err:
                server_pb2_grpc.ServerServiceStub(channel).ServerInfo(
                    server_pb2.ServerInfoRequest(), metadata=auth(), timeout=30)
            self.assertEqual(err.exception.code(), grpc.StatusCode.UNAVAILABLE)
        # praefect serves on after a client dropped the handshake.
        self.test_tls_socket_serves_grpc_to_a_verifying_client()

    def test_y_sighup_reloads_the_bridge_certificate(self):
        """A renewed certificate at the same paths serves new connections
        after SIGHUP; clients trusting only the old one are refused, and a
        connection made before keeps working (a reconnection would be
        refused by its client, which trusts only the old certificate)."""
        import grpc
        import server_pb2, server_pb2_grpc
        old = os.path.join(self.root, "old-ca.pem")
        shutil.copy(self.cert, old)
        before = self.tls_channel(old)
        stub = server_pb2_grpc.ServerServiceStub(before)
        stub.ServerInfo(server_pb2.ServerInfoRequest(), metadata=auth(), timeout=30)
        renewed, renewed_key = make_cert(self.root, "renewed")
        # As a deploy hook does: complete files renamed into place.
        shutil.copy(renewed_key, self.key + ".new")
        os.rename(self.key + ".new", self.key)
        shutil.copy(renewed, self.cert + ".new")
        os.rename(self.cert + ".new", self.cert)
        self.praefect.send_signal(signal.SIGHUP)

        def serves(ca):
            with self.tls_channel(ca) as channel:
                try:
                    server_pb2_grpc.ServerServiceStub(channel).ServerInfo(
                        server_pb2.ServerInfoRequest(), metadata=auth(), timeout=5)
                    return True
                except grpc.RpcError:
                    return False
        deadline = time.monotonic() + 15
        while not serves(renewed):
            self.assertLess(time.monotonic(), deadline, "the renewed certificate is served after SIGHUP")
            time.sleep(0.2)
        self.assertFalse(serves(old), "the old certificate is no longer served")
        for _ in range(3):
            stub.ServerInfo(server_pb2.ServerInfoRequest(), metadata=auth(), timeout=30)
        before.close()

    def test_z_sighup_keeps_the_certificate_when_the_new_one_is_refused(self):
        """A certificate that does not match its key is refused on SIGHUP,
        with the file and the reason in the log; the one loaded before keeps
        serving."""
        import server_pb2, server_pb2_grpc
        served = os.path.join(self.root, "served-ca.pem")
        shutil.copy(self.cert, served)
        stranger, _ = make_cert(self.root, "stranger")
        shutil.copy(stranger, self.cert + ".new")
        os.rename(self.cert + ".new", self.cert)
        self.praefect.send_signal(signal.SIGHUP)
        want = ('reload: the TLS listeners keep their certificate: tls.key_path \\"%s\\": the key does not match '
                'the certificate' % self.key)
        deadline = time.monotonic() + 15
        while want not in read(self.log):
            self.assertLess(time.monotonic(), deadline, "the refusal is logged: %s" % read(self.log)[-3000:])
            time.sleep(0.1)
        with self.tls_channel(served) as channel:
            server_pb2_grpc.ServerServiceStub(channel).ServerInfo(
                server_pb2.ServerInfoRequest(), metadata=auth(), timeout=30)

    def test_tls_socket_streams_both_ways(self):
        """Megabytes each way through the bridge: a client-streamed bundle
        creates a repository, a server-streamed blob comes back intact."""
        import blob_pb2, blob_pb2_grpc
        import repository_service_pb2 as rs
        import repository_service_pb2_grpc as rs_grpc
        env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", HOME=self.root, GIT_AUTHOR_NAME="E2E",
                   GIT_AUTHOR_EMAIL="e2e@example.com", GIT_COMMITTER_NAME="E2E",
                   GIT_COMMITTER_EMAIL="e2e@example.com")
        work = os.path.join(self.root, "work")
        git = lambda *a: subprocess.run(["git"] + list(a), cwd=work, env=env, check=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE).stdout
        os.makedirs(work)
        git("init", "-q", "-b", "main")
        blob = os.urandom(3 * 1024 * 1024)
        with open(os.path.join(work, "big"), "wb") as f:
            f.write(blob)
        git("add", "big")
        git("commit", "-q", "-m", "big")
        oid = git("rev-parse", "HEAD:big").decode().strip()
        bundle = os.path.join(self.root, "big.bundle")
        git("bundle", "create", bundle, "--all")
        with open(bundle, "rb") as f:
            data = f.read()

        def requests():
            yield rs.CreateRepositoryFromBundleRequest(repository=self.repo("tls/big.git"))
            for i in range(0, len(data), 32 * 1024):
                yield rs.CreateRepositoryFromBundleRequest(data=data[i:i + 32 * 1024])

        with self.tls_channel(self.cert) as channel:
            rs_grpc.RepositoryServiceStub(channel).CreateRepositoryFromBundle(requests(), metadata=auth(), timeout=60)
            chunks = list(blob_pb2_grpc.BlobServiceStub(channel).GetBlob(
                blob_pb2.GetBlobRequest(repository=self.repo("tls/big.git"), oid=oid, limit=-1),
                metadata=auth(), timeout=60))
        self.assertGreater(len(chunks), 1)
        self.assertEqual(hashlib.sha256(b"".join(c.data for c in chunks)).hexdigest(),
                         hashlib.sha256(blob).hexdigest())

    def test_metrics_socket_serves_metrics(self):
        self.test_plain_socket_serves_grpc()
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port, timeout=30).read().decode()
        self.assertRegex(text, r'grpc_server_handled_total\{grpc_code="OK",grpc_method="RepositoryExists",'
                               r'grpc_service="gitaly.RepositoryService",grpc_type="unary"\} [1-9]')

    def test_configured_addresses_are_ignored(self):
        log = read(self.log)
        for key, port in (("listen_addr", self.cfg_port), ("tls_listen_addr", self.cfg_tls_port),
                          ("prometheus_listen_addr", self.cfg_metrics_port)):
            self.assertIn("%s is ignored: systemd passed a socket" % key, log)
            self.assertIn("127.0.0.1:%d" % port, log)
            self.assertTrue(refused(port), "nothing listens on the configured %s 127.0.0.1:%d" % (key, port))

    def test_zz_sigterm_exits_0(self):
        self.praefect.send_signal(signal.SIGTERM)
        code = self.praefect.wait(timeout=60)
        log = read(self.log)
        self.assertEqual(code, 0, log)
        self.assertIn("msg=stopped", log)
        # test_z's refused certificate is the one error expected.
        unexpected = [line for line in log.splitlines()
                      if "level=error" in line and "reload: the TLS listeners keep their certificate" not in line]
        self.assertEqual(unexpected, [])
        self.assertNotIn("ERROR: AddressSanitizer", log)

    def start_failing(self, names):
        ports = [free_port() for _ in names]
        with open(os.path.join(self.root, "fail-%s.log" % "-".join(names)), "w") as log:
            proc = activate(["127.0.0.1:%d" % p for p in ports], names, self.config, log)
            with socket.create_connection(("127.0.0.1", ports[0]), timeout=30):
                code = proc.wait(timeout=60)
            return code, read(log)

    def test_unknown_fd_name_is_a_startup_error(self):
        code, log = self.start_failing(["praefect", "praefect.socket"])
        self.assertEqual(code, 1, log)
        self.assertIn('named "praefect.socket" has a name praefect does not know: expected "praefect" (gRPC), '
                      '"praefect-tls" (gRPC over TLS) or "praefect-metrics"', log)
        self.assertIn("FileDescriptorName=", log)

    def test_two_sockets_with_one_name_is_a_startup_error(self):
        code, log = self.start_failing(["praefect-metrics", "praefect-metrics"])
        self.assertEqual(code, 1, log)
        self.assertIn('is a second metrics socket named "praefect-metrics"', log)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
