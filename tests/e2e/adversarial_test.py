#!/usr/bin/python3
"""praefect against an adversarial client: a throwaway PostgreSQL, three
praefect-storage-node processes, praefect in front of them, and a client that
is not ours (Python grpcio; raw bytes where protobuf cannot say it: invalid
UTF-8, truncated or malformed messages, wrong wire types) probing praefect
the way an attacker or a broken client would: tokens, path-like fields,
storages, method names, malformed and oversized messages, broken streams.

Every case is one row of a table and is checked the same way (run_case):
  (a) the exact gRPC status code;
  (b) praefect is still running and answers an authenticated call;
  (c) no storage node's disk changed (every storage tree but "+gitaly/",
      the nodes' scratch space: paths, file sizes and mtimes);
  (d) no row of repositories, storage_repositories, replication_queue or
      repository_assignments changed.
A praefect (or node) that died in a case is started again, so that one crash
does not hide the verdicts of the cases after it. A summary of every failing
case is printed at the end.

usage: adversarial_test.py BIN_DIR GITALY_PROTO_DIR WORK_DIR
  (BIN_DIR holds praefect, praefect-storage-node, git-remote-gitaly)
"""
import hashlib
import hmac
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Postgres, StorageNode, free_port, generate_stubs  # noqa: E402

BIN, PROTO_DIR, WORK = (os.path.abspath(a) for a in sys.argv[1:4])
CLIENT_TOKEN = "client-secret"
NODE_TOKEN = "node-secret"
KIB = 1024
MIB = 1024 * 1024
SANITIZED = os.environ.get("PRAEFECT_SANITIZED") == "1"

CREATE = "/gitaly.RepositoryService/CreateRepository"
EXISTS = "/gitaly.RepositoryService/RepositoryExists"
WRITE_REF = "/gitaly.RepositoryService/WriteRef"
REMOVE = "/gitaly.RepositoryService/RemoveRepository"
RENAME = "/gitaly.RepositoryService/RenameRepository"
FORK = "/gitaly.RepositoryService/CreateFork"
FROM_BUNDLE = "/gitaly.RepositoryService/CreateRepositoryFromBundle"
DEFAULT_BRANCH = "/gitaly.RefService/FindDefaultBranchName"
ADD_NAMESPACE = "/gitaly.NamespaceService/AddNamespace"
REMOVE_NAMESPACE = "/gitaly.NamespaceService/RemoveNamespace"
RECEIVE_PACK = "/gitaly.SSHService/SSHReceivePack"
HEALTH = "/grpc.health.v1.Health/Check"
SERVING = b"\x08\x01"  # HealthCheckResponse{status: SERVING}; RepositoryExistsResponse{exists: true}

INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1


# ---- Protobuf wire format, by hand -----------------------------------------

def varint(n):
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        if n == 0:
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


def tag(field, wire_type):
    return varint(field << 3 | wire_type)


def ld(field, data):
    """A length-delimited field (string, bytes, message)."""
    if isinstance(data, str):
        data = data.encode()
    return tag(field, 2) + varint(len(data)) + data


def repository(storage, path):
    """gitaly.Repository: storage_name = 2, relative_path = 3."""
    return ld(2, storage) + ld(3, path)


def with_repo(storage, path, rest=b""):
    """A request whose field 1 is the repository (most Gitaly requests)."""
    return ld(1, repository(storage, path)) + rest


def padded(message, total):
    """`message` with an unknown bytes field 15 appended, `total` bytes long."""
    for header in range(2, 7):
        body = total - len(message) - header
        if len(tag(15, 2) + varint(body)) == header:
            out = message + tag(15, 2) + varint(body) + b"\xa5" * body
            assert len(out) == total
            return out
    raise AssertionError("cannot pad to %d" % total)


# ---- Tokens ------------------------------------------------------------------

def signed(secret, ts, version="v2", prefix="Bearer "):
    """A token over timestamp text `ts`, signed as Gitaly does (independently
    of praefect's code): HMAC-SHA256(secret, ts) in lower-case hex."""
    ts = str(ts)
    mac = hmac.new(secret.encode(), ts.encode(), hashlib.sha256).hexdigest()
    return "%s%s.%s.%s" % (prefix, version, mac, ts)


def now():
    return int(time.time())


def early_in_a_second():
    """Waits (at most a second) until the wall clock is early in a second, so
    that a token skewed by exactly 31 s is checked in the second it was made
    (server and client share this machine's clock). Not a wait for a
    condition of the system under test: it removes the chance of the clock
    ticking between signing and checking."""
    frac = time.time() % 1
    if frac > 0.4:
        time.sleep(1.02 - frac)


JUNK = "".join(chr(0x21 + (i * 37) % 94) for i in range(4 * KIB))

# (name, value(secret) -> authorization metadata or None, expected code name)
TOKEN_CASES = [
    ("no authorization metadata", lambda s: None, "UNAUTHENTICATED"),
    ("'Bearer'", lambda s: "Bearer", "UNAUTHENTICATED"),
    ("'Bearer v2'", lambda s: "Bearer v2", "UNAUTHENTICATED"),
    ("'Bearer v2.abc'", lambda s: "Bearer v2.abc", "UNAUTHENTICATED"),
    ("'Basic xyz'", lambda s: "Basic xyz", "UNAUTHENTICATED"),
    ("valid token without 'Bearer '", lambda s: signed(s, now(), prefix=""), "UNAUTHENTICATED"),
    ("'Bearer v1.<hex>.<ts>'", lambda s: signed(s, now(), version="v1"), "UNAUTHENTICATED"),
    ("timestamp with letters (signed)", lambda s: signed(s, "%dab" % now()), "UNAUTHENTICATED"),
    ("timestamp '+<ts>' (signed)", lambda s: signed(s, "+%d" % now()), "UNAUTHENTICATED"),
    ("empty timestamp (signed)", lambda s: signed(s, ""), "UNAUTHENTICATED"),
    ("4 KiB of junk", lambda s: "Bearer " + JUNK, "UNAUTHENTICATED"),
    ("signed with the wrong secret", lambda s: signed("not-" + s, now()), "PERMISSION_DENIED"),
    ("signed, now-31", lambda s: signed(s, now() - 31), "PERMISSION_DENIED"),
    ("signed, now+31", lambda s: (early_in_a_second(), signed(s, now() + 31))[1], "PERMISSION_DENIED"),
    ("signed, now-25", lambda s: signed(s, now() - 25), "OK"),
    ("signed, now+25", lambda s: signed(s, now() + 25), "OK"),
    ("signed, ts -9223372036854775808", lambda s: signed(s, INT64_MIN), "PERMISSION_DENIED"),
    ("signed, ts 9223372036854775807", lambda s: signed(s, INT64_MAX), "PERMISSION_DENIED"),
    ("signed, ts -1", lambda s: signed(s, -1), "PERMISSION_DENIED"),
    ("signed, ts 0", lambda s: signed(s, 0), "PERMISSION_DENIED"),
    ("signed, ts 99999999999999999999 (> int64)", lambda s: signed(s, "99999999999999999999"), "UNAUTHENTICATED"),
]

