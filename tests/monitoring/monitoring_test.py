#!/usr/bin/python3
"""The Grafana dashboard and the alerting rules of monitoring/, checked
without a Prometheus server:

  1. monitoring/praefect-dashboard.json: valid JSON, the template variables
     (a Prometheus data source, virtual_storage from label_values), every
     panel with the data source variable, a grid position inside the 24
     columns and overlapping no other panel, a unique id, and targets with a
     non-empty PromQL expression that promtool parses (each embedded as a
     recording rule, `promtool check rules`, after the substitutions the
     end-to-end test makes: $virtual_storage -> .*, $__rate_interval -> 1m);
     no other Grafana variable, no comparison filter (an empty panel is
     indistinguishable from a broken one), series of a virtual storage
     filtered by $virtual_storage, counters only under rate()/increase();
  2. monitoring/praefect-alerts.yml: every rule an alert with for:, a
     severity label (warning or critical), a summary and a description that
     names a praefect command; every alert with a case that fires and a
     case that stays silent in tests/monitoring/alerts_test.yml;
  3. every metric name and label that the dashboard, the rules and the
     rules' test data use is one praefect exports (KNOWN_METRICS below:
     update it when praefect's metrics change), so that a misspelt name
     cannot give an empty panel or an alert that never fires, nor a silent
     test case that passes for want of data.

usage: monitoring_test.py SOURCE_DIR
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

try:
    import yaml
except ImportError:
    sys.exit("PyYAML is missing: install Debian's python3-yaml (scripts/setup)")

SOURCE = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
DASHBOARD = os.path.join(SOURCE, "monitoring", "praefect-dashboard.json")
RULES = os.path.join(SOURCE, "monitoring", "praefect-alerts.yml")
RULES_TEST = os.path.join(SOURCE, "tests", "monitoring", "alerts_test.yml")
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

COUNTER, GAUGE, HISTOGRAM = "counter", "gauge", "histogram"
# What praefect exports (/metrics and /db_metrics), with each name's labels
# (besides job and instance, which Prometheus adds).
KNOWN_METRICS = {
    # /metrics: go-grpc-prometheus names
    "grpc_server_started_total": (COUNTER, {"grpc_type", "grpc_service", "grpc_method"}),
    "grpc_server_handled_total": (COUNTER, {"grpc_type", "grpc_service", "grpc_method", "grpc_code"}),
    "grpc_server_msg_received_total": (COUNTER, {"grpc_type", "grpc_service", "grpc_method"}),
    "grpc_server_msg_sent_total": (COUNTER, {"grpc_type", "grpc_service", "grpc_method"}),
    "grpc_server_handling_seconds": (HISTOGRAM, {"grpc_type", "grpc_service", "grpc_method"}),
    # /metrics: Praefect's names, and praefect's own
    "gitaly_praefect_method_types": (COUNTER, {"method_type"}),
    "gitaly_praefect_read_distribution": (COUNTER, {"virtual_storage", "storage"}),
    "gitaly_praefect_replication_delay": (HISTOGRAM, {"type"}),
    "gitaly_praefect_replication_latency": (HISTOGRAM, {"type"}),
    "gitaly_praefect_replication_jobs": (GAUGE, {"virtual_storage", "gitaly_storage", "change_type"}),
    "gitaly_praefect_replication_dead_jobs_total": (COUNTER, {"virtual_storage", "gitaly_storage", "change_type"}),
    "gitaly_praefect_node_healthy": (GAUGE, {"virtual_storage", "storage"}),
    "gitaly_praefect_node_latency": (HISTOGRAM, {"gitaly_storage"}),
    "gitaly_praefect_primary_elections_total": (COUNTER, {"virtual_storage", "storage"}),
    "gitaly_praefect_transactions_total": (COUNTER, {"action"}),
    "gitaly_praefect_transactions_delay_seconds": (HISTOGRAM, {"action"}),
    "gitaly_praefect_subtransactions_per_transaction_total": (HISTOGRAM, set()),
    "gitaly_praefect_voters_per_transaction_total": (HISTOGRAM, {"virtual_storage"}),
    "gitaly_praefect_tx_replications_total": (COUNTER, {"reason"}),
    "gitaly_praefect_verification_jobs_completed_total": (COUNTER, {"virtual_storage", "storage", "result"}),
    "gitaly_praefect_verification_jobs_dequeued_total": (COUNTER, {"virtual_storage", "storage"}),
    "gitaly_praefect_content_verification_replicas_total": (COUNTER, {"virtual_storage", "storage", "result"}),
    "gitaly_praefect_reconciliation_scheduling_seconds": (HISTOGRAM, set()),
    "gitaly_praefect_reconciliation_jobs_total": (COUNTER, {"virtual_storage", "change_type"}),
    "gitaly_praefect_connections_total": (COUNTER, {"type"}),
    "gitaly_authentications_total": (COUNTER, {"enforced", "status"}),
    "gitaly_praefect_uptodate_storages_cache_access_total": (COUNTER, {"virtual_storage", "type"}),
    "gitaly_praefect_tls_certificate_expiry_timestamp_seconds": (GAUGE, set()),
    "process_cpu_seconds_total": (COUNTER, set()),
    "process_resident_memory_bytes": (GAUGE, set()),
    "process_virtual_memory_bytes": (GAUGE, set()),
    "process_open_fds": (GAUGE, set()),
    "process_max_fds": (GAUGE, set()),
    "process_start_time_seconds": (GAUGE, set()),
    # Prometheus's own series per target
    "up": (GAUGE, set()),
    # /db_metrics
    "gitaly_praefect_unavailable_repositories": (GAUGE, {"virtual_storage"}),
    "gitaly_praefect_replication_queue_depth": (GAUGE, {"virtual_storage", "target_node", "state"}),
    "gitaly_praefect_verification_queue_depth": (GAUGE, {"virtual_storage", "storage", "status"}),
    "gitaly_praefect_primary_repositories": (GAUGE, {"virtual_storage", "storage"}),
}
TARGET_LABELS = {"job", "instance"}
# The substitutions the end-to-end test makes (monitoring/README.md).
SUBSTITUTIONS = {"$virtual_storage": ".*", "$__rate_interval": "1m"}
VIRTUAL_STORAGE_MATCHER = ("virtual_storage", "=~", "$virtual_storage")
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
COUNTER_FUNCTIONS = {"rate", "irate", "increase", "resets"}

# ---- a scanner of PromQL: enough to find selectors, matchers and groupings

TOKEN_RE = re.compile(r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<number>(?:0x[0-9a-fA-F]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(?:ms|[smhdwy])?(?:\d+(?:ms|[smhdwy]))*)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|==|!=|>=|<=|[-+*/%^(){},=<>@])
""", re.X)
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = GROUPING | {"bool", "and", "or", "unless", "offset", "atan2", "inf", "nan", "start", "end"}
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
                "topk", "quantile"}
