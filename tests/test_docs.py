"""Every command in README.md and docs/*.md is run here, as a user would type it.

- ```bash blocks: each command runs in one scratch folder, in order, sharing its ./mlruns (so
  `RUN_ID` and `PARENT_RUN_ID` stand for the newest episode and sweep there); `export` lines
  set the environment of the commands after them. It must exit 0. Servers it starts (`mlflow
  server`, scripts/serve_smollm2.py) stay up for the commands after them, as in another terminal.
- ```text blocks: a line `$ command` runs too, and every line shown below it (up to the next
  `$` line; lines with `...` are elided output) must appear in what it prints.
- ```bash cluster blocks need a cluster: their overrides must compose (launcher included).
- ```python blocks run as a script in the same folder, after the commands above them; those of
  the trainer snippets (README.md, docs/trainers.md) need a model, a trainer or a server in
  their place and run in test_trainer_snippets.py instead.
- The README's set-up commands are what .ci/run runs.

So the tests stay minutes, not hours, SPEEDUPS shrink sweeps, seeds and data (each rewrite is
listed below); an LLM agent with no documented server talks to the scripted server of
fake_llm.py (through ANTHROPIC_BASE_URL / OPENAI_BASE_URL).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fake_llm import FakeLLM, reply
from tests.helpers import ROOT, TRAINER_DOCS, cli_env, free_port

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SETUP_PREFIXES = ("python3 -m venv", ".venv/bin/python -m pytest", "pip ", ".venv/bin/pip")

# (pattern, replacement): the only ways a documented command is changed before it runs.
SPEEDUPS = [
    (r"seed='range\(0,\d+\)'", "seed='range(0,2)'"),  # sweeps: two seeds
    (r"trial='range\(0,\d+\)'", "trial='range(0,2)'"),
    (r"--seeds \d+", "--seeds 1 --trials 1 --jobs 1"),  # calibration: one seed
    (r"(source=kaggle\b.*)$", r"\1 source.sample_n=20000"),  # the real file, subsampled
    (r"\b8080\b", "{llm_port}"),  # the documented model server, on a free port
    (r"\b8000\b", "{serve_port}"),  # the documented environment server, likewise
    (r"127\.0\.0\.1:5000|--port 5000", lambda m: m[0].replace("5000", "{port}")),  # a free port for the documented server
]
SCRIPT = [reply(("imbalance_start", {})), reply(("train", {"epochs": 2})), reply(("sweep_thresholds", {})), reply(("submit_answer", {}))]


@dataclass
class Command:
    doc: str
    line: int
    text: str
    block: str  # "bash", "bash cluster" or "text"
    expected: tuple[str, ...] = ()


def commands() -> list[Command]:
    out: list[Command] = []
    for doc in DOCS:
        lines = doc.read_text().splitlines()
        info, i = None, 0
        while i < len(lines):
            line = lines[i]
            if line.startswith("```"):
                info = None if info is not None else line[3:].strip()
                i += 1
                continue
            if info == "python":  # the whole block is one script
                end = next(j for j in range(i, len(lines)) if lines[j].startswith("```"))
                out.append(Command(doc.name, i + 1, "\n".join(lines[i:end]), "python"))
                i = end
                continue
            if info is None or not info.startswith(("bash", "text")):
                i += 1
                continue
            start = i
            text = line
            while text.endswith("\\") and i + 1 < len(lines):
                i += 1
                text = text[:-1].rstrip() + " " + lines[i].strip()
            i += 1
            if info.startswith("bash") and text.strip() and not text.lstrip().startswith("#"):
                out.append(Command(doc.name, start + 1, text.strip(), info))
            elif info == "text" and text.startswith("$ "):
                expected = []
                while i < len(lines) and not lines[i].startswith(("$ ", "```")):
                    if "..." not in lines[i] and lines[i].strip():
                        expected.append(lines[i].strip())
                    i += 1
                out.append(Command(doc.name, start + 1, text[2:].strip(), "text", tuple(expected)))
    return out


COMMANDS = commands()
TRAINER_SNIPPETS = {doc.name for doc in TRAINER_DOCS}
RUNNABLE = [c for c in COMMANDS if c.block != "bash cluster" and not c.text.startswith(SETUP_PREFIXES)
            and not (c.block == "python" and c.doc in TRAINER_SNIPPETS)]


def test_the_docs_hold_commands_of_every_kind():
    """The parser itself: it finds the commands this file promises to run."""
    texts = [c.text for c in COMMANDS]
    assert any(t.startswith("python -m imbalance.run -m") for t in texts)
    assert any(c.block == "text" and c.expected for c in COMMANDS)
    assert any(c.block == "bash cluster" for c in COMMANDS)
    assert len(RUNNABLE) >= 30


def test_readme_setup_commands_are_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    setup = [c.text for c in COMMANDS if c.doc == "README.md" and c.text.startswith(SETUP_PREFIXES)]
    assert len(setup) == 2
    install, tests = setup
    assert "pip install" in install and "-e '.[test]' -c constraints.txt" in install and "-e '.[test]' -c constraints.txt" in ci
    assert tests.replace(".venv/bin/python", "") in ci.replace(".venv/bin/python", "")


def test_cluster_commands_compose():
    """Commands that need a cluster: each one's first job composes with its launcher."""
    from hydra import initialize_config_dir

    from imbalance.config.compose import CONF_DIR, compose
    from imbalance.experiment import hydra_private

    cluster = [c for c in COMMANDS if c.block == "bash cluster" and c.text.startswith("python -m imbalance.run")]
    assert cluster
    for command in cluster:
        overrides = [a for a in shlex.split(command.text)[3:] if a not in ("-m", "--multirun")]
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            first = hydra_private.basic_sweep_jobs(hydra_private.parse_overrides(overrides))[0]
            cfg = compose(first, hydra=True)
        assert cfg.hydra.launcher["_target_"], command


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """One folder for every command, standing in for the repository root a user types them in
    (scripts/ linked in, a fresh ./mlruns); the LLM server scripted."""
    folder = tmp_path_factory.mktemp("docs")
    (folder / "scripts").symlink_to(ROOT / "scripts")
    env = cli_env(ANTHROPIC_API_KEY="sk-ant-docs", OPENAI_API_KEY="local")
    with FakeLLM(SCRIPT * 200) as server:
        env.update(ANTHROPIC_BASE_URL=server.url, OPENAI_BASE_URL=server.openai_url)
        yield folder, env, server


