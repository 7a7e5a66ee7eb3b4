#!/usr/bin/python3
"""praefect through PgBouncer, as GitLab's documentation sets it up: Debian's
/usr/sbin/pgbouncer (on 127.0.0.1, a generated ini in the temporary
directory) in front of a throwaway PostgreSQL, with two database entries:
`praefect_production` (pool_mode = transaction) for praefect's queries and
`praefect_production_direct` (pool_mode = session) for its LISTEN
connection. Two setups, one test class each:

  (a) [database] -> the transaction pool, [database.session_pooled] -> the
      session pool;
  (b) [database] -> the transaction pool, [database.session_pooled] -> a
      direct connection to PostgreSQL.

Each checks that everything works through PgBouncer (sql-migrate, sql-ping,
creating, writing, reading, cloning, replicating, replication-backlog,
set-replication-factor; no
session lock of sql-migrate left on a server connection), that writes while
PgBouncer or PostgreSQL is down are refused with a retryable UNAVAILABLE
naming the database, and that the read cache never serves a stale replica
set: after PgBouncer restarts (a primary and generations changed in SQL
while it was down), after PostgreSQL restarts, and when the LISTEN
connection is cut while a repository's generations change. Reads are attributed to nodes by
praefect's gitaly_praefect_read_distribution counter: once only one replica
is at the latest generation, every read must go to it (a stale cache would
send two reads in three elsewhere).

usage: pgbouncer_test.py BIN_DIR PROTO_DIR WORK_DIR
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Postgres, StorageNode, as_postgres_user, bearer, free_port, generate_stubs  # noqa: E402

BIN, PROTO_DIR, WORK = (os.path.abspath(a) for a in sys.argv[1:4])
CLIENT_TOKEN = "client-secret"
NODE_TOKEN = "node-secret"
PGBOUNCER = "/usr/sbin/pgbouncer"


def auth():
    return [("authorization", bearer(CLIENT_TOKEN))]


class PgBouncer:
    """Debian's pgbouncer on 127.0.0.1:<free port>, run as nobody (it
    refuses root), in front of `pg`'s unix socket. Its admin console is the
    database `pgbouncer` (admin_users = postgres)."""

    TX_DB = "praefect_production"
    SESSION_DB = "praefect_production_direct"

    def __init__(self, pg):
        # A directory of its own, as Postgres has: nobody must reach it.
        self.dir = tempfile.mkdtemp(prefix="praefect-e2e-pgbouncer-")
        if os.geteuid() == 0:
            shutil.chown(self.dir, "nobody", "nogroup")
        self.port = free_port()
        self.ini = os.path.join(self.dir, "pgbouncer.ini")
        self.log = os.path.join(self.dir, "pgbouncer.log")
        with open(os.path.join(self.dir, "userlist.txt"), "w") as f:
            f.write('"postgres" ""\n')
        with open(self.ini, "w") as f:
            f.write("[databases]\n"
                    "%s = host=%s dbname=praefect pool_mode=transaction\n"
                    "%s = host=%s dbname=praefect pool_mode=session\n"
                    "[pgbouncer]\n"
                    "listen_addr = 127.0.0.1\nlisten_port = %d\nunix_socket_dir =\n"
                    "auth_type = trust\nauth_file = %s\nadmin_users = postgres\n"
                    "pool_mode = transaction\nmax_client_conn = 200\ndefault_pool_size = 20\n"
                    # Dial PostgreSQL again 1 s after a failed login, not
                    # 15 s (the default; praefect.toml(5), PGBOUNCER).
                    "server_login_retry = 1\n"
                    # Server connections in turn, not the last used: one
                    # client's transactions land on different ones, as
                    # under load (what a session lock must survive).
                    "server_round_robin = 1\n"
                    "logfile = %s\npidfile = %s\n"
                    % (self.TX_DB, pg.dir, self.SESSION_DB, pg.dir, self.port,
                       os.path.join(self.dir, "userlist.txt"), self.log, os.path.join(self.dir, "pgbouncer.pid")))
        self.proc = None

    def start(self):
        with open(os.path.join(self.dir, "stderr"), "a") as err:
            self.proc = subprocess.Popen(as_postgres_user() + [PGBOUNCER, self.ini], stdout=err, stderr=err)
        deadline = time.monotonic() + 30
        while self.admin("SHOW VERSION", check=False) is None:
            assert self.proc.poll() is None, "pgbouncer exited: " + self.tail()
            assert time.monotonic() < deadline, "pgbouncer does not answer: " + self.tail()
            time.sleep(0.05)

    def stop(self):
        """Immediate shutdown (SIGTERM): every client connection is closed."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)

    def destroy(self):
        if self.proc is not None and self.proc.poll() is None:
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def tail(self):
        text = ""
        for name in (self.log, os.path.join(self.dir, "stderr")):
            if os.path.exists(name):
                with open(name, errors="replace") as f:
                    text += f.read()[-4000:]
        return text

    def admin(self, command, check=True):
        """An admin console command's rows (lists of strings); None when it
        cannot be reached and check is false."""
        r = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "pgbouncer",
                            "-At", "-F", "|", "-c", command], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if r.returncode != 0:
            assert not check, "pgbouncer %s: %s" % (command, r.stderr.decode())
            return None
        return [line.split("|") for line in r.stdout.decode().splitlines()]

    def clients(self):
        """Client connections per database (SHOW CLIENTS), the console's own
        left out."""
        rows = self.admin("SHOW CLIENTS")
        counts = {}
        for row in rows:
            if row[2] != "pgbouncer":
                counts[row[2]] = counts.get(row[2], 0) + 1
        return counts


