#!/usr/bin/python3
"""Strong consistency end to end (reference transactions): one PostgreSQL,
three praefect-storage-node processes voting over their backchannels, three
praefects with [backchannel] enabled, driven by real git through
git-remote-gitaly.

  1. a push is acknowledged only once the voters committed it: right after
     the acknowledgement, with no replication job ever queued, every
     replica's refs equal the primary's and all are at the latest
     generation; the transaction series count it;
  2. a secondary whose refs were changed behind praefect's back is
     outvoted, does not block the write, and is repaired by a job;
  3. a primary whose pre-receive hook rejects the push stops the
     transaction: nothing changes anywhere;
  4. a secondary killed mid-transaction does not fail the write; both
     secondaries killed mid-transaction fail it cleanly;
  5. the failover test's busy repository (three pushers, kill -9 of its
     primary): a voter becomes primary, every acknowledged push is on it,
     and the first write after the kill is acknowledged within 2 s;
  6. a primary that hangs (SIGSTOP) during pushes: writes acknowledged by a
     new primary within 2 s; once resumed it converges, nothing lost.

usage: transactions_test.py BIN_DIR PROTO_DIR WORK_DIR
"""
import os
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from selfheal import SelfHealingCluster  # noqa: E402

# The done-when bound of the failover figures; the figures are printed.
# Under the sanitizers (2-3 times slower; CI's sanitizer stage measured the
# hung primary's first write at 2.03 s) the bound is the behaviour's, not
# the figure's: 3 s. The 2 s figure is checked in the normal build.
FAILOVER_TARGET = 3.0 if os.environ.get("PRAEFECT_SANITIZED") == "1" else 2.0


