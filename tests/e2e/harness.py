"""Pieces the end-to-end tests share: free ports, Gitaly v2 tokens, a
throwaway PostgreSQL (Debian's server binaries, initdb into a temporary
directory, unix socket only), stubs generated from the packaged protos, and
storage-node processes on fixed ports (so that a killed node can be started
again at the same address on the same storage directory).

Written for these tests only; nothing here knows praefect's internals.
"""
import hashlib
import hmac
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PGBIN = os.environ.get("PRAEFECT_PG_BINDIR", "/usr/lib/postgresql/15/bin")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bearer(secret):
    """Gitaly's v2 token, computed here independently of praefect's code."""
    ts = str(int(time.time()))
    return "Bearer v2.%s.%s" % (hmac.new(secret.encode(), ts.encode(), hashlib.sha256).hexdigest(), ts)


def as_postgres_user():
    """Arguments that run a command as nobody when we are root (PostgreSQL
    refuses to run as root)."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]


def generate_stubs(proto_dir, out):
    """Python grpcio stubs of every packaged Gitaly proto, importable after."""
    os.makedirs(out)
    protos = sorted(p for p in os.listdir(proto_dir) if p.endswith(".proto"))
    subprocess.run(["protoc", "--proto_path=" + proto_dir, "--proto_path=/usr/include",
                    "--python_out=" + out, "--grpc_out=" + out,
                    "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin"] + protos, check=True)
    sys.path.insert(0, out)


class Postgres:
    def __init__(self, root=None):
        self.dir = tempfile.mkdtemp(prefix="praefect-e2e-pg-")
        self.data = os.path.join(self.dir, "data")
        if os.geteuid() == 0:
            shutil.chown(self.dir, "nobody", "nogroup")
        subprocess.run(as_postgres_user() + [os.path.join(PGBIN, "initdb"), "-D", self.data, "-U", "postgres",
                                             "--auth=trust", "-E", "UTF8", "--no-sync"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.proc = None
        self.log = os.path.join(self.dir, "postgres.log")
        self.start()
        self.psql("CREATE DATABASE praefect")

    def start(self):
        log = open(self.log, "a")
        self.proc = subprocess.Popen(as_postgres_user() + [
            os.path.join(PGBIN, "postgres"), "-D", self.data, "-k", self.dir, "-c", "listen_addresses=",
            "-c", "fsync=off", "-c", "unix_socket_permissions=0777"], stdout=log, stderr=log)
        deadline = time.time() + 30
        while not os.path.exists(os.path.join(self.dir, ".s.PGSQL.5432")):
            assert time.time() < deadline, "PostgreSQL did not start: " + open(self.log).read()
            time.sleep(0.05)
        while subprocess.run(["psql", "-h", self.dir, "-U", "postgres", "-c", "SELECT 1"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
            assert time.time() < deadline, "PostgreSQL does not answer"
            time.sleep(0.05)

    def stop(self):
        self.proc.send_signal(signal.SIGINT)  # fast shutdown
        self.proc.wait(timeout=60)

    def psql(self, sql, db="postgres"):
        return subprocess.run(["psql", "-h", self.dir, "-U", "postgres", "-d", db, "-At", "-c", sql], check=True,
                              stdout=subprocess.PIPE).stdout.decode().strip()

    def rows(self, sql, db="praefect"):
        """The result as a list of tuples of strings (psql's -At output split
        on '|'; NULL is the empty string)."""
        out = self.psql(sql, db)
        return [tuple(line.split("|")) for line in out.splitlines()] if out else []

    def destroy(self):
        if self.proc and self.proc.poll() is None:
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class FakeNtp:
    """An SNTP server on 127.0.0.1 (UDP) whose clock is this host's plus
    `offset` seconds, for praefect check's clock synchronisation. Set
    `offset` at any time; `address` is for NTP_HOST."""

    NTP_EPOCH = 2208988800

    def __init__(self, offset=0.0):
        import threading
        self.offset = offset
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _stamp(self):
        t = time.time() + self.offset + self.NTP_EPOCH
        return int(t).to_bytes(4, "big") + int((t % 1) * 2 ** 32).to_bytes(4, "big")

    def _serve(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(512)
            except OSError:
                return
            if len(data) < 48:
                continue
            received = self._stamp()
            # LI 0, version 4, mode 4 (server), stratum 1, poll 4,
            # precision -20, root delay and dispersion 0, reference "LOCL".
            reply = bytes([0x24, 1, 4, 0xEC]) + bytes(8) + b"LOCL" + received + data[40:48] + received
            reply += self._stamp()
            try:
                self.sock.sendto(reply, peer)
            except OSError:  # closed meanwhile
                return

    def close(self):
        self.sock.close()


class StorageNode:
    """One praefect-storage-node on a fixed port and storage directory."""

    def __init__(self, bin_dir, root, index, token):
        self.bin_dir = bin_dir
        self.name = "gitaly-%d" % index
        self.storage = os.path.join(root, "storage-%d" % index)
        self.port = free_port()
        self.address = "tcp://127.0.0.1:%d" % self.port
        self.config = os.path.join(root, "node-%d.toml" % index)
        self.log = os.path.join(root, "node-%d.log" % index)
        with open(self.config, "w") as f:
            f.write('listen_addr = "127.0.0.1:%d"\n[auth]\ntoken = "%s"\n[[storage]]\nname = "%s"\npath = "%s"\n'
                    % (self.port, token, self.name, self.storage))
        self.proc = None

    def start(self):
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen([os.path.join(self.bin_dir, "praefect-storage-node"), "-config",
                                          self.config], stdout=subprocess.PIPE, stderr=log)
        line = self.proc.stdout.readline().decode()
        assert line.startswith("listening on tcp://"), line

    def kill(self, sig=signal.SIGKILL):
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)
        self.proc.stdout.close()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc.stdout.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


class GoNode:
    """One interop-gonode (tests/interop/gonode): a Gitaly node stand-in on
    grpc-go whose behaviour each call's metadata scripts, and which reports
    what it saw of each call on an HTTP side channel."""

    def __init__(self, bin_dir, storage, token, log_path, flags=()):
        import json
        import urllib.request
        self._json, self._urlopen = json, urllib.request.urlopen
        self.storage = storage
        self.log = open(log_path, "a")
        self.proc = subprocess.Popen([os.path.join(bin_dir, "interop-gonode"), "-storage", storage, "-token", token]
                                     + list(flags), stdout=subprocess.PIPE, stderr=self.log)
        line = self.proc.stdout.readline().decode()
        assert line.startswith("listening on tcp://"), "interop-gonode did not start: %r" % line
        grpc_url, control_url = line.split()[2], line.split()[4]
        self.address = grpc_url                       # tcp://HOST:PORT, as praefect's config wants it
        self.hostport = grpc_url[len("tcp://"):]
        self.control = control_url

    def _get(self, path):
        import urllib.error
        try:
            with self._urlopen(self.control + path, timeout=10) as r:
                return self._json.loads(r.read())
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return None
            raise

    def record(self, call_id):
        """What the node saw of call `call_id` so far (None: not seen)."""
        return self._get("/calls/" + call_id)

    def stats(self):
        return self._get("/stats")

    def wait_done(self, call_id, timeout=10):
        """The node's record of `call_id` once its handler has returned;
        fails when that does not happen within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            rec = self.record(call_id)
            if rec is not None and rec["done"]:
                return rec
            assert time.monotonic() < deadline, \
                "the node's handler of call %s did not end within %d s: %r" % (call_id, timeout, rec)
            time.sleep(0.02)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.proc.stdout.close()
        self.log.close()


def rss_kib(pid, field="VmRSS"):
    """A field of /proc/PID/status in KiB (VmRSS now, VmHWM the peak)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


def write_praefect_config(path, listen, token, virtual_storages, metrics=None, top=""):
    """A memory-mode praefect config (no [database]): `virtual_storages` is a
    list of (name, [(storage, address, token), ...]); `top`, more top-level
    lines."""
    with open(path, "w") as f:
        f.write('listen_addr = "%s"\n' % listen + top)
        if metrics:
            f.write('prometheus_listen_addr = "%s"\n' % metrics)
        f.write('[auth]\ntoken = "%s"\n' % token)
        for name, nodes in virtual_storages:
            f.write('[[virtual_storage]]\nname = "%s"\n' % name)
            for storage, address, node_token in nodes:
                f.write('[[virtual_storage.node]]\nstorage = "%s"\naddress = "%s"\ntoken = "%s"\n'
                        % (storage, address, node_token))
