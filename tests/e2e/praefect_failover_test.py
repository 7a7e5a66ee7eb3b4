#!/usr/bin/python3
"""praefect's failover, end to end: one PostgreSQL, three
praefect-storage-node processes and THREE praefects sharing the database
(each with its own listen_addr and prometheus_listen_addr), driven by real
git through git-remote-gitaly and by Python grpcio.

  1. the primary node is SIGKILLed during a steady stream of pushes through
     all three praefects: writes resume on a new primary (the time it takes
     is printed); every acknowledged push is on the new primary, or the
     database says the repository's latest generation is only on the dead
     node;
  2. the old primary comes back: it is a secondary and converges;
  3. one praefect cut off from the nodes does not move any primary, and its
     writes are not acknowledged;
  4. reads spread over up-to-date replicas only;
  5. replication factor 2 of 3, then 3, then 1;
  6. [failover] enabled = false: writes go to the primary = true node.
Each praefect exits 0 on SIGTERM at the end.

usage: praefect_failover_test.py BIN_DIR PROTO_DIR WORK_DIR
"""
import os
import shutil
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Postgres, StorageNode, free_port, generate_stubs  # noqa: E402
from cluster import CLIENT_TOKEN, NODE_TOKEN, ClusterHelpers, Praefect  # noqa: E402

BIN, PROTO_DIR, WORK = (os.path.abspath(a) for a in sys.argv[1:4])
# The loose bound on the failover time; the target is 2 s, the figure
# itself is what gets reported.
FAILOVER_BOUND = 10.0