class TransactionsTest(SelfHealingCluster):
    PREFIX = "e2e-transactions-"

    @classmethod
    def configure(cls):
        for p in cls.praefects:
            p.write_config([(n.name, n.address) for n in cls.nodes], replication_factors=(("default", 0),),
                           # Content verification off: it would repair test 2's
                           # secondary before the push that must outvote it.
                           extra="[backchannel]\nenabled = true\n[content_verification]\n"
                                 "repositories_per_minute = 0\n")

    def setUp(self):
        for node in self.nodes:
            if not node.alive():
                node.start()
        for node in self.nodes:
            self.wait_until(lambda: self.seen_healthy(node.name), 60, node.name + " healthy again")

    def seen_healthy(self, storage):
        rows = self.sql("SELECT count(*) FROM node_status WHERE node_name = '%s' AND "
                        "last_seen_active_at >= last_contact_attempt_at AND "
                        "last_contact_attempt_at > now() - interval '2 seconds'" % storage)
        return rows == [(str(len(self.praefects)),)]

    def jobs(self, rel):
        info = self.repo_info(rel)
        return self.sql("SELECT job->>'target_node_storage', state FROM replication_queue "
                        "WHERE (job->>'repository_id')::bigint = %d ORDER BY id" % info["id"])

    def node_refs(self, rel):
        return {n.name: self.refs(n, rel) for n in self.nodes}

    # --- 1 ------------------------------------------------------------

    def test_1_push_acknowledged_only_by_quorum(self):
        rel = "tx/quorum.git"
        committed_before = self.metric("gitaly_praefect_transactions_total", action="committed")
        updated_before = self.metric("gitaly_praefect_tx_replications_total", reason="updated")
        self.create(self.praefects[0], rel)
        gens = self.generations(rel)
        self.assertEqual(gens, {n.name: 0 for n in self.nodes}, "the creation recorded on all three voters")
        self.assertEqual(self.jobs(rel), [], "no replication job for a creation every node voted on")
        work = self.work(rel)
        latencies = []
        for i in range(12):
            sha = self.commit(work, "c%d" % i)
            start = time.monotonic()
            pushed = self.push(self.praefects[i % 3], rel, work)
            latencies.append(time.monotonic() - start)
            self.assertTrue(pushed, pushed)
            # At once: no job could have run, none was even queued.
            refs = self.node_refs(rel)
            primary = self.repo_info(rel)["primary"]
            self.assertIn(sha, refs[primary])
            for name, r in refs.items():
                self.assertEqual(r, refs[primary], "%s's refs right after push %d" % (name, i))
            info = self.repo_info(rel)
            self.assertEqual(self.generations(rel), {n.name: info["generation"] for n in self.nodes})
            self.assertEqual(self.jobs(rel), [], "no replication job after push %d" % i)
        latencies.sort()
        print("\ntransactions: 12 pushes through 3 voters, p50 %.3f s, max %.3f s" % (
            latencies[6], latencies[-1]), file=sys.stderr)
        self.assertGreaterEqual(self.metric("gitaly_praefect_transactions_total", action="committed")
                                - committed_before, 3 * 12)
        self.assertGreaterEqual(self.metric("gitaly_praefect_tx_replications_total", reason="updated")
                                - updated_before, 2 * 12)
        self.assertGreaterEqual(self.metric("gitaly_praefect_voters_per_transaction_total_count",
                                            virtual_storage="default"), 13)
        self.assertTrue(self.log_lines('"transaction completed"') or self.log_lines("transaction completed"))

    # --- 2 ------------------------------------------------------------

    def test_2_outvoted_secondary_is_repaired(self):
        rel = "tx/outvoted.git"
        work = self.new_repo(self.praefects[0], rel)
        self.commit(work, "second")
        self.assertTrue(self.push(self.praefects[0], rel, work))
        before = self.metric("gitaly_praefect_tx_replications_total", reason="node-not-committed") + \
            self.metric("gitaly_praefect_tx_replications_total", reason="node-error-status")
        primary, secondary, _ = self.make_mismatch(rel)
        other = next(n for n in self.nodes if n.name not in (primary.name, secondary.name))
        sha = self.commit(work, "third")
        start = time.monotonic()
        pushed = self.push(self.praefects[1], rel, work)
        took = time.monotonic() - start
        self.assertTrue(pushed, "the outvoted secondary must not block the write: %r" % pushed)
        self.assertIn(sha, self.refs(primary, rel))
        self.assertEqual(self.refs(other, rel), self.refs(primary, rel), "the agreeing secondary at once")
        # Not recorded up to date: the transaction's log line names it among
        # the replicas that got a job (which may have run by now).
        outdated = [line for line in self.log_lines("transaction completed") if "replication.outdated=" in line
                    and secondary.name + ":node-" in line]
        self.assertTrue(outdated, "a transaction completed with %s outdated" % secondary.name)
        after = self.metric("gitaly_praefect_tx_replications_total", reason="node-not-committed") + \
            self.metric("gitaly_praefect_tx_replications_total", reason="node-error-status")
        self.assertGreater(after, before)
        self.wait_until(lambda: self.refs(secondary, rel) == self.refs(primary, rel), 30,
                        lambda: "the outvoted secondary repaired by its job: %r" % self.jobs(rel))
        self.wait_replicated(rel)
        print("\ntransactions: push with an outvoted secondary acknowledged in %.3f s; repaired by %r" % (
            took, self.jobs(rel)), file=sys.stderr)

    # --- 3 ------------------------------------------------------------

    def test_3_pre_receive_rejection_changes_nothing(self):
        rel = "tx/rejected.git"
        work = self.new_repo(self.praefects[0], rel)
        self.wait_replicated(rel)
        info = self.repo_info(rel)
        primary = self.node(info["primary"])
        hooks = os.path.join(self.replica_dir(primary, rel), "custom_hooks")
        os.makedirs(hooks, exist_ok=True)
        hook = os.path.join(hooks, "pre-receive")
        with open(hook, "w") as f:
            f.write("#!/bin/sh\necho 'rejected by policy' >&2\nexit 1\n")
        os.chmod(hook, 0o755)
        try:
            refs_before = self.node_refs(rel)
            gens_before = self.generations(rel)
            stopped_before = self.metric("gitaly_praefect_transactions_total", action="stopped")
            self.commit(work, "refused")
            pushed = self.push(self.praefects[2], rel, work)
            self.assertFalse(pushed, "the hook rejects the push")
            self.assertIn("rejected by policy", pushed.err)
            self.assertEqual(self.node_refs(rel), refs_before, "nothing changed on any node")
            self.assertEqual(self.generations(rel), gens_before, "no generation moved")
            self.assertEqual(self.repo_info(rel)["generation"], info["generation"])
            self.assertEqual([j for j in self.jobs(rel) if j[1] in ("ready", "in_progress")], [],
                             "no job scheduled")
            self.assertGreater(self.metric("gitaly_praefect_transactions_total", action="stopped"), stopped_before,
                               "the transaction was stopped")
        finally:
            os.remove(hook)

    # --- 4 ------------------------------------------------------------

    def push_while(self, rel, work, victims, action):
        """Starts a push, stops `victims` (SIGSTOP) first so that the push
        is mid-transaction when `action` runs on them; returns the push's
        outcome and how long it took."""
        for v in victims:
            v.proc.send_signal(signal.SIGSTOP)
        result = {}

        def run():
            start = time.monotonic()
            result["pushed"] = self.push(self.praefects[0], rel, work)
            result["took"] = time.monotonic() - start
        t = threading.Thread(target=run)
        t.start()
        time.sleep(0.7)
        for v in victims:
            action(v)
        t.join(60)
        self.assertFalse(t.is_alive(), "the push ended")
        return result["pushed"], result["took"]

    def test_4_killed_secondaries(self):
        rel = "tx/killed.git"
        work = self.new_repo(self.praefects[0], rel)
        self.wait_replicated(rel)
        primary = self.node(self.repo_info(rel)["primary"])
        secondaries = [n for n in self.nodes if n is not primary]

        def kill(node):
            node.proc.send_signal(signal.SIGKILL)
            node.proc.wait()
        # One secondary killed: primary + the other still reach the threshold.
        sha = self.commit(work, "one secondary killed")
        pushed, took = self.push_while(rel, work, secondaries[:1], kill)
        self.assertTrue(pushed, "the threshold was still reachable: %r" % pushed)
        self.assertIn(sha, self.refs(primary, rel))
        self.assertEqual(self.refs(secondaries[1], rel), self.refs(primary, rel))
        print("\ntransactions: push with a secondary killed mid-transaction acknowledged in %.2f s" % took,
              file=sys.stderr)
        self.setUp()
        self.wait_replicated(rel)
        # Both killed: the threshold is out of reach; the push fails, and
        # the refs of the primary do not move.
        primary_refs = self.refs(primary, rel)
        self.commit(work, "both secondaries killed")
        pushed, took = self.push_while(rel, work, secondaries, kill)
        self.assertFalse(pushed, "the threshold was out of reach")
        self.assertEqual(self.refs(primary, rel), primary_refs, "the primary aborted its update")
        print("transactions: push with both secondaries killed failed cleanly in %.2f s: %s" % (
            took, pushed.err.splitlines()[-1] if pushed.err else ""), file=sys.stderr)

    # --- 5 and 6 --------------------------------------------------------

    def pushers(self, rel, log, stop):
        """One thread per praefect pushing its own branch of `rel` without
        pause; each acknowledged push is logged with its time."""
        def pusher(i, praefect):
            work = self.work("%s-p%d" % (rel, i))
            n = 0
            while not stop.is_set():
                n += 1
                sha = self.commit(work, "p%d %d" % (i, n))
                pushed = self.push(praefect, rel, work, "HEAD:refs/heads/p%d" % i)
                ok = bool(pushed)
                log.append({"t": time.monotonic(), "ok": ok, "branch": "p%d" % i, "sha": sha,
                            "err": "" if ok else pushed.err[-300:]})
                if not ok:
                    time.sleep(0.02)
        threads = [threading.Thread(target=pusher, args=(i, p)) for i, p in enumerate(self.praefects, 1)]
        for t in threads:
            t.start()
        return threads

    def check_acknowledged_on(self, rel, node, acked):
        path = self.replica_dir(node, rel)
        missing = []
        for e in acked:
            tip = subprocess.run(["git", "--git-dir=" + path, "rev-parse", "-q", "--verify",
                                  "refs/heads/" + e["branch"]], stdout=subprocess.PIPE, env=self.env).stdout.decode()
            if not tip.strip() or subprocess.run(["git", "--git-dir=" + path, "merge-base", "--is-ancestor", e["sha"],
                                                  tip.strip()], env=self.env).returncode != 0:
                missing.append(e)
        self.assertFalse(missing, "acknowledged pushes missing on %s: %r" % (node.name, missing[:5]))

    def disrupt_primary(self, rel, action, hold):
        """Pushes from three praefects, then `action` on the primary; returns
        (victim, seconds to the first push acknowledged after it, the log)."""
        self.new_repo(self.praefects[0], rel)
        self.wait_replicated(rel)
        victim = self.node(self.repo_info(rel)["primary"])
        log, stop = [], threading.Event()
        threads = self.pushers(rel, log, stop)
        try:
            self.wait_until(lambda: len([e for e in log if e["ok"]]) >= 6, 30, "pushes before the disruption")
            at = time.monotonic()
            action(victim)
            self.wait_until(lambda: any(e["ok"] and e["t"] > at for e in log), 30,
                            lambda: "a push acknowledged after the disruption: %r %r; last refusals: %r" % (
                                self.repo_info(rel), self.generations(rel),
                                [e["err"] for e in log if not e["ok"]][-3:]))
            first = min(e["t"] for e in log if e["ok"] and e["t"] > at) - at
            time.sleep(hold)
        finally:
            stop.set()
            for t in threads:
                t.join()
        return victim, first, log, at

    def test_5_primary_killed_during_pushes(self):
        rel = "tx/busy-killed.git"
        victim, first, log, at = self.disrupt_primary(rel, lambda n: n.kill(), 1.0)
        info = self.repo_info(rel)
        self.assertNotEqual(info["primary"], victim.name)
        acked = [e for e in log if e["ok"]]
        print("\ntransactions: kill -9 of the primary %s: first acknowledged write %.2f s after it (%d acknowledged, "
              "%d refused in all); new primary %s" % (victim.name, first, len(acked), len(log) - len(acked),
                                                      info["primary"]), file=sys.stderr)
        self.assertLessEqual(first, FAILOVER_TARGET)
        self.check_acknowledged_on(rel, self.node(info["primary"]), acked)
        self.assertTrue(all(self.generations(rel)[n.name] == info["generation"] for n in self.nodes
                            if n is not victim), "both survivors at the latest generation: nothing unavailable")

    def test_6_primary_hangs_during_pushes(self):
        rel = "tx/busy-hung.git"

        def hang(node):
            node.proc.send_signal(signal.SIGSTOP)
        victim, first, log, at = self.disrupt_primary(rel, hang, 2.0)
        hung_for = time.monotonic() - at
        victim.proc.send_signal(signal.SIGCONT)
        info = self.repo_info(rel)
        acked = [e for e in log if e["ok"]]
        print("\ntransactions: SIGSTOP of the primary %s: first acknowledged write %.2f s after it (%d acknowledged, "
              "%d refused); new primary %s; resumed after %.1f s" % (
                  victim.name, first, len(acked), len(log) - len(acked), info["primary"], hung_for), file=sys.stderr)
        self.assertNotEqual(info["primary"], victim.name)
        self.assertLessEqual(first, FAILOVER_TARGET)
        self.check_acknowledged_on(rel, self.node(info["primary"]), acked)
        # The hung node converges once resumed, with nothing lost.
        resumed = time.monotonic()
        self.wait_until(lambda: self.refs(victim, rel) == self.refs(self.node(info["primary"]), rel) and
                        self.all_latest(rel, [n.name for n in self.nodes]), 60,
                        lambda: "the resumed node converges: %r %r" % (self.generations(rel), self.jobs(rel)))
        self.check_acknowledged_on(rel, victim, acked)
        # The writes cancelled when the primary hung held reference locks
        # on the secondaries; none may be left (a stale refs/heads/x.lock
        # fails every later write of that ref, replication included).
        stale = [os.path.join(d, f) for n in self.nodes for d, _, files in os.walk(self.replica_dir(n, rel))
                 for f in files if f.endswith(".lock")]
        self.assertEqual(stale, [], "no lock file left in any replica")
        print("transactions: the resumed node converged %.2f s after SIGCONT" % (time.monotonic() - resumed),
              file=sys.stderr)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
