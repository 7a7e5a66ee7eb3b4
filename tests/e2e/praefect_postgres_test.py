#!/usr/bin/python3
"""praefect with PostgreSQL, end to end: a real PostgreSQL (Debian's server
binaries, initdb into a temporary directory, unix socket only), three
praefect-storage-node processes, praefect, and real git through
git-remote-gitaly. Checks that pushes reach every replica (and reports how
long that takes), and the faults of the Datastore issue: praefect SIGKILLed
with jobs queued, a secondary stopped during pushes, PostgreSQL restarted
under load. The assertion is always the same: every acknowledged push is on
every replica in the end.

usage: praefect_postgres_test.py BIN_DIR WORK_DIR
"""
import glob
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Postgres, bearer, free_port  # noqa: E402

BIN, WORK = (os.path.abspath(a) for a in sys.argv[1:3])
CLIENT_TOKEN = "client-secret"
NODE_TOKEN = "node-secret"
# [failover] quorum_window, shortened so that test 5's outage outlasts it.
QUORUM_WINDOW = 3


def field(number, data):
    """A length-delimited protobuf field (written here, not by praefect's code)."""
    out, n = bytearray([number << 3 | 2]), len(data)
    while n >= 0x80:
        out.append(n & 0x7f | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + data


class PraefectPostgresTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="e2e-praefect-pg-", dir=WORK)
        cls.pg = Postgres(cls.root)
        cls.home = os.path.join(cls.root, "home")
        os.makedirs(cls.home)
        cls.env = dict(os.environ, PATH=BIN + ":" + os.environ["PATH"], HOME=cls.home, GIT_CONFIG_NOSYSTEM="1",
                       GIT_AUTHOR_NAME="E2E", GIT_AUTHOR_EMAIL="e2e@example.com", GIT_COMMITTER_NAME="E2E",
                       GIT_COMMITTER_EMAIL="e2e@example.com", GITALY_TOKEN=CLIENT_TOKEN)
        cls.nodes = []
        for i in (1, 2, 3):
            node = {"name": "gitaly-%d" % i, "storage": os.path.join(cls.root, "storage-%d" % i),
                    "port": free_port(), "config": os.path.join(cls.root, "node-%d.toml" % i)}
            with open(node["config"], "w") as f:
                f.write('listen_addr = "127.0.0.1:%d"\n[auth]\ntoken = "%s"\n[[storage]]\nname = "%s"\npath = "%s"\n'
                        % (node["port"], NODE_TOKEN, node["name"], node["storage"]))
            cls.nodes.append(node)
            cls.start_node(node)
        cls.port = free_port()
        cls.config = os.path.join(cls.root, "praefect.toml")
        with open(cls.config, "w") as f:
            f.write('listen_addr = "127.0.0.1:%d"\n[auth]\ntoken = "%s"\n'
                    '[database]\nhost = "%s"\nuser = "postgres"\ndbname = "praefect"\nsslmode = "disable"\n'
                    '[failover]\nquorum_window = "%ds"\n'
                    '[[virtual_storage]]\nname = "default"\n' % (cls.port, CLIENT_TOKEN, cls.pg.dir, QUORUM_WINDOW))
            for node in cls.nodes:
                f.write('[[virtual_storage.node]]\nstorage = "%s"\naddress = "tcp://127.0.0.1:%d"\ntoken = "%s"\n'
                        % (node["name"], node["port"], NODE_TOKEN))
        out = cls.praefect_cmd("sql-migrate")
        assert "OK (applied 10 migrations)" in out, out
        out = cls.praefect_cmd("sql-migrate")
        assert "OK (applied 0 migrations)" in out, out
        cls.log = open(os.path.join(cls.root, "praefect.log"), "a")
        cls.praefect = None
        cls.start_praefect()

    @classmethod
    def tearDownClass(cls):
        code = 0
        if cls.praefect.poll() is None:
            cls.praefect.terminate()
            code = cls.praefect.wait(timeout=60)
        for node in cls.nodes:
            if node["proc"].poll() is None:
                node["proc"].terminate()
                node["proc"].wait(timeout=30)
        cls.pg.destroy()
        cls.log.close()
        if code != 0:
            with open(os.path.join(cls.root, "praefect.log")) as f:
                print(f.read()[-20000:], file=sys.stderr)
        assert code == 0, "praefect exited with %d after SIGTERM (sanitizer report?)" % code
        if os.environ.get("PRAEFECT_E2E_KEEP") != "1":
            shutil.rmtree(cls.root)
        else:
            print("kept " + cls.root, file=sys.stderr)

    @classmethod
    def praefect_cmd(cls, *args):
        r = subprocess.run([os.path.join(BIN, "praefect"), "-config", cls.config] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        return r.stdout.decode()

    @classmethod
    def start_node(cls, node):
        node["proc"] = subprocess.Popen([os.path.join(BIN, "praefect-storage-node"), "-config", node["config"]],
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = node["proc"].stdout.readline().decode()
        assert line.startswith("listening on tcp://"), line

    @classmethod
    def start_praefect(cls):
        import grpc
        cls.praefect = subprocess.Popen([os.path.join(BIN, "praefect"), "-config", cls.config], stdout=cls.log,
                                        stderr=subprocess.STDOUT)
        with grpc.insecure_channel("127.0.0.1:%d" % cls.port) as ch:
            grpc.channel_ready_future(ch).result(timeout=30)

    def git(self, *args, cwd=None, check=True):
        r = subprocess.run(["git"] + list(args), cwd=cwd, env=self.env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        if check and r.returncode != 0:
            self.fail("git %s failed (%d): %s" % (" ".join(args), r.returncode, r.stderr.decode()))
        return r

    def url(self, rel):
        return "gitaly://127.0.0.1:%d/default/%s" % (self.port, rel)

    def new_repo(self, rel):
        """Creates `rel` through praefect with one commit; returns (work tree,
        replica path relative to the storages)."""
        work = os.path.join(self.root, "work-" + rel.replace("/", "-"))
        self.git("init", "-q", "-b", "main", work)
        self.git("commit", "-q", "--allow-empty", "-m", "root", cwd=work)
        # git push to a missing repository fails; create it first by pushing
        # through CreateRepository, via the Python client.
        import grpc
        with grpc.insecure_channel("127.0.0.1:%d" % self.port) as ch:
            create = ch.unary_unary("/gitaly.RepositoryService/CreateRepository",
                                    request_serializer=lambda b: b, response_deserializer=lambda b: b)
            repo = b"\x12" + bytes([7]) + b"default" + b"\x1a" + bytes([len(rel)]) + rel.encode()
            create(b"\x0a" + bytes([len(repo)]) + repo, metadata=[("authorization", bearer(CLIENT_TOKEN))],
                   timeout=30)
        replica = self.pg.psql("SELECT replica_path FROM repositories WHERE relative_path = '%s'" % rel, "praefect")
        primary = self.primary_node(rel)
        self.assertTrue(os.path.isdir(os.path.join(primary["storage"], replica)), "created on its primary")
        self.git("push", "-q", self.url(rel), "main", cwd=work)
        return work, replica

    def primary_node(self, rel):
        """The node the database names as `rel`'s primary (elected per repository)."""
        name = self.pg.psql("SELECT \"primary\" FROM repositories WHERE relative_path = '%s'" % rel, "praefect")
        return next(n for n in self.nodes if n["name"] == name)

    def refs(self, node, replica):
        path = os.path.join(node["storage"], replica)
        if not os.path.isdir(path):
            return None
        return subprocess.run(["git", "--git-dir=" + path, "for-each-ref", "--format=%(objectname) %(refname)"],
                              stdout=subprocess.PIPE, env=self.env).stdout

    def wait_converged(self, replica, want=None, timeout=60):
        """Waits until every node's refs are equal (and equal `want` if given)."""
        deadline = time.monotonic() + timeout
        while True:
            refs = [self.refs(n, replica) for n in self.nodes]
            target = want if want is not None else refs[0]
            if target is not None and all(r == target for r in refs):
                return
            if time.monotonic() > deadline:
                self.fail("replicas did not converge:\n" + "\n".join(
                    "%s: %r" % (n["name"], r) for n, r in zip(self.nodes, refs)))
            time.sleep(0.005)

    def commit_and_push(self, work, rel, i):
        with open(os.path.join(work, "file"), "w") as f:
            f.write("%d\n" % i)
        self.git("add", "file", cwd=work)
        self.git("commit", "-q", "-m", "c%d" % i, cwd=work)
        return self.git("push", "-q", self.url(rel), "main", cwd=work, check=False).returncode == 0

    def test_1_pushes_reach_every_replica(self):
        work, replica = self.new_repo("pg/latency.git")
        self.wait_converged(replica)
        latencies = []
        for i in range(20):
            self.assertTrue(self.commit_and_push(work, "pg/latency.git", i))
            acked = time.monotonic()
            self.wait_converged(replica)
            latencies.append((time.monotonic() - acked) * 1000)
        latencies.sort()
        p50 = statistics.median(latencies)
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print("push acknowledged -> both secondaries converged, 20 pushes: p50 %.1f ms, p99 %.1f ms, max %.1f ms"
              % (p50, p99, latencies[-1]), file=sys.stderr)
        deadline = time.monotonic() + 10  # the last acknowledgement may trail the copy
        while self.pg.psql("SELECT count(*) FROM replication_queue", "praefect") != "0":
            self.assertLess(time.monotonic(), deadline, "completed jobs do not accumulate")
            time.sleep(0.05)

    def test_2_praefect_sigkill_with_jobs_queued(self):
        work, replica = self.new_repo("pg/sigkill.git")
        for i in range(10):
            self.assertTrue(self.commit_and_push(work, "pg/sigkill.git", i))
        self.praefect.send_signal(signal.SIGKILL)
        self.praefect.wait(timeout=30)
        want = self.git("for-each-ref", "--format=%(objectname) %(refname)", cwd=work).stdout
        want = self.refs(self.primary_node("pg/sigkill.git"), replica)  # it took every acknowledged push
        self.start_praefect()
        self.wait_converged(replica, want, timeout=90)
        self.assertEqual(self.pg.psql("SELECT count(*) FROM replication_queue WHERE state = 'dead'", "praefect"), "0")

    def test_3_secondary_stopped_during_pushes(self):
        work, replica = self.new_repo("pg/stopped.git")
        self.wait_converged(replica)
        primary = self.primary_node("pg/stopped.git")
        node = next(n for n in self.nodes if n is not primary)
        node["proc"].send_signal(signal.SIGKILL)
        node["proc"].wait(timeout=30)
        for i in range(5):
            self.assertTrue(self.commit_and_push(work, "pg/stopped.git", i), "writes continue with a secondary down")
        time.sleep(2)  # jobs for the dead node wait for it
        self.start_node(node)
        self.wait_converged(replica, timeout=90)

    def test_4_postgres_restart_under_load(self):
        work, replica = self.new_repo("pg/restart.git")
        self.wait_converged(replica)
        acknowledged = []
        failed = []
        stop = threading.Event()

        def pushes():
            i = 0
            while not stop.is_set():
                i += 1
                if self.commit_and_push(work, "pg/restart.git", 1000 + i):
                    acknowledged.append(self.git("rev-parse", "HEAD", cwd=work).stdout.decode().strip())
                else:
                    # Not acknowledged: the commit stays and goes with the
                    # next push (the primary may or may not hold it).
                    failed.append(i)
                    time.sleep(0.05)

        t = threading.Thread(target=pushes)
        t.start()
        time.sleep(1)
        self.pg.stop()
        time.sleep(2)
        self.pg.start()
        time.sleep(3)
        stop.set()
        t.join()
        print("PostgreSQL restart: %d pushes acknowledged, %d refused during the outage"
              % (len(acknowledged), len(failed)), file=sys.stderr)
        self.assertTrue(failed, "pushes during the outage fail instead of being acknowledged unrecorded")
        self.assertGreater(len(acknowledged), 0)
        # praefect recovered without a restart: a new push is acknowledged...
        self.assertTrue(self.commit_and_push(work, "pg/restart.git", 99999))
        acknowledged.append(self.git("rev-parse", "HEAD", cwd=work).stdout.decode().strip())
        self.assertIsNone(self.praefect.poll(), "praefect kept running")
        # ...and every acknowledged push is on every replica.
        self.wait_converged(replica, timeout=90)
        for node in self.nodes:
            path = os.path.join(node["storage"], replica)
            for oid in acknowledged:
                r = subprocess.run(["git", "--git-dir=" + path, "cat-file", "-e", oid + "^{commit}"],
                                   env=self.env)
                self.assertEqual(r.returncode, 0, "acknowledged commit %s on %s" % (oid, node["name"]))

    def write_ref(self, rel, ref, oid):
        """WriteRef through praefect: (status code name, details)."""
        import grpc
        repo = field(2, b"default") + field(3, rel.encode())
        request = field(1, repo) + field(2, ref.encode()) + field(3, oid.encode())
        with grpc.insecure_channel("127.0.0.1:%d" % self.port) as ch:
            call = ch.unary_unary("/gitaly.RepositoryService/WriteRef", request_serializer=lambda b: b,
                                  response_deserializer=lambda b: b)
            try:
                call(request, metadata=[("authorization", bearer(CLIENT_TOKEN))], timeout=30)
                return "OK", ""
            except grpc.RpcError as err:
                return err.code().name, err.details()

    def test_5_outage_longer_than_the_quorum_window(self):
        """PostgreSQL down for twice the quorum window while writes keep
        coming: they fail with UNAVAILABLE naming the database and saying
        to retry; after it is back, no repository loses its primary (every
        praefect's health records are stale then, and an election on them
        would find no node healthy), and every acknowledged write is on
        every replica."""
        repos = {}
        for i in range(3):
            rel = "pg/outage-%d.git" % i
            work, replica = self.new_repo(rel)
            self.wait_converged(replica)
            repos[rel] = (replica, self.git("rev-parse", "HEAD", cwd=work).stdout.decode().strip(),
                          self.primary_node(rel)["name"])
        # Every change of a primary, recorded by the database itself.
        self.pg.psql("""
CREATE TABLE e2e_primary_changes (relative_path text, old text, new text, at timestamptz DEFAULT now());
CREATE FUNCTION e2e_primary_changed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
  INSERT INTO e2e_primary_changes (relative_path, old, new) VALUES (NEW.relative_path, OLD."primary", NEW."primary");
  RETURN NEW; END $$;
CREATE TRIGGER e2e_primary_changed AFTER UPDATE OF "primary" ON repositories FOR EACH ROW
  WHEN (OLD."primary" IS DISTINCT FROM NEW."primary") EXECUTE FUNCTION e2e_primary_changed();""", "praefect")
        calls = []  # (monotonic time, relative path, ref, code, details)
        stop = threading.Event()

        def writes():
            i = 0
            while not stop.is_set():
                i += 1
                rel = "pg/outage-%d.git" % (i % 3)
                ref = "refs/heads/outage-%d" % i
                code, details = self.write_ref(rel, ref, repos[rel][1])
                calls.append((time.monotonic(), rel, ref, code, details))
                if code != "OK":
                    time.sleep(0.05)

        t = threading.Thread(target=writes)
        t.start()
        time.sleep(1)
        self.pg.stop()
        down_at = time.monotonic()
        time.sleep(2 * QUORUM_WINDOW)
        self.pg.start()
        back_at = time.monotonic()
        deadline = back_at + 30
        while not [c for c in calls if c[0] > back_at and c[3] == "OK"]:
            self.assertLess(time.monotonic(), deadline, "writes succeed again once PostgreSQL is back")
            time.sleep(0.05)
        time.sleep(2)
        stop.set()
        t.join()

        codes = {}
        for c in calls:
            codes[c[3]] = codes.get(c[3], 0) + 1
        refused = [c for c in calls if c[3] != "OK"]
        first_ok = min(c[0] for c in calls if c[0] > back_at and c[3] == "OK")
        after = [c for c in calls if back_at < c[0] < first_ok]
        print("PostgreSQL down %.1f s (quorum window %d s): %d writes, %r; %d refused after it was back; first "
              "write acknowledged %.2f s after it was back; a refusal: %s"
              % (back_at - down_at, QUORUM_WINDOW, len(calls), codes, len(after), first_ok - back_at,
                 refused[0][4] if refused else "none"), file=sys.stderr)
        for message in sorted(set(c[4][:160] for c in after)):
            print("  refused after PostgreSQL was back: " + message, file=sys.stderr)
        self.assertTrue(refused, "writes during the outage are refused")
        for c in refused:
            self.assertEqual(c[3], "UNAVAILABLE", "a refused write is UNAVAILABLE (retryable): %r" % (c,))
            self.assertIn("database", c[4], "the refusal names the database: %r" % (c,))
            self.assertIn("retry", c[4].lower(), "the refusal says to retry: %r" % (c,))
        self.assertEqual(self.pg.rows("SELECT * FROM e2e_primary_changes"), [],
                         "no primary changed or was cleared")
        for rel, (replica, oid, primary) in repos.items():
            self.assertEqual(self.primary_node(rel)["name"], primary)
        self.assertNotIn("has no primary", open(os.path.join(self.root, "praefect.log")).read())
        # Every acknowledged write, on every replica.
        acked = [c for c in calls if c[3] == "OK"]
        self.assertTrue(acked)
        for rel, (replica, oid, primary) in repos.items():
            self.wait_converged(replica, timeout=90)
            for node in self.nodes:
                refs = self.refs(node, replica).decode()
                for c in acked:
                    if c[1] == rel:
                        self.assertIn("%s %s\n" % (oid, c[2]), refs,
                                      "acknowledged %s of %s on %s" % (c[2], rel, node["name"]))


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