# ---- Paths -------------------------------------------------------------------

PATH_3000 = "/".join(["p" * 199] * 15) + "a"
PATH_SEGMENT_300 = "ns/" + "s" * 296 + ".git"
PATH_LONG_OK = "/".join(["%d" % i + "l" * 245 + ".git" for i in range(7)])
assert len(PATH_3000) == 3000 and len(PATH_SEGMENT_300) == 303 and 1700 < len(PATH_LONG_OK) < 1800

BAD_PATHS = [
    ("empty", ""),
    ("'.'", "."),
    ("'..'", ".."),
    ("'../../etc'", "../../etc"),
    ("'/etc/passwd'", "/etc/passwd"),
    ("'a/../../b'", "a/../../b"),
    ("'x/./../../../y'", "x/./../../../y"),
    ("'a/./b'", "a/./b"),
    ("'a//b'", "a//b"),
    ("'a/b/'", "a/b/"),
    ("newline", "new\nline"),
    ("tab", "tab\tbed"),
    ("NUL inside", "nul\x00byte.git"),
    ("'legit.git' NUL 'evil'", "legit.git\x00evil"),
    ("'+gitaly/evil.git'", "+gitaly/evil.git"),
    ("DEL (0x7f)", "\x7f"),
    ("invalid UTF-8", b"\xff\xfe.git"),
    ("3000 bytes", PATH_3000),
    ("a 300-byte segment", PATH_SEGMENT_300),
]


class Outcome:
    def __init__(self, code, details="", response=None):
        self.code, self.details, self.response = code, details, response


