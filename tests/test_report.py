"""`python -m imbalance.report` on a hand-made MLflow store that uses the runner's schema.

The store (built once for the module) holds these FINISHED episodes in experiment 'imbalance':

  group (agent, tau)    TEST F1 (P = passed as recorded)             errors  notes
  heuristic 0.55        0.60P 0.50 0.58P (task t1)  0.56P 0.40 (t2)  1       pass@k over t1, t2
  random    0.55        0.30 0.56P 0.20 0.90 (4 steps > budget 3)    0
  anthropic 0.55        0.62P 0.50                                   1       tokens
  heuristic 0.70        0.72P 0.65 0.71P                             0       sweep children
  random    0.70        0.30                                         0       sweep child

It also holds runs the report must skip: a sweep parent run (no termination_reason), a
RUNNING run and a FAILED run. All expected numbers below are worked out by hand; none
come from the code under test.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

import imbalance.tracking  # noqa: F401  (MLflow environment defaults, as in the project)
from imbalance.analysis import episodes as rows
from imbalance.analysis import summary, text
from imbalance.analysis.plots import PLOT_FILES
from imbalance.cli import report

SMOTE_CW = [{"tool": "smote", "ratio": 0.2, "k": 5}, {"tool": "set_class_weights", "beta": 0.99}]
THRESHOLD = [{"tool": "set_threshold", "threshold": 0.3}]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def log_episode(client, experiment_id, *, agent, tau, test_f1=None, passed=None, reason="submitted", actions=(), task=None,
                steps_used=1, max_steps=3, val_f1=0.6, tokens=None, parent=None, status="FINISHED", trial=0):
    """One run written the way imbalance/runner.py writes an episode."""
    tags = {"agent": agent, "source": "synthetic", "model": "mlp", "config_hash": f"c-{task}-{trial}", "task_hash": task or f"solo-{time.monotonic_ns()}"}
    if parent:
        tags["mlflow.parentRunId"] = parent
    run_id = client.create_run(experiment_id, run_name=f"{agent}-synthetic-seed0", tags=tags).info.run_id
    params = {"tau": str(tau), "seed": "0", "trial": str(trial), "budget.max_steps": str(max_steps), "budget.conv_steps": "30",
              "source.name": "synthetic", "model.name": "mlp", "agent.name": agent}
    now = int(time.time() * 1000)
    # Per-call val_f1 at step = call index; the latest one (highest step) is the value at submission.
    metrics = [Metric("val_f1", v, now + i, i) for i, v in enumerate([0.2, 0.45, val_f1])]
    final = {"steps_used": steps_used, "tool_calls": 12, "invalid_tool_calls": 0, "wall_seconds": 1.5}
    if test_f1 is not None:
        final |= {"test_f1": test_f1, "passed": float(test_f1 >= tau and steps_used <= max_steps) if passed is None else float(passed)}
    if tokens:
        final |= {"input_tokens": tokens[0], "output_tokens": tokens[1], "llm_calls": 4}
    metrics += [Metric(k, float(v), now + 10, 0) for k, v in final.items()]
    end_tags = {"termination_reason": reason, "paid_actions": json.dumps(list(actions))}
    if reason == "error":
        end_tags["error_message"] = "APIError: retries exhausted"
    client.log_batch(run_id, metrics=metrics, params=[Param(k, v) for k, v in params.items()],
                     tags=[RunTag(k, v) for k, v in end_tags.items()])
    if status != "RUNNING":
        client.set_terminated(run_id, status=status)
    return run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    (root / "mlruns").mkdir()
    uri = f"sqlite:///{root}/mlruns/mlflow.db"
    client = MlflowClient(uri)
    exp = client.create_experiment("imbalance", artifact_location=(root / "mlruns" / "artifacts").as_uri())
    client.create_experiment("empty", artifact_location=(root / "mlruns" / "artifacts").as_uri())
    ep = lambda **kw: log_episode(client, exp, **kw)  # noqa: E731

    ep(agent="heuristic", tau=0.55, test_f1=0.60, task="t1", trial=0, actions=SMOTE_CW, steps_used=2)
    ep(agent="heuristic", tau=0.55, test_f1=0.50, task="t1", trial=1, actions=SMOTE_CW, steps_used=2)
    ep(agent="heuristic", tau=0.55, test_f1=0.58, task="t1", trial=2, actions=SMOTE_CW, steps_used=2)
    ep(agent="heuristic", tau=0.55, test_f1=0.56, task="t2", trial=0, steps_used=0)
    ep(agent="heuristic", tau=0.55, test_f1=0.40, task="t2", trial=1, steps_used=0)
    ep(agent="heuristic", tau=0.55, reason="error", task="t1", trial=3, actions=SMOTE_CW)
    for f1 in (0.30, 0.56, 0.20):
        ep(agent="random", tau=0.55, test_f1=f1, actions=THRESHOLD)
    ep(agent="random", tau=0.55, test_f1=0.90, steps_used=4, actions=THRESHOLD)  # over budget: recorded as a fail
    ep(agent="anthropic", tau=0.55, test_f1=0.62, tokens=(1000, 200), reason="auto_submitted")
    ep(agent="anthropic", tau=0.55, test_f1=0.50, tokens=(3000, 400))
    ep(agent="anthropic", tau=0.55, reason="error", tokens=(500, 100))
    ep(agent="heuristic", tau=0.55, test_f1=0.99, status="RUNNING")
    ep(agent="heuristic", tau=0.55, reason="error", status="FAILED")

    parent = client.create_run(exp, run_name="sweep", tags={"sweep": "true"})
    client.log_param(parent.info.run_id, "tau", "0.7")
    client.set_terminated(parent.info.run_id, "FINISHED")
    sweep_id = parent.info.run_id
    children = [
        ep(agent="heuristic", tau=0.7, test_f1=f1, val_f1=v, parent=sweep_id, actions=SMOTE_CW)
        for f1, v in ((0.72, 0.80), (0.65, 0.70), (0.71, 0.74))
    ]
    children.append(ep(agent="random", tau=0.7, test_f1=0.30, parent=sweep_id))
    return {"root": root, "uri": uri, "client": client, "experiment_id": exp, "sweep": sweep_id, "children": children}


def load(store, sweep=None):
    source = rows.Source(store["uri"], "imbalance", store["experiment_id"], sweep)
    return rows.load_episodes(store["client"], source)


def by_key(summaries, agent, tau):
    (match,) = [s for s in summaries if s.key[0] == agent and s.key[4] == tau]
    return match


def table_row(text: str, *key: str) -> list[str]:
    """The cells of the table line for a group (columns are separated by 2+ spaces)."""
    for line in text.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if tuple(cells[: len(key)]) == key:
            return cells
    raise AssertionError(f"no row {key} in\n{text}")


def assert_valid_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert len(data) > 5_000, (path, len(data))
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 500 and height >= 400, (path, width, height)


def assert_one_error_line(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# ---------------------------------------------------------------------------------------------
# Loading and summarising


class SmallPages:
    """An MlflowClient that returns at most 2 runs per page, as if there were 1000s of runs."""

    def __init__(self, client):
        self.client, self.pages = client, 0

    def search_runs(self, experiment_ids, filter_string="", max_results=1000, page_token=None, **kwargs):
        self.pages += 1
        return self.client.search_runs(experiment_ids, filter_string, max_results=2, page_token=page_token, **kwargs)


def test_loader_keeps_finished_episodes_only_and_pages_through_results(store):
    episodes = load(store)
    # 6 heuristic + 4 random + 3 anthropic (0.55) + 4 sweep children; not the parent, RUNNING or FAILED run
    assert len(episodes) == 17
    assert store["sweep"] not in {e.run_id for e in episodes}
    assert all(e.test_f1 != 0.99 for e in episodes)
    paged = SmallPages(store["client"])
    source = rows.Source(store["uri"], "imbalance", store["experiment_id"])
    assert sorted(e.run_id for e in rows.load_episodes(paged, source)) == sorted(e.run_id for e in episodes)
    assert paged.pages >= 9  # 18 finished runs (with the parent), 2 per page


def test_episode_rows_read_the_schema(store):
    episodes = {e.run_id: e for e in load(store, sweep=store["sweep"])}
    first = episodes[store["children"][0]]
    assert first.val_f1 == pytest.approx(0.80)  # the latest per-call value, not the first (0.2)
    assert (first.tau, first.max_steps, first.steps_used, first.test_f1) == (0.7, 3.0, 1.0, pytest.approx(0.72))
    assert first.action_set == "smote(ratio=0.2, k=5) + set_class_weights(beta=0.99)"
    assert first.recorded_passed is True and first.tokens is None
    assert rows.format_action_set("[]") == "(none)"


def test_groups_counts_and_errors_counted_apart(store):
    summaries = summary.summarise(load(store))
    assert [(s.key, s.n, s.passed, s.errors) for s in summaries] == [
        (("anthropic", "mlp", "synthetic", "3", "0.55"), 2, 1, 1),
        (("heuristic", "mlp", "synthetic", "3", "0.55"), 5, 3, 1),
        (("heuristic", "mlp", "synthetic", "3", "0.7"), 3, 2, 0),
        (("random", "mlp", "synthetic", "3", "0.55"), 4, 1, 0),
        (("random", "mlp", "synthetic", "3", "0.7"), 1, 0, 0),
    ]
    heuristic = by_key(summaries, "heuristic", "0.55")
    assert heuristic.pass_rate == pytest.approx(3 / 5)  # the error is not a fail (3/6 would be)
    assert heuristic.interval == pytest.approx((0.2307, 0.8824), abs=1e-4)
    assert heuristic.mean_test_f1 == pytest.approx((0.60 + 0.50 + 0.58 + 0.56 + 0.40) / 5)
    assert heuristic.mean_steps == pytest.approx(6 / 5)
    assert heuristic.mean_tokens is None
    anthropic = by_key(summaries, "anthropic", "0.55")
    assert anthropic.mean_tokens == pytest.approx((1200 + 3400 + 600) / 3)  # an error's tokens were spent too
    random = by_key(summaries, "random", "0.55")
    assert random.interval == pytest.approx((0.0456, 0.6994), abs=1e-4)


def test_top_paid_action_sets_count_graded_episodes(store):
    heuristic = by_key(summary.summarise(load(store)), "heuristic", "0.55")
    # x3, not x4: the error episode took the same actions but is not graded.
    assert heuristic.top_action_sets == [("smote(ratio=0.2, k=5) + set_class_weights(beta=0.99)", 3), ("(none)", 2)]
    assert text.format_action_sets(heuristic) == "smote(ratio=0.2, k=5) + set_class_weights(beta=0.99) x3; (none) x2"


def test_pass_at_k_over_repeated_tasks(store):
    summaries = summary.summarise(load(store))
    heuristic = by_key(summaries, "heuristic", "0.55")
    # t1: n=3, c=2 (its error left out); t2: n=2, c=1
    assert heuristic.pass_k[1] == pytest.approx(((2 / 3 + 1 / 2) / 2, (2 / 3 + 1 / 2) / 2, 2))
    assert heuristic.pass_k[2] == pytest.approx((1.0, (1 / 3 + 0) / 2, 2))
    assert heuristic.pass_k[3] == pytest.approx((1.0, 0.0, 1))
    assert set(heuristic.pass_k) == {1, 2, 3}
    assert by_key(summaries, "random", "0.55").pass_k == {}  # every task ran once


def test_tau_override_recomputes_pass_fail_within_the_budget(store):
    summaries = summary.summarise(load(store), tau_override=0.5)
    assert by_key(summaries, "heuristic", "0.55").passed == 4  # 0.50 >= 0.5 counts
    assert by_key(summaries, "heuristic", "0.7").passed == 3
    assert by_key(summaries, "anthropic", "0.55").passed == 2
    assert all(s.taus == (0.5,) for s in summaries)
    random = by_key(summary.summarise(load(store), tau_override=0.25), "random", "0.55")
    assert random.passed == 2  # 0.30, 0.56; 0.90 used 4 paid steps of 3


def test_group_by_other_keys(store):
    summaries = summary.summarise(load(store), group_by=("agent",))
    assert [(s.key, s.n, s.passed, s.errors) for s in summaries] == [(("anthropic",), 2, 1, 1), (("heuristic",), 8, 5, 1), (("random",), 5, 1, 0)]
    by_tau = summary.summarise(load(store), group_by=("tau",))
    assert [s.key for s in by_tau] == [("0.55",), ("0.7",)]


# ---------------------------------------------------------------------------------------------
# The command


def test_report_table_plots_and_tau_override(store, tmp_path, capsys):
    out = tmp_path / "out"
    assert report.main(["--tracking-uri", store["uri"], "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Read 17 finished episodes (15 graded, 2 errors) from experiment 'imbalance'")
    row = table_row(text, "heuristic", "mlp", "synthetic", "3", "0.55")
    assert row[5:] == ["5", "3", "60.0% [23.1, 88.2]", "1", "0.5280", "1.20", "-",
                       "smote(ratio=0.2, k=5) + set_class_weights(beta=0.99) x3; (none) x2"]
    assert table_row(text, "random", "mlp", "synthetic", "3", "0.55")[5:9] == ["4", "1", "25.0% [4.6, 69.9]", "0"]
    assert table_row(text, "anthropic", "mlp", "synthetic", "3", "0.55")[11] == "1,733"
    assert "pass@k" in text and table_row(text.split("pass@k (")[1], "heuristic", "mlp", "synthetic", "3", "0.55", "2")[6:] == ["2", "1.000", "0.167"]
    assert (out / "report.txt").read_text() in text
    for name in PLOT_FILES:
        assert_valid_png(out / name)
        assert str(out / name) in text

    assert report.main(["--tracking-uri", store["uri"], "--out", str(out), "--tau", "0.5", "--no-plots"]) == 0
    text = capsys.readouterr().out
    assert "pass/fail recomputed at tau=0.5 (override)" in text.splitlines()[0]
    assert table_row(text, "heuristic", "mlp", "synthetic", "3", "0.55")[5:8] == ["5", "4", "80.0% [37.6, 96.4]"]
    assert "Plot:" not in text


@pytest.mark.slow
def test_sweep_from_the_command_line_reads_children_and_logs_the_report(store):
    """As users type it, in the folder that holds mlruns/ (the default store)."""
    root = store["root"]
    proc = subprocess.run([sys.executable, "-m", "imbalance.report", "--sweep", store["sweep"]], cwd=root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    text = proc.stdout
    assert text.startswith(f"Read 4 finished episodes (4 graded, 0 errors) from sweep {store['sweep']}")
    assert table_row(text, "heuristic", "mlp", "synthetic", "3", "0.7")[5:9] == ["3", "2", "66.7% [20.8, 93.9]", "0"]
    assert table_row(text, "random", "mlp", "synthetic", "3", "0.7")[5:9] == ["1", "0", "0.0% [0.0, 79.3]", "0"]
    assert "0.55" not in text  # nothing from outside the sweep
    out = root / "reports" / store["sweep"]
    for name in PLOT_FILES:
        assert_valid_png(out / name)
    logged = {Path(a.path).name: a.file_size for a in store["client"].list_artifacts(store["sweep"], "report")}
    assert set(logged) == {"report.txt", *PLOT_FILES}
    assert logged["report.txt"] == (out / "report.txt").stat().st_size


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--experiment", "nope"], ["no experiment 'nope'", "'imbalance'", "--experiment"]),
        (["--experiment", "empty"], ["no finished episode runs in experiment 'empty'"]),
        (["--sweep", "0" * 32], ["no run " + "0" * 32]),
        (["--tau", "1.5"], ["--tau must be in [0, 1]; got 1.5"]),
        (["--tau", "-0.1"], ["--tau must be in [0, 1]"]),
        (["--tau", "nan"], ["--tau must be in [0, 1]"]),
        (["--tau", "abc"], ["--tau", "invalid float value"]),
        (["--group-by", "agent,colour"], ["named 'colour'"]),
        (["--bogus"], ["unrecognized arguments: --bogus"]),
        (["--tracking-uri", "foo://bar"], ["the tracking URI", "sqlite:///path/to/mlflow.db", "'foo://bar'"]),
        (["--tracking-uri", "http://127.0.0.1:9"], ["cannot reach the MLflow tracking server at http://127.0.0.1:9"]),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(store, tmp_path, capsys, args, fragments):
    code = report.main(["--tracking-uri", store["uri"], "--out", str(tmp_path / "out"), *args])  # a later --tracking-uri wins
    captured = capsys.readouterr()
    assert_one_error_line(code, captured.err, *fragments)
    assert captured.out == ""
    assert not (tmp_path / "out").exists()


def test_sweep_id_of_an_episode_has_no_children(store, capsys):
    code = report.main(["--tracking-uri", store["uri"], "--sweep", store["children"][0], "--no-plots"])
    assert_one_error_line(code, capsys.readouterr().err, "no finished episode runs in sweep", "parent run")


def test_missing_store_is_reported_and_not_created(tmp_path):
    """As users type it, in a folder without mlruns/: no store gets created as a side effect."""
    proc = subprocess.run([sys.executable, "-m", "imbalance.report"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert_one_error_line(proc.returncode, proc.stderr, "no MLflow store at", "mlflow.db", "--tracking-uri")
    assert list(tmp_path.iterdir()) == []
    code = report.main(["--tracking-uri", f"sqlite:///{tmp_path}/elsewhere/mlflow.db"])
    assert code == 2 and not (tmp_path / "elsewhere").exists()
