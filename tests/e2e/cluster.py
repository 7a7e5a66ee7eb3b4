"""What the e2e tests of a whole cluster share (praefect_failover_test.py,
transactions_test.py): praefect processes with their config, and the
helpers of a test case over PostgreSQL, storage nodes, praefects and git.

A test case class using ClusterHelpers sets, in setUpClass: root (its
temporary directory), pg (harness.Postgres), env (git's environment),
nodes (harness.StorageNode), praefects (Praefect).
"""
import os
import re
import signal
import subprocess
import time
import urllib.request

from harness import bearer, free_port

CLIENT_TOKEN = "client-secret"
NODE_TOKEN = "node-secret"


def auth():
    return [("authorization", bearer(CLIENT_TOKEN))]


class Pushed:
    """A git push's outcome: true when acknowledged; repr shows git's
    stderr (for assertion messages)."""

    def __init__(self, ok, err):
        self.ok, self.err = ok, err

    def __bool__(self):
        return self.ok

    def __repr__(self):
        return "push %s: %s" % ("acknowledged" if self.ok else "refused", self.err[-2000:])


class Praefect:
    """One praefect process: its config file (rewritten by tests that change
    it), log and ports."""

    def __init__(self, bin_dir, root, name, pgdir, dbname="praefect"):
        self.bin_dir = bin_dir
        self.name = name
        self.port = free_port()
        self.metrics_port = free_port()
        self.pgdir = pgdir
        self.dbname = dbname
        self.config = os.path.join(root, name + ".toml")
        self.logpath = os.path.join(root, name + ".log")
        self.proc = None
        self.channel = None

    def write_config(self, nodes, failover=True, primary=None, replication_factors=(("default", 0), ("rf", 2)),
                     extra=""):
        """nodes: [(storage, address)]; one [[virtual_storage]] per entry of
        replication_factors, each over all the nodes; `extra` (TOML tables)
        at the end."""
        text = ('listen_addr = "127.0.0.1:%d"\nprometheus_listen_addr = "127.0.0.1:%d"\n'
                '[auth]\ntoken = "%s"\n'
                '[failover]\nenabled = %s\n'
                '[database]\nhost = "%s"\nuser = "postgres"\ndbname = "%s"\nsslmode = "disable"\n'
                '[database.session_pooled]\nhost = "%s"\nuser = "postgres"\ndbname = "%s"\nsslmode = "disable"\n'
                % (self.port, self.metrics_port, CLIENT_TOKEN, "true" if failover else "false",
                   self.pgdir, self.dbname, self.pgdir, self.dbname))
        for vs, factor in replication_factors:
            text += '[[virtual_storage]]\nname = "%s"\n' % vs
            if factor:
                text += "default_replication_factor = %d\n" % factor
            for storage, address in nodes:
                text += '[[virtual_storage.node]]\nstorage = "%s"\naddress = "%s"\ntoken = "%s"\n' % (
                    storage, address, NODE_TOKEN)
                if storage == primary:
                    text += "primary = true\n"
        with open(self.config, "w") as f:
            f.write(text + extra)

    def cmd(self, *args):
        r = subprocess.run([os.path.join(self.bin_dir, "praefect"), "-config", self.config] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        return r.returncode, r.stdout.decode()

    def start(self):
        """Starts praefect and waits until it serves. A port free_port()
        found free can be taken by a test running beside this one before
        praefect binds it (CI saw it): praefect then exits saying so, and
        it is started again on new ports."""
        import grpc
        for attempt in range(3):
            with open(self.logpath, "a") as log:
                log.write("=== start %s\n" % time.strftime("%H:%M:%S"))
                log.flush()
                self.proc = subprocess.Popen([os.path.join(self.bin_dir, "praefect"), "-config", self.config], stdout=log,
                                             stderr=subprocess.STDOUT)
            self.channel = grpc.insecure_channel("127.0.0.1:%d" % self.port)
            try:
                grpc.channel_ready_future(self.channel).result(timeout=30)
                return
            except grpc.FutureTimeoutError:
                if self.proc.poll() is None or "Address already in use" not in self.log().split("=== start")[-1] \
                        or attempt == 2:
                    raise
            self.channel.close()
            self.move_ports()

    def move_ports(self):
        """New listen and metrics ports, in the config file too."""
        with open(self.config) as f:
            text = f.read()
        old = (self.port, self.metrics_port)
        self.port, self.metrics_port = free_port(), free_port()
        text = text.replace("127.0.0.1:%d" % old[0], "127.0.0.1:%d" % self.port)
        text = text.replace("127.0.0.1:%d" % old[1], "127.0.0.1:%d" % self.metrics_port)
        with open(self.config, "w") as f:
            f.write(text)

    def stop(self):
        """SIGTERM; returns the exit code (None when not running)."""
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return "hung on SIGTERM"

    def log(self):
        with open(self.logpath, errors="replace") as f:
            return f.read()

    def read_distribution(self, virtual_storage="default"):
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port, timeout=30).read().decode()
        counts = {}
        for labels, value in re.findall(r'^gitaly_praefect_read_distribution\{([^}]*)\} (\S+)$', text, re.M):
            fields = dict(re.findall(r'(\w+)="([^"]*)"', labels))
            if fields.get("virtual_storage") == virtual_storage:
                counts[fields["storage"]] = float(value)
        return counts