class PraefectFailoverTest(ClusterHelpers, unittest.TestCase):
    victim = None          # test 1's killed node
    failed_over = {}       # relative path -> new primary, for test 2
    stuck = {}             # relative path -> (work tree, branch): waited for the victim
    acked = []             # test 1's acknowledged pushes

    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="e2e-praefect-failover-", dir=WORK)
        generate_stubs(PROTO_DIR, os.path.join(cls.root, "gen"))
        cls.pg = Postgres(cls.root)
        cls.home = os.path.join(cls.root, "home")
        os.makedirs(cls.home)
        cls.env = dict(os.environ, PATH=BIN + ":" + os.environ["PATH"], HOME=cls.home, GIT_CONFIG_NOSYSTEM="1",
                       GIT_AUTHOR_NAME="E2E", GIT_AUTHOR_EMAIL="e2e@example.com", GIT_COMMITTER_NAME="E2E",
                       GIT_COMMITTER_EMAIL="e2e@example.com", GITALY_TOKEN=CLIENT_TOKEN,
                       GIT_TERMINAL_PROMPT="0")
        cls.nodes = [StorageNode(BIN, cls.root, i, NODE_TOKEN) for i in (1, 2, 3)]
        cls.praefects = [Praefect(BIN, cls.root, "praefect-%d" % i, cls.pg.dir) for i in (1, 2, 3)]
        cls.legacy = None
        try:
            for node in cls.nodes:
                node.start()
            for p in cls.praefects:
                p.write_config(cls.node_list())
            code, out = cls.praefects[0].cmd("sql-migrate")
            assert code == 0 and "OK (applied" in out, out
            for p in cls.praefects:
                p.start()
        except BaseException:
            # unittest skips tearDownClass when setUpClass fails: leave
            # nothing running.
            for p in cls.praefects:
                p.stop()
            for node in cls.nodes:
                node.stop()
            cls.pg.destroy()
            raise

    @classmethod
    def tearDownClass(cls):
        codes = {}
        for p in cls.praefects + ([cls.legacy] if cls.legacy else []):
            codes[p.name] = p.stop()
        for node in cls.nodes:
            node.stop()
        cls.pg.destroy()
        bad = {name: code for name, code in codes.items() if code != 0}
        for p in cls.praefects + ([cls.legacy] if cls.legacy else []):
            if p.name in bad or os.environ.get("PRAEFECT_E2E_LOG") == "1":
                print("--- %s.log (tail)\n%s" % (p.name, p.log()[-20000:]), file=sys.stderr)
        assert not bad, "praefect exit codes after SIGTERM (want 0): %r" % bad
        if os.environ.get("PRAEFECT_E2E_KEEP") != "1":
            shutil.rmtree(cls.root)
        else:
            print("kept " + cls.root, file=sys.stderr)

    @classmethod
    def node_list(cls):
        return [(n.name, n.address) for n in cls.nodes]

    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    def setUp(self):
        # Every case but the first two starts from a whole cluster.
        if not self._testMethodName.startswith(("test_1_", "test_2_")):
            for node in self.nodes:
                if not node.alive():
                    node.start()
                    self.wait_seen_healthy(node.name)

    # --- 1. primary killed during pushes -------------------------------

    def test_1_primary_killed_during_pushes(self):
        p1 = self.praefects[0]
        stream = "failover/stream.git"
        works = {stream: self.new_repo(p1, stream)}
        victim = self.primary(stream) or "gitaly-1"
        # Calmer repositories sharing the primary, written in turn through the
        # three praefects: replication is asynchronous, so a repository under
        # constant writes is likely to have its latest generation only on the
        # primary when it dies (no valid candidate: it waits for the node);
        # these are likelier to have been replicated, and fail over.
        # Placed on the victim by arranging the state, not by chance (placement
        # is random: waiting for 3 of 15 to land there failed about one run in
        # twelve): once every replica is at the latest generation, any node is
        # a valid primary, and the victim is made the primary in the database,
        # as an election would have.
        calm = ["failover/calm-%d.git" % i for i in range(3)]
        for rel in calm:
            works[rel] = self.new_repo(p1, rel)
        repos = [stream] + calm
        for rel in repos:
            self.wait_replicated(rel)
        self.pg.psql("UPDATE repositories SET \"primary\" = '%s' WHERE virtual_storage = 'default' AND "
                     "relative_path IN (%s)" % (victim, ", ".join("'%s'" % r for r in calm)), db="praefect")
        for rel in calm:
            self.assertEqual(self.primary(rel), victim, "%s's primary arranged to be %s" % (rel, victim))

        # Threads: one per praefect pushing its own branch of the stream
        # repository without pause; one pushing the calm ones in turn through
        # the three praefects, 0.1 s between pushes.
        pushers = [([(p, stream, self.work("stream-p%d" % i), "p%d" % i)], 0.0)
                   for i, p in enumerate(self.praefects, 1)]
        pushers.append(([(self.praefects[i % 3], rel, works[rel], "main") for i, rel in enumerate(calm)], 0.1))
        log = []  # dicts: t, ok, rel, branch, sha, primary, praefect
        stop = threading.Event()

        def pusher(targets, pause):
            n = 0
            while not stop.is_set():
                praefect, rel, work, branch = targets[n % len(targets)]
                n += 1
                sha = self.commit(work, "%s %d" % (branch, n))
                ok = bool(self.push(praefect, rel, work, "HEAD:refs/heads/" + branch))
                t = time.monotonic()
                log.append({"t": t, "ok": ok, "rel": rel, "branch": branch, "sha": sha,
                            "primary": self.primary(rel) if ok else None, "praefect": praefect.name})
                time.sleep(pause if ok else 0.05)

        def resumed(rel):
            return next((e for e in list(log) if e["rel"] == rel and e["ok"] and e["t"] > killed
                         and e["primary"] not in ("", victim)), None)

        def stuck(rel):
            # The latest generation only on the dead node: no valid
            # candidate, the repository waits for it (reported outdated).
            info = self.repo_info(rel)
            gens = self.generations(rel)
            return {s for s, g in gens.items() if g == info["generation"]} == {victim}

        threads = [threading.Thread(target=pusher, args=a) for a in pushers]
        for t in threads:
            t.start()
        try:
            # A steady stream first: every repository has taken pushes (how
            # long that takes depends on the machine's load), then 1 s more.
            self.wait_until(lambda: all(any(e["ok"] and e["rel"] == rel for e in list(log)) for rel in repos), 30,
                            lambda: "every repository got acknowledged pushes before the kill: %r" % [
                                (e["rel"], e["ok"]) for e in log[-20:]])
            time.sleep(1)
            victim_node = self.node(victim)
            killed = time.monotonic()
            victim_node.kill()
            type(self).victim = victim
            at_kill = {rel: (self.repo_info(rel)["generation"], self.generations(rel)) for rel in repos}
            queue_at_kill = self.sql("SELECT job->>'relative_path', job->>'target_node_storage', state, count(*) "
                                     "FROM replication_queue WHERE state IN ('ready', 'in_progress') "
                                     "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
            deadline = killed + FAILOVER_BOUND + 5
            while time.monotonic() < deadline and not all(resumed(r) or stuck(r) for r in repos):
                time.sleep(0.05)
            time.sleep(1)  # a little more of the stream on the new primary
        finally:
            stop.set()
            for t in threads:
                t.join()

        acked = [e for e in log if e["ok"]]
        type(self).acked = acked
        print("\nfailover: %d pushes acknowledged, %d refused, over %.1f s (kill -9 of %s at +%.1f s)" % (
            len(acked), len(log) - len(acked), log[-1]["t"] - log[0]["t"], victim, killed - log[0]["t"]),
            file=sys.stderr)
        print("failover: generations just after the kill (latest, per replica): %r" % at_kill, file=sys.stderr)
        print("failover: replication jobs pending just after the kill (repository, target, state, count): %r"
              % queue_at_kill, file=sys.stderr)
        measured = {}
        for rel in repos:
            first = resumed(rel)
            info = self.repo_info(rel)
            if first is not None:
                measured[rel] = first["t"] - killed
                # The pushes come one after another: the last refused one
                # before it bounds the figure from below.
                refused = [e["t"] - killed for e in log if e["rel"] == rel and not e["ok"] and killed < e["t"]
                           < first["t"]]
                print("failover: %s: first acknowledged write on new primary %s %.2f s after kill -9 (via %s; "
                      "%d refused before it, the last at %s)" % (
                          rel, first["primary"], measured[rel], first["praefect"], len(refused),
                          "%.2f s" % refused[-1] if refused else "-"), file=sys.stderr)
                type(self).failed_over[rel] = first["primary"]
            else:
                self.assertTrue(stuck(rel), "%s: no write acknowledged on a new primary within %.0f s, and the "
                                "database does not say its latest generation is only on the dead %s: %r %r"
                                % (rel, FAILOVER_BOUND + 5, victim, info, self.generations(rel)))
                print("failover: %s did not fail over: its latest generation %d is only on the dead %s "
                      "(reported outdated: %r)" % (rel, info["generation"], victim, self.generations(rel)),
                      file=sys.stderr)
                target = next(t for targets, _ in pushers for t in targets if t[1] == rel)
                type(self).stuck[rel] = (target[2], target[3])
                after = [e for e in acked if e["rel"] == rel and e["t"] > killed + 1]
                self.assertFalse(after, "%s: writes acknowledged with no up-to-date primary" % rel)
        self.assertTrue(measured, "no repository failed over (each has its latest generation only on the dead "
                        "node): %r" % at_kill)
        first = min(measured.values())
        print("failover: first acknowledged write on new primary %.2f s after kill -9" % first, file=sys.stderr)
        for rel, took in measured.items():
            self.assertLess(took, FAILOVER_BOUND, rel)
        late_on_victim = [e for e in acked if e["t"] > killed + 0.5 and e["primary"] == victim]
        self.assertFalse(late_on_victim, "pushes acknowledged with the dead node as primary > 0.5 s after the kill")

        # Every acknowledged push is on the new primary (its branch tip is the
        # pushed commit or a descendant), or the repository is reported
        # outdated.
        for rel in measured:
            info = self.repo_info(rel)
            self.assertNotEqual(info["primary"], victim)
            new_primary = self.node(info["primary"])
            missing = []
            for e in acked:
                if e["rel"] != rel:
                    continue
                tip = self.tip(new_primary, info["replica_path"], "refs/heads/" + e["branch"])
                if tip is None or not self.contains(new_primary, info["replica_path"], e["sha"], tip):
                    missing.append(e)
            if missing and stuck(rel):
                print("failover: %s: %d acknowledged pushes not on %s, reported outdated" % (
                    rel, len(missing), new_primary.name), file=sys.stderr)
                continue
            self.assertFalse(missing, "%s: acknowledged pushes missing on the new primary %s: %s" % (
                rel, new_primary.name, ["%s %s at %+.2f s" % (e["branch"], e["sha"][:10], e["t"] - killed)
                                        for e in missing[:10]]))
            print("failover: %s: all %d acknowledged pushes on %s" % (
                rel, len([e for e in acked if e["rel"] == rel]), new_primary.name), file=sys.stderr)

    # --- 2. the old primary comes back ---------------------------------

    def test_2_old_primary_returns_as_secondary(self):
        if self.victim is None:
            self.skipTest("test 1 killed no node")
        node = self.node(self.victim)
        started = time.monotonic()
        node.start()
        took = self.wait_seen_healthy(node.name)
        if took is not None:
            print("failover: %s restarted, seen healthy by all three praefects after %.2f s" % (
                self.victim, took - started), file=sys.stderr)
            # Node channels retry at most every second (not grpc's 120 s
            # default backoff): a returning node is back within a few checks.
            self.assertLess(took - started, 5, "a restarted node is seen healthy within 5 s")
        self.assertTrue(self.failed_over, "test 1 failed no repository over")
        for rel, new_primary in self.failed_over.items():
            def converged():
                info = self.repo_info(rel)
                gens = self.generations(rel)
                return (gens.get(self.victim) == info["generation"]
                        and self.refs(node, rel) == self.refs(self.node(info["primary"]), rel))
            self.wait_until(converged, 60, lambda: "%s on the returned %s: %r, generations %r, queue %r" % (
                rel, self.victim, self.repo_info(rel), self.generations(rel),
                self.sql("SELECT state, job->>'change', job->>'target_node_storage', count(*) FROM "
                         "replication_queue GROUP BY 1, 2, 3")))
            self.assertNotEqual(self.primary(rel), self.victim, "%s: the returned node is a secondary" % rel)
            print("failover: %s: %s back, secondary, converged %.2f s after its restart (primary %s)" % (
                rel, self.victim, time.monotonic() - started, self.primary(rel)), file=sys.stderr)
        # A repository that waited for the node (its latest generation only
        # there) takes writes again, and nothing acknowledged is lost: every
        # push acknowledged in test 1 is on the primary (whichever it is:
        # once the returned node replicated to the others, any of them is a
        # valid candidate), and the three converge.
        for rel, (work, branch) in self.stuck.items():
            before = (self.repo_info(rel), self.generations(rel))
            self.commit(work, "after %s returned" % self.victim)
            pushed = self.push(self.praefects[0], rel, work, "HEAD:refs/heads/" + branch)
            self.assertTrue(pushed, "%s writable again once %s is back" % (rel, self.victim))
            info = self.repo_info(rel)
            primary = self.node(info["primary"])
            missing = []
            for e in self.acked:
                if e["rel"] == rel:
                    tip = self.tip(primary, info["replica_path"], "refs/heads/" + e["branch"])
                    if tip is None or not self.contains(primary, info["replica_path"], e["sha"], tip):
                        missing.append("%s %s" % (e["branch"], e["sha"][:10]))
            self.assertFalse(missing, "%s: pushes acknowledged in test 1 missing on its primary %s after the write "
                             "(before it: %r)" % (rel, primary.name, before))
            self.wait_replicated(rel)
            want = self.refs(primary, rel)
            self.wait_until(lambda: all(self.refs(n, rel) == want for n in self.nodes), 60,
                            "%s: refs equal on the three nodes" % rel)
            print("failover: %s: writable again (primary %s; before the write: primary %r, generations %r), "
                  "nothing acknowledged lost, converged %.2f s after %s's restart" % (
                      rel, primary.name, before[0]["primary"], before[1], time.monotonic() - started, self.victim),
                  file=sys.stderr)

    # --- 3. one praefect cut off from the nodes ------------------------

    def test_3_praefect_cut_off_moves_no_primary(self):
        p1, p2, p3 = self.praefects
        repos = ["cutoff/a.git", "cutoff/b.git"]
        works = {rel: self.new_repo(p1, rel) for rel in repos}
        for rel in repos:
            self.wait_replicated(rel)
        self.assertEqual(p3.stop(), 0, "praefect-3 exits 0 on SIGTERM")
        # Same storage names, addresses where nothing listens.
        p3.write_config([(n.name, "tcp://127.0.0.1:%d" % free_port()) for n in self.nodes])
        p3.start()
        try:
            # Per node: a recent contact attempt, and not seen healthy for a
            # second before it (never, or before the restart).
            p3_rows = ("SELECT node_name, last_contact_attempt_at > now() - interval '3 seconds', "
                       "COALESCE(last_seen_active_at < last_contact_attempt_at - interval '1 second', true) "
                       "FROM node_status WHERE praefect_name LIKE '%%:127.0.0.1:%d' AND shard_name = 'default' "
                       "ORDER BY 1" % p3.port)

            def p3_sees_all_unhealthy():
                rows = self.sql(p3_rows)
                return rows == [(n.name, "t", "t") for n in self.nodes]

            self.wait_until(p3_sees_all_unhealthy, 15, lambda: "node_status of praefect-3 shows every node "
                            "unhealthy: %r" % self.sql("SELECT * FROM node_status ORDER BY 1, 3"))
            primaries = {rel: self.primary(rel) for rel in repos}
            n = 0
            end = time.monotonic() + 5
            while time.monotonic() < end:
                for rel in repos:
                    n += 1
                    p = (p1, p2)[n % 2]
                    self.commit(works[rel], "cutoff %d" % n)
                    self.assertTrue(self.push(p, rel, works[rel]), "push %d to %s through %s" % (n, rel, p.name))
                    self.assertEqual({r: self.primary(r) for r in repos}, primaries, "primaries unchanged")
            self.assertTrue(p3_sees_all_unhealthy(), self.sql("SELECT * FROM node_status ORDER BY 1, 3"))
            for row in self.sql("SELECT node_name, last_contact_attempt_at, last_seen_active_at FROM node_status "
                                "WHERE praefect_name LIKE '%%:127.0.0.1:%d' AND shard_name = 'default' "
                                "ORDER BY 1" % p3.port):
                print("cut-off praefect: node_status %s: last contact attempt %s, last seen active %s" % row,
                      file=sys.stderr)
            print("cut-off praefect: %d writes through praefects 1 and 2, primaries unchanged: %r" % (
                n, primaries), file=sys.stderr)
            for rel in repos:
                before = self.repo_info(rel)
                self.commit(works[rel], "through the cut-off praefect")
                pushed = self.push(p3, rel, works[rel])
                self.assertFalse(pushed, "a write through praefect-3 is not acknowledged")
                reason = next((line for line in pushed.err.splitlines() if "failed:" in line), pushed.err)
                print("cut-off praefect: %s refused: %s" % (rel, reason), file=sys.stderr)
                after = self.repo_info(rel)
                self.assertEqual(after["primary"], primaries[rel], "the cut-off praefect moved no primary")
                self.assertEqual(after["generation"], before["generation"], "and recorded no write")
        finally:
            self.assertEqual(p3.stop(), 0, "praefect-3 (cut off) exits 0 on SIGTERM")
            p3.write_config(self.node_list())
            p3.start()

    # --- 4. reads spread over up-to-date replicas ---------------------

    def test_4_reads_spread_over_up_to_date_replicas(self):
        p1 = self.praefects[0]
        for p in self.praefects:
            self.assertIn("reads distribution caching is enabled by configuration", p.log(), p.name)
        rel = "reads/spread.git"
        work = self.new_repo(p1, rel)
        self.wait_replicated(rel)
        counts = self.reads(p1, rel, 300)
        print("reads: 300 through praefect-1, 3 up-to-date replicas: %r" % counts, file=sys.stderr)
        for storage, count in counts.items():
            self.assertTrue(0.15 * 300 <= count <= 0.55 * 300, "%s got %d of 300 reads: %r" % (storage, count, counts))

        # One replica outdated: its generation set one below the latest in
        # the database, as after a write it missed (the data on disk does not
        # matter to the router; the metadata is what it must obey). The
        # UPDATE fires the notification the read caches listen to.
        primary = self.primary(rel)
        outdated = next(n.name for n in self.nodes if n.name != primary)
        self.sql("UPDATE storage_repositories SET generation = generation - 1 WHERE virtual_storage = 'default' "
                 "AND relative_path = '%s' AND storage = '%s'" % (rel, outdated))
        time.sleep(1)
        counts = self.reads(p1, rel, 200)
        print("reads: 200 with %s outdated: %r" % (outdated, counts), file=sys.stderr)
        self.assertEqual(counts[outdated], 0, "no reads on the outdated %s: %r" % (outdated, counts))
        self.assertEqual(sum(counts.values()), 200)

        # Back to the latest generation by replication: a write replicates to
        # both secondaries, the outdated one included.
        self.commit(work, "bring it back")
        self.assertTrue(self.push(p1, rel, work))
        self.wait_replicated(rel)
        time.sleep(1)
        counts = self.reads(p1, rel, 200)
        print("reads: 200 after %s caught up: %r" % (outdated, counts), file=sys.stderr)
        self.assertTrue(0.15 * 200 <= counts[outdated] <= 0.55 * 200, "%s reads again: %r" % (outdated, counts))

    # --- 5. replication factor -----------------------------------------

    def test_5_replication_factor(self):
        p1 = self.praefects[0]
        rel = "factor/r.git"
        self.new_repo(p1, rel, vs="rf")
        info = self.repo_info(rel, "rf")

        def on_disk():
            return sorted(n.name for n in self.nodes if os.path.isdir(os.path.join(n.storage, info["replica_path"])))

        def assignments():
            return sorted(s for (s,) in self.sql("SELECT storage FROM repository_assignments WHERE "
                                                 "repository_id = %d" % info["id"]))

        assigned = assignments()
        self.assertEqual(len(assigned), 2, "default_replication_factor = 2: two assignments: %r" % assigned)
        self.assertIn(self.primary(rel, "rf"), assigned)
        self.wait_replicated(rel, assigned, "rf")
        self.wait_until(lambda: on_disk() == assigned, 30, lambda: "on disk %r, assigned %r" % (on_disk(), assigned))
        time.sleep(1)  # nothing more arrives
        self.assertEqual(sorted(self.generations(rel, "rf")), assigned)
        self.assertEqual(on_disk(), assigned)
        print("replication factor 2: on %r" % assigned, file=sys.stderr)

        code, out = p1.cmd("set-replication-factor", "-virtual-storage", "rf", "-repository", rel,
                           "-replication-factor", "3")
        self.assertEqual(code, 0, out)
        self.assertIn("current assignments: gitaly-1, gitaly-2, gitaly-3", out)
        everyone = [n.name for n in self.nodes]
        self.wait_replicated(rel, everyone, "rf")
        self.wait_until(lambda: on_disk() == everyone, 30, lambda: "on disk %r" % on_disk())
        primary = self.primary(rel, "rf")
        want = self.refs(self.node(primary), rel, "rf")
        self.wait_until(lambda: all(self.refs(n, rel, "rf") == want for n in self.nodes), 30,
                        "refs equal on the three nodes")

        code, out = p1.cmd("set-replication-factor", "-virtual-storage", "rf", "-repository", rel,
                           "-replication-factor", "1")
        self.assertEqual(code, 0, out)
        primary = self.primary(rel, "rf")
        self.assertIn("current assignments: %s\n" % primary, out + "\n")
        self.wait_until(lambda: sorted(self.generations(rel, "rf")) == [primary], 30,
                        lambda: "replica rows: %r" % self.generations(rel, "rf"))
        self.wait_until(lambda: on_disk() == [primary], 30, lambda: "on disk %r, primary %s" % (on_disk(), primary))
        self.assertEqual(assignments(), [primary])
        self.assertEqual(self.refs(self.node(primary), rel, "rf"), want, "the primary keeps it")
        print("replication factor 3 then 1: left on %s" % primary, file=sys.stderr)

    # --- 6. legacy: failover disabled ----------------------------------

    def test_6_failover_disabled_writes_to_configured_primary(self):
        # The same database, its own virtual storage "legacy" (over the same
        # nodes) that the other praefects do not serve.
        legacy = Praefect(BIN, self.root, "praefect-legacy", self.pg.dir)
        legacy.write_config(self.node_list(), failover=False, primary="gitaly-2", replication_factors=(("legacy", 0),))
        legacy.start()
        type(self).legacy = legacy
        primaries = {}
        for i in range(5):
            rel = "legacy/r%d.git" % i
            self.create(legacy, rel, "legacy")
            work = self.work("legacy-%d" % i)
            self.commit(work, "legacy")
            self.assertTrue(self.push(legacy, rel, work, vs="legacy"))
            info = self.repo_info(rel, "legacy")
            gens = self.generations(rel, "legacy")
            primaries[rel] = info["primary"]
            self.assertEqual(gens.get("gitaly-2"), info["generation"], "%s: the write reached gitaly-2" % rel)
            self.assertTrue(os.path.isdir(os.path.join(self.node("gitaly-2").storage, info["replica_path"])))
        print("failover disabled: primaries %r" % primaries, file=sys.stderr)
        self.assertEqual(set(primaries.values()), {"gitaly-2"})
        type(self).legacy = None
        self.assertEqual(legacy.stop(), 0, "the legacy praefect exits 0 on SIGTERM")


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
