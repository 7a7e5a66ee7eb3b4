#!/usr/bin/python3
"""praefect under a fake systemd: the test binds the AF_UNIX datagram socket
$NOTIFY_SOCKET names and reads what praefect tells the service manager.
Checks READY=1 only once the gRPC port answers, WATCHDOG=1 at half of
WATCHDOG_USEC (WATCHDOG_PID set to praefect's pid through an exec wrapper),
STATUS= figures, SIGHUP: RELOADING=1 with MONOTONIC_USEC then READY=1 and the
new log level/format and token in force, a broken config on SIGHUP keeping
the old one serving, SIGTERM: STOPPING=1 and exit 0; and with [database]:
no READY while PostgreSQL is down (EXTEND_TIMEOUT_USEC instead), READY once
it is up.

usage: praefect_systemd_test.py BIN_DIR WORK_DIR
"""
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import unittest

BIN, WORK = (os.path.abspath(a) for a in sys.argv[1:3])
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
CLIENT_TOKEN = "client-secret"
NODE_TOKEN = "node-secret"
WATCHDOG_USEC = 1000000

from harness import bearer, free_port  # noqa: E402


def monotonic_usec():
    return int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6)


class FakeManager:
    """The service manager's end of NOTIFY_SOCKET."""

    def __init__(self, root):
        self.path = os.path.join(root, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.log = []  # (monotonic seconds, message)

    def receive(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        try:
            msg = self.sock.recv(65536).decode()
        except socket.timeout:
            return None
        self.log.append((time.monotonic(), msg))
        return msg

    def wait_for(self, pred, timeout, on_message=None):
        """Messages until one satisfies pred; returns (it, the ones before)."""
        deadline = time.monotonic() + timeout
        before = []
        while time.monotonic() < deadline:
            msg = self.receive(deadline - time.monotonic())
            if msg is None:
                break
            if on_message:
                on_message(msg)
            if pred(msg):
                return msg, before
            before.append(msg)
        raise AssertionError("no matching notify message in %.0f s; got: %r" % (timeout, before[-20:]))

    def close(self):
        self.sock.close()


def call_server_info(port, token, timeout=5):
    """gitaly.ServerService/ServerInfo, which praefect answers itself after
    checking the token; returns the grpc status code."""
    import grpc
    with grpc.insecure_channel("127.0.0.1:%d" % port) as ch:
        info = ch.unary_unary("/gitaly.ServerService/ServerInfo", request_serializer=lambda b: b,
                              response_deserializer=lambda b: b)
        try:
            info(b"", metadata=[("authorization", bearer(token))], timeout=timeout)
            return grpc.StatusCode.OK
        except grpc.RpcError as e:
            return e.code()


def start_praefect(config, manager, log, extra_env=None):
    env = dict(os.environ, NOTIFY_SOCKET=manager.path, WATCHDOG_USEC=str(WATCHDOG_USEC))
    env.update(extra_env or {})
    # WATCHDOG_PID must name praefect itself: the shell sets it to its own pid
    # and execs praefect, which keeps that pid.
    return subprocess.Popen(["/bin/sh", "-c", 'export WATCHDOG_PID=$$; exec "$0" "$@"',
                             os.path.join(BIN, "praefect"), "-config", config],
                            env=env, stdout=log, stderr=subprocess.STDOUT)


class PraefectSystemdTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="e2e-praefect-systemd-", dir=WORK)
        self.node_port = free_port()
        node_config = os.path.join(self.root, "node.toml")
        with open(node_config, "w") as f:
            f.write('listen_addr = "127.0.0.1:%d"\n[auth]\ntoken = "%s"\n[[storage]]\nname = "gitaly-1"\n'
                    'path = "%s"\n' % (self.node_port, NODE_TOKEN, os.path.join(self.root, "storage")))
        self.node = subprocess.Popen([os.path.join(BIN, "praefect-storage-node"), "-config", node_config],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.node.stdout.readline().decode()
        assert line.startswith("listening on tcp://"), line
        self.port = free_port()
        self.config = os.path.join(self.root, "praefect.toml")
        self.log_path = os.path.join(self.root, "praefect.log")
        self.log = open(self.log_path, "a")
        self.manager = FakeManager(self.root)
        self.praefect = None
        self.pg = None

    def tearDown(self):
        if self.praefect and self.praefect.poll() is None:
            self.praefect.kill()
            self.praefect.wait()
        self.node.terminate()
        self.node.wait(timeout=30)
        if self.pg:
            self.pg.destroy()
        self.manager.close()
        self.log.close()
        if os.environ.get("PRAEFECT_E2E_KEEP") != "1":
            shutil.rmtree(self.root, ignore_errors=True)

    def write_config(self, token=CLIENT_TOKEN, level="info", fmt="text", extra="", node_token=NODE_TOKEN):
        with open(self.config, "w") as f:
            f.write('listen_addr = "127.0.0.1:%d"\n%s[auth]\ntoken = "%s"\n[logging]\nlevel = "%s"\nformat = "%s"\n'
                    '[failover]\nenabled = false\n[[virtual_storage]]\nname = "default"\n'
                    '[[virtual_storage.node]]\nstorage = "gitaly-1"\naddress = "tcp://127.0.0.1:%d"\ntoken = "%s"\n'
                    % (self.port, extra, token, level, fmt, self.node_port, node_token))

    def read_log(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_ready_then_call(self, timeout=60):
        """Waits for READY=1 and makes a call the moment it arrives."""
        ready, before = self.manager.wait_for(lambda m: "READY=1" in m.split("\n"), timeout)
        code = call_server_info(self.port, CLIENT_TOKEN)
        self.assertEqual(code.name, "OK", "a call right when READY=1 arrived: " + self.read_log()[-3000:])
        return before

    def test_lifecycle(self):
        self.write_config()
        t0 = time.monotonic()
        with socket.socket() as s:
            self.assertNotEqual(s.connect_ex(("127.0.0.1", self.port)), 0, "port free before praefect starts")
        self.praefect = start_praefect(self.config, self.manager, self.log)
        before = self.wait_ready_then_call()
        print("READY=1 %.2f s after start; before it: %r" % (time.monotonic() - t0, before), file=sys.stderr)
        self.assertFalse(any("READY=1" in m for m in before))

        # STATUS= with live figures.
        status, _ = self.manager.wait_for(lambda m: m.startswith("STATUS=serving"), 15)
        print("status: " + status, file=sys.stderr)
        self.assertRegex(status, r"^STATUS=serving; 1/1 nodes healthy; 0 replication jobs queued; [0-9.]+ RPC/s$")

        # WATCHDOG=1 at about half of WATCHDOG_USEC.
        stamps = []
        while len(stamps) < 8:
            msg, _ = self.manager.wait_for(lambda m: m == "WATCHDOG=1", 10)
            stamps.append(self.manager.log[-1][0])
        gaps = [b - a for a, b in zip(stamps, stamps[1:])]
        median = statistics.median(gaps)
        print("WATCHDOG=1 every %.3f s (median of %d; WATCHDOG_USEC=%d → expected %.3f s)"
              % (median, len(gaps), WATCHDOG_USEC, WATCHDOG_USEC / 2e6), file=sys.stderr)
        self.assertTrue(0.35 <= median <= 0.65, "median WATCHDOG=1 gap %.3f s" % median)

        # SIGHUP: level warn and a new token.
        self.write_config(token="new-secret", level="warn")
        t_before = monotonic_usec()
        self.praefect.send_signal(signal.SIGHUP)
        reloading, _ = self.manager.wait_for(lambda m: m.startswith("RELOADING=1"), 10)
        t_after = monotonic_usec()
        fields = dict(line.split("=", 1) for line in reloading.split("\n"))
        usec = int(fields["MONOTONIC_USEC"])
        print("MONOTONIC_USEC %d, test clock %d..%d" % (usec, t_before, t_after), file=sys.stderr)
        self.assertTrue(t_before <= usec <= t_after, "MONOTONIC_USEC within the test's own CLOCK_MONOTONIC window")
        self.manager.wait_for(lambda m: m == "READY=1", 10)
        self.assertEqual(call_server_info(self.port, "new-secret").name, "OK", "the new token is accepted")
        self.assertNotEqual(call_server_info(self.port, CLIENT_TOKEN).name, "OK", "the old token is refused")
        log = self.read_log()
        self.assertEqual(log.count("reload: SIGHUP received"), 1, log[-3000:])
        self.assertNotIn("reload: done", log, "info lines are filtered once level = warn is in force")

        # SIGHUP: back to info, as JSON.
        self.write_config(token="new-secret", level="info", fmt="json")
        self.praefect.send_signal(signal.SIGHUP)
        self.manager.wait_for(lambda m: m.startswith("RELOADING=1"), 10)
        self.manager.wait_for(lambda m: m == "READY=1", 10)
        log = self.read_log()
        self.assertIn('"msg":"reload: done"', log, "JSON, info level: " + log[-3000:])
        self.assertEqual(log.count("reload: SIGHUP received"), 1, "that one was logged while warn was in force")

        # SIGHUP with a broken file: the running configuration stays.
        with open(self.config, "w") as f:
            f.write('listen_addr = 12\n[auth\ntoken = "x"\n')
        self.praefect.send_signal(signal.SIGHUP)
        self.manager.wait_for(lambda m: m.startswith("RELOADING=1"), 10)
        self.manager.wait_for(lambda m: m == "READY=1", 10)
        log = self.read_log()
        self.assertIn("reload: the new configuration is invalid", log)
        self.assertIn("keeping the running configuration", log)
        self.assertEqual(call_server_info(self.port, "new-secret").name, "OK", "still serving, old settings")

        # SIGHUP: the node's token changes live (calls to the node are signed
        # with the new one): a token the node refuses, then the right one.
        def create(rel):
            import grpc
            repo = b"\x12" + bytes([7]) + b"default" + b"\x1a" + bytes([len(rel)]) + rel.encode()
            with grpc.insecure_channel("127.0.0.1:%d" % self.port) as ch:
                call = ch.unary_unary("/gitaly.RepositoryService/CreateRepository",
                                      request_serializer=lambda b: b, response_deserializer=lambda b: b)
                try:
                    call(b"\x0a" + bytes([len(repo)]) + repo, metadata=[("authorization", bearer("new-secret"))],
                         timeout=10)
                    return "OK"
                except grpc.RpcError as e:
                    return e.code().name
        for node_token, rel, want_ok in (("not-the-node-secret", "tok/a.git", False), (NODE_TOKEN, "tok/b.git", True)):
            self.write_config(token="new-secret", fmt="json", node_token=node_token)
            self.praefect.send_signal(signal.SIGHUP)
            self.manager.wait_for(lambda m: m == "READY=1", 10)
            code = create(rel)
            self.assertEqual(code == "OK", want_ok, "CreateRepository with node token %r: %s" % (node_token, code))
        self.assertIn("reload: node tokens changed", self.read_log())
        self.assertNotIn("not-the-node-secret", self.read_log(), "tokens are never logged")

        # A valid file that changes what needs a restart: named in the log.
        self.write_config(token="new-secret", fmt="json", extra='prometheus_listen_addr = "127.0.0.1:%d"\n'
                          % free_port())
        self.praefect.send_signal(signal.SIGHUP)
        self.manager.wait_for(lambda m: m == "READY=1", 10)
        self.assertRegex(self.read_log(), r'take effect only when praefect restarts.*"settings":"prometheus_listen_addr"')

        # SIGTERM: STOPPING=1, then a clean exit.
        self.praefect.send_signal(signal.SIGTERM)
        self.manager.wait_for(lambda m: m == "STOPPING=1", 10)
        self.assertEqual(self.praefect.wait(timeout=90), 0, self.read_log()[-3000:])

    def test_ready_waits_for_the_database(self):
        from praefect_postgres_test import Postgres
        self.pg = Postgres(self.root)
        pg_extra = ('[database]\nhost = "%s"\nuser = "postgres"\ndbname = "praefect"\nsslmode = "disable"\n'
                    % self.pg.dir)
        self.write_config()
        with open(self.config, "a") as f:
            f.write(pg_extra)
        r = subprocess.run([os.path.join(BIN, "praefect"), "-config", self.config, "sql-migrate"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.assertEqual(r.returncode, 0, r.stdout.decode())
        self.pg.stop()

        self.praefect = start_praefect(self.config, self.manager, self.log)
        extend, before = self.manager.wait_for(lambda m: m.startswith("EXTEND_TIMEOUT_USEC="), 30)
        waited = []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            msg = self.manager.receive(deadline - time.monotonic())
            if msg:
                waited.append(msg)
        self.assertFalse(any("READY=1" in m for m in before + waited), "no READY=1 while the database is down")
        with socket.socket() as s:
            self.assertNotEqual(s.connect_ex(("127.0.0.1", self.port)), 0, "nothing listens before the schema check")
        self.assertTrue(any(m.startswith("STATUS=waiting for the database") for m in waited), waited)
        self.assertIsNone(self.praefect.poll(), "praefect waits instead of exiting")
        print("while PostgreSQL is down: %s, %d messages in 3 s" % (extend, len(waited)), file=sys.stderr)

        t0 = time.monotonic()
        self.pg.start()
        self.wait_ready_then_call(timeout=60)
        print("READY=1 %.2f s after PostgreSQL answered" % (time.monotonic() - t0), file=sys.stderr)
        self.assertIn("waiting for the database to answer", self.read_log())
        self.praefect.send_signal(signal.SIGTERM)
        self.manager.wait_for(lambda m: m == "STOPPING=1", 10)
        self.assertEqual(self.praefect.wait(timeout=90), 0, self.read_log()[-3000:])


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
