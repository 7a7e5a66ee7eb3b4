#!/usr/bin/python3
"""Background verification, end to end: one PostgreSQL, three
praefect-storage-node processes and two praefects sharing the database,
driven by real git through git-remote-gitaly.

  1. replica directories deleted on a node behind praefect's back (one a
     secondary's, one the primary's) are found by background verification
     once `praefect verify` marks them due, their records are removed, and
     the reconciler makes them again: the seconds from the deletion to the
     replicas back (directory, refs and generation) are printed;
  2. with delete_invalid_records = false the missing replica is only
     reported: the log line (perform_deletions=false), the metric
     (result="invalid"), the record kept and marked verified, nothing
     re-replicated.
Each missing replica is found by one praefect only (the leases).

usage: verification_test.py BIN_DIR PROTO_DIR WORK_DIR
"""
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import praefect_failover_test as fo  # noqa: E402  (its Praefect and helpers; argv alike)
from harness import Postgres, StorageNode, generate_stubs  # noqa: E402

WORK = fo.WORK
REPAIR_BOUND = 30.0


class VerificationTest(unittest.TestCase):
    # The failover test's helpers (database, git, waits), on this cluster.
    sql = fo.PraefectFailoverTest.sql
    repo_info = fo.PraefectFailoverTest.repo_info
    generations = fo.PraefectFailoverTest.generations
    all_latest = fo.PraefectFailoverTest.all_latest
    git = fo.PraefectFailoverTest.git
    url = fo.PraefectFailoverTest.url
    create = fo.PraefectFailoverTest.create
    work = fo.PraefectFailoverTest.work
    commit = fo.PraefectFailoverTest.commit
    push = fo.PraefectFailoverTest.push
    new_repo = fo.PraefectFailoverTest.new_repo
    replica_dir = fo.PraefectFailoverTest.replica_dir
    refs = fo.PraefectFailoverTest.refs
    wait_until = fo.PraefectFailoverTest.wait_until
    wait_replicated = fo.PraefectFailoverTest.wait_replicated

    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="e2e-verification-", dir=WORK)
        generate_stubs(fo.PROTO_DIR, os.path.join(cls.root, "gen"))
        cls.pg = Postgres(cls.root)
        cls.home = os.path.join(cls.root, "home")
        os.makedirs(cls.home)
        cls.env = dict(os.environ, PATH=fo.BIN + ":" + os.environ["PATH"], HOME=cls.home, GIT_CONFIG_NOSYSTEM="1",
                       GIT_AUTHOR_NAME="E2E", GIT_AUTHOR_EMAIL="e2e@example.com", GIT_COMMITTER_NAME="E2E",
                       GIT_COMMITTER_EMAIL="e2e@example.com", GITALY_TOKEN=fo.CLIENT_TOKEN,
                       GIT_TERMINAL_PROMPT="0")
        cls.nodes = [StorageNode(fo.BIN, cls.root, i, fo.NODE_TOKEN) for i in (1, 2, 3)]
        cls.praefects = [fo.Praefect(cls.root, "praefect-%d" % i, cls.pg.dir) for i in (1, 2)]
        try:
            for node in cls.nodes:
                node.start()
            cls.configure(delete_invalid_records=True)
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
    def configure(cls, delete_invalid_records):
        """The default verification interval (a week: only `verify` makes a
        verified replica due again); reconciliation every 2 s, so the repair
        follows the removal of a record within seconds."""
        for p in cls.praefects:
            p.write_config([(n.name, n.address) for n in cls.nodes], replication_factors=(("default", 0),))
            with open(p.config, "a") as f:
                f.write('[reconciliation]\nscheduling_interval = "2s"\n'
                        '[background_verification]\ndelete_invalid_records = %s\n'
                        % ("true" if delete_invalid_records else "false"))

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

    def completed(self, result, storage=None):
        """gitaly_praefect_verification_jobs_completed_total{result} summed
        over the praefects (and the storages, or one)."""
        total = 0.0
        for p in self.praefects:
            text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % p.metrics_port, timeout=30).read().decode()
            for labels, value in re.findall(
                    r'^gitaly_praefect_verification_jobs_completed_total\{([^}]*)\} (\S+)$', text, re.M):
                fields = dict(re.findall(r'(\w+)="([^"]*)"', labels))
                if fields["result"] == result and storage in (None, fields["storage"]):
                    total += float(value)
        return total

    def unverified(self):
        """Replicas never verified or marked unverified."""
        return int(self.sql("SELECT count(*) FROM storage_repositories WHERE verified_at IS NULL")[0][0])

    def removal_lines(self):
        return [line for p in self.praefects for line in p.log().splitlines()
                if "removing metadata records of non-existent replicas" in line]

    def verify(self, rel):
        code, out = self.praefects[0].cmd("verify", "-repository-id", str(self.repo_info(rel)["id"]))
        self.assertEqual(code, 0, out)
        self.assertIn("replicas marked unverified", out)

    def test_1_deleted_replicas_are_found_and_made_again(self):
        p1 = self.praefects[0]
        repos = ["verify/a.git", "verify/b.git"]
        for rel in repos:
            self.new_repo(p1, rel)
        for rel in repos:
            self.wait_replicated(rel)
        # Every new replica is verified within seconds (never-verified first).
        self.wait_until(lambda: self.unverified() == 0, 30, lambda: "%d replicas still unverified" % self.unverified())
        invalid_before = self.completed("invalid")
        # a.git loses a secondary's replica, b.git its primary's.
        a_victim = next(n for n in self.nodes if n.name != self.repo_info(repos[0])["primary"])
        b_victim = self.node(self.repo_info(repos[1])["primary"])
        intact = next(n for n in self.nodes if n not in (a_victim, b_victim))
        refs_before = {rel: self.refs(intact, rel) for rel in repos}
        victims = {repos[0]: a_victim, repos[1]: b_victim}
        deleted = time.monotonic()
        for rel, victim in victims.items():
            shutil.rmtree(self.replica_dir(victim, rel))
        for rel in repos:
            self.verify(rel)

        def back():
            return all(os.path.isdir(self.replica_dir(v, rel)) and self.all_latest(rel, [n.name for n in self.nodes])
                       and self.refs(v, rel) == refs_before[rel] for rel, v in victims.items())
        self.wait_until(back, REPAIR_BOUND, lambda: "the deleted replicas back: %r" % {
            rel: (os.path.isdir(self.replica_dir(v, rel)), self.generations(rel)) for rel, v in victims.items()})
        took = time.monotonic() - deleted
        lines = self.removal_lines()
        for rel, victim in victims.items():
            self.assertTrue(any(rel in line and victim.name in line and "perform_deletions=true" in line
                                for line in lines), "the removal of %s on %s logged: %r" % (rel, victim.name, lines))
        self.assertEqual(self.completed("invalid") - invalid_before, 2.0,
                         "each missing replica found once, by one praefect")
        # The repositories' records were never removed.
        self.assertEqual(sorted(r[0] for r in self.sql("SELECT relative_path FROM repositories "
                                                       "WHERE relative_path LIKE 'verify/%'")), repos)
        print("\nreplica directories deleted to replicas back (verify, verification, reconciliation, "
              "replication): %.2f s for %d replicas" % (took, len(victims)), file=sys.stderr)

    def test_2_without_deletions_the_loss_is_only_reported(self):
        rel = "verify/kept.git"
        self.new_repo(self.praefects[0], rel)
        self.wait_replicated(rel)
        self.wait_until(lambda: self.unverified() == 0, 30, lambda: "%d replicas still unverified" % self.unverified())
        self.stop_all()
        self.configure(delete_invalid_records=False)
        self.start_all()
        try:
            victim = next(n for n in self.nodes if n.name != self.repo_info(rel)["primary"])
            generations = self.generations(rel)
            invalid_before = self.completed("invalid", victim.name)
            shutil.rmtree(self.replica_dir(victim, rel))
            self.verify(rel)

            def reported():
                return [line for line in self.removal_lines() if rel in line and "perform_deletions=false" in line]
            self.wait_until(reported, 15, "the missing replica reported with perform_deletions=false")
            self.wait_until(lambda: self.unverified() == 0, 15, "every replica of %s verified again" % rel)
            self.assertEqual(self.completed("invalid", victim.name) - invalid_before, 1.0,
                             "counted once as invalid on %s" % victim.name)
            # The record is kept (and marked verified); nothing repairs the
            # replica: the reconciler sees it up to date.
            time.sleep(3)
            self.assertEqual(self.generations(rel), generations, "the records unchanged")
            self.assertFalse(os.path.isdir(self.replica_dir(victim, rel)), "the replica not made again")
        finally:
            self.stop_all()
            self.configure(delete_invalid_records=True)
            self.start_all()


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