class ClusterHelpers:
    """Mixed into a unittest.TestCase: the database, git and gRPC helpers."""

    def wait_seen_healthy(self, storage, timeout=150):
        """Waits until every praefect's latest check (node_status) saw
        `storage` healthy after now; returns when (monotonic), or None when
        no praefect records its checks (node_status empty)."""
        if self.sql("SELECT count(*) FROM node_status") == [("0",)]:
            return None
        since = self.sql("SELECT now()")[0][0]
        names = ["%%:127.0.0.1:%d" % p.port for p in self.praefects]
        query = ("SELECT count(*) FROM node_status WHERE shard_name = 'default' AND node_name = '%s' AND "
                 "last_seen_active_at > '%s' AND (%s)" % (
                     storage, since, " OR ".join("praefect_name LIKE '%s'" % n for n in names)))
        self.wait_until(lambda: self.sql(query) == [(str(len(names)),)], timeout,
                        lambda: "every praefect sees %s healthy: %r" % (
                            storage, self.sql("SELECT * FROM node_status ORDER BY 1, 3")))
        return time.monotonic()

    # --- database -------------------------------------------------------

    def sql(self, query, db="praefect"):
        return self.pg.rows(query, db)

    def repo_info(self, rel, vs="default", db="praefect"):
        """{id, replica_path, primary, generation} of a repository, or None."""
        rows = self.sql("SELECT repository_id, replica_path, COALESCE(\"primary\", ''), COALESCE(generation, -1) "
                        "FROM repositories WHERE virtual_storage = '%s' AND relative_path = '%s'" % (vs, rel), db)
        if not rows:
            return None
        rid, replica, primary, generation = rows[0]
        return {"id": int(rid), "replica_path": replica, "primary": primary, "generation": int(generation)}

    def generations(self, rel, vs="default", db="praefect"):
        """{storage: generation} of the repository's replicas."""
        return {s: int(g) for s, g in self.sql(
            "SELECT storage, generation FROM storage_repositories WHERE virtual_storage = '%s' "
            "AND relative_path = '%s'" % (vs, rel), db)}

    def primary(self, rel, vs="default"):
        info = self.repo_info(rel, vs)
        return info["primary"] if info else None

    def all_latest(self, rel, storages, vs="default"):
        info = self.repo_info(rel, vs)
        gens = self.generations(rel, vs)
        return info is not None and all(gens.get(s) == info["generation"] for s in storages)

    # --- git and grpc ---------------------------------------------------

    def git(self, *args, cwd=None, check=True):
        r = subprocess.run(["git"] + list(args), cwd=cwd, env=self.env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        if check and r.returncode != 0:
            self.fail("git %s failed (%d): %s" % (" ".join(args), r.returncode, r.stderr.decode()))
        return r

    def url(self, praefect, rel, vs="default"):
        return "gitaly://127.0.0.1:%d/%s/%s" % (praefect.port, vs, rel)

    def create(self, praefect, rel, vs="default"):
        import repository_service_pb2 as rs
        import repository_service_pb2_grpc as rs_grpc
        import shared_pb2
        rs_grpc.RepositoryServiceStub(praefect.channel).CreateRepository(
            rs.CreateRepositoryRequest(repository=shared_pb2.Repository(storage_name=vs, relative_path=rel)),
            metadata=auth(), timeout=30)

    def work(self, name):
        work = os.path.join(self.root, "work-" + name.replace("/", "-"))
        self.git("init", "-q", "-b", "main", work)
        return work

    def commit(self, work, message):
        self.git("commit", "-q", "--allow-empty", "-m", message, cwd=work)
        return self.git("rev-parse", "HEAD", cwd=work).stdout.decode().strip()

    def push(self, praefect, rel, work, refspec="HEAD:refs/heads/main", vs="default"):
        """git push; true when acknowledged (exit 0)."""
        try:
            r = subprocess.run(["git", "push", "-q", self.url(praefect, rel, vs), refspec], cwd=work, env=self.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        except subprocess.TimeoutExpired:
            return Pushed(False, "timed out after 60 s")
        return Pushed(r.returncode == 0, r.stderr.decode(errors="replace").strip())

    def new_repo(self, praefect, rel, vs="default"):
        """Created through `praefect` with one pushed commit; returns the work
        tree."""
        self.create(praefect, rel, vs)
        work = self.work(vs + "-" + rel)
        self.commit(work, "root")
        self.assertTrue(self.push(praefect, rel, work, vs=vs), "first push to " + rel)
        return work

    def replica_dir(self, node, rel, vs="default"):
        return os.path.join(node.storage, self.repo_info(rel, vs)["replica_path"])

    def refs(self, node, rel, vs="default"):
        path = self.replica_dir(node, rel, vs)
        if not os.path.isdir(path):
            return None
        return subprocess.run(["git", "--git-dir=" + path, "for-each-ref", "--format=%(objectname) %(refname)"],
                              stdout=subprocess.PIPE, env=self.env).stdout.decode()

    def tip(self, node, replica_path, ref):
        r = subprocess.run(["git", "--git-dir=" + os.path.join(node.storage, replica_path), "rev-parse", "-q",
                            "--verify", ref], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=self.env)
        return r.stdout.decode().strip() if r.returncode == 0 else None

    def contains(self, node, replica_path, ancestor, tip):
        return subprocess.run(["git", "--git-dir=" + os.path.join(node.storage, replica_path), "merge-base",
                               "--is-ancestor", ancestor, tip], stderr=subprocess.DEVNULL,
                              env=self.env).returncode == 0

    def wait_until(self, cond, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            got = cond()
            if got:
                return got
            if time.monotonic() > deadline:
                self.fail("%s (waited %d s)" % (what() if callable(what) else what, timeout))
            time.sleep(0.05)

    def wait_replicated(self, rel, storages=None, vs="default", timeout=60):
        storages = storages or [n.name for n in self.nodes]
        self.wait_until(lambda: self.all_latest(rel, storages, vs), timeout,
                        lambda: "%s at the latest generation on %s: %r, %r" % (
                            rel, storages, self.repo_info(rel, vs), self.generations(rel, vs)))

    def reads(self, praefect, rel, n):
        """n accessor calls (FindDefaultBranchName) through `praefect`;
        returns the read distribution's delta per storage."""
        import ref_pb2
        import ref_pb2_grpc
        import shared_pb2
        stub = ref_pb2_grpc.RefServiceStub(praefect.channel)
        before = praefect.read_distribution()
        request = ref_pb2.FindDefaultBranchNameRequest(
            repository=shared_pb2.Repository(storage_name="default", relative_path=rel))
        for _ in range(n):
            self.assertEqual(stub.FindDefaultBranchName(request, metadata=auth(), timeout=30).name,
                             b"refs/heads/main")
        after = praefect.read_distribution()
        return {n.name: int(after.get(n.name, 0) - before.get(n.name, 0)) for n in self.nodes}