class AdversarialTest(unittest.TestCase):
    results = []  # (case, passed, problems, status code got), printed at the end

    # ---- Setup -------------------------------------------------------------

    @classmethod
    def setUpClass(cls):
        cls.started = time.monotonic()
        cls.root = tempfile.mkdtemp(prefix="e2e-adversarial-", dir=WORK)
        cls.pg, cls.nodes, cls.praefect, cls.channel, cls.node_channel = None, [], None, None, None
        try:
            cls.set_up()
        except BaseException:
            cls.stop_everything()
            shutil.rmtree(cls.root, ignore_errors=True)
            raise

    @classmethod
    def stop_everything(cls):
        """Stops what setUpClass started; returns praefect's exit status."""
        code = 0
        for channel in (cls.channel, cls.node_channel):
            if channel is not None:
                channel.close()
        if cls.praefect is not None and cls.praefect.poll() is None:
            cls.praefect.send_signal(signal.SIGTERM)
            code = cls.praefect.wait(timeout=60)
        for node in cls.nodes:
            if node.proc is not None:
                node.stop()
        if cls.pg is not None:
            cls.pg.destroy()
        return code

    @classmethod
    def set_up(cls):
        import grpc
        generate_stubs(PROTO_DIR, os.path.join(cls.root, "gen"))
        cls.pg = Postgres(cls.root)
        cls.home = os.path.join(cls.root, "home")
        os.makedirs(cls.home)
        cls.env = dict(os.environ, PATH=BIN + ":" + os.environ["PATH"], HOME=cls.home, GIT_CONFIG_NOSYSTEM="1",
                       GIT_AUTHOR_NAME="E2E", GIT_AUTHOR_EMAIL="e2e@example.com", GIT_COMMITTER_NAME="E2E",
                       GIT_COMMITTER_EMAIL="e2e@example.com", GITALY_TOKEN=CLIENT_TOKEN)
        for i in (1, 2, 3):
            cls.nodes.append(StorageNode(BIN, cls.root, i, NODE_TOKEN))
            cls.nodes[-1].start()
        cls.port = free_port()
        cls.config = os.path.join(cls.root, "praefect.toml")
        with open(cls.config, "w") as f:
            f.write('listen_addr = "127.0.0.1:%d"\n[auth]\ntoken = "%s"\n'
                    '[database]\nhost = "%s"\nuser = "postgres"\ndbname = "praefect"\nsslmode = "disable"\n'
                    '[[virtual_storage]]\nname = "default"\n' % (cls.port, CLIENT_TOKEN, cls.pg.dir))
            for node in cls.nodes:
                f.write('[[virtual_storage.node]]\nstorage = "%s"\naddress = "%s"\ntoken = "%s"\n'
                        % (node.name, node.address, NODE_TOKEN))
        out = subprocess.run([os.path.join(BIN, "praefect"), "-config", cls.config, "sql-migrate"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120).stdout.decode()
        assert "OK (applied" in out, out
        cls.log_path = os.path.join(cls.root, "praefect.log")
        cls.crashes = []
        cls.start_praefect()
        cls.channel = grpc.insecure_channel("127.0.0.1:%d" % cls.port,
                                            options=[("grpc.max_send_message_length", -1)])
        cls.node_channel = grpc.insecure_channel(cls.nodes[0].address[len("tcp://"):])
        cls.make_legit_repository()

    @classmethod
    def start_praefect(cls):
        import grpc
        with open(cls.log_path, "a") as log:
            cls.praefect = subprocess.Popen([os.path.join(BIN, "praefect"), "-config", cls.config],
                                            stdout=log, stderr=subprocess.STDOUT)
        with grpc.insecure_channel("127.0.0.1:%d" % cls.port) as ch:
            grpc.channel_ready_future(ch).result(timeout=30)

    @classmethod
    def make_legit_repository(cls):
        """legit.git: created through praefect, one pushed commit on main,
        converged on all three nodes, no job left."""
        import grpc
        deadline = time.monotonic() + 30
        while True:  # the nodes' first health checks may not have passed yet
            try:
                cls.channel.unary_unary(CREATE)(with_repo("default", "legit.git"), metadata=cls.auth(), timeout=30)
                break
            except grpc.RpcError as err:
                if err.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        work = os.path.join(cls.root, "work-legit")
        for args in (["init", "-q", "-b", "main", work], ["-C", work, "commit", "-q", "--allow-empty", "-m", "root"],
                     ["-C", work, "push", "-q", "gitaly://127.0.0.1:%d/default/legit.git" % cls.port, "main"]):
            subprocess.run(["git"] + args, env=cls.env, check=True, stdout=subprocess.DEVNULL)
        cls.legit_commit = subprocess.run(["git", "-C", work, "rev-parse", "HEAD"], env=cls.env, check=True,
                                          stdout=subprocess.PIPE).stdout.decode().strip()
        cls.legit_replica = cls.pg.psql("SELECT replica_path FROM repositories WHERE relative_path = 'legit.git'",
                                        "praefect")
        assert cls.legit_replica, "legit.git is registered"
        deadline = time.monotonic() + 60
        while True:
            converged = True
            for node in cls.nodes:
                r = subprocess.run(["git", "--git-dir=" + os.path.join(node.storage, cls.legit_replica), "rev-parse",
                                    "refs/heads/main"], env=cls.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                converged = converged and r.stdout.decode().strip() == cls.legit_commit
            if converged and cls.pg.psql("SELECT count(*) FROM replication_queue", "praefect") == "0":
                break
            assert time.monotonic() < deadline, "legit.git converged on every node"
            time.sleep(0.05)

    @classmethod
    def tearDownClass(cls):
        code = cls.stop_everything()
        failed = [(c, m) for c, ok, m, _ in cls.results if not ok]
        print("\n==== adversarial cases (verdict, case, status code got) ====", file=sys.stderr)
        for case, ok, _, got in cls.results:
            print("%-4s %s -> %s" % ("ok" if ok else "FAIL", case.encode("unicode_escape").decode(), got),
                  file=sys.stderr)
        print("\n==== adversarial summary: %d cases, %d failed, %.1f s wall time ===="
              % (len(cls.results), len(failed), time.monotonic() - cls.started), file=sys.stderr)
        for case, message in failed:
            print("FAIL %s\n     %s" % (case, message.replace("\n", "\n     ")), file=sys.stderr)
        if code != 0 or cls.crashes or os.environ.get("PRAEFECT_E2E_LOG") == "1":
            with open(cls.log_path, errors="replace") as f:
                print(f.read()[-20000:], file=sys.stderr)
        if os.environ.get("PRAEFECT_E2E_KEEP") == "1":
            print("kept " + cls.root, file=sys.stderr)
        else:
            shutil.rmtree(cls.root, ignore_errors=True)
        assert code == 0, "praefect exited with %d after SIGTERM (sanitizer report?)" % code

    # ---- Calls ---------------------------------------------------------------

    @staticmethod
    def auth(secret=CLIENT_TOKEN):
        return [("authorization", signed(secret, now()))]

    @staticmethod
    def outcome(fn):
        """Runs fn() -> response; the outcome with its status code name."""
        import grpc
        try:
            return Outcome("OK", "", fn())
        except grpc.RpcError as err:
            return Outcome(err.code().name, err.details() or "")

    def unary(self, method, request, metadata=(), channel=None, timeout=30):
        channel = channel or self.channel
        return self.outcome(lambda: channel.unary_unary(method)(request, metadata=list(metadata), timeout=timeout))

    def legit_exists(self):
        """The liveness probe after every case: praefect answers an
        authenticated call that it answers itself."""
        out = self.unary(EXISTS, with_repo("default", "legit.git"), self.auth(), timeout=10)
        return out.code == "OK" and out.response == SERVING, out

    # ---- Snapshots -----------------------------------------------------------

    def disk(self):
        """Every node's storage tree but +gitaly/: paths, and sizes and mtimes
        of files."""
        snap = {}
        for node in self.nodes:
            for top, dirs, files in os.walk(node.storage):
                rel_top = os.path.relpath(top, node.storage)
                if rel_top == ".":
                    dirs[:] = [d for d in dirs if d != "+gitaly"]
                for name in dirs + files:
                    path = os.path.join(top, name)
                    key = os.path.normpath(os.path.join(node.name, rel_top, name))
                    try:
                        st = os.lstat(path)
                    except FileNotFoundError:
                        continue
                    if os.path.islink(path):
                        snap[key] = ("link", os.readlink(path))
                    elif name in dirs:
                        snap[key] = ("dir",)
                    else:
                        snap[key] = ("file", st.st_size, st.st_mtime_ns)
        return snap

    DB_TABLES = [
        ("repositories", "SELECT * FROM repositories ORDER BY 1"),
        # verified_at and the verification lease change with time only.
        ("storage_repositories", "SELECT repository_id, virtual_storage, relative_path, storage, generation "
                                 "FROM storage_repositories ORDER BY 1, 4"),
        # created_at and updated_at change with time only; no row should
        # appear at all for a refused call.
        ("replication_queue", "SELECT id, state, attempt, lock_id, job, meta FROM replication_queue ORDER BY 1"),
        ("repository_assignments", "SELECT * FROM repository_assignments ORDER BY 1, 4"),
    ]

    def db(self):
        script = "".join("\\echo #%s\n%s;\n" % (name, sql) for name, sql in self.DB_TABLES)
        out = subprocess.run(["psql", "-h", self.pg.dir, "-U", "postgres", "-d", "praefect", "-At",
                              "-v", "ON_ERROR_STOP=1", "-f", "-"], input=script.encode(), check=True,
                             stdout=subprocess.PIPE, timeout=30).stdout.decode(errors="replace")
        snap, table = {}, None
        for line in out.splitlines():
            if line.startswith("#") and line[1:] in dict(self.DB_TABLES):
                table = line[1:]
                snap[table] = []
            else:
                snap[table].append(line)
        return snap

    def quiet_db(self, timeout=30):
        """The database once no replication job is pending (a previous case
        that wrongly wrote something must not move this case's snapshot);
        dead jobs stay as they are."""
        deadline = time.monotonic() + timeout
        while True:
            snap = self.db()
            pending = [r for r in snap["replication_queue"] if r.split("|")[1] in ("ready", "in_progress", "failed")]
            if not pending or time.monotonic() > deadline:
                return snap
            time.sleep(0.05)

    @staticmethod
    def diff_disk(before, after, ignore_empty_dirs=False):
        """Added (+), removed (-) and changed (~) entries. With
        `ignore_empty_dirs`, added directories holding no file are not
        counted (Gitaly leaves a removed replica's empty hashed parents)."""
        added = set(after) - set(before)
        if ignore_empty_dirs:
            holding = {os.path.dirname(k) for k in after if after[k][0] != "dir"}
            while True:
                more = {os.path.dirname(k) for k in holding} - holding
                if not more or more == {""}:
                    break
                holding |= more
            added = {k for k in added if after[k][0] != "dir" or k in holding}
        lines = ["+ " + k for k in sorted(added)]
        lines += ["- " + k for k in sorted(set(before) - set(after))]
        lines += ["~ %s %r -> %r" % (k, before[k], after[k]) for k in sorted(set(before) & set(after))
                  if before[k] != after[k]]
        return lines

    @staticmethod
    def diff_db(before, after):
        lines = []
        for table, rows in after.items():
            lines += ["%s + %s" % (table, r[:200]) for r in rows if r not in before[table]]
            lines += ["%s - %s" % (table, r[:200]) for r in before[table] if r not in rows]
        return lines

    # ---- The case runner -----------------------------------------------------

    def ensure_up(self):
        restarted = False
        for node in self.nodes:
            if not node.alive():
                node.start()
                restarted = True
        if self.praefect.poll() is not None:
            self.start_praefect()
            restarted = True
        if restarted:
            self.wait_serving()

    def restart_praefect(self):
        """A fresh praefect: each RSS figure then starts from the same
        baseline, not from what an earlier case left in the heap. The
        client's connection is closed first: with an idle connection open,
        the graceful stop takes seconds."""
        import grpc
        cls = type(self)
        cls.channel.close()
        self.praefect.send_signal(signal.SIGTERM)
        code = self.praefect.wait(timeout=60)
        self.assertEqual(code, 0, "praefect exited with %d after SIGTERM" % code)
        self.start_praefect()
        cls.channel = grpc.insecure_channel("127.0.0.1:%d" % self.port, options=[("grpc.max_send_message_length", -1)])
        self.wait_serving()

    def wait_serving(self):
        """Polls until praefect routes reads of legit.git again (its channel
        reconnected, the nodes' health checks passed)."""
        deadline = time.monotonic() + 30
        while True:
            out = self.unary(DEFAULT_BRANCH, with_repo("default", "legit.git"), self.auth(), timeout=5)
            if out.code == "OK":
                return
            self.assertLess(time.monotonic(), deadline, "praefect serves legit.git again: %s %r"
                            % (out.code, out.details))
            time.sleep(0.05)

    def run_case(self, name, call, expect, check=None, details_any=None, settle=0.0, rss=None, after=None,
                 fresh=False, ignore_empty_dirs=False):
        """One row of a table. `call()` -> Outcome; `expect` a status code
        name or a set of names; `check(outcome)` -> a problem or None for an
        accepted call's answer; `details_any`: one of these must be in the
        error message; `settle`: seconds within which disk and database must
        come back to the snapshot (broken streams end asynchronously);
        `rss`: a (label, bound KiB or None) to measure praefect's peak RSS
        around the call; `after()` -> a problem or None, extra checks;
        `fresh`: restart praefect first; `ignore_empty_dirs`: see diff_disk."""
        with self.subTest(case=name):
            self.ensure_up()
            if fresh:
                self.restart_praefect()
            db_before = self.quiet_db()  # first: a job still running moves the disk
            disk_before = self.disk()
            meter = RssMeter(self.praefect.pid, *rss) if rss is not None else None
            out = call()
            type(self).last_details = out.details
            problems = [meter.finish()] if meter is not None else []
            expected = {expect} if isinstance(expect, str) else set(expect)
            if out.code not in expected:
                problems.append("expected %s, got %s: %r" % ("|".join(sorted(expected)), out.code, out.details[:300]))
            elif out.code == "OK" and check is not None:
                problems.append(check(out))
            elif details_any and not any(d in out.details for d in details_any):
                problems.append("%s message should name %s: %r" % (out.code, " or ".join(details_any),
                                                                    out.details[:300]))
            problems += self.still_serving(name)
            problems += self.unchanged(disk_before, db_before, settle, ignore_empty_dirs)
            if after is not None:
                problems.append(after())
            problems = [p for p in problems if p]
            self.results.append((name, not problems, "\n".join(problems), out.code))
            if problems:
                self.fail("%s:\n  %s" % (name, "\n  ".join(problems)))

    def still_serving(self, name):
        """(b): praefect and the nodes run; praefect answers an
        authenticated call."""
        problems = []
        code = self.praefect.poll()
        if code is not None:
            problems.append("praefect died (exit status %d); restarted for the next cases" % code)
            self.crashes.append(name)
        else:
            ok, probe = self.legit_exists()
            if not ok:
                problems.append("praefect no longer answers RepositoryExists(legit.git): %s %r"
                                % (probe.code, probe.details[:200]))
        dead = [n.name for n in self.nodes if not n.alive()]
        if dead:
            problems.append("storage node(s) died: %s" % dead)
        return problems

    def unchanged(self, disk_before, db_before, settle, ignore_empty_dirs=False):
        """(c) and (d): no node's disk and no database row changed (within
        `settle` seconds)."""
        deadline = time.monotonic() + settle
        while True:
            disk_diff = self.diff_disk(disk_before, self.disk(), ignore_empty_dirs)
            db_diff = self.diff_db(db_before, self.db())
            if not (disk_diff or db_diff) or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        problems = []
        if disk_diff:
            problems.append("a node's disk changed (%d entries): %s" % (len(disk_diff), "; ".join(disk_diff[:6])))
        if db_diff:
            problems.append("database rows changed: %s" % "; ".join(db_diff[:6]))
        return problems

    # ---- Tokens --------------------------------------------------------------

    def test_01_tokens(self):
        replica = self.legit_replica
        targets = [
            ("praefect FindDefaultBranchName (proxied)", self.channel, DEFAULT_BRANCH,
             with_repo("default", "legit.git"), CLIENT_TOKEN,
             lambda o: None if o.response == ld(1, "refs/heads/main") else "answer %r" % o.response),
            ("praefect RepositoryExists (answered by praefect)", self.channel, EXISTS,
             with_repo("default", "legit.git"), CLIENT_TOKEN,
             lambda o: None if o.response == SERVING else "exists is not true: %r" % o.response),
            ("node gitaly-1 RepositoryExists (direct)", self.node_channel, EXISTS,
             with_repo("gitaly-1", replica), NODE_TOKEN,
             lambda o: None if o.response == SERVING else "exists is not true: %r" % o.response),
        ]
        for target, channel, method, request, secret, check in targets:
            for name, value, expect in TOKEN_CASES:
                def call(value=value, channel=channel, method=method, request=request, secret=secret):
                    token = value(secret)
                    md = [] if token is None else [("authorization", token)]
                    return self.unary(method, request, md, channel=channel)
                self.run_case("token, %s: %s" % (target, name), call, expect, check=check)
        for target, channel in (("praefect", self.channel), ("node gitaly-1", self.node_channel)):
            self.run_case("health %s without a token" % target, lambda ch=channel: self.unary(HEALTH, b"", channel=ch),
                          "OK", check=lambda o: None if o.response == SERVING else "not SERVING: %r" % o.response)

    # ---- Paths ---------------------------------------------------------------

    def test_02_paths(self):
        write_ref_rest = ld(2, "refs/heads/adversarial") + ld(3, self.legit_commit)
        # CreateRepository last: the other three then meet a path that no
        # wrongly accepted creation has registered.
        methods = [
            ("RepositoryExists", EXISTS, b""),
            ("FindDefaultBranchName", DEFAULT_BRANCH, b""),
            ("WriteRef", WRITE_REF, write_ref_rest),
            ("CreateRepository", CREATE, b""),
        ]
        for path_name, path in BAD_PATHS:
            for method_name, method, rest in methods:
                after = None
                if isinstance(path, str) and path.startswith("legit.git"):
                    refs = self.legit_refs()
                    after = lambda refs=refs: (None if self.legit_refs() == refs else
                                               "legit.git's refs changed: %r -> %r" % (refs, self.legit_refs()))
                self.run_case("path %s: %s" % (path_name, method_name),
                              lambda m=method, p=path, r=rest: self.unary(m, with_repo("default", p, r), self.auth()),
                              "INVALID_ARGUMENT", after=after)

    def legit_refs(self):
        """legit.git's refs and HEAD on every node."""
        out = []
        for node in self.nodes:
            git_dir = "--git-dir=" + os.path.join(node.storage, self.legit_replica)
            for args in (["for-each-ref", "--format=%(objectname) %(refname)"], ["symbolic-ref", "HEAD"]):
                out.append(subprocess.run(["git", git_dir] + args, env=self.env, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT).stdout.decode())
        return out

    def test_03_long_path_accepted_then_removed(self):
        """A long but clean path (7 segments of 250 bytes) is a repository
        like any other: created, seen, removed, and nothing of it remains."""
        request = with_repo("default", PATH_LONG_OK)

        def create_see_remove():
            """The first step that fails, or OK with RepositoryExists' answer."""
            seen = None
            for step, method in (("CreateRepository", CREATE), ("RepositoryExists", EXISTS),
                                 ("RemoveRepository", REMOVE)):
                out = self.unary(method, request, self.auth())
                if out.code != "OK":
                    return Outcome(out.code, "%s: %s" % (step, out.details))
                seen = out.response if method == EXISTS else seen
            return Outcome("OK", "", seen)

        self.run_case("path of 7 x 250-byte segments: CreateRepository, RepositoryExists, RemoveRepository",
                      create_see_remove, "OK", settle=20.0, ignore_empty_dirs=True,
                      check=lambda o: None if o.response == SERVING else "not seen after creation: %r" % o.response)

    def test_04_other_path_fields(self):
        """Path-like fields besides the target repository's."""
        escape = [os.path.normpath(os.path.join(n.storage, "../../tmp/x")) for n in self.nodes]

        def nothing_escaped():
            found = [p for p in escape if os.path.exists(p)]
            return "created outside the storages: %s" % found if found else None

        # (case, method, request, extra check); each must be INVALID_ARGUMENT.
        cases = [
            ("CreateFork fork.git from source_repository '../../etc'", FORK,
             with_repo("default", "fork.git", ld(2, repository("default", "../../etc"))), None),
            ("CreateFork fork.git from source_repository on storage 'nope'", FORK,
             with_repo("default", "fork.git", ld(2, repository("nope", "legit.git"))), None),
            ("RenameRepository legit.git to '../evil'", RENAME,
             with_repo("default", "legit.git", ld(2, "../evil")), None),
            ("RenameRepository legit.git to '/etc/evil'", RENAME,
             with_repo("default", "legit.git", ld(2, "/etc/evil")), None),
            ("AddNamespace 'default' '../../tmp/x'", ADD_NAMESPACE,
             ld(1, "default") + ld(2, "../../tmp/x"), nothing_escaped),
            ("RemoveNamespace 'default' '../adversarial-none'", REMOVE_NAMESPACE,
             ld(1, "default") + ld(2, "../adversarial-none"), None),
        ]
        for name, method, request, after in cases:
            self.run_case(name, lambda m=method, r=request: self.unary(m, r, self.auth()), "INVALID_ARGUMENT",
                          after=after)

    # ---- Storages ------------------------------------------------------------

    def test_05_storages(self):
        storages = [("unknown 'nope'", "nope"), ("empty", ""), ("'default' NUL 'x'", "default\x00x"),
                    ("NUL 'default'", "\x00default")]
        methods = [("RepositoryExists", EXISTS, "legit.git"), ("FindDefaultBranchName", DEFAULT_BRANCH, "legit.git"),
                   ("CreateRepository", CREATE, "storage-case.git")]
        for storage_name, storage in storages:
            for method_name, method, path in methods:
                self.run_case("storage %s: %s" % (storage_name, method_name),
                              lambda m=method, s=storage, p=path: self.unary(m, with_repo(s, p), self.auth()),
                              "INVALID_ARGUMENT")

    # ---- Methods -------------------------------------------------------------

    def test_06_methods(self):
        request = with_repo("default", "legit.git")
        unknown = "/gitaly.RepositoryService/NoSuchMethod"
        self.run_case("unknown method, authenticated", lambda: self.unary(unknown, request, self.auth()),
                      "UNIMPLEMENTED", details_any=[unknown])
        self.run_case("unknown method, no token", lambda: self.unary(unknown, request), "UNAUTHENTICATED")

        def unauthenticated_stream_without_message():
            """The token is checked from the headers, before any message is
            read: the answer comes while the client still holds its first
            message (within the 5 s deadline, not at it)."""
            release = threading.Event()

            def requests():
                release.wait(10)
                return
                yield  # a generator that sends nothing

            try:
                return self.outcome(lambda: self.channel.stream_unary(FROM_BUNDLE)(requests(), timeout=5))
            finally:
                release.set()

        self.run_case("client stream without a token that never sends its first message",
                      unauthenticated_stream_without_message, "UNAUTHENTICATED")
        self.run_case("garbage method name '/x', authenticated", lambda: self.unary("/x", request, self.auth()),
                      "UNIMPLEMENTED")
        self.run_case("garbage method name '/x', no token", lambda: self.unary("/x", request),
                      {"UNAUTHENTICATED", "UNIMPLEMENTED"})

    # ---- Malformed messages --------------------------------------------------

    def test_07_messages(self):
        import ref_pb2
        from google.protobuf.message import DecodeError
        garbage = random.Random(1).randbytes(64)  # fixed seed: the same bytes every run
        try:
            ref_pb2.FindDefaultBranchNameRequest.FromString(garbage)
            self.fail("the fixed garbage must not be a valid protobuf message")
        except DecodeError:
            pass
        legit = repository("default", "legit.git")
        default_branch_ok = lambda o: None if o.response == ld(1, "refs/heads/main") else "answer %r" % o.response
        exists_ok = lambda o: None if o.response == SERVING else "exists is not true: %r" % o.response
        invalid = [
            ("random bytes", garbage),
            ("truncated tag varint", b"\x8a"),
            ("truncated length varint", b"\x0a\x85"),
            ("length past the end", b"\x0a\x40" + legit),
            ("repository length past the end inside", ld(1, b"\x12\x40default")),
            ("field 1 as a varint", b"\x08\x01"),
            ("field 1 as a fixed64", b"\x09" + b"\x00" * 8),
            ("unterminated start-group", b"\x0b" + legit),
            ("start-group holding the repository fields", b"\x0b" + legit + b"\x0c"),
            ("end-group without a start", b"\x0c" + ld(1, legit)),
            ("wire type 7", b"\x0f" + ld(1, legit)),
            ("field number 0", b"\x02\x00" + ld(1, legit)),
            ("valid message then a truncated field", ld(1, legit) + b"\x12"),
            ("empty message (no repository)", b""),
            # Paths no other case uses, so that no earlier case's wrongly
            # accepted creation decides the answer.
            ("field 1 twice, merged: legit.git then relative_path '../../merged-a'",
             ld(1, legit) + ld(1, ld(3, "../../merged-a"))),
            ("field 1 twice, merged: legit.git then storage 'nope'", ld(1, legit) + ld(1, ld(2, "nope"))),
            ("relative_path twice inside, last '../../merged-b'", ld(1, legit + ld(3, "../../merged-b"))),
        ]
        for name, request in invalid:
            self.run_case("message %s: FindDefaultBranchName" % name,
                          lambda r=request: self.unary(DEFAULT_BRANCH, r, self.auth()), "INVALID_ARGUMENT")
        for name, request in [("random bytes", garbage), ("length past the end", b"\x0a\x40" + legit),
                              ("field 1 as a varint", b"\x08\x01"),
                              ("valid message then a 0xff byte", ld(1, legit) + b"\xff"),
                              ("field 1 twice, merged: legit.git then relative_path '../../merged-c'",
                               ld(1, legit) + ld(1, ld(3, "../../merged-c")))]:
            self.run_case("message %s: RepositoryExists" % name,
                          lambda r=request: self.unary(EXISTS, r, self.auth()), "INVALID_ARGUMENT")
        merged_create = with_repo("default", "merged-new.git") + ld(1, ld(3, "../../merged-d"))
        self.run_case("message field 1 twice, merged: new path then relative_path '../../merged-d': CreateRepository",
                      lambda: self.unary(CREATE, merged_create, self.auth()), "INVALID_ARGUMENT")
        merged = ld(1, ld(2, "default")) + ld(1, ld(3, "legit.git"))
        self.run_case("message field 1 twice, merged (storage, then path): FindDefaultBranchName",
                      lambda: self.unary(DEFAULT_BRANCH, merged, self.auth()), "OK", check=default_branch_ok)
        self.run_case("message field 1 twice, merged (storage, then path): RepositoryExists",
                      lambda: self.unary(EXISTS, merged, self.auth()), "OK", check=exists_ok)
        over = ld(1, repository("default", "../../etc")) + ld(1, ld(3, "legit.git"))
        self.run_case("message field 1 twice, merged: '../../etc' overridden by legit.git: FindDefaultBranchName",
                      lambda: self.unary(DEFAULT_BRANCH, over, self.auth()), "OK", check=default_branch_ok)

    # ---- Message sizes -------------------------------------------------------

    def test_08_sizes(self):
        import grpc
        base = with_repo("default", "legit.git")
        huge = padded(base, 100 * MIB)
        options = [("grpc.max_send_message_length", -1)]

        def unauthenticated(method, n):
            channels = [grpc.insecure_channel("127.0.0.1:%d" % self.port, options=options) for _ in range(n)]
            try:
                futures = [ch.unary_unary(method).future(huge, timeout=60) for ch in channels]
                outs = []
                for fut in futures:
                    try:
                        outs.append(Outcome("OK", "", fut.result()))
                    except grpc.RpcError as err:
                        outs.append(Outcome(err.code().name, err.details() or ""))
                bad = [o for o in outs if o.code != "UNAUTHENTICATED"]
                return bad[0] if bad else outs[0]
            finally:
                for ch in channels:
                    ch.close()

        bound = 16 * KIB
        self.run_case("size: 100 MiB without a token: FindDefaultBranchName",
                      lambda: unauthenticated(DEFAULT_BRANCH, 1), "UNAUTHENTICATED",
                      rss=("100 MiB unauthenticated FindDefaultBranchName", bound), fresh=True)
        self.run_case("size: 100 MiB without a token: RepositoryExists",
                      lambda: unauthenticated(EXISTS, 1), "UNAUTHENTICATED",
                      rss=("100 MiB unauthenticated RepositoryExists", bound), fresh=True)
        self.run_case("size: 3 x 100 MiB at once without a token: FindDefaultBranchName",
                      lambda: unauthenticated(DEFAULT_BRANCH, 3), "UNAUTHENTICATED",
                      rss=("3 x 100 MiB unauthenticated FindDefaultBranchName", bound), fresh=True)
        del huge
        just_under = padded(base, 4 * MIB - KIB)
        # Whatever the node answers, but not praefect's RESOURCE_EXHAUSTED.
        self.run_case("size: 4 MiB - 1 KiB, authenticated: FindDefaultBranchName passes praefect",
                      lambda: self.unary(DEFAULT_BRANCH, just_under, self.auth()),
                      {c.name for c in grpc.StatusCode} - {"RESOURCE_EXHAUSTED"},
                      rss=("4 MiB - 1 KiB authenticated FindDefaultBranchName", None))
        over = padded(base, 5 * MIB)
        self.run_case("size: 5 MiB, authenticated: FindDefaultBranchName",
                      lambda: self.unary(DEFAULT_BRANCH, over, self.auth()), "RESOURCE_EXHAUSTED",
                      details_any=["4194304", "4 MiB"], rss=("5 MiB authenticated FindDefaultBranchName", None))
        huge = padded(base, 100 * MIB)
        # The data plane reads the length in a message's 5-byte prefix and
        # refuses it before holding its bytes: an authenticated client cannot
        # make praefect hold more than the limit either.
        self.run_case("size: 100 MiB, authenticated: FindDefaultBranchName",
                      lambda: self.unary(DEFAULT_BRANCH, huge, self.auth(), timeout=60), "RESOURCE_EXHAUSTED",
                      details_any=["4194304", "4 MiB"], rss=("100 MiB authenticated FindDefaultBranchName", bound),
                      fresh=True)

        # The health check needs no token (as on Gitaly): its request is bound
        # by the same limit, refused at its prefix.
        self.run_case("size: 100 MiB to the health check, which needs no token",
                      lambda: self.unary(HEALTH, huge, timeout=60), "RESOURCE_EXHAUSTED",
                      details_any=["4194304"], rss=("100 MiB to the health check", bound), fresh=True)

    # ---- Streams -------------------------------------------------------------

    def test_09_streams(self):
        import grpc
        bundle_stream = self.channel.stream_unary(FROM_BUNDLE)
        receive_pack = self.channel.stream_stream(RECEIVE_PACK)

        def registered(rel):
            """A problem if `rel` is registered in the database."""
            count = self.pg.psql("SELECT count(*) FROM repositories WHERE relative_path = '%s'" % rel, "praefect")
            return None if count == "0" else "%s is registered" % rel

        def disk_activity(before, timeout):
            """Polls until a node's disk (scratch space included) changed
            since `before` or `timeout` passed: a sign that the call reached
            a node. Only the depth of the case depends on it, not a verdict."""
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.scratch() == before:
                time.sleep(0.02)

        self.run_case("stream: CreateRepositoryFromBundle half-closed without a message",
                      lambda: self.outcome(lambda: bundle_stream(iter(()), metadata=self.auth(), timeout=30)),
                      "INVALID_ARGUMENT")

        def bundle_cancelled():
            release, sent = threading.Event(), threading.Event()

            def requests():
                yield with_repo("default", "bundle-cancelled.git")
                sent.set()
                release.wait(30)

            scratch = self.scratch()
            fut = bundle_stream.future(requests(), metadata=self.auth(), timeout=60)
            try:
                sent.wait(10)  # grpc asks for the second message: the first is sent
                disk_activity(scratch, 1.0)
                fut.cancel()
            finally:
                release.set()
            return Outcome(fut.code().name, fut.details() or "")

        self.run_case("stream: CreateRepositoryFromBundle cancelled after its first message", bundle_cancelled,
                      "CANCELLED", settle=5.0, after=lambda: registered("bundle-cancelled.git"))

        def bundle_deadline():
            release = threading.Event()

            def requests():
                yield with_repo("default", "bundle-deadline.git")
                release.wait(30)

            try:
                return self.outcome(lambda: bundle_stream(requests(), metadata=self.auth(), timeout=1.5))
            finally:
                release.set()

        self.run_case("stream: CreateRepositoryFromBundle whose deadline expires while streaming", bundle_deadline,
                      "DEADLINE_EXCEEDED", settle=5.0, after=lambda: registered("bundle-deadline.git"))

        first_receive_pack = with_repo("default", "legit.git", ld(3, "user-1") + ld(4, "project-1"))

        def receive_pack_cancelled():
            release = threading.Event()

            def requests():
                yield first_receive_pack
                release.wait(30)

            call = receive_pack(requests(), metadata=self.auth(), timeout=20)
            try:
                next(call)  # the advertisement: git receive-pack runs on the primary
                call.cancel()
            except grpc.RpcError:
                pass
            finally:
                release.set()
            return Outcome(call.code().name, call.details() or "")

        self.run_case("stream: SSHReceivePack cancelled after its first message", receive_pack_cancelled,
                      "CANCELLED", settle=5.0)

        def receive_pack_deadline():
            release = threading.Event()

            def requests():
                yield first_receive_pack
                release.wait(30)

            try:
                return self.outcome(lambda: list(receive_pack(requests(), metadata=self.auth(), timeout=1.5)))
            finally:
                release.set()

        self.run_case("stream: SSHReceivePack whose deadline expires while streaming", receive_pack_deadline,
                      "DEADLINE_EXCEEDED", settle=5.0)

    # ---- A creation the database does not record ---------------------------

    def test_10_unrecorded_creation(self):
        """The node creates the repository, then the database refuses its
        record (a trigger installed here makes it, for two names only): the
        replica the call made is removed again (the node keeps the empty
        fan-out directories above it, as Gitaly's RemoveRepository does),
        nothing is registered, and the client is told what happened and
        whether retrying helps."""
        self.pg.psql(
            "CREATE FUNCTION adversarial_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.relative_path = 'refused-by-db.git' THEN "
            "  RAISE EXCEPTION 'the adversarial test refuses this row'; END IF; "
            "IF NEW.relative_path = 'db-conflict.git' THEN "
            "  RAISE EXCEPTION 'the adversarial test aborts this transaction' USING ERRCODE = '40001'; END IF; "
            "RETURN NEW; END $$; "
            "CREATE TRIGGER adversarial_refuse BEFORE INSERT ON repositories "
            "FOR EACH ROW EXECUTE FUNCTION adversarial_refuse()", db="praefect")
        try:
            self.run_case("creation refused by the database: CreateRepository",
                          lambda: self.unary(CREATE, with_repo("default", "refused-by-db.git"), self.auth()),
                          "INTERNAL", settle=5.0, ignore_empty_dirs=True,
                          details_any=["was not created: the database refused to record it"],
                          after=lambda: self.says(["removed again", "retrying will not help"]))
            self.run_case("creation the database aborts: CreateRepository",
                          lambda: self.unary(CREATE, with_repo("default", "db-conflict.git"), self.auth()),
                          "UNAVAILABLE", settle=5.0, ignore_empty_dirs=True, details_any=["could not record it"],
                          after=lambda: self.says(["removed again", "retry once the database is reachable"]))
        finally:
            self.pg.psql("DROP TRIGGER adversarial_refuse ON repositories; DROP FUNCTION adversarial_refuse()",
                         db="praefect")

    def says(self, fragments):
        """A problem unless the last case's message has every fragment."""
        details = self.last_details
        missing = [f for f in fragments if f not in details]
        return "the message does not say %s: %r" % (missing, details[:400]) if missing else None

    def scratch(self):
        """Every node's whole storage tree, +gitaly/ included."""
        snap = set()
        for node in self.nodes:
            for top, dirs, files in os.walk(node.storage):
                snap.update(os.path.join(top, n) for n in dirs + files)
        return snap


def proc_status_kib(pid, field):
    """A KiB figure of /proc/PID/status (VmRSS, VmHWM), -1 once gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


class RssMeter:
    """praefect's RSS around one case: before, after, and the peak (VmHWM,
    reset through clear_refs; where that is not permitted, VmRSS sampled
    every 5 ms in a thread). Prints the figures; finish() returns a problem
    when the growth exceeds `bound_kib` (None: print only)."""

    def __init__(self, pid, label, bound_kib):
        self.pid, self.label, self.bound = pid, label, bound_kib
        self.before = proc_status_kib(pid, "VmRSS")
        self.sampled, self.done, self.thread = 0, threading.Event(), None
        try:
            with open("/proc/%d/clear_refs" % pid, "w") as f:
                f.write("5")  # VmHWM := VmRSS
        except OSError:
            self.thread = threading.Thread(target=self.sample, daemon=True)
            self.thread.start()

    def sample(self):
        while not self.done.is_set():
            self.sampled = max(self.sampled, proc_status_kib(self.pid, "VmRSS"))
            time.sleep(0.005)

    def finish(self):
        if self.thread is not None:
            self.done.set()
            self.thread.join()
            peak = self.sampled
        else:
            peak = proc_status_kib(self.pid, "VmHWM")
        after = proc_status_kib(self.pid, "VmRSS")
        growth = max(peak, after) - self.before
        print("%s: RSS before/after/peak KiB %d/%d/%d (growth %d KiB)"
              % (self.label, self.before, after, peak, growth), file=sys.stderr)
        if self.bound is None or SANITIZED:  # ASan's quarantine keeps freed memory resident
            return None
        if growth > self.bound:
            return ("praefect's RSS grew by %d KiB (bound %d KiB): before %d, peak %d, after %d"
                    % (growth, self.bound, self.before, peak, after))
        return None


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