class PgBouncerSetup:
    """The tests, for a subclass that sets SESSION ("pgbouncer": setup (a),
    "direct": setup (b))."""

    SESSION = None

    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="e2e-pgbouncer-%s-" % cls.SESSION, dir=WORK)
        generate_stubs(PROTO_DIR, os.path.join(cls.root, "gen"))
        cls.pg = Postgres(cls.root)
        cls.bouncer = PgBouncer(cls.pg)
        cls.home = os.path.join(cls.root, "home")
        os.makedirs(cls.home)
        cls.env = dict(os.environ, PATH=BIN + ":" + os.environ["PATH"], HOME=cls.home, GIT_CONFIG_NOSYSTEM="1",
                       GIT_AUTHOR_NAME="E2E", GIT_AUTHOR_EMAIL="e2e@example.com", GIT_COMMITTER_NAME="E2E",
                       GIT_COMMITTER_EMAIL="e2e@example.com", GITALY_TOKEN=CLIENT_TOKEN, GIT_TERMINAL_PROMPT="0")
        cls.nodes = [StorageNode(BIN, cls.root, i, NODE_TOKEN) for i in (1, 2, 3)]
        cls.port = free_port()
        cls.metrics_port = free_port()
        cls.config = os.path.join(cls.root, "praefect.toml")
        cls.logpath = os.path.join(cls.root, "praefect.log")
        cls.praefect = None
        cls.channel = None
        try:
            cls.bouncer.start()
            for node in cls.nodes:
                node.start()
            cls.write_config()
            code, out = cls.cmd("sql-migrate")
            assert code == 0 and "OK (applied 10 migrations)" in out, out
            cls.start_praefect()
        except BaseException:
            cls.cleanup()
            raise

    @classmethod
    def write_config(cls):
        if cls.SESSION == "pgbouncer":
            session = 'host = "127.0.0.1"\nport = %d\ndbname = "%s"\n' % (cls.bouncer.port, PgBouncer.SESSION_DB)
        else:
            # Every key left out falls back to [database]'s: the port too.
            session = 'host = "%s"\nport = 5432\ndbname = "praefect"\n' % cls.pg.dir
        text = ('listen_addr = "127.0.0.1:%d"\nprometheus_listen_addr = "127.0.0.1:%d"\n'
                '[auth]\ntoken = "%s"\n'
                '[database]\nhost = "127.0.0.1"\nport = %d\nuser = "postgres"\ndbname = "%s"\nsslmode = "disable"\n'
                '[database.session_pooled]\n%suser = "postgres"\nsslmode = "disable"\n'
                '[[virtual_storage]]\nname = "default"\n'
                % (cls.port, cls.metrics_port, CLIENT_TOKEN, cls.bouncer.port, PgBouncer.TX_DB, session))
        for node in cls.nodes:
            text += '[[virtual_storage.node]]\nstorage = "%s"\naddress = "%s"\ntoken = "%s"\n' % (
                node.name, node.address, NODE_TOKEN)
        with open(cls.config, "w") as f:
            f.write(text)

    @classmethod
    def cmd(cls, *args):
        r = subprocess.run([os.path.join(BIN, "praefect"), "-config", cls.config] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        return r.returncode, r.stdout.decode()

    @classmethod
    def start_praefect(cls):
        import grpc
        with open(cls.logpath, "a") as log:
            cls.praefect = subprocess.Popen([os.path.join(BIN, "praefect"), "-config", cls.config], stdout=log,
                                            stderr=subprocess.STDOUT)
        cls.channel = grpc.insecure_channel("127.0.0.1:%d" % cls.port)
        grpc.channel_ready_future(cls.channel).result(timeout=30)

    @classmethod
    def cleanup(cls):
        code = None
        if cls.channel is not None:
            cls.channel.close()
        if cls.praefect is not None and cls.praefect.poll() is None:
            cls.praefect.terminate()
            code = cls.praefect.wait(timeout=60)
        for node in cls.nodes:
            node.stop()
        cls.bouncer.destroy()
        cls.pg.destroy()
        return code

    @classmethod
    def tearDownClass(cls):
        code = cls.cleanup()
        if code != 0 or os.environ.get("PRAEFECT_E2E_LOG") == "1":
            with open(cls.logpath, errors="replace") as f:
                print("--- praefect.log (tail)\n" + f.read()[-20000:], file=sys.stderr)
        assert code == 0, "praefect exited with %r after SIGTERM" % code
        if os.environ.get("PRAEFECT_E2E_KEEP") != "1":
            shutil.rmtree(cls.root)
        else:
            print("kept " + cls.root, file=sys.stderr)

    # --- helpers --------------------------------------------------------

    def log(self):
        with open(self.logpath, errors="replace") as f:
            return f.read()

    def git(self, *args, cwd=None):
        r = subprocess.run(["git"] + list(args), cwd=cwd, env=self.env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(r.returncode, 0, "git %s: %s" % (" ".join(args), r.stderr.decode()))
        return r.stdout.decode().strip()

    def repository(self, rel):
        import shared_pb2
        return shared_pb2.Repository(storage_name="default", relative_path=rel)

    def new_repo(self, rel):
        """Created through praefect, one commit pushed with real git; waits
        until every replica holds it. Returns the commit."""
        import repository_service_pb2 as rs
        import repository_service_pb2_grpc as rs_grpc
        rs_grpc.RepositoryServiceStub(self.channel).CreateRepository(
            rs.CreateRepositoryRequest(repository=self.repository(rel)), metadata=auth(), timeout=30)
        work = os.path.join(self.root, "work-" + rel.replace("/", "-"))
        self.git("init", "-q", "-b", "main", work)
        self.git("commit", "-q", "--allow-empty", "-m", "root", cwd=work)
        self.git("push", "-q", "gitaly://127.0.0.1:%d/default/%s" % (self.port, rel), "main", cwd=work)
        oid = self.git("rev-parse", "HEAD", cwd=work)
        self.wait_replicated(rel)
        return oid

    def write_ref(self, rel, ref, oid, timeout=30):
        """WriteRef through praefect (a mutator); the grpc.RpcError or None."""
        import grpc
        import repository_service_pb2 as rs
        import repository_service_pb2_grpc as rs_grpc
        try:
            rs_grpc.RepositoryServiceStub(self.channel).WriteRef(
                rs.WriteRefRequest(repository=self.repository(rel), ref=ref.encode(), revision=oid.encode()),
                metadata=auth(), timeout=timeout)
            return None
        except grpc.RpcError as err:
            return err

    def read_distribution(self):
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port, timeout=30).read().decode()
        counts = {}
        for labels, value in re.findall(r'^gitaly_praefect_read_distribution\{([^}]*)\} (\S+)$', text, re.M):
            fields = dict(re.findall(r'(\w+)="([^"]*)"', labels))
            if fields.get("virtual_storage") == "default":
                counts[fields["storage"]] = int(float(value))
        return counts

    def reads(self, rel, n):
        """n accessor calls through praefect; the nodes that served them
        (read distribution delta), or the first error."""
        import grpc
        import ref_pb2
        import ref_pb2_grpc
        stub = ref_pb2_grpc.RefServiceStub(self.channel)
        before = self.read_distribution()
        for _ in range(n):
            try:
                stub.FindDefaultBranchName(ref_pb2.FindDefaultBranchNameRequest(repository=self.repository(rel)),
                                           metadata=auth(), timeout=30)
            except grpc.RpcError as err:
                return err
        after = self.read_distribution()
        return {s: after[s] - before.get(s, 0) for s in after if after[s] != before.get(s, 0)}

    def repo_row(self, rel):
        rows = self.pg.rows("SELECT repository_id, \"primary\", generation FROM repositories "
                            "WHERE relative_path = '%s'" % rel)
        return rows[0]

    def generations(self, rel):
        return dict(self.pg.rows("SELECT s.storage, s.generation FROM storage_repositories s JOIN repositories r "
                                 "USING (repository_id) WHERE r.relative_path = '%s'" % rel))

    def wait_until(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            got = predicate()
            if got:
                return got
            self.assertLess(time.monotonic(), deadline, what())
            time.sleep(0.05)

    def wait_replicated(self, rel):
        def done():
            gens = self.generations(rel)
            return len(gens) == 3 and len(set(gens.values())) == 1
        self.wait_until(done, 60, lambda: "%s replicated to every node: %r" % (rel, self.generations(rel)))

    def secondary(self, rel):
        primary = self.repo_row(rel)[1]
        return next(n.name for n in self.nodes if n.name != primary)

    def make_only_up_to_date(self, rel, storage, extra_sql=""):
        """SQL straight to PostgreSQL (not through praefect): `storage` one
        generation ahead of the other replicas, as if it alone took a write
        (the other praefects' kind of change)."""
        rid = self.repo_row(rel)[0]
        self.pg.psql("BEGIN; UPDATE storage_repositories SET generation = generation + 1 "
                     "WHERE repository_id = %s AND storage = '%s'; "
                     "UPDATE repositories SET generation = generation + 1 WHERE repository_id = %s; %s COMMIT"
                     % (rid, storage, rid, extra_sql), "praefect")

    def assert_reads_only_from(self, rel, storage, n=30):
        """n reads in a row, every one served by `storage`. Waits (up to
        10 s) for the first such read: a notification takes a moment, but
        a stale cache never heals on its own."""
        self.wait_until(lambda: self.reads(rel, 1) == {storage: 1}, 10,
                        lambda: "reads of %s go to %s, the only up-to-date replica (generations %r): last read %r"
                        % (rel, storage, self.generations(rel), self.reads(rel, 1)))
        self.assertEqual(self.reads(rel, n), {storage: n}, "every read served by the only up-to-date replica")

    def assert_retryable(self, err):
        """A refusal while the database cannot be reached: UNAVAILABLE,
        naming the database and saying to retry."""
        self.assertEqual(err.code().name, "UNAVAILABLE", err.details())
        self.assertIn("database", err.details())
        self.assertIn("retry", err.details().lower())

    def wait_writes(self, rel, oid, ref_prefix):
        """Writes until one is acknowledged, each refusal retryable; returns
        (seconds, refusals)."""
        start = time.monotonic()
        errors = []
        i = 0
        while True:
            i += 1
            err = self.write_ref(rel, "refs/heads/%s-%d" % (ref_prefix, i), oid, timeout=15)
            if err is None:
                return time.monotonic() - start, errors
            errors.append(err)
            self.assert_retryable(err)
            self.assertLess(time.monotonic() - start, 60, "writes work again: %s" % err)
            time.sleep(0.1)

    # --- tests ----------------------------------------------------------

    def test_1_everything_works_through_pgbouncer(self):
        code, out = self.cmd("sql-ping")
        self.assertEqual((code, out.strip()), (0, "praefect sql-ping: OK"))
        code, out = self.cmd("sql-migrate-status")
        self.assertEqual(code, 0, out)
        rel = "pgb/basics.git"
        oid = self.new_repo(rel)
        for i in range(10):
            self.assertIsNone(self.write_ref(rel, "refs/heads/b%d" % i, oid))
        self.wait_replicated(rel)
        replica = self.pg.psql("SELECT replica_path FROM repositories WHERE relative_path = '%s'" % rel, "praefect")
        refs = [subprocess.run(["git", "--git-dir=" + os.path.join(n.storage, replica), "for-each-ref"],
                               stdout=subprocess.PIPE, check=True).stdout for n in self.nodes]
        self.assertEqual(len(set(refs)), 1, "every replica has every write")
        self.assertEqual(refs[0].count(b"refs/heads/b"), 10)
        served = self.reads(rel, 30)
        self.assertEqual(sum(served.values()), 30, served)
        clone = os.path.join(self.root, "clone-basics")
        self.git("clone", "-q", "gitaly://127.0.0.1:%d/default/%s" % (self.port, rel), clone)
        self.assertEqual(self.git("rev-parse", "origin/main", cwd=clone), oid)
        code, out = self.cmd("replication-backlog")
        self.assertEqual(code, 0, out)
        code, out = self.cmd("set-replication-factor", "-virtual-storage", "default", "-repository", rel,
                             "-replication-factor", "2")
        self.assertEqual(code, 0, out)
        self.assertRegex(out, r"^current assignments: gitaly-\d, gitaly-\d\n$")
        self.assertEqual(len(self.pg.rows("SELECT storage FROM repository_assignments a JOIN repositories r "
                                          "USING (repository_id) WHERE r.relative_path = '%s'" % rel)), 2)
        # sql-migrate again, with the transaction pool busy: its session
        # lock must not be left behind on one of PgBouncer's server
        # connections (it would block every later sql-migrate).
        code, out = self.cmd("sql-migrate")
        self.assertEqual((code, "OK (applied 0 migrations)" in out), (0, True), out)
        self.assertEqual(self.pg.rows("SELECT pid, granted FROM pg_locks WHERE locktype = 'advisory'"), [],
                         "no advisory lock left behind")
        # The connections really go through PgBouncer, to the pools the
        # setup names: queries in transaction pooling, LISTEN in session
        # pooling (a) or straight to PostgreSQL (b).
        clients = self.bouncer.clients()
        self.assertGreater(clients.get(PgBouncer.TX_DB, 0), 0, clients)
        activity = self.pg.rows("SELECT application_name, client_port, left(regexp_replace(query, '\\s+', ' ', 'g'), 60) "
                                "FROM pg_stat_activity WHERE backend_type = 'client backend'")
        listeners = [a for a in activity if a[2].startswith("LISTEN")]
        self.assertEqual(len(listeners), 2, "praefect LISTENs on two channels: %r" % activity)
        if self.SESSION == "pgbouncer":
            self.assertEqual(clients.get(PgBouncer.SESSION_DB, 0), 2, clients)
        else:
            self.assertNotIn(PgBouncer.SESSION_DB, clients)
        self.assertNotIn("prepared statement", self.log())
        self.assertIn("reads distribution caching is enabled by configuration", self.log())
        self.assertNotIn("reads distribution cache disabled", self.log())

    def test_2_pgbouncer_restart(self):
        rel = "pgb/bouncer-restart.git"
        oid = self.new_repo(rel)
        self.assertEqual(sum(self.reads(rel, 20).values()), 20)  # cached now
        target = self.secondary(rel)
        self.bouncer.stop()
        # Changed behind praefect's back while PgBouncer is down: in setup
        # (a) praefect's LISTEN is down too and misses the notification.
        self.make_only_up_to_date(rel, target, "UPDATE repositories SET \"primary\" = '%s' "
                                  "WHERE relative_path = '%s';" % (target, rel))
        down = self.write_ref(rel, "refs/heads/during-bouncer-outage", oid, timeout=15)
        self.assertIsNotNone(down, "no write is acknowledged while the database cannot be reached")
        self.assert_retryable(down)
        self.bouncer.start()
        # Reads first: a write now would replicate to the other replicas.
        self.assert_reads_only_from(rel, target)
        took, errors = self.wait_writes(rel, oid, "after-bouncer")
        print("[%s] PgBouncer restart: first write acknowledged %.2f s after PgBouncer was back, %d refused "
              "before (%s); during the outage: %s %s" % (self.SESSION, took, len(errors),
                                                         sorted(set(e.code().name for e in errors)),
                                                         down.code().name, down.details()), file=sys.stderr)
        self.assertEqual(self.repo_row(rel)[1], target, "the write went to the primary set in SQL")

    def test_3_postgres_restart(self):
        rel = "pgb/postgres-restart.git"
        oid = self.new_repo(rel)
        self.assertEqual(sum(self.reads(rel, 20).values()), 20)
        primary = self.repo_row(rel)[1]
        self.pg.stop()
        down = self.write_ref(rel, "refs/heads/during-pg-outage", oid, timeout=30)
        self.assertIsNotNone(down, "no write is acknowledged while PostgreSQL is down")
        self.assert_retryable(down)
        self.pg.start()
        took, errors = self.wait_writes(rel, oid, "after-pg")
        print("[%s] PostgreSQL restart: first write acknowledged %.2f s after PostgreSQL was back, %d refused "
              "before (%s); during the outage: %s %s" % (self.SESSION, took, len(errors),
                                                         sorted(set(e.code().name for e in errors)),
                                                         down.code().name, down.details()), file=sys.stderr)
        self.assertEqual(self.repo_row(rel)[1], primary, "the primary did not change")
        self.wait_replicated(rel)
        # The LISTEN connection is back (through PgBouncer's session pool
        # in setup (a)): a change made now reaches the cache.
        target = self.secondary(rel)
        self.make_only_up_to_date(rel, target)
        self.assert_reads_only_from(rel, target)

    def test_4_listen_connection_cut(self):
        rel = "pgb/listen-cut.git"
        self.new_repo(rel)
        self.assertEqual(sum(self.reads(rel, 20).values()), 20)
        target = self.secondary(rel)
        # One transaction: the LISTEN backend is terminated (and gone:
        # pg_terminate_backend waits), then the change commits, so its
        # notification most likely reaches no listener.
        self.make_only_up_to_date(rel, target, "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                                  "WHERE query LIKE 'LISTEN%repositories_updates%';")
        self.assert_reads_only_from(rel, target)


class TransactionAndSessionPools(PgBouncerSetup, unittest.TestCase):
    """(a): queries through the transaction pool, LISTEN through the
    session pool."""
    SESSION = "pgbouncer"


class TransactionPoolAndDirect(PgBouncerSetup, unittest.TestCase):
    """(b): queries through the transaction pool, LISTEN straight to
    PostgreSQL."""
    SESSION = "direct"


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
