"""Who holds TEST and what can change a grade: the grader alone holds the TEST rows; in a
session pool the agent's process holds no data rows at all; the pool answers named operations
with JSON fields only; the grader's tau, budget and rows are read-only; trainer rollouts
stepping in threads get exactly the numbers they get one after another."""

from __future__ import annotations

import gc
import json
import pickle
import threading
from concurrent.futures import Future

import pytest

from imbalance.experiment.sessions import OPS, ProtocolError, SessionPool
from imbalance.tasks import load_taskset
from tests.helpers import FAST, SMALL, compose_config, make_env, reachable_arrays

CALLS = [("imbalance_start", {}), ("train", {"epochs": 2}), ("smote", {"ratio": 0.1, "k": 5}), ("sweep_thresholds", {}),
         ("set_class_weights", {"beta": 0.99}), ("eval_on_val", {}), ("submit_answer", {})]


def test_the_grader_is_read_only_and_assignments_never_change_the_grade():
    def attempt(env) -> list[str]:
        refused = []
        for change in (lambda: setattr(env._grader, "_tau", 0.0), lambda: setattr(env._grader, "_max_steps", 10**6),
                       lambda: setattr(env, "tau", 0.0), lambda: delattr(env._grader, "_y"),
                       lambda: env._grader._y.__setitem__(slice(None), 0), lambda: env._grader._X.__setitem__(slice(None), 0.0),
                       lambda: pickle.dumps(env._grader)):
            try:
                change()
            except (AttributeError, ValueError, TypeError) as exc:
                refused.append(type(exc).__name__)
        env.budget.max_steps = 10**6  # a copy: the episode's budget stays
        return refused

    grades = []
    for tampered in (False, True):
        env = make_env("tau=0.99", "model=logreg", "budget.max_steps=1")
        env.reset()
        if tampered:
            assert attempt(env) == ["AttributeError"] * 4 + ["ValueError"] * 2 + ["TypeError"]
        env.call("set_class_weights", {"beta": 0.99})
        refused = env.call("use_focal", {"alpha": 0.5, "gamma": 2.0})
        assert refused.output["error"] == "step_budget_exceeded"
        grades.append(env.submit())
    assert grades[0] == grades[1] and not grades[1].passed and grades[1].test_f1 < 0.99
    assert env.tau == 0.99 and env.budget.max_steps == 1


@pytest.fixture(scope="module")
def pool():
    with SessionPool(1) as p:
        yield p


def raw(env, message: bytes):
    """Bytes straight to the session's worker, past the parent's encoder."""
    future: Future = Future()
    env._worker.requests.put((message, future))
    return future.result(timeout=60)


class Boom:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_the_pool_answers_named_operations_with_json_fields_only(pool, tmp_path):
    from imbalance.experiment.build import build_episode

    config = compose_config([*SMALL, "model=logreg", "mlflow.enabled=false"])
    env = build_episode(config, pool=pool).env
    env.reset()
    with pytest.raises(ProtocolError, match="unknown operation"):
        env._request("__getattribute__", name="splits")
    marker = tmp_path / "ran"
    for message, why in [
        (b'{"op": "__getattribute__", "session": "%s", "args": ["splits"]}' % env._session.encode(), "unknown operation"),
        (b'{"op": "call", "session": "%s", "tool": "train", "arguments": {}, "method": "splits"}' % env._session.encode(), "takes the fields"),
        (pickle.dumps(("call", env._session, "call", (Boom(str(marker)),))), "not JSON"),
        (b'{"op": "reset", "session": "%s", "seed": 1e30}' % env._session.encode(), "seed must be"),
        (b'{"op": "open", "session": "%s", "config": {}}' % env._session.encode(), "exists"),
        (b'{"op": "submit", "session": "../s1", "auto": true}', "session must be"),
    ]:
        with pytest.raises(ProtocolError, match=why):
            raw(env, message)
    assert not marker.exists()
    # An object as an argument reaches the worker as its repr: an invalid call, nothing run.
    result = env.call("train", {"epochs": Boom(str(marker))})
    assert result.invalid and "epochs must be an integer" in result.output["message"] and not marker.exists()
    assert set(OPS) == {"ping", "open", "reset", "call", "step", "submit", "close"}
    local = build_episode(config).env
    local.reset()
    for tool, arguments in CALLS:
        assert env.call(tool, arguments) == local.call(tool, arguments)  # the session is unharmed
    assert env.state.grade == local.state.grade
    env.close()


def test_a_pool_session_leaves_no_data_rows_in_the_agents_process(pool):
    from imbalance.integrations.episode import TaskEpisode

    episode = TaskEpisode(load_taskset("lite")[3], FAST, pool=pool)
    for tool, arguments in CALLS[:-1]:
        episode.call(tool, arguments)
    assert reachable_arrays(episode) == [] and reachable_arrays(episode.toolbox) == []
    assert episode.finish()["termination_reason"] == "auto_submitted"
    assert reachable_arrays(episode) == []


def test_rollouts_stepping_in_threads_get_the_rewards_they_get_one_after_another(pool):
    """Two episodes' calls interleaved call by call (a barrier between calls) against the same
    two episodes played one after the other: the same records, TEST F1 and rewards."""
    from imbalance.integrations.episode import TaskEpisode

    rows = load_taskset("lite")[3:5]
    overrides = [*FAST, "reward=normalized"]

    def play(row, barrier=None):
        episode = TaskEpisode(row, overrides, pool=pool)
        for tool, arguments in CALLS[:-1]:
            if barrier is not None:
                barrier.wait(timeout=120)
            episode.call(tool, arguments)
        return episode.finish(), episode.records

    alone = [play(row) for row in rows]
    barrier = threading.Barrier(len(rows))
    together: list = [None] * len(rows)

    def worker(i: int) -> None:
        together[i] = play(rows[i], barrier)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(rows))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert together == alone
    assert len({outcome["test_f1"] for outcome, _ in alone}) == 2  # two different episodes, compared exactly


@pytest.mark.slow  # a fresh MLflow store: its migrations take seconds
def test_rollouts_are_mlflow_runs_only_when_asked(pool, tmp_path):
    from mlflow.tracking import MlflowClient

    from imbalance.integrations.episode import TaskEpisode
    from tests.helpers import run_artifact

    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    overrides = [*FAST, f"mlflow.tracking_uri={uri}"]
    row = load_taskset("lite")[3]
    recorded = TaskEpisode(row, overrides, pool=pool, record=True)
    for tool, arguments in CALLS:
        recorded.call(tool, arguments)
    outcome = recorded.finish()
    TaskEpisode(row, overrides, pool=pool).finish()  # not asked: no run
    dropped = TaskEpisode(row, overrides, pool=pool, record=True)
    dropped.call("train", {"epochs": 1})
    dropped_id = dropped._recorder.run.run_id
    del dropped
    gc.collect()
    client = MlflowClient(uri)
    runs = {r.info.run_id: r for r in client.search_runs([client.get_experiment_by_name("imbalance").experiment_id])}
    assert set(runs) == {outcome["run_id"], dropped_id}
    run = runs[outcome["run_id"]]
    assert run.info.status == "FINISHED" and runs[dropped_id].info.status == "KILLED"
    assert run.data.metrics["test_f1"] == outcome["test_f1"] and run.data.metrics["reward"] == outcome["reward"]
    assert (run.data.tags["agent"], run.data.tags["task_id"], run.data.tags["termination_reason"]) == ("trainer", row["task_id"], "submitted")
    assert run_artifact(tmp_path, run, "tool_calls.json") == json.loads(json.dumps(recorded.records))  # tuples are lists in JSON
