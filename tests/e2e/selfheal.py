"""What the self-healing end-to-end tests share (reconciliation_test.py,
verification_test.py, maintenance_test.py): one PostgreSQL, three
praefect-storage-node processes and several praefects sharing the
database, the failover test's helpers (database, git, waits) bound to it,
and the log and metric readers.

A test class sets PREFIX (its temporary directory's), PRAEFECTS (how
many), CONFIGURATION (the keyword arguments of its first configure()) and
defines configure(cls, **kwargs), which writes every praefect's config
(write_base_config() plus its own sections)."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import CLIENT_TOKEN, NODE_TOKEN, ClusterHelpers, Praefect  # noqa: E402
from harness import Postgres, StorageNode, generate_stubs  # noqa: E402

BIN, PROTO_DIR, WORK = (os.path.abspath(a) for a in sys.argv[1:4])


class SelfHealingCluster(ClusterHelpers, unittest.TestCase):
    PREFIX = "e2e-selfheal-"
    PRAEFECTS = 3
    CONFIGURATION = {}

    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix=cls.PREFIX, dir=WORK)
        generate_stubs(PROTO_DIR, os.path.join(cls.root, "gen"))
        cls.pg = Postgres(cls.root)
        cls.home = os.path.join(cls.root, "home")
        os.makedirs(cls.home)
        cls.env = dict(os.environ, PATH=BIN + ":" + os.environ["PATH"], HOME=cls.home, GIT_CONFIG_NOSYSTEM="1",
                       GIT_AUTHOR_NAME="E2E", GIT_AUTHOR_EMAIL="e2e@example.com", GIT_COMMITTER_NAME="E2E",
                       GIT_COMMITTER_EMAIL="e2e@example.com", GITALY_TOKEN=CLIENT_TOKEN,
                       GIT_TERMINAL_PROMPT="0")
        cls.nodes = [StorageNode(BIN, cls.root, i, NODE_TOKEN) for i in (1, 2, 3)]
        cls.praefects = [Praefect(BIN, cls.root, "praefect-%d" % i, cls.pg.dir) for i in range(1, cls.PRAEFECTS + 1)]
        try:
            for node in cls.nodes:
                node.start()
            cls.configure(**cls.CONFIGURATION)
            code, out = cls.praefects[0].cmd("sql-migrate")
            assert code == 0 and "OK (applied" in out, out
            cls.start_all()
        except BaseException:
            cls.stop_all()
            for node in cls.nodes:
                node.stop()
            cls.pg.destroy()
            raise

    @classmethod
    def configure(cls, **kwargs):
        raise NotImplementedError("a test class writes its praefects' configs")

    @classmethod
    def write_base_config(cls, praefect):
        """The praefect's config for the three nodes, every storage assigned."""
        praefect.write_config([(n.name, n.address) for n in cls.nodes], replication_factors=(("default", 0),))

    @classmethod
    def start_all(cls):
        threads = [threading.Thread(target=p.start) for p in cls.praefects]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    @classmethod
    def stop_all(cls):
        return {p.name: p.stop() for p in cls.praefects}

    @classmethod
    def tearDownClass(cls):
        codes = cls.stop_all()
        for node in cls.nodes:
            node.stop()
        cls.pg.destroy()
        bad = {name: code for name, code in codes.items() if code not in (0, None)}
        for p in cls.praefects:
            if p.name in bad or os.environ.get("PRAEFECT_E2E_LOG") == "1":
                print("--- %s.log (tail)\n%s" % (p.name, p.log()[-20000:]), file=sys.stderr)
        assert not bad, "praefect exit codes after SIGTERM (want 0): %r" % bad
        if os.environ.get("PRAEFECT_E2E_KEEP") != "1":
            shutil.rmtree(cls.root)

    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    def log_lines(self, text):
        """The lines of every praefect's log that contain `text`."""
        return [line for p in self.praefects for line in p.log().splitlines() if text in line]

    def metric(self, name, **labels):
        """Series `name` summed over the praefects' /metrics, over the
        series whose labels include `labels`."""
        total = 0.0
        for p in self.praefects:
            text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % p.metrics_port, timeout=30).read().decode()
            for found, value in re.findall(r'^%s\{([^}]*)\} (\S+)$' % re.escape(name), text, re.M):
                fields = dict(re.findall(r'(\w+)="([^"]*)"', found))
                if all(fields.get(k) == v for k, v in labels.items()):
                    total += float(value)
        return total

    def make_mismatch(self, rel):
        """Behind praefect's back, on a secondary of `rel`: main moved back
        one commit and a branch that exists nowhere else (same generation,
        other content). Returns (primary node, that secondary, the
        primary's refs)."""
        info = self.repo_info(rel)
        primary = self.node(info["primary"])
        secondary = next(n for n in self.nodes if n.name != info["primary"])
        primary_refs = self.refs(primary, rel)
        git_dir = self.replica_dir(secondary, rel)
        old = subprocess.run(["git", "--git-dir=" + git_dir, "rev-parse", "refs/heads/main~1"],
                             stdout=subprocess.PIPE, env=self.env, check=True).stdout.decode().strip()
        subprocess.run(["git", "--git-dir=" + git_dir, "update-ref", "refs/heads/main", old], env=self.env, check=True)
        subprocess.run(["git", "--git-dir=" + git_dir, "update-ref", "refs/heads/stray", old], env=self.env,
                       check=True)
        # (Not compared here: a content verification daemon may repair it
        # before the next line runs; CI saw it.)
        return primary, secondary, primary_refs
