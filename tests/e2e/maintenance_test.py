#!/usr/bin/python3
"""Repository cleanup and `praefect maintenance`, end to end: one
PostgreSQL, three praefect-storage-node processes and two praefects sharing
the database (reconciliation hourly and content verification off, so that
only what the test runs repairs anything), driven by real git.

  1. repository cleanup: repositories on a node's disk that the database
     does not know, older than 24 h, are reported by the praefects' cleanup
     at start (log line and metric), a young one is not, each storage is
     walked by one praefect, and nothing is deleted;
  2. `maintenance` repairs what it finds: a replica a write behind with no
     job (reconciliation) and a ref changed on a secondary behind
     praefect's back (content verification, both checksums logged, repaired
     from the primary, the primary unchanged); it reports the untracked
     repository, waits for the repairs and exits 0 with its summary line;
  3. `maintenance` exits 2 when it leaves something unrepaired: a mismatch
     whose repair cannot run (no praefect is running the replication
     workers) and, separately, an unreachable node; the queued repair is
     done once the praefects are back;
  4. bad input: a negative -content-max, no [database], an unknown flag.

usage: maintenance_test.py BIN_DIR PROTO_DIR WORK_DIR
"""
import os
import re
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import praefect_failover_test as fo  # noqa: E402
from selfheal import SelfHealingCluster  # noqa: E402

DAY = 24 * 3600