def newest(folder: Path, sweep: bool) -> str:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("imbalance")
    query = "tags.sweep = 'true'" if sweep else "attributes.status = 'FINISHED' AND tags.agent != 'replay'"
    runs = client.search_runs([experiment.experiment_id], query, order_by=["attributes.start_time DESC"], max_results=5)
    runs = [r for r in runs if sweep or "termination_reason" in r.data.tags]
    assert runs, f"no {'sweep' if sweep else 'episode'} run yet for a placeholder"
    return runs[0].info.run_id


def prepare(command: Command, folder: Path, ports: dict[str, int]) -> list[str]:
    text = command.text
    for pattern, replacement in SPEEDUPS:
        text = re.sub(pattern, replacement, text)
    text = text.replace("{port}", str(ports["mlflow"])).replace("{llm_port}", str(ports["llm"])).replace("{serve_port}", str(ports["serve"]))
    if command.block == "python":
        return [sys.executable, "-c", text]
    if "PARENT_RUN_ID" in text:
        text = text.replace("PARENT_RUN_ID", newest(folder, sweep=True))
    if "RUN_ID" in text:
        text = text.replace("RUN_ID", newest(folder, sweep=False))
    text = re.sub(r"\s+#.*$", "", text)  # a trailing comment
    args = shlex.split(text)
    if args[0] == "python":
        args[0] = sys.executable
    elif args[0] == "mlflow":
        args = [sys.executable, "-m", "mlflow", *args[1:]]
    return args