COMPARISONS = {"==", "!=", ">", "<", ">=", "<="}


class Scan:
    """The parts of a PromQL expression these tests check: selectors
    [(metric, [(label, op, value)], enclosing function)], grouping labels,
    label_replace destinations, and comparisons outside selectors (without
    `bool`)."""

    def __init__(self, expr):
        self.selectors, self.grouping, self.added_labels, self.comparisons = [], set(), set(), []
        tokens = []
        pos = 0
        while pos < len(expr):
            m = TOKEN_RE.match(expr, pos)
            if not m:
                raise ValueError("cannot scan %r at %r" % (expr, expr[pos:pos + 20]))
            pos = m.end()
            if m.lastgroup != "space":
                tokens.append((m.lastgroup, m.group()))
        self._walk(tokens)

    def _walk(self, tokens):
        functions = []  # the function (or None) of each open parenthesis
        pending = None  # an aggregation whose parenthesis follows its grouping
        i = 0
        while i < len(tokens):
            kind, text = tokens[i]
            nxt = tokens[i + 1][1] if i + 1 < len(tokens) else None
            if kind == "ident" and text in GROUPING and nxt == "(":
                i += 2
                while tokens[i][1] != ")":
                    if tokens[i][0] == "ident":
                        self.grouping.add(tokens[i][1])
                    i += 1
            elif kind == "ident" and text.lower() in KEYWORDS:
                pass
            elif kind == "ident" and text in AGGREGATIONS and nxt in GROUPING:
                pending = text
            elif kind == "ident" and nxt == "(":
                functions.append(text)
                if text == "label_replace":
                    # label_replace(v, "dst", "replacement", "src", "regex"): the
                    # first string argument at this depth (outside the
                    # matchers of v) is the new label.
                    depth, j = 0, i + 1
                    while j < len(tokens):
                        if tokens[j][1] in ("(", "{"):
                            depth += 1
                        elif tokens[j][1] in (")", "}"):
                            depth -= 1
                        elif depth == 1 and tokens[j][0] == "string":
                            self.added_labels.add(tokens[j][1][1:-1])
                            break
                        j += 1
                i += 1
            elif kind == "ident" or text == "{":
                metric = text if kind == "ident" else None
                matchers = []
                if text == "{" or nxt == "{":
                    i += 1 if text == "{" else 2
                    while tokens[i][1] != "}":
                        if tokens[i][1] == ",":
                            i += 1
                            continue
                        label, op, value = tokens[i][1], tokens[i + 1][1], tokens[i + 2][1]
                        matchers.append((label, op, value[1:-1]))
                        i += 3
                self.selectors.append((metric, matchers, self._enclosing(tokens, i, functions)))
            elif text == "(":
                functions.append(pending)
                pending = None
            elif text == ")":
                if functions:
                    functions.pop()
            elif text in COMPARISONS and nxt != "bool":
                self.comparisons.append(text)
            i += 1

    @staticmethod
    def _enclosing(tokens, i, functions):
        """The function whose argument the selector ending at tokens[i] is
        when it is the whole argument (`rate(x[5m])`), else None."""
        j = i + 1
        if j < len(tokens) and tokens[j][0] == "range":
            j += 1
        while j < len(tokens) and tokens[j][0] == "ident" and tokens[j][1] == "offset":
            j += 2
        if j < len(tokens) and tokens[j][1] == ")" and functions:
            return functions[-1]
        return None


