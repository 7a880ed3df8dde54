"""What a newcomer hit on a fresh clone, each fixed and held here through the commands users type."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT, TINY, cli_env, local_uri, run_cli, runs_of


def start_cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "imbalance.run", *args], cwd=cwd, env=env or cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_line(proc: subprocess.Popen, marker: str, timeout: float = 300) -> list[str]:
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if marker in line:
            return seen
    raise AssertionError(f"{marker!r} never printed; got {''.join(seen)[-2000:]}")


@pytest.mark.slow
def test_ctrl_c_in_a_sweep_kills_the_runs_in_flight_and_prints_the_partial_summary(tmp_path):
    proc = start_cli("-m", *TINY, "seed=range(0,5)", cwd=tmp_path)
    before = wait_for_line(proc, "[job 0]")
    wait_for_line(proc, "episode: ")  # the second episode has started
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    output = "".join(before) + out
    assert proc.returncode == 130, err[-2000:]
    assert "Interrupted: 1/5 episodes done; rerun the same command with resume=true" in output
    assert "Sweep summary (interrupted" in output and "Passed: " in output
    assert "Traceback" not in err
    client, parents, episodes = runs_of(local_uri(tmp_path))
    statuses = sorted(r.info.status for r in episodes)
    assert "RUNNING" not in statuses and statuses.count("FINISHED") == 1, statuses
    assert [p.info.status for p in parents] == ["KILLED"]
    killed = [r for r in episodes if r.info.status == "KILLED"]
    assert all(r.data.tags["error_message"] == "interrupted" for r in killed)

    # and the hint works: the same command with resume=true runs only the rest
    resumed = run_cli("-m", *TINY, "seed=range(0,5)", "resume=true", cwd=tmp_path, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert resumed.stdout.count("(resumed: already finished)") == 1 and "Passed: " in resumed.stdout


@pytest.mark.slow
def test_sigterm_ends_an_episode_killed_not_running(tmp_path):
    proc = start_cli(*TINY, "budget.retrain_epochs=50", cwd=tmp_path)
    wait_for_line(proc, "imbalance_start()")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode == 130
    _, _, episodes = runs_of(local_uri(tmp_path))
    assert [r.info.status for r in episodes] == ["KILLED"]


@pytest.mark.slow
def test_a_sweep_that_cannot_start_says_so_once_and_leaves_no_run(tmp_path):
    proc = run_cli("-m", "agent=anthropic", "seed=range(0,4)", cwd=tmp_path, env=cli_env())
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: agent=anthropic needs an API key in the environment variable ANTHROPIC_API_KEY")
    assert not (tmp_path / "mlruns").exists()  # no store, no parent run


@pytest.mark.slow
def test_a_sweep_with_a_missing_data_file_stops_before_its_first_job(tmp_path):
    proc = run_cli("-m", "source=kaggle", "source.path=nowhere.csv", "seed=0,1", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("Error:") == 1 and "nowhere.csv: no such file" in proc.stderr
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.slow
def test_the_episode_line_gives_the_run_address_and_the_experiment_opens_on_its_runs(tmp_path):
    proc = run_cli(*TINY, "agent=random", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    client, _, (run,) = runs_of(local_uri(tmp_path))
    url = f"http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}?workflowType=machine_learning"
    assert url in proc.stdout and "mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db" in proc.stdout
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_an_experiment_made_elsewhere_gets_the_runs_table_kind(tmp_path):
    from mlflow.tracking import MlflowClient

    from imbalance.tracking.store import ensure_experiment, prepare_store

    uri = local_uri(tmp_path)
    prepare_store(uri)
    client = MlflowClient(uri)
    made = client.create_experiment("by-hand")
    assert "mlflow.experimentKind" not in client.get_experiment(made).tags
    assert ensure_experiment(client, "by-hand", uri) == made
    assert client.get_experiment(made).tags["mlflow.experimentKind"] == "custom_model_development"


def test_the_generator_says_what_it_wrote(tmp_path):
    proc = subprocess.run([sys.executable, "scripts/creditcard_like.py", str(tmp_path / "cc.csv"), "--rows", "5000"],
                          cwd=ROOT, capture_output=True, text=True, env=cli_env())
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {tmp_path / 'cc.csv'}: 5,000 rows (9 frauds, 19 exact duplicates)" in proc.stdout
    assert "not the real data" in proc.stdout
    assert len((tmp_path / "cc.csv").read_text().splitlines()) == 5001


def test_generated_and_fetched_credit_card_files_are_ignored_by_git():
    proc = subprocess.run(["git", "check-ignore", "creditcard.csv", "creditcard-like.csv"], cwd=ROOT, capture_output=True, text=True)
    assert proc.stdout.split() == ["creditcard.csv", "creditcard-like.csv"]


@pytest.mark.slow
def test_a_saved_config_reruns_from_another_folder_and_leaves_no_temp_folders(tmp_path, creditcard_csv):
    work, elsewhere, scratch = tmp_path / "work", tmp_path / "elsewhere", tmp_path / "tmp"
    for folder in (work, elsewhere, scratch):
        folder.mkdir()
    (work / "data.csv").write_bytes(creditcard_csv.read_bytes())
    env = cli_env(TMPDIR=str(scratch))
    first = run_cli("source=csv", "source.path=data.csv", "source.label=Class", "agent=random", "model=logreg", f"source.cache_dir={tmp_path / 'cache'}",
                    cwd=work, env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    uri = local_uri(work)
    client, _, (run,) = runs_of(uri)
    saved = yaml.safe_load(Path(client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path / "dl"))).read_text())
    assert saved["source"]["path"] == str(work / "data.csv")

    rerun = subprocess.run([sys.executable, str(ROOT / "scripts" / "rerun.py"), run.info.run_id, "--replay", "--tracking-uri", uri],
                           cwd=elsewhere, capture_output=True, text=True, env=env, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    _, _, episodes = runs_of(uri)
    replayed = next(r for r in episodes if r.data.tags.get("rerun_of") == run.info.run_id)
    assert replayed.data.metrics["test_f1"] == run.data.metrics["test_f1"]
    assert [p.name for p in scratch.iterdir() if p.name.startswith("imbalance-")] == []


@pytest.mark.slow
def test_a_missing_label_column_names_the_columns_that_could_be_it(tmp_path):
    rows = ["a,b,is_fraud,kind,flag"] + [f"{i},{i % 7},{int(i % 10 == 0)},{i % 3},{i % 2}" for i in range(100)]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    proc = run_cli("source=csv", "source.path=d.csv", f"source.cache_dir={tmp_path / 'cache'}", cwd=tmp_path)
    assert proc.returncode == 2
    assert "no label column 'label' (5 columns); the columns with exactly two values are is_fraud, flag. Set source.label=<column>" in proc.stderr


def test_conflicting_hydra_modes_end_in_one_line_not_a_traceback(tmp_path):
    proc = run_cli("-m", "--cfg", "job", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "Only one of --run, --multirun, --cfg, --info and --shell_completion can be specified" in proc.stderr
