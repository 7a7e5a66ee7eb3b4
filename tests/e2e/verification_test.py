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
import shutil
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from selfheal import SelfHealingCluster  # noqa: E402

REPAIR_BOUND = 30.0


class VerificationTest(SelfHealingCluster):
    PREFIX = "e2e-verification-"
    PRAEFECTS = 2
    CONFIGURATION = {"delete_invalid_records": True}

    @classmethod
    def configure(cls, delete_invalid_records):
        """The default verification interval (a week: only `verify` makes a
        verified replica due again); reconciliation hourly: the repair
        follows the removal of a record within seconds because the
        praefect that removed it asks for a round at once."""
        for p in cls.praefects:
            cls.write_base_config(p)
            with open(p.config, "a") as f:
                f.write('[reconciliation]\nscheduling_interval = "1h"\n'
                        '[background_verification]\ndelete_invalid_records = %s\n'
                        % ("true" if delete_invalid_records else "false"))

    def completed(self, result, storage=None):
        """gitaly_praefect_verification_jobs_completed_total{result} summed
        over the praefects (and the storages, or one)."""
        labels = {"result": result}
        if storage is not None:
            labels["storage"] = storage
        return self.metric("gitaly_praefect_verification_jobs_completed_total", **labels)

    def unverified(self):
        """Replicas never verified or marked unverified."""
        return int(self.sql("SELECT count(*) FROM storage_repositories WHERE verified_at IS NULL")[0][0])

    def removal_lines(self):
        return self.log_lines("removing metadata records of non-existent replicas")

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
