"""Finding and repairing runs: resume look-ups, re-parenting, and runs left RUNNING by a dead process."""

from __future__ import annotations

import os
import socket
from typing import Any

HOST = socket.gethostname()


def owner_tags() -> dict[str, str]:
    """Which process writes a run, so a later one can tell a crashed run from a live one."""
    return {"host": HOST, "pid": str(os.getpid())}


def search_all(client: Any, experiment_id: str, query: str) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], query, max_results=1000, page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            return runs


def finished_episode(client: Any, experiment_id: str, config_hash: str):
    """A FINISHED episode of this configuration that did not end in an infrastructure error."""
    for run in search_all(client, experiment_id, f"attributes.status = 'FINISHED' AND tags.config_hash = '{config_hash}'"):
        if run.data.tags.get("termination_reason") != "error":
            return run
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def reap_dead_runs(client: Any, experiment_id: str) -> list[str]:
    """Mark KILLED the RUNNING runs whose writer process on this host no longer exists."""
    reaped = []
    for run in search_all(client, experiment_id, "attributes.status = 'RUNNING'"):
        tags = run.data.tags
        if tags.get("host") != HOST or not tags.get("pid", "").isdigit() or _alive(int(tags["pid"])):
            continue
        client.set_tag(run.info.run_id, "termination_reason", "error")
        client.set_tag(run.info.run_id, "error_message", f"the process writing this run (pid {tags['pid']} on {HOST}) died; marked KILLED")
        client.set_terminated(run.info.run_id, status="KILLED")
        reaped.append(run.info.run_id)
    return reaped