def resolve(metric):
    """(kind, labels) of a name praefect exports, histogram series
    included; None when it does not export it."""
    if metric in KNOWN_METRICS:
        kind, labels = KNOWN_METRICS[metric]
        return None if kind == HISTOGRAM else (kind, labels)
    for suffix, extra in (("_bucket", {"le"}), ("_sum", set()), ("_count", set())):
        base = metric[:-len(suffix)] if metric.endswith(suffix) else None
        if base in KNOWN_METRICS and KNOWN_METRICS[base][0] == HISTOGRAM:
            return COUNTER, KNOWN_METRICS[base][1] | extra
    return None


def metric_problems(expr, dashboard):
    """What is wrong with the names and labels of expr: unknown metrics,
    labels the metric does not have, groupings by labels no metric has;
    counters outside rate()/increase() (dashboard) and gauges inside."""
    scan = Scan(expr)
    problems, known_labels = [], set(TARGET_LABELS) | scan.added_labels
    for metric, matchers, function in scan.selectors:
        if metric is None:
            problems.append("a selector without a metric name")
            continue
        resolved = resolve(metric)
        if resolved is None:
            problems.append("%s: not a series praefect exports" % metric)
            continue
        kind, labels = resolved
        known_labels |= labels
        for label, _, _ in matchers:
            if label not in labels | TARGET_LABELS:
                problems.append("%s has no label %s (it has %s)" % (metric, label, ", ".join(sorted(labels)) or "none"))
        if kind == GAUGE and function in COUNTER_FUNCTIONS:
            problems.append("%s is a gauge: %s() of it means nothing" % (metric, function))
        if dashboard and kind == COUNTER and function not in COUNTER_FUNCTIONS:
            problems.append("%s is a counter: plot its rate() or increase()" % metric)
    for label in sorted(scan.grouping - known_labels):
        problems.append("grouping by %s, a label of none of the series" % label)
    return problems