def serve(args: list[str], folder: Path, env: dict, health: str = "/health", port_arg: str = "--port") -> subprocess.Popen:
    """A server (`mlflow ui`, `mlflow server`, a model or environment server) started as in
    another terminal; it must answer `health`."""
    if port_arg == "--port":
        if "--port" not in args:
            args = [*args, "--port", str(free_port())]
        port = args[args.index("--port") + 1]
    else:
        port = next(a[len(port_arg):] for a in args if a.startswith(port_arg))
    # The log goes to a file, never a pipe: nothing reads a pipe while the server runs, and
    # llama.cpp's start-up output alone fills one, after which the server blocks on writing.
    log_file = folder / f"server-{port}.log"
    with log_file.open("wb") as log_out:
        proc = subprocess.Popen(args, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=log_out, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{health}", timeout=2) as response:
                assert response.status == 200
                return proc
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(f"{' '.join(args)} exited: {log_file.read_text(errors='replace')[-2000:]}") from None
            time.sleep(0.5)
    stop(proc)
    raise AssertionError(f"{' '.join(args)} did not answer on port {port}: {log_file.read_text(errors='replace')[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, 15)
    proc.wait(timeout=30)


@pytest.mark.slow
def test_every_documented_command_runs(sandbox):
    folder, env, server = sandbox
    ports = {"mlflow": free_port(), "llm": free_port(), "serve": free_port()}  # where the documented servers listen, for the commands after them
    failures, servers = [], []
    try:
        for command in RUNNABLE:
            failures += run_documented(command, folder, env, ports, servers)
    finally:
        for proc in servers:
            stop(proc)
    assert not failures, "\n\n".join(failures)


def run_documented(command: Command, folder: Path, env: dict, ports: dict[str, int], servers: list) -> list[str]:
    if command.text.startswith("export "):
        name, _, value = command.text[len("export "):].partition("=")
        env[name] = value.split("#")[0].strip()
        return []
    args = prepare(command, folder, ports)
    where = f"{command.doc}:{command.line}: {command.text}"
    if args[1:3] == ["-m", "mlflow"] and args[3] == "ui":  # looked at, then closed
        stop(serve(args, folder, env))
        return []
    if args[1:3] == ["-m", "mlflow"] and args[3] == "server":  # kept for the commands that use it
        servers.append(serve(args, folder, env))
        return []
    if args[1].endswith("serve_smollm2.py"):  # the real model server, kept likewise
        servers.append(serve(args, folder, env, health="/v1/models"))
        return []
    if args[1:3] == ["-m", "imbalance.serve"]:  # the environment server, kept likewise
        servers.append(serve(args, folder, env, port_arg="serve.port="))
        return []
    proc = subprocess.run(args, cwd=folder, env=env, capture_output=True, text=True, timeout=900)
    output = proc.stdout + proc.stderr
    if command.block == "text":
        missing = [line for line in command.expected if line not in output]
        return [f"{where}\n  missing from its output: {missing}\n  got: {output[-1500:]}"] if missing else []
    return [f"{where}\n  exit {proc.returncode}: {output[-1500:]}"] if proc.returncode != 0 else []


def test_every_relative_link_in_the_docs_resolves():
    broken = []
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
            if "://" not in target and not (doc.parent / target).exists():
                broken.append(f"{doc.name}: {target}")
    assert broken == []


def test_the_data_set_table_is_what_list_datasets_prints():
    proc = subprocess.run([sys.executable, "scripts/list_datasets.py"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-1500:]
    table = proc.stdout.strip()
    assert table.count("\n") > 100 and "| `creditcard` | creditcard | kaggle | 284,807 | 492 | 30 |" in table
    assert table in (ROOT / "docs" / "datasets.md").read_text()
