"""`python -m imbalance.serve [overrides]`: the environment as an OpenEnv server.

Composed by Hydra from conf/serve.yaml: the groups of `imbalance.run` (source, model, budget,
tau, mlflow) plus `serve.*`. Every problem found before the server listens (a value out of
range, a host beyond loopback without serve.allow_remote=true, a port in use, serve.token_env naming
an unset variable, a data file's rows, the store) is one `Error:` line and exit code 2.
"""

from __future__ import annotations

import logging
import os
import socket

import hydra
from omegaconf import DictConfig

from imbalance.cli.errors import exit_with
from imbalance.config import register_schemas
from imbalance.config.compose import CONF_DIR
from imbalance.errors import UsageError

register_schemas()


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="serve")
def main(cfg: DictConfig) -> None:
    from imbalance.config.checks import to_objects
    from imbalance.data import check_data
    from imbalance.experiment.build import precheck

    try:
        config = to_objects(cfg)
        tracking_uri = precheck(config)
        check_data(config.source, config.seed)  # a file every session would fail on stops the start, not each reset
        token = shared_token(config.serve.token_env)
        _require_free_port(config.serve.host, config.serve.port)
    except UsageError as exc:
        exit_with(exc)
    serve_forever(config, tracking_uri, token)


MIN_TOKEN_CHARS = 16  # a shared secret short enough to guess is no guard at all


def shared_token(variable: str | None) -> str | None:
    """The token serve.token_env names, read from the environment (never from config)."""
    if variable is None:
        return None
    token = os.environ.get(variable, "").strip()
    if not token:
        raise UsageError(f"serve.token_env={variable}, but the environment variable {variable} is not set or empty; "
                         f"export {variable}=<a long random token> (e.g. from `openssl rand -hex 32`) and start again")
    if len(token) < MIN_TOKEN_CHARS:
        raise UsageError(f"the token in {variable} has {len(token)} characters; use at least {MIN_TOKEN_CHARS} (e.g. `openssl rand -hex 32`)")
    return token


def _require_free_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another serve.port or serve.host") from None


def serve_forever(config, tracking_uri: str, token: str | None = None) -> None:
    try:
        import uvicorn

        from imbalance.experiment.server import Server
    except ImportError as exc:
        exit_with(UsageError(f"python -m imbalance.serve needs openenv ({exc.name} is missing): pip install -e '.[rl]' -c constraints.txt"))
    from imbalance.config.schema import is_loopback
    from imbalance.tracking.episode_run import many_episodes
    from imbalance.tracking.store import ui_command

    serve = config.serve
    server = Server(config, tracking_uri, token=token)
    every_interface = serve.host in ("", "0.0.0.0", "::")
    url = f"http://{'127.0.0.1' if every_interface else (f'[{serve.host}]' if ':' in serve.host else serve.host)}:{serve.port}"
    print(f"imbalance.serve: {config.source.name} task, tau={config.tau}, max_steps={config.budget.max_steps} on {url} "
          f"(OpenEnv: GenericEnvClient(base_url='{url}')); up to {serve.max_sessions} sessions, idle ones closed after "
          f"{serve.idle_timeout_s} s; Ctrl-C stops it", flush=True)
    if config.mlflow.enabled:
        print(f"each session is one MLflow run in experiment '{config.mlflow.experiment_name}'; browse: {ui_command(tracking_uri)}", flush=True)
    if not is_loopback(serve.host):
        where = "every interface" if every_interface else serve.host
        if token is None:
            print(f"WARNING: listening on {where}, port {serve.port}: the server is reachable from other machines and unauthenticated; "
                  "anyone who reaches the port can play and fill the store (set serve.token_env to require a token)", flush=True)
        else:
            print(f"WARNING: listening on {where}, port {serve.port}: the server is reachable from other machines; every request "
                  f"must carry the token in ${serve.token_env} (Authorization: Bearer ...); the traffic is not encrypted", flush=True)
    elif token is not None:
        print(f"every request must carry the token in ${serve.token_env} (Authorization: Bearer ...)", flush=True)
    logging.getLogger("uvicorn.error").addFilter(_drop_disconnect_tracebacks)
    try:
        # log_config=None: the console and log file Hydra set up stay as they are.
        with many_episodes():
            uvicorn.run(server.app(), host=serve.host, port=serve.port, log_level="warning", log_config=None, ws_max_size=16 * 2**20)
    finally:
        server.close()


def _drop_disconnect_tracebacks(record: logging.LogRecord) -> bool:
    """openenv-core closes a WebSocket its client already closed, and uvicorn logs that as an
    `Exception in ASGI application` traceback after every session: noise, not a fault. So is
    uvicorn's (0.54, websockets-sansio) complaint after a handshake refused with a 401 response,
    which it sends and then calls incomplete; only the token check refuses handshakes here."""
    if record.getMessage() == "ASGI callable returned without completing handshake.":
        return False
    exc = record.exc_info[1] if record.exc_info else None
    return not (exc is not None and type(exc).__name__ in ("WebSocketDisconnect", "ClientDisconnected"))


def cli() -> None:
    main()


if __name__ == "__main__":
    cli()