def promtool_parse_errors(exprs):
    """{expr: promtool's error} for the expressions promtool refuses, each
    checked as the expression of a recording rule."""
    def check(batch):
        rules = {"groups": [{"name": "dashboard", "rules": [
            {"record": "dashboard:expr_%d" % n, "expr": e} for n, e in enumerate(batch)]}]}
        with tempfile.NamedTemporaryFile("w", suffix=".yml", prefix="praefect-dashboard-rules-") as f:
            json.dump(rules, f)  # JSON is YAML
            f.flush()
            out = subprocess.run([PROMTOOL, "check", "rules", "--lint=none", f.name],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return out.returncode, out.stdout
    rc, out = check(exprs)
    if rc == 0 and "SUCCESS: %d rules found" % len(exprs) in out:
        return {}
    errors = {}
    for e in exprs:
        rc, out = check([e])
        if rc != 0:
            errors[e] = out.strip()
    if not errors:
        errors["(all)"] = "promtool failed on the batch but on no expression alone:\n" + out
    return errors


def substitute(expr):
    for variable, value in SUBSTITUTIONS.items():
        expr = expr.replace(variable, value)
    return expr


def dashboard_panels(dashboard):
    """Every panel, rows and the panels of collapsed rows included."""
    for panel in dashboard.get("panels", []):
        yield panel
        for inner in panel.get("panels", []):
            yield inner


class ScannerTest(unittest.TestCase):
    """The checks below rely on the scanner: it must find what is wrong."""

    def test_finds_selectors_groupings_and_comparisons(self):
        scan = Scan('histogram_quantile(0.95, sum by (le, grpc_method) '
                    '(rate(grpc_server_handling_seconds_bucket{job="praefect",grpc_code!="OK"}[1m] offset 5m)))'
                    ' > bool 1 or max without (instance) (up) == 0')
        self.assertEqual(scan.selectors, [
            ("grpc_server_handling_seconds_bucket", [("job", "=", "praefect"), ("grpc_code", "!=", "OK")], "rate"),
            ("up", [], "max")])
        self.assertEqual(scan.grouping, {"le", "grpc_method", "instance"})
        self.assertEqual(scan.comparisons, ["=="])
        scan = Scan('label_replace(sum by (storage) (gitaly_praefect_node_healthy{storage="s"}), "check", "x", "", "")')
        self.assertEqual(scan.added_labels, {"check"})

    def test_reports_unknown_names_and_labels(self):
        self.assertEqual(metric_problems('sum by (virtual_storage) (rate(gitaly_praefect_read_distribution[1m]))',
                                         True), [])
        self.assertEqual(metric_problems('gitaly_praefect_replication_delay', False),
                         ["gitaly_praefect_replication_delay: not a series praefect exports"])
        self.assertEqual(metric_problems('rate(gitaly_praefect_read_distributions[1m])', True),
                         ["gitaly_praefect_read_distributions: not a series praefect exports"])
        self.assertEqual(metric_problems('gitaly_praefect_replication_jobs{storage="a"}', False),
                         ["gitaly_praefect_replication_jobs has no label storage (it has change_type, "
                          "gitaly_storage, virtual_storage)"])
        self.assertEqual(metric_problems('sum by (gitaly_storage) (gitaly_praefect_node_healthy)', False),
                         ["grouping by gitaly_storage, a label of none of the series"])
        self.assertEqual(metric_problems('rate(gitaly_praefect_node_healthy[1m])', False),
                         ["gitaly_praefect_node_healthy is a gauge: rate() of it means nothing"])
        self.assertEqual(metric_problems('sum(gitaly_praefect_method_types)', True),
                         ["gitaly_praefect_method_types is a counter: plot its rate() or increase()"])

    def test_promtool_refuses_what_does_not_parse(self):
        good = 'sum by (type) (rate(gitaly_praefect_connections_total[1m]))'
        bad = ['sum by (type) (rate(gitaly_praefect_connections_total[1m])',
               'rate(gitaly_praefect_connections_total)']
        self.assertEqual(promtool_parse_errors([good]), {})
        self.assertEqual(set(promtool_parse_errors([good] + bad)), set(bad))


class DashboardTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(DASHBOARD) as f:
            cls.dashboard = json.load(f)
        cls.panels = [p for p in dashboard_panels(cls.dashboard) if p.get("type") != "row"]

    def targets(self):
        for panel in self.panels:
            for target in panel.get("targets", []):
                yield panel, target

    def test_dashboard(self):
        d = self.dashboard
        self.assertEqual(d.get("title"), "Praefect (Gitaly Cluster)")
        self.assertGreaterEqual(d.get("schemaVersion", 0), 36)
        self.assertTrue(d.get("uid"), "a fixed uid, so that links and re-imports keep working")
        self.assertIsNone(d.get("id"), "no instance-specific id in a shipped dashboard")
        self.assertGreater(len(self.panels), 20)

    def test_template_variables(self):
        variables = {v["name"]: v for v in self.dashboard["templating"]["list"]}
        self.assertEqual(set(variables), {"datasource", "virtual_storage"})
        ds = variables["datasource"]
        self.assertEqual((ds["type"], ds["query"]), ("datasource", "prometheus"))
        vs = variables["virtual_storage"]
        self.assertEqual(vs["type"], "query")
        self.assertEqual(vs["datasource"], DATASOURCE)
        query = vs["query"]["query"] if isinstance(vs["query"], dict) else vs["query"]
        m = re.fullmatch(r"label_values\((\w+), virtual_storage\)", query)
        self.assertTrue(m, query)
        self.assertEqual(metric_problems(m.group(1), False), [])
        self.assertIn("virtual_storage", KNOWN_METRICS[m.group(1)][1])
        self.assertTrue(vs["includeAll"] and vs["multi"])
        self.assertEqual(vs["allValue"], ".*", "All must match every virtual storage, even one not listed yet")

    def test_panels(self):
        ids = [p.get("id") for p in dashboard_panels(self.dashboard)]
        self.assertEqual(len(ids), len(set(ids)), "panel ids must be unique: %s" % ids)
        self.assertTrue(all(isinstance(i, int) for i in ids), ids)
        boxes = []
        for panel in dashboard_panels(self.dashboard):
            name = "panel %s %r" % (panel.get("id"), panel.get("title"))
            self.assertTrue(panel.get("title"), name)
            grid = panel.get("gridPos")
            self.assertIsInstance(grid, dict, name + ": no gridPos")
            for key in ("h", "w", "x", "y"):
                self.assertIsInstance(grid.get(key), int, "%s: gridPos.%s" % (name, key))
            self.assertTrue(grid["w"] > 0 and grid["h"] > 0 and grid["x"] >= 0 and grid["y"] >= 0, name)
            self.assertLessEqual(grid["x"] + grid["w"], 24, name + ": wider than the 24 columns")
            if panel.get("type") == "row":
                continue
            for other, box in boxes:
                overlap = (grid["x"] < box["x"] + box["w"] and box["x"] < grid["x"] + grid["w"] and
                           grid["y"] < box["y"] + box["h"] and box["y"] < grid["y"] + grid["h"])
                self.assertFalse(overlap, "%s overlaps %s" % (name, other))
            boxes.append((name, grid))
        for panel in self.panels:
            name = "panel %s %r" % (panel["id"], panel["title"])
            self.assertIn(panel["type"], {"timeseries", "stat", "state-timeline", "gauge", "bargauge"}, name)
            self.assertEqual(panel.get("datasource"), DATASOURCE, name)
            targets = panel.get("targets", [])
            self.assertTrue(targets, name + ": no target")
            refs = [t.get("refId") for t in targets]
            self.assertEqual(len(refs), len(set(refs)), name + ": refIds must be unique")
            for t in targets:
                self.assertIsInstance(t.get("expr"), str, name)
                self.assertTrue(t["expr"].strip(), name + ": an empty expr")
                self.assertEqual(t.get("datasource", DATASOURCE), DATASOURCE, name)

    def test_exprs_use_only_the_agreed_variables(self):
        for panel, target in self.targets():
            expr = target["expr"]
            rest = substitute(expr)
            self.assertNotIn("$", rest, "panel %r: a Grafana variable other than %s in %s"
                             % (panel["title"], ", ".join(SUBSTITUTIONS), expr))
            for _, matchers, _ in Scan(expr).selectors:
                for label, op, value in matchers:
                    if "$" in value:
                        self.assertEqual((label, op, value), VIRTUAL_STORAGE_MATCHER, expr)

    def test_exprs_filter_by_the_virtual_storage(self):
        for panel, target in self.targets():
            for metric, matchers, _ in Scan(target["expr"]).selectors:
                resolved = resolve(metric) if metric else None
                if resolved and "virtual_storage" in resolved[1]:
                    self.assertIn(VIRTUAL_STORAGE_MATCHER, matchers,
                                  "panel %r: %s is not filtered by $virtual_storage" % (panel["title"], metric))

    def test_exprs_do_not_filter_by_comparison(self):
        for panel, target in self.targets():
            self.assertEqual(Scan(target["expr"]).comparisons, [],
                             "panel %r: a comparison filter leaves the panel empty when nothing matches: %s"
                             % (panel["title"], target["expr"]))

    def test_exprs_use_known_metrics_and_labels(self):
        problems = []
        for panel, target in self.targets():
            for p in metric_problems(target["expr"], True):
                problems.append("panel %r: %s" % (panel["title"], p))
        self.assertEqual(problems, [])

    def test_legends_name_labels_of_the_result(self):
        for panel, target in self.targets():
            scan = Scan(target["expr"])
            if scan.grouping:
                available = scan.grouping
            else:
                available = set(TARGET_LABELS)
                for metric, _, _ in scan.selectors:
                    available |= resolve(metric)[1] if metric and resolve(metric) else set()
            for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")):
                self.assertIn(label, available, "panel %r: legend {{%s}} of %s" % (panel["title"], label,
                                                                                   target["expr"]))

    def test_exprs_parse(self):
        exprs = [substitute(t["expr"]) for _, t in self.targets()]
        self.assertEqual(promtool_parse_errors(exprs), {})


class RulesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(RULES) as f:
            cls.groups = yaml.safe_load(f)["groups"]
        with open(RULES_TEST) as f:
            cls.tests = yaml.safe_load(f)

    def rules(self):
        for group in self.groups:
            for rule in group["rules"]:
                yield rule

    def test_alerts(self):
        self.assertEqual([g["name"] for g in self.groups], ["praefect"])
        names = set()
        for rule in self.rules():
            self.assertIn("alert", rule, "only alerting rules: %s" % rule)
            name = rule["alert"]
            names.add(name)
            self.assertRegex(str(rule.get("for", "")), r"^\d+[smh]$", name + ": a for: duration")
            self.assertIn(rule.get("labels", {}).get("severity"), {"warning", "critical"}, name)
            annotations = rule.get("annotations", {})
            self.assertEqual(set(annotations), {"summary", "description"}, name)
            self.assertIn("praefect -config /etc/praefect/config.toml ", annotations["description"],
                          name + ": the description names the command to run")
        self.assertEqual(names, {
            "PraefectUnavailableRepositories", "PraefectNodeUnhealthy", "PraefectReplicationBacklogGrowing",
            "PraefectReplicationDeadJobs", "PraefectVerificationMismatch", "PraefectDown",
            "PraefectDatabaseMetricsMissing", "PraefectTLSCertificateExpiringSoon"})

    def test_exprs_use_known_metrics_and_labels(self):
        problems = []
        for rule in self.rules():
            for p in metric_problems(rule["expr"], False):
                problems.append("%s: %s" % (rule["alert"], p))
        self.assertEqual(problems, [])

    def test_every_alert_fires_and_stays_silent_in_the_tests(self):
        self.assertEqual(self.tests["rule_files"], ["../../monitoring/praefect-alerts.yml"])
        firing, silent = set(), set()
        for case in self.tests["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else silent).add(check["alertname"])
        alerts = {rule["alert"] for rule in self.rules()}
        self.assertEqual(alerts - firing, set(), "alerts no test makes fire")
        self.assertEqual(alerts - silent, set(), "alerts no test asserts silent")
        self.assertEqual((firing | silent) - alerts, set(), "tests of alerts the rules do not have")

    def test_test_series_are_series_praefect_exports(self):
        """A silent case over a misspelt series would pass for want of data."""
        problems = []
        for case in self.tests["tests"]:
            for series in case.get("input_series", []):
                m = re.fullmatch(r"(\w+)\{(.*)\}", series["series"])
                self.assertTrue(m, series["series"])
                metric, labels = m.group(1), set(re.findall(r"(\w+)=\"", m.group(2)))
                resolved = resolve(metric)
                if resolved is None:
                    problems.append("%s: %s is not a series praefect exports" % (case["name"], metric))
                    continue
                if not TARGET_LABELS <= labels:
                    problems.append("%s: %s without job and instance" % (case["name"], series["series"]))
                if labels - TARGET_LABELS != resolved[1]:
                    problems.append("%s: %s has labels %s, praefect's have %s" % (
                        case["name"], metric, sorted(labels - TARGET_LABELS), sorted(resolved[1])))
        self.assertEqual(problems, [])


if __name__ == "__main__":
    if not os.path.exists(PROMTOOL):
        sys.exit("promtool is missing: install Debian's prometheus package (scripts/setup)")
    unittest.main(argv=sys.argv[:1], verbosity=2)
