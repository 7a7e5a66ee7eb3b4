#!/usr/bin/python3
"""Automatic reconciliation, end to end: one PostgreSQL, three
praefect-storage-node processes and three praefects sharing the database,
driven by real git through git-remote-gitaly.

  1. a node is SIGKILLed while pushes continue, so its replicas fall behind;
     their jobs die (removed from the queue, as the replicator removes a job
     that used up its attempts); the node comes back and, with no further
     write and the regular interval an hour away, every replica converges
     (generations and refs): the seconds from the node's return to the last
     replica equal are printed (target 5 s);
  3. a ref changed on a secondary behind praefect's back (same generation,
     different content) is found by content verification, logged with both
     checksums, and repaired from the primary, whose refs never change: the
     seconds from the change to the repair are printed;
  2. with every praefect's reconciliation due at once (interval 2 s, all
     started together), replicas with no job get exactly one job each: no
     duplicate in the queue, each job logged by one praefect, and each
     round run by one praefect (the lease).

usage: reconciliation_test.py BIN_DIR PROTO_DIR WORK_DIR
"""
import json
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from selfheal import SelfHealingCluster  # noqa: E402

CONVERGENCE_TARGET = 5.0
CONVERGENCE_BOUND = 30.0


class ReconciliationTest(SelfHealingCluster):
    PREFIX = "e2e-reconciliation-"
    PRAEFECTS = 3
    CONFIGURATION = {"interval": "1h"}

    @classmethod
    def configure(cls, interval):
        """[reconciliation] every `interval`, [content_verification] fast."""
        for p in cls.praefects:
            cls.write_base_config(p)
            with open(p.config, "a") as f:
                f.write('[reconciliation]\nscheduling_interval = "%s"\n' % interval)
                f.write('[content_verification]\nrepositories_per_minute = 1200\n')

    def setUp(self):
        for node in self.nodes:
            if not node.alive():
                node.start()
        for rel in [r[0] for r in self.sql("SELECT relative_path FROM repositories")]:
            self.wait_replicated(rel)

    def scheduled(self, praefect):
        """The jobs `praefect` logged as scheduled by reconciliation."""
        jobs = []
        for line in praefect.log().splitlines():
            if "reconciliation jobs scheduled" not in line:
                continue
            m = re.search(r'scheduled_jobs="(.*)"$', line) or re.search(r'scheduled_jobs=(\[.*\])', line)
            self.assertIsNotNone(m, "a scheduled_jobs field: " + line)
            jobs += json.loads(m.group(1).replace('\\"', '"'))
        return jobs

    def test_1_node_return_converges_without_writes(self):
        p1 = self.praefects[0]
        repos = ["reconcile/r%d.git" % i for i in range(6)]
        works = {rel: self.new_repo(p1, rel) for rel in repos}
        for rel in repos:
            self.wait_replicated(rel)
        victim = next(n for n in self.nodes if n.name == "gitaly-3")
        victim.kill()
        # Pushes continue through every praefect while the node is away.
        # (A repository whose primary was the stopped node takes writes again
        # once the praefects see the node down and elect another: retried.)
        for i in range(3):
            for j, rel in enumerate(repos):
                self.commit(works[rel], "while away %d" % i)
                self.wait_until(lambda: self.push(self.praefects[(i + j) % 3], rel, works[rel]), 30,
                                "a push to %s acknowledged with gitaly-3 down" % rel)
        for rel in repos:
            self.wait_replicated(rel, ["gitaly-1", "gitaly-2"])
            self.assertLess(self.generations(rel).get("gitaly-3", -1), self.repo_info(rel)["generation"],
                            rel + " behind on the stopped node")
        # The jobs for the stopped node die: gone from the queue.
        self.sql("DELETE FROM replication_queue WHERE job->>'target_node_storage' = 'gitaly-3'")
        self.assertEqual(self.sql("SELECT count(*) FROM replication_queue"), [("0",)])

        victim.start()
        returned = time.monotonic()
        self.wait_until(lambda: all(self.all_latest(rel, ["gitaly-1", "gitaly-2", "gitaly-3"]) for rel in repos),
                        CONVERGENCE_BOUND,
                        lambda: "every replica at the latest generation: %r" % {
                            rel: self.generations(rel) for rel in repos})
        took = time.monotonic() - returned
        for rel in repos:
            self.assertEqual(self.refs(victim, rel), self.refs(self.nodes[0], rel), rel + "'s refs on gitaly-3")
        print("\nnode return to every replica equal: %.2f s (target %.0f s) over %d repositories"
              % (took, CONVERGENCE_TARGET, len(repos)), file=sys.stderr)
        scheduled = [j for p in self.praefects for j in self.scheduled(p)]
        self.assertTrue(any(j["target_storage"] == "gitaly-3" for j in scheduled),
                        "the reconciler scheduled the returned node's jobs: %r" % scheduled)
        self.assertLessEqual(took, CONVERGENCE_TARGET, "converged within the target")

    def test_2_three_praefects_due_at_once_schedule_once(self):
        repos = ["due/r%d.git" % i for i in range(8)]
        p1 = self.praefects[0]
        for rel in repos:
            self.new_repo(p1, rel)
        for rel in repos:
            self.wait_replicated(rel)
        self.stop_all()
        # Make every replica on gitaly-2 and gitaly-3 a write behind, with no
        # job: only the reconciler can repair them.
        self.sql("UPDATE repositories SET generation = generation + 1 WHERE relative_path LIKE 'due/%'")
        self.sql("UPDATE storage_repositories SET generation = generation + 1 "
                 "WHERE relative_path LIKE 'due/%' AND storage = 'gitaly-1'")
        self.sql("DELETE FROM replication_queue")
        self.sql("UPDATE reconciliation_lease SET started_at = NULL, ended_at = NULL, leased_until = NULL")
        for p in self.praefects:
            with open(p.logpath, "w"):
                pass
        self.configure("2s")
        self.start_all()
        try:
            for rel in repos:
                self.wait_replicated(rel, timeout=60)
            time.sleep(5)  # more rounds, which must find nothing to do
        finally:
            self.stop_all()
            self.configure("1h")
            self.start_all()
        per_praefect = {p.name: [j for j in self.scheduled(p) if j["relative_path"].startswith("due/")]
                        for p in self.praefects}
        keys = [(j["repository_id"], j["target_storage"]) for jobs in per_praefect.values() for j in jobs]
        self.assertEqual(len(keys), 2 * len(repos), "one job per outdated replica: %r" % per_praefect)
        self.assertEqual(len(set(keys)), len(keys), "no replica scheduled twice: %r" % per_praefect)
        # One round at a time: each praefect logs "round started" once it
        # holds the lease and "round done" before it gives it up, so no two
        # rounds' spans (the logs' millisecond times) overlap.
        spans = []
        for p in self.praefects:
            start = None
            for line in p.log().splitlines():
                m = re.match(r'time="([^"]+)" level=\w+ msg="reconciliation round (started|done)"', line)
                if not m:
                    continue
                if m.group(2) == "started":
                    start = m.group(1)
                elif start is not None:
                    spans.append((start, m.group(1), p.name))
                    start = None
        spans.sort()
        self.assertGreaterEqual(len(spans), 2, "several rounds ran: %r" % spans)
        for a, b in zip(spans, spans[1:]):
            self.assertLessEqual(a[1], b[0], "round %r overlaps round %r" % (a, b))
        rounds = {p.name: sum(1 for sp in spans if sp[2] == p.name) for p in self.praefects}
        print("\n%d rounds, one at a time, per praefect: %r; jobs logged per praefect: %r" % (
            len(spans), rounds, {n: len(j) for n, j in per_praefect.items()}), file=sys.stderr)

    def test_3_content_differing_at_the_same_generation_is_repaired(self):
        p1 = self.praefects[0]
        rel = "content/r.git"
        work = self.new_repo(p1, rel)
        for i in range(3):
            self.commit(work, "c%d" % i)
            self.assertTrue(self.push(p1, rel, work))
        self.wait_replicated(rel)
        primary, secondary, primary_refs = self.make_mismatch(rel)
        changed = time.monotonic()
        self.wait_until(lambda: self.refs(secondary, rel) == primary_refs, 120,
                        lambda: "%s's refs on %s repaired: %r vs %r" % (
                            rel, secondary.name, self.refs(secondary, rel), primary_refs))
        took = time.monotonic() - changed
        self.assertEqual(self.refs(primary, rel), primary_refs, "the primary never changes")
        self.wait_replicated(rel)
        found = [line for line in self.log_lines("replica content differs from the primary's") if rel in line]
        self.assertTrue(found, "the mismatch logged")
        self.assertIn("storage=" + secondary.name, found[0])
        self.assertIn("primary=" + primary.name, found[0])
        # (Hex without leading zeros: 38 or 39 digits happen.)
        self.assertRegex(found[0], r" checksum=[0-9a-f]{30,40} ")
        self.assertRegex(found[0], r" primary_checksum=[0-9a-f]{30,40} ")
        counted = self.metric("gitaly_praefect_content_verification_replicas_total", result="mismatch",
                              storage=secondary.name, virtual_storage="default")
        self.assertGreaterEqual(counted, 1, "the mismatch counted")
        print("\ncontent changed on %s to repaired from %s: %.2f s (%d repositories in the walk)" % (
            secondary.name, primary.name, took, len(self.sql("SELECT 1 FROM repositories"))), file=sys.stderr)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