class MaintenanceTest(SelfHealingCluster):
    PREFIX = "e2e-maintenance-"
    PRAEFECTS = 2
    CONFIGURATION = {}

    @classmethod
    def configure(cls):
        for p in cls.praefects:
            cls.write_base_config(p)
            with open(p.config, "a") as f:
                f.write('[reconciliation]\nscheduling_interval = "1h"\n'
                        '[content_verification]\nrepositories_per_minute = 0\n')

    def maintenance(self, *args):
        code, out = self.praefects[0].cmd("maintenance", *args)
        sys.stderr.write("\n--- praefect maintenance %s (exit %d)\n%s" % (" ".join(args), code, out))
        summary = [line for line in out.splitlines() if re.match(r"praefect maintenance: (OK|UNREPAIRED): ", line)]
        self.assertEqual(len(summary), 1, "one summary line")
        fields = dict(re.findall(r"(\w+)=(\S+)", summary[0]))
        return code, out, summary[0], fields

    def repo_with_history(self, rel, commits=2):
        work = self.new_repo(self.praefects[0], rel)
        for i in range(commits):
            self.commit(work, "c%d" % i)
            self.assertTrue(self.push(self.praefects[0], rel, work))
        self.wait_replicated(rel)

    def test_1_cleanup_reports_untracked_repositories(self):
        gitaly1 = self.node("gitaly-1")
        old = os.path.join(gitaly1.storage, "stray", "old.git")
        young = os.path.join(gitaly1.storage, "stray", "young.git")
        for path in (old, young):
            subprocess.run(["git", "init", "-q", "--bare", path], env=self.env, check=True)
        os.utime(old, (time.time() - 2 * DAY, time.time() - 2 * DAY))
        # The cleanup runs at start and then every 30 minutes: restart the
        # praefects with every storage due.
        self.stop_all()
        self.sql("DELETE FROM storage_cleanups")
        for p in self.praefects:
            with open(p.logpath, "w"):
                pass
        self.start_all()
        self.wait_until(lambda: len(self.log_lines("repository cleanup of a storage done")) >= 2, 30,
                        "each praefect to walk a storage at start")
        done = self.log_lines("repository cleanup of a storage done")
        walked = [re.search(r"\bstorage=(\S+)", line).group(1) for line in done]
        self.assertEqual(len(walked), len(set(walked)), "no storage walked twice: %r" % done)
        self.assertIn("gitaly-1", walked, "gitaly-1 (never cleaned, first by name) walked at start")
        reported = self.log_lines("repository is not managed by praefect")
        self.assertEqual(len(reported), 1, "the old untracked repository reported once: %r" % reported)
        self.assertIn("relative_replica_path=stray/old.git", reported[0])
        self.assertIn("storage=gitaly-1", reported[0])
        self.assertIn("virtual_storage=default", reported[0])
        self.assertEqual(self.metric("gitaly_praefect_untracked_repositories_total", storage="gitaly-1"), 1.0)
        self.assertTrue(os.path.isdir(old) and os.path.isdir(young), "nothing deleted")
        rows = self.sql("SELECT storage, last_run IS NOT NULL, triggered_at IS NULL FROM storage_cleanups "
                        "WHERE virtual_storage = 'default' ORDER BY storage")
        self.assertEqual(len(rows), 3, "a row per storage: %r" % rows)
        for storage in walked:
            self.assertIn((storage, "t", "t"), rows, "the walked storages' last_run set, claims released")
        print("\nrepository cleanup at start: storages walked %r, 1 untracked repository reported" % walked,
              file=sys.stderr)

    def test_2_maintenance_repairs_what_it_finds(self):
        for rel in ("m/behind.git", "m/mismatch.git", "m/fine.git"):
            self.repo_with_history(rel)
        # A write recorded on the primary only, its jobs gone: two replicas
        # behind that only reconciliation repairs.
        self.sql("UPDATE repositories SET generation = generation + 1 WHERE relative_path = 'm/behind.git'")
        self.sql("UPDATE storage_repositories s SET generation = s.generation + 1 FROM repositories r "
                 "WHERE r.repository_id = s.repository_id AND r.relative_path = 'm/behind.git' "
                 "AND s.storage = r.\"primary\"")
        primary, secondary, primary_refs = self.make_mismatch("m/mismatch.git")
        self.assertNotEqual(self.refs(secondary, "m/mismatch.git"), primary_refs, "the content differs")

        code, out, summary, fields = self.maintenance("-content-budget", "60s", "-wait", "60s")
        self.assertEqual(code, 0, "exit 0: everything repaired")
        self.assertTrue(summary.startswith("praefect maintenance: OK: "), summary)
        self.assertEqual(fields["jobs_scheduled"], "2")
        self.assertEqual(fields["jobs_done"], "2")
        self.assertEqual(fields["mismatches_found"], "1")
        self.assertEqual(fields["mismatches_repaired"], "1")
        self.assertEqual(fields["nodes_healthy"], "3/3")
        self.assertEqual(fields["unrepaired"], "0")
        self.assertEqual(fields["untracked_repositories"], "1", "test 1's stray/old.git, reported again")
        # m/behind.git is left alone if its reconciliation jobs are still
        # queued when content verification comes to it (2), checked if they
        # are done (3): CI saw both.
        self.assertIn(fields["repositories_checked"], ("2", "3"))
        self.assertIn('untracked repository: {"relative_path":"stray/old.git","storage":"gitaly-1",'
                      '"virtual_storage":"default"}', out)
        found = [line for line in out.splitlines() if "replica content differs from the primary's" in line]
        self.assertEqual(len(found), 1, "the mismatch logged once")
        self.assertIn("storage=" + secondary.name, found[0])
        self.assertIn("primary=" + primary.name, found[0])
        self.assertRegex(found[0], r" checksum=[0-9a-f]{30,40} ")
        self.assertRegex(found[0], r" primary_checksum=[0-9a-f]{30,40} ")
        # Repaired when it exits: no waiting here.
        self.assertEqual(self.refs(secondary, "m/mismatch.git"), primary_refs)
        self.assertEqual(self.refs(primary, "m/mismatch.git"), primary_refs, "the primary never changes")
        self.assertTrue(self.all_latest("m/behind.git", [n.name for n in self.nodes]))
        print("\nmaintenance: %s" % summary, file=sys.stderr)

    def test_3_maintenance_fails_when_it_leaves_something_unrepaired(self):
        rel = "m/unrepaired.git"
        self.repo_with_history(rel)
        # No praefect runs the replication workers: the repair is queued
        # and cannot be done within -wait.
        self.stop_all()
        try:
            primary, secondary, primary_refs = self.make_mismatch(rel)
            self.assertNotEqual(self.refs(secondary, rel), primary_refs, "the content differs")
            code, out, summary, fields = self.maintenance("-wait", "3s")
            self.assertEqual(code, 2, "exit 2: a mismatch left unrepaired")
            self.assertTrue(summary.startswith("praefect maintenance: UNREPAIRED: "), summary)
            self.assertEqual(fields["mismatches_found"], "1")
            self.assertEqual(fields["mismatches_repaired"], "0")
            self.assertEqual(fields["unrepaired"], "1")
            self.assertRegex(out, r'not repaired: update of "%s" \(repository \d+\) on "%s" of "default": its '
                                  r'replication job is still queued or running' % (rel, secondary.name))
        finally:
            self.start_all()
        # The queued job repairs it once a praefect runs.
        self.wait_until(lambda: self.refs(secondary, rel) == primary_refs, 30, "the queued repair done")
        self.assertEqual(self.refs(primary, rel), primary_refs)

        gitaly3 = self.node("gitaly-3")
        gitaly3.kill()
        try:
            code, out, summary, fields = self.maintenance("-content-budget", "0", "-wait", "5s")
        finally:
            gitaly3.start()
        self.assertEqual(code, 2, "exit 2: a node unreachable")
        self.assertEqual(fields["nodes_healthy"], "2/3")
        self.assertIn('node "gitaly-3" of virtual storage "default"', out)
        self.assertIn("content verification: skipped (-content-budget 0)", out)

    def test_3b_a_hung_node_does_not_hold_the_pass(self):
        """A node stopped with SIGSTOP (it accepts connections and never
        answers): the pass ends within its bounds, the node counted
        unhealthy, exit 2."""
        rel = "m/hung.git"
        self.repo_with_history(rel)
        gitaly2 = self.node("gitaly-2")
        gitaly2.proc.send_signal(signal.SIGSTOP)
        started = time.monotonic()
        try:
            code, out, summary, fields = self.maintenance("-content-budget", "10s", "-wait", "5s")
        finally:
            gitaly2.proc.send_signal(signal.SIGCONT)
        took = time.monotonic() - started
        self.assertEqual(code, 2, "exit 2: a node unreachable")
        self.assertEqual(fields["nodes_healthy"], "2/3")
        self.assertLess(took, 60, "the pass ended within its bounds")
        print("\nmaintenance with a SIGSTOPped node: %.1f s" % took, file=sys.stderr)

    def test_4_bad_input(self):
        code, out = self.praefects[0].cmd("maintenance", "-content-max", "-1")
        self.assertEqual(code, 1, out)
        self.assertIn("-content-max must be 0 (no limit) or more", out)
        code, out = self.praefects[0].cmd("maintenance", "-frobnicate")
        self.assertNotEqual(code, 0, out)
        self.assertIn("frobnicate", out)
        bare = os.path.join(self.root, "no-database.toml")
        with open(self.praefects[0].config) as f:
            text = f.read()
        with open(bare, "w") as f:
            f.write(re.sub(r"\[database(\.session_pooled)?\]\n(\w+ = [^\n]*\n)*", "", text))
        r = subprocess.run([os.path.join(fo.BIN, "praefect"), "-config", bare, "maintenance"], capture_output=True,
                           timeout=60)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"maintenance needs [database]", r.stderr + r.stdout)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
