#!/usr/bin/python3
"""Observability end to end: a real Prometheus server (Debian's) scrapes a
cluster of PostgreSQL, three praefect-storage-node processes and two
praefects (transactions on, one with a TLS listener) while the test pushes,
reads and kills a node.

  1. `promtool check metrics` on /metrics and /db_metrics of both praefects
     finds nothing but the lints Praefect's own names force, each listed in
     praefect-metrics(7);
  2. every series name of Praefect v16 (the reference's list, kept below) is
     exported or listed in praefect-metrics(7) NOT EXPORTED; every series
     the man page describes is exported;
  3. with the shipped rules loaded, the killed node's PraefectNodeUnhealthy
     fires (and only for it), the one-day certificate's
     PraefectTLSCertificateExpiringSoon fires, and PraefectDown,
     PraefectUnavailableRepositories, PraefectReplicationDeadJobs and
     PraefectVerificationMismatch stay silent; then every PromQL expression
     of the shipped Grafana dashboard, evaluated through Prometheus's HTTP
     API, returns data;
  4. the metrics server refuses what is not a GET of a known path and
     serves concurrent scrapes while a client holds a connection open;
  and prometheus_exclude_database_from_default_metrics = false (praefect-2)
  is accepted, logged as changing nothing, and changes nothing.

usage: observability_test.py BIN_DIR PROTO_DIR WORK_DIR
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import auth  # noqa: E402
from harness import free_port  # noqa: E402
from selfheal import SelfHealingCluster  # noqa: E402

SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DASHBOARD = os.path.join(SOURCE, "monitoring", "praefect-dashboard.json")
ALERTS = os.path.join(SOURCE, "monitoring", "praefect-alerts.yml")
MAN_PAGE = os.path.join(SOURCE, "man", "praefect-metrics.7.scd")

# Praefect v16's series (../shared/reference/metrics.md §2-3; Go runtime and
# incidental series by their family).
REFERENCE = [
    "gitaly_praefect_connections_total", "gitaly_praefect_method_types", "gitaly_praefect_read_distribution",
    "gitaly_praefect_replication_delay", "gitaly_praefect_replication_latency", "gitaly_praefect_replication_jobs",
    "gitaly_praefect_node_latency", "gitaly_praefect_primaries", "gitaly_praefect_node_last_healthcheck_up",
    "gitaly_praefect_transactions_total", "gitaly_praefect_transactions_delay_seconds",
    "gitaly_praefect_subtransactions_per_transaction_total", "gitaly_praefect_voters_per_transaction_total",
    "gitaly_praefect_tx_replications_total", "gitaly_praefect_reconciliation_scheduling_seconds",
    "gitaly_praefect_verification_jobs_dequeued_total", "gitaly_praefect_verification_jobs_completed_total",
    "gitaly_praefect_stale_verification_leases_released_total", "gitaly_praefect_notifications_reconnects_total",
    "gitaly_praefect_uptodate_storages_cache_access_total", "gitaly_authentications_total",
    "gitaly_authentication_errors_total", "gitaly_service_client_requests_total", "gitaly_feature_flag_checks_total",
    "grpc_server_started_total", "grpc_server_handled_total", "grpc_server_msg_received_total",
    "grpc_server_msg_sent_total", "grpc_server_handling_seconds", "grpc_client_started_total",
    "grpc_client_handled_total", "grpc_client_msg_received_total", "grpc_client_msg_sent_total",
    "grpc_client_handling_seconds", "go_*", "process_cpu_seconds_total", "process_resident_memory_bytes",
    "process_open_fds", "process_max_fds", "process_start_time_seconds", "gitlab_build_info",
    "gitaly_commands_running", "gitaly_backup_bundle_bytes",
    "gitaly_praefect_unavailable_repositories", "gitaly_praefect_replication_queue_depth",
    "gitaly_praefect_verification_queue_depth",
]


def http_get(port, path):
    return urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=30).read().decode()


def families(text):
    """The metric family names of an exposition text (from # TYPE lines)."""
    return set(re.findall(r"^# TYPE (\S+) \S+$", text, re.M))


def man_section(title):
    with open(MAN_PAGE) as f:
        text = f.read()
    start = text.index("\n# " + title + "\n")
    end = text.find("\n# ", start + 3)
    return text[start:end if end >= 0 else len(text)]


def bold_names(section, terms_only=False):
    """The *name* words of a man page section that look like series names
    (scdoc's escapes undone: go\\_\\* is go_*)."""
    if terms_only:  # the entries' names, not the names their text mentions
        section = "\n".join(line for line in section.splitlines() if line and not line[0].isspace())
    found = re.findall(r"\*((?:[a-z0-9]|\\_|_|\\\*)+)\*", section)
    names = (n.replace("\\", "") for n in found)
    return set(n for n in names if "_" in n and n[0].isalpha())


class ObservabilityTest(SelfHealingCluster):
    PREFIX = "e2e-observability-"
    PRAEFECTS = 2

    @classmethod
    def configure(cls):
        cls.cert = os.path.join(cls.root, "cert.pem")
        cls.key = os.path.join(cls.root, "key.pem")
        if not os.path.exists(cls.cert):
            # One day left: PraefectTLSCertificateExpiringSoon's live case.
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                            "-subj", "/CN=praefect-e2e", "-addext", "subjectAltName=IP:127.0.0.1",
                            "-keyout", cls.key, "-out", cls.cert], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.tls_port = free_port()
        for i, p in enumerate(cls.praefects):
            p.write_config([(n.name, n.address) for n in cls.nodes], replication_factors=(("default", 0),),
                           extra="[backchannel]\nenabled = true\n"
                                 "[reconciliation]\nscheduling_interval = \"5s\"\n"
                                 "[background_verification]\nverification_interval = \"10s\"\n"
                                 + ('[tls]\ncertificate_path = "%s"\nkey_path = "%s"\n' % (cls.cert, cls.key)
                                    if i == 0 else ""))
            # praefect-1 serves TLS too; praefect-2 has the key Praefect
            # dropped in 15.x set to false (accepted, explained, no effect).
            top = ('tls_listen_addr = "127.0.0.1:%d"\n' % cls.tls_port if i == 0
                   else "prometheus_exclude_database_from_default_metrics = false\n")
            with open(p.config) as f:
                text = f.read()
            with open(p.config, "w") as f:
                f.write(top + text)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.prometheus = None
        try:
            cls.start_prometheus()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start_prometheus(cls):
        cls.prom_port = free_port()
        cls.prom_dir = os.path.join(cls.root, "prometheus")
        os.makedirs(cls.prom_dir)
        config = os.path.join(cls.prom_dir, "prometheus.yml")
        targets = ", ".join('"127.0.0.1:%d"' % p.metrics_port for p in cls.praefects)
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n  scrape_timeout: 1s\n"
                    "rule_files:\n  - %s\n"
                    "scrape_configs:\n"
                    "  - job_name: praefect\n    static_configs:\n      - targets: [%s]\n"
                    "  - job_name: praefect-db\n    metrics_path: /db_metrics\n    static_configs:\n"
                    "      - targets: [\"127.0.0.1:%d\"]\n" % (ALERTS, targets, cls.praefects[0].metrics_port))
        cls.prom_log = open(os.path.join(cls.prom_dir, "prometheus.log"), "w")
        cls.prometheus = subprocess.Popen(
            ["prometheus", "--config.file=" + config, "--storage.tsdb.path=" + os.path.join(cls.prom_dir, "data"),
             "--web.listen-address=127.0.0.1:%d" % cls.prom_port], stdout=cls.prom_log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                if urllib.request.urlopen("http://127.0.0.1:%d/-/ready" % cls.prom_port, timeout=5).status == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            if cls.prometheus.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("prometheus did not start:\n" + open(cls.prom_log.name).read()[-5000:])
            time.sleep(0.2)
        # Every target scraped successfully at least once.
        deadline = time.monotonic() + 60
        while True:
            targets = json.loads(urllib.request.urlopen(
                "http://127.0.0.1:%d/api/v1/targets" % cls.prom_port, timeout=10).read().decode())
            active = targets["data"]["activeTargets"]
            if len(active) == 3 and all(t["health"] == "up" for t in active):
                break
            if time.monotonic() > deadline:
                raise AssertionError("prometheus scrapes every target: %r" % [
                    (t["scrapeUrl"], t["health"], t["lastError"]) for t in active])
            time.sleep(0.5)

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "prometheus", None) is not None:
            cls.prometheus.terminate()
            try:
                cls.prometheus.wait(timeout=30)
            except subprocess.TimeoutExpired:
                cls.prometheus.kill()
                cls.prometheus.wait()
            cls.prom_log.close()
        super().tearDownClass()

    # --- helpers ---------------------------------------------------------

    def api(self, path, **params):
        url = "http://127.0.0.1:%d/api/v1/%s?%s" % (self.prom_port, path, urllib.parse.urlencode(params))
        try:
            body = urllib.request.urlopen(url, timeout=30).read().decode()
        except urllib.error.HTTPError as e:
            body = e.read().decode()
        return json.loads(body)

    def alerts(self):
        """{(alertname, frozenset of label items): state} of the active alerts."""
        out = {}
        for a in self.api("alerts")["data"]["alerts"]:
            labels = dict(a["labels"])
            out[(labels.pop("alertname"), frozenset(labels.items()))] = a["state"]
        return out

    def alert_states(self, name):
        return {labels: state for (n, labels), state in self.alerts().items() if n == name}

    def workload(self):
        """Pushes and reads through both praefects, a TLS connection, a
        refused token: every kind of series gets observations."""
        import grpc
        import repository_service_pb2 as rs
        import repository_service_pb2_grpc as rs_grpc
        import shared_pb2
        for i, p in enumerate(self.praefects):
            rel = "obs/repo-%d.git" % i
            if self.repo_info(rel) is None:
                work = self.new_repo(p, rel)
            else:
                work = self.work(rel + "-again-%d" % time.monotonic_ns())
                self.git("fetch", "-q", self.url(p, rel), "main", cwd=work)
                self.git("reset", "-q", "--hard", "FETCH_HEAD", cwd=work)
            for j in range(3):
                self.commit(work, "c%d" % j)
                self.assertTrue(self.push(p, rel, work))
            self.reads(p, rel, 5)
        # A client over TLS, one with a token signed with another secret.
        with open(self.cert, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        with grpc.secure_channel("127.0.0.1:%d" % self.tls_port, creds) as channel:
            stub = rs_grpc.RepositoryServiceStub(channel)
            stub.RepositoryExists(rs.RepositoryExistsRequest(
                repository=shared_pb2.Repository(storage_name="default", relative_path="obs/repo-0.git")),
                metadata=auth(), timeout=30)
        stub = rs_grpc.RepositoryServiceStub(self.praefects[1].channel)
        ts = str(int(time.time()))
        with self.assertRaises(grpc.RpcError) as refused:
            stub.RepositoryExists(rs.RepositoryExistsRequest(
                repository=shared_pb2.Repository(storage_name="default", relative_path="obs/repo-0.git")),
                metadata=[("authorization", "Bearer v2.%s.%s" % ("0" * 64, ts))], timeout=30)
        self.assertEqual(refused.exception.code(), grpc.StatusCode.PERMISSION_DENIED)

    def scraped(self):
        """{path: [text of each praefect]} after the workload."""
        return {path: [http_get(p.metrics_port, path) for p in self.praefects] for path in ("/metrics", "/db_metrics")}

    # --- 1 ---------------------------------------------------------------

    def test_1_promtool_finds_only_praefects_own_names(self):
        self.workload()
        allowed = bold_names(man_section("NAMES promtool FLAGS"))
        self.assertTrue(allowed, "the man page lists the names promtool flags")
        flagged = {}
        for path, texts in self.scraped().items():
            for text in texts:
                self.assertTrue(text.strip(), "%s is not empty" % path)
                r = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, timeout=60)
                for line in r.stdout.decode().splitlines():
                    name = line.split(" ", 1)[0]
                    flagged.setdefault(name, set()).add(line)
        print("\nobservability: promtool check metrics flags %d names: %s" % (len(flagged), sorted(flagged)),
              file=sys.stderr)
        unexplained = {n: lines for n, lines in flagged.items() if n not in allowed}
        self.assertEqual(unexplained, {}, "lints on names praefect-metrics(7) does not list as Praefect's")
        self.assertFalse(allowed - set(flagged), "names the man page lists that promtool no longer flags")

    # --- 3 (after 2: the queue's series exists once 2 queued jobs) ---------------------------------------------------------------

    def test_3_every_reference_series_exported_or_listed(self):
        self.workload()
        texts = self.scraped()
        exported = set()
        for t in texts["/metrics"] + texts["/db_metrics"]:
            exported |= families(t)
        not_exported = bold_names(man_section("NOT EXPORTED"), terms_only=True)
        missing = []
        for name in REFERENCE:
            ok = name in exported or name in not_exported
            if not ok:
                missing.append(name)
        self.assertEqual(missing, [], "reference series neither exported nor listed in NOT EXPORTED")
        both = [n for n in REFERENCE if n in exported and n in not_exported]
        self.assertEqual(both, [], "listed as not exported but exported")
        documented = set()
        for title in ("SERIES ON /metrics", "SERIES ON /db_metrics"):
            documented |= bold_names(man_section(title), terms_only=True)
        documented = {n for n in documented if n.startswith(("gitaly_", "grpc_", "process_"))}
        self.assertEqual(sorted(documented - exported), [], "documented series that are not exported")
        undocumented = {n for n in exported if n not in documented}
        self.assertEqual(sorted(undocumented), [], "exported series praefect-metrics(7) does not describe")
        # The dropped key changes nothing (both serve the same families)
        # and says so.
        queue = {"gitaly_praefect_replication_queue_depth"}  # once a scrape saw jobs
        self.assertEqual(families(texts["/db_metrics"][0]) - queue, families(texts["/db_metrics"][1]) - queue)
        self.assertIn("prometheus_exclude_database_from_default_metrics = false changes nothing",
                      self.praefects[1].log())
        # /db_metrics holds only the database gauges (the queue's only once
        # a job was queued).
        db = set()
        for t in texts["/db_metrics"]:
            db |= families(t)
        always = {"gitaly_praefect_unavailable_repositories", "gitaly_praefect_verification_queue_depth",
                  "gitaly_praefect_primary_repositories"}
        self.assertLessEqual(always, db)
        self.assertLessEqual(db, always | {"gitaly_praefect_replication_queue_depth"})

    # --- 3 ---------------------------------------------------------------

    def test_2_alerts_and_dashboard_on_a_live_cluster(self):
        self.workload()
        victim = self.nodes[2]
        victim.kill()
        killed_at = time.monotonic()
        try:
            # Both praefects take the node out of service within seconds.
            self.wait_until(lambda: self.metric("gitaly_praefect_node_healthy", storage=victim.name) == 0 and
                            self.metric("gitaly_praefect_node_healthy", storage="gitaly-1") == len(self.praefects),
                            30, "both praefects see %s unhealthy" % victim.name)
            # Writes go on while the node is down: jobs for it queue up.
            rel = "obs/during-outage.git"
            work = self.new_repo(self.praefects[0], rel)
            for j in range(3):
                self.commit(work, "outage %d" % j)
                self.assertTrue(self.push(self.praefects[j % 2], rel, work))
                self.reads(self.praefects[j % 2], rel, 3)
            # The dashboard while the alert is pending, once Prometheus has
            # scraped the jobs queued for the dead node.
            self.wait_until(lambda: self.api("query", query="gitaly_praefect_replication_queue_depth > 0")
                            ["data"]["result"], 30, "queued jobs in Prometheus")
            self.check_dashboard()
            want = frozenset({("virtual_storage", "default"), ("storage", victim.name),
                              ("severity", "warning")})
            deadline = killed_at + 240
            while True:
                states = self.alert_states("PraefectNodeUnhealthy")
                if states.get(want) == "firing":
                    break
                self.assertLess(time.monotonic(), deadline,
                                "PraefectNodeUnhealthy firing for %s: %r" % (victim.name, self.alerts()))
                time.sleep(1)
            print("\nobservability: PraefectNodeUnhealthy fired %.0f s after the kill" % (
                time.monotonic() - killed_at), file=sys.stderr)
            self.assertEqual(set(states), {want}, "only the killed node is unhealthy")
            # Its for: is longer than this test: pending is its condition
            # holding (promtool test rules covers the firing).
            tls = self.alert_states("PraefectTLSCertificateExpiringSoon")
            self.assertTrue(tls and set(tls.values()) <= {"pending", "firing"},
                            "the one-day certificate's alert: %r" % self.alerts())
            for silent in ("PraefectDown", "PraefectUnavailableRepositories", "PraefectReplicationDeadJobs",
                           "PraefectVerificationMismatch"):
                self.assertEqual(self.alert_states(silent), {}, "%s stays silent: %r" % (silent, self.alerts()))
            self.check_dashboard()
        finally:
            victim.start()

    def check_dashboard(self):
        with open(DASHBOARD) as f:
            dashboard = json.load(f)
        panels = []

        def walk(items):
            for p in items:
                panels.append(p)
                walk(p.get("panels", []))
        walk(dashboard["panels"])
        exprs = [(p.get("title", "?"), t["expr"]) for p in panels for t in p.get("targets", []) if t.get("expr")]
        self.assertGreater(len(exprs), 20, "the dashboard's queries")
        empty, failed = [], []
        for title, expr in exprs:
            query = expr.replace("$virtual_storage", ".*").replace("$__rate_interval", "1m") \
                .replace("$__range", "5m").replace("$__interval", "15s")
            self.assertNotIn("$", query, "a variable the test does not substitute in %r" % expr)
            answer = self.api("query", query=query)
            if answer.get("status") != "success":
                failed.append((title, expr, answer.get("error")))
            elif not answer["data"]["result"]:
                empty.append((title, expr, query))
        self.assertEqual(failed, [], "dashboard queries Prometheus refuses")
        # A rate needs two scrapes of its series: one still empty gets 30 s
        # (30 scrapes) more.
        deadline = time.monotonic() + 30
        while empty and time.monotonic() < deadline:
            time.sleep(1)
            empty = [e for e in empty if not self.api("query", query=e[2])["data"]["result"]]
        empty = [(title, expr) for title, expr, _ in empty]
        self.assertEqual(empty, [], "dashboard queries without data")
        print("observability: %d dashboard queries over %d panels, each with data" % (len(exprs), len(panels)),
              file=sys.stderr)

    # --- 4 ---------------------------------------------------------------

    def test_4_metrics_server_refuses_and_serves_concurrently(self):
        port = self.praefects[0].metrics_port

        def raw(request):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(request)
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        return data.decode(errors="replace")
                    data += chunk
        self.assertTrue(raw(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
                        .startswith("HTTP/1.1 405"))
        self.assertTrue(raw(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n").startswith("HTTP/1.1 405"))
        self.assertTrue(raw(b"GET /debug/pprof HTTP/1.1\r\nHost: x\r\n\r\n").startswith("HTTP/1.1 404"))
        self.assertTrue(raw(b"GET /metrics SPDY/3\r\n\r\n").startswith("HTTP/1.1 400"))
        # A client that connects and says nothing, and one that sends half a
        # request: neither holds up the scrapes of others.
        idle = socket.create_connection(("127.0.0.1", port), timeout=10)
        half = socket.create_connection(("127.0.0.1", port), timeout=10)
        half.sendall(b"GET /metr")
        try:
            results, errors = [], []

            def scrape(path):
                try:
                    start = time.monotonic()
                    text = http_get(port, path)
                    results.append((path, time.monotonic() - start, len(text)))
                except Exception as e:  # noqa: BLE001: reported below
                    errors.append(repr(e))
            threads = [threading.Thread(target=scrape, args=(path,)) for path in ["/metrics", "/db_metrics"] * 4]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            self.assertEqual(errors, [])
            self.assertEqual(len(results), 8)
            slowest = max(r[1] for r in results)
            print("\nobservability: 8 concurrent scrapes beside 2 stuck clients, slowest %.3f s" % slowest,
                  file=sys.stderr)
            self.assertLess(slowest, 4.0, "scrapes wait for the stuck clients' deadline (5 s)")
        finally:
            idle.close()
            half.close()


if __name__ == "__main__":
    import unittest
    unittest.main(argv=[sys.argv[0]], verbosity=2)
