"""The task: an agent fights class imbalance with paid and free tools, graded on a hidden TEST split.

Contract (Gymnasium-like, documented here because RL trainers drive it without Hydra or MLflow):

    env = ImbalanceEnv(splits, model=MlpModel(), budget=Budget(), tau=0.55, seed=0)
    observation, info = env.reset(seed=0)          # trains the baseline; obs = imbalance_start()
    result = env.call("smote", {"ratio": 0.2, "k": 5})  # -> ToolResult, never raises for bad input
    obs, reward, terminated, truncated, info = env.step({"tool": "train", "arguments": {"epochs": 3}})

- Paid tools (smote, set_class_weights, use_focal, set_threshold) cost one step when they change
  the set-up; an identical or no-op call is free. Past `budget.max_steps` they return the error
  `step_budget_exceeded` and change nothing. After an effective paid action (other than the
  threshold) the model is re-initialised and trained `budget.retrain_epochs` epochs for free
  (more on a small training set, until `budget.retrain_min_rows` rows are seen).
- Invalid arguments, unknown tools and calls after submission return an error result, cost
  nothing and count as invalid.
- `submit_answer` grades once: TEST F1 at the final threshold; it passes when it reaches tau.
  The reward of that step is 1.0 on a pass (`reward="pass"`) or the normalized F1
  (`reward="normalized"`, env/reward.py); the grade is the same in both modes.
  `terminated` is True from then on. `truncated` turns True when `budget.max_tool_calls` calls
  were made; the caller should then submit (`env.submit(auto=True)`).
- Nothing returned before submission is computed from TEST rows: the constructor hands the test
  split to the grader, which alone keeps it (`splits` holds train and validation only); the
  scaler was fitted on train. The grader's tau, step limit and TEST rows are read-only, and so
  are `tau` and `budget` here (`budget` is a copy).
- `reset(seed=s)` replays the episode under another training/SMOTE seed on the same data and
  tau: the split is fixed when the env is built (build a new env for a new draw of the data).
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from typing import Any

import numpy as np

from imbalance.config.constraints import short_repr
from imbalance.config.schema import Budget, Config, LogregModel, MlpModel
from imbalance.data.splits import Split, Splits
from imbalance.env.metrics import best_threshold, pr_auc, prf
from imbalance.env.results import MAX_RECORDED_STRING, EpisodeState, Grade, ToolResult
from imbalance.env.reward import episode_reward, oracle_f1
from imbalance.env.tools import FREE_TOOLS, PAID_TOOLS, TOOLS_BY_NAME, ToolArgumentError
from imbalance.seeding import derive_seed, generator
from imbalance.training.fit import fit, new_model, to_tensors
from imbalance.training.losses import LossSpec, effective_number_weights


class _Grader:
    """Holds the hidden TEST split; the only code that ever reads it.

    Read-only: tau, the step limit and its own copy of the TEST rows are fixed when it is built,
    assignment raises and the arrays refuse writes. An agent in the same process can still
    reach this object (Python hides nothing from code in its process), so a caller that cannot
    trust its agent plays through the session pool, whose workers keep the grader out of the
    agent's process and answer named operations only (experiment/sessions.py).
    """

    __slots__ = ("_X", "_y", "_tau", "_max_steps", "_baseline_f1")

    def __init__(self, test: Split, tau: float, max_steps: int):
        X, y = np.array(test.X, dtype=np.float32), np.array(test.y)  # copies: no other reference can change them
        X.flags.writeable = y.flags.writeable = False
        for name, value in (("_X", X), ("_y", y), ("_tau", float(tau)), ("_max_steps", int(max_steps)), ("_baseline_f1", float("nan"))):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"the grader is read-only (tried to set {name})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"the grader is read-only (tried to delete {name})")

    def __reduce__(self):
        raise TypeError("the grader holds TEST: it is never pickled or sent anywhere")

    @property
    def tau(self) -> float:
        return self._tau

    def _proba(self, model) -> np.ndarray:
        X, _ = to_tensors(self._X.copy())  # torch wants a writable array; the copy keeps ours read-only
        return model.predict_proba(X).numpy()

    def record_baseline(self, model, threshold: float) -> None:
        """Remember the reset model's TEST F1; nothing is returned, so nothing can leak."""
        object.__setattr__(self, "_baseline_f1", prf(self._y, self._proba(model), threshold)["f1"])

    def grade(self, model, threshold: float, steps_used: int) -> Grade:
        scores = prf(self._y, self._proba(model), threshold)
        passed = scores["f1"] >= self._tau and steps_used <= self._max_steps
        return Grade(scores["f1"], scores["precision"], scores["recall"], threshold, steps_used, passed, self._baseline_f1)


class ImbalanceEnv:
    def __init__(self, splits: Splits, *, model: LogregModel | MlpModel, budget: Budget, tau: float, seed: int = 0,
                 reward: str = "pass", oracle_f1: float | None = None):
        # The grader takes TEST; the environment keeps train and validation only, so nothing
        # reachable from the environment outside the grader holds a TEST row.
        self._grader = _Grader(splits.test, tau, budget.max_steps)
        self.splits = splits.without_test()
        self.model_cfg, self.seed = model, int(seed)
        self._budget = dataclasses.replace(budget)  # a private copy: `budget` hands out copies
        if reward == "normalized" and oracle_f1 is None:
            raise ValueError("reward='normalized' needs oracle_f1")
        self.reward_mode, self.oracle_f1 = reward, oracle_f1
        self._X_val, _ = to_tensors(splits.val.X)
        self._y_val = splits.val.y
        self.timings: dict[str, float] = defaultdict(float)
        self.state = EpisodeState()
        self._ready = False

    @classmethod
    def from_config(cls, config: Config, splits: Splits) -> ImbalanceEnv:
        """The environment a checked configuration describes, on its data."""
        return cls(splits, model=config.model, budget=config.budget, tau=config.tau, seed=config.seed,
                   reward=config.reward, oracle_f1=oracle_f1(config) if config.reward == "normalized" else None)

    # ------------------------------------------------------------------ Gymnasium-like API
    def reset(self, *, seed: int | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self.seed = int(seed)
        train_seed = self.model_cfg.seed if self.model_cfg.seed is not None else derive_seed(self.seed, "training")
        self._train_rng = np.random.default_rng(train_seed)
        self._smote_rng = generator(self.seed, "smote")
        self.state = EpisodeState()
        self.timings.clear()
        self._train_X, self._train_y = self.splits.train.X, self.splits.train.y
        self._retrain()
        self._baseline_val_f1 = self._val["f1"]
        started = time.perf_counter()
        self._grader.record_baseline(self._model, self.state.setup.threshold)
        self.timings["grading"] += time.perf_counter() - started
        self._ready = True
        return self._summary(), {"val": dict(self._val)}

    def step(self, action: dict) -> tuple[dict, float, bool, bool, dict]:
        if not isinstance(action, dict):
            result = self.call(str(action), None)
        else:
            result = self.call(action.get("tool", ""), action.get("arguments"))
        terminated = self.done
        graded_now = self.state.grade is not None and result.tool == "submit_answer" and not result.is_error
        reward = self.reward() if graded_now else 0.0
        info = {"charged": result.charged, "invalid": result.invalid, "paid": result.paid}
        if terminated and self.state.grade:
            info["grade"] = self.state.grade
        return result.output, reward, terminated, self.truncated, info

    # ------------------------------------------------------------------ tool calls
    def call(self, tool: Any, arguments: Any = None) -> ToolResult:
        """Run one tool call; bad input comes back as an error result, never as an exception."""
        if not self._ready:
            raise RuntimeError("call reset() before the first tool call")
        self.state.tool_calls += 1
        name = tool if isinstance(tool, str) else short_repr(tool)
        spec = TOOLS_BY_NAME.get(name) if isinstance(tool, str) else None
        paid = bool(spec and spec.paid)
        if self.done:
            return self._invalid(name, arguments, paid, "episode_over", "the episode is over: the answer was already submitted")
        if spec is None:
            known = ", ".join(TOOLS_BY_NAME)
            return self._invalid(name, arguments, paid, "unknown_tool", f"unknown tool {short_repr(tool)}; the tools are: {known}")
        steps_before = self.state.steps_used
        try:
            # Handlers raise ToolArgumentError only before they change anything.
            # Looked up per call: a dict of bound methods would tie the env into a reference
            # cycle, and its arrays would wait for the cyclic garbage collector.
            output = getattr(self, f"_tool_{name}")(**spec.validate(arguments))
        except ToolArgumentError as exc:
            return self._invalid(name, arguments, paid, "invalid_arguments", str(exc))
        charged = self.state.steps_used > steps_before
        return ToolResult(name, recordable(arguments), output, paid, charged, invalid=False)

    def submit(self, *, auto: bool = False) -> Grade:
        """Grade now (the runner's auto-submission; agents use the submit_answer tool)."""
        if self.state.grade is None:
            self._grade()
            self.state.auto_submitted = auto
        return self.state.grade  # type: ignore[return-value]

    def reward(self) -> float:
        """The episode's reward in the configured mode (0.0 before it is graded)."""
        grade = self.state.grade
        if grade is None:
            return 0.0
        return episode_reward(self.reward_mode, passed=grade.passed, test_f1=grade.test_f1, baseline_f1=grade.baseline_test_f1, oracle_f1=self.oracle_f1)

    @property
    def tau(self) -> float:
        """The pass bar, as the grader holds it (read-only: the grade never depends on what an agent writes here)."""
        return self._grader.tau

    @property
    def budget(self) -> Budget:
        """A copy of the episode's budget: changing it changes nothing in the episode."""
        return dataclasses.replace(self._budget)

    @property
    def done(self) -> bool:
        return self.state.done

    @property
    def truncated(self) -> bool:
        return self.state.truncated(self._budget.max_tool_calls)

    @property
    def description(self) -> str:
        """The data-source clause the task prompt and the console show."""
        return self.splits.description

    def snapshot(self) -> tuple[EpisodeState, dict[str, float], dict[str, float]]:
        """(state, per-call metrics, timings): what a process relaying this episode mirrors."""
        return self.state, self.metrics(), dict(self.timings)

    def close(self) -> None:
        """Release the episode's model and data references (the environment is done with)."""
        self._ready = False
        self._model = self._Xt = self._yt = self._train_X = self._train_y = None  # type: ignore[assignment]

    @property
    def train_rows_left(self) -> int | None:
        """Rows the free train() calls may still see (None: the task does not limit training)."""
        if self._budget.max_train_rows is None:
            return None
        return max(self._budget.max_train_rows - self.state.train_rows_used, 0)

    @property
    def budget_remaining(self) -> int:
        return max(self._budget.max_steps - self.state.steps_used, 0)

    def metrics(self) -> dict[str, float]:
        """The per-call metrics the tracker logs (validation only)."""
        return {
            "val_f1": self._val["f1"],
            "val_precision": self._val["precision"],
            "val_recall": self._val["recall"],
            "threshold": self.state.setup.threshold,
            "budget_remaining": float(self.budget_remaining),
        }

    # ------------------------------------------------------------------ free tools
    def _tool_imbalance_start(self) -> dict:
        return self._summary()

    def _tool_train(self, epochs: int, lr: float | None = None) -> dict:
        n_rows = len(self._train_y)
        cap = max(1, self._budget.max_train_rows_per_call // max(n_rows, 1))
        left = self.train_rows_left
        if left is not None:
            if left < n_rows:
                return {"error": "training_budget_exceeded", "message": f"train: the episode's {self._budget.max_train_rows} rows of training "
                        f"are used ({left} left, one epoch is {n_rows}); nothing changed. Paid actions still retrain the model for free"}
            cap = min(cap, left // n_rows)
        run_epochs = min(epochs, cap)
        self.state.train_rows_used += run_epochs * n_rows
        self._fit(run_epochs, lr)
        self._evaluate()
        # PR-AUC beside F1: a threshold-free view of progress, so watching training costs no eval call.
        val = {**self._val_view(), "pr_auc": round(self._pr_auc(), 6)}
        out = {"trained_epochs": run_epochs, "lr": lr if lr is not None else self.model_cfg.lr, "val": val}
        if run_epochs < epochs:
            why = "the episode's training budget" if left is not None and left // n_rows < epochs else f"one call may see at most {self._budget.max_train_rows_per_call} rows"
            out["note"] = f"capped at {run_epochs} epochs: {why}"
        if left is not None:
            out["train_rows_left"] = self.train_rows_left
        return out

    def _tool_eval_on_val(self) -> dict:
        auc = self._pr_auc()
        return {**self._val_view(), "pr_auc": round(auc, 6), "predicted_positives": int(np.count_nonzero(self._val_proba >= self.state.setup.threshold))}

    def _tool_sweep_thresholds(self, num_points: int | None = None) -> dict:
        started = time.perf_counter()
        self.state.setup.threshold = best_threshold(self._y_val, self._val_proba, num_points)
        self._val = prf(self._y_val, self._val_proba, self.state.setup.threshold)
        self.timings["evaluation"] += time.perf_counter() - started
        return {"search": "exact" if num_points is None else f"grid of {num_points}", **self._val_view()}

    def _tool_get_budget(self) -> dict:
        out = {
            "max_steps": self._budget.max_steps,
            "steps_used": self.state.steps_used,
            "remaining": self.budget_remaining,
            "paid_actions": list(self.state.paid_actions),
        }
        if self._budget.max_train_rows is not None:
            out["train_rows_left"] = self.train_rows_left
        return out

    def _tool_submit_answer(self) -> dict:
        self._grade()
        return {"submitted": True, "threshold": self.state.setup.threshold, "message": "graded on the hidden test split; the episode is over"}

    # ------------------------------------------------------------------ paid tools
    def _tool_smote(self, ratio: float, k: int, seed: int | None = None) -> dict:
        # The positive count the ratio asks for, rounded as imbalanced-learn rounds it. Comparing
        # counts, not fractions, makes a repeated call (whose fraction lands a hair below `ratio`)
        # a free no-op, and never asks SMOTE for zero new rows, which it refuses with an exception.
        # Always from the original training rows: a lower ratio than the current one resamples
        # down to it, and one at or below the original minority fraction restores the original
        # rows (undoing SMOTE is a paid step like any change of set-up).
        base = self.splits.train
        negatives = len(base.y) - base.positives
        target = int(ratio / (1.0 - ratio) * negatives)
        if target <= base.positives:
            if self.state.setup.smote is None:
                return self._no_op(f"the training set's minority fraction is already {base.positives / len(base.y):.4f}, at or above {ratio}")
            if (refused := self._refuse_if_over_budget("smote")) is not None:
                return refused
            self._train_X, self._train_y = base.X, base.y
            self.state.setup.smote = None
            return self._charge("smote", {"ratio": ratio, "k": k, **({"seed": seed} if seed is not None else {})}, retrain=True, effect={
                "train_rows": len(base.y), "train_positives": base.positives, "minority_frac": round(base.positives / len(base.y), 6),
                "note": "the original training rows are back (no synthetic rows)",
            })
        if self.state.setup.smote is not None and self.state.setup.smote[0] == ratio:
            return self._no_op(f"the training set is already oversampled to a minority fraction of {ratio}")
        if k >= base.positives:
            raise ToolArgumentError(f"smote: k must be below the number of positive training rows ({base.positives}); got {k}")
        if (refused := self._refuse_if_over_budget("smote")) is not None:
            return refused
        from imblearn.over_sampling import SMOTE

        started = time.perf_counter()
        smote_seed = seed if seed is not None else int(self._smote_rng.integers(2**31 - 1))
        sampler = SMOTE(sampling_strategy={1: target}, k_neighbors=k, random_state=smote_seed)
        X, y = sampler.fit_resample(base.X, base.y)
        self._train_X, self._train_y = np.ascontiguousarray(X, dtype=np.float32), np.asarray(y, dtype=np.int64)
        self.timings["smote"] += time.perf_counter() - started
        self.state.setup.smote = (ratio, k, seed)
        return self._charge("smote", {"ratio": ratio, "k": k, **({"seed": seed} if seed is not None else {})}, retrain=True, effect={
            "train_rows": len(self._train_y),
            "train_positives": int(self._train_y.sum()),
            "minority_frac": round(float(self._train_y.mean()), 6),
        })

    def _tool_set_class_weights(self, beta: float) -> dict:
        if self.state.setup.beta == beta:
            return self._no_op(f"class weights already use beta={beta}")
        if (refused := self._refuse_if_over_budget("set_class_weights")) is not None:
            return refused
        self.state.setup.beta = beta
        return self._charge("set_class_weights", {"beta": beta}, retrain=True, effect={"class_weights": self._class_weights()})

    def _tool_use_focal(self, alpha: float, gamma: float) -> dict:
        if self.state.setup.focal == (alpha, gamma):
            return self._no_op(f"focal loss already uses alpha={alpha}, gamma={gamma}")
        if (refused := self._refuse_if_over_budget("use_focal")) is not None:
            return refused
        self.state.setup.focal = (alpha, gamma)
        return self._charge("use_focal", {"alpha": alpha, "gamma": gamma}, retrain=True, effect={"loss": self._loss_spec().name})

    def _tool_set_threshold(self, threshold: float) -> dict:
        if self.state.setup.threshold == threshold:
            return self._no_op(f"the threshold is already {threshold}")
        if (refused := self._refuse_if_over_budget("set_threshold")) is not None:
            return refused
        self.state.setup.threshold = threshold
        self._val = prf(self._y_val, self._val_proba, threshold)
        return self._charge("set_threshold", {"threshold": threshold}, retrain=False, effect={})

    # ------------------------------------------------------------------ internals
    def _refuse_if_over_budget(self, name: str) -> dict | None:
        if self.state.steps_used >= self._budget.max_steps:
            return {
                "error": "step_budget_exceeded",
                "message": f"{name}: all {self._budget.max_steps} paid actions are used; nothing changed. "
                f"Free tools still work: {', '.join(FREE_TOOLS)}",
            }
        return None

    def _charge(self, name: str, args: dict, *, retrain: bool, effect: dict) -> dict:
        self.state.steps_used += 1
        self.state.paid_actions.append({"tool": name, **args})
        if retrain:
            self._retrain()
        return {
            "applied": True,
            **effect,
            **({"retrained_epochs": self.retrain_epochs} if retrain else {}),
            "val": self._val_view(),
            "steps_used": self.state.steps_used,
            "remaining": self.budget_remaining,
        }

    def _no_op(self, why: str) -> dict:
        return {"applied": False, "cost": 0, "message": f"no change, no cost: {why}", "remaining": self.budget_remaining}

    def _invalid(self, name: str, arguments: Any, paid: bool, code: str, message: str) -> ToolResult:
        self.state.invalid_calls += 1
        return ToolResult(name, recordable(arguments), {"error": code, "message": message}, paid, False, invalid=True)

    def _summary(self) -> dict:
        train, val = self.splits.train, self.splits.val
        return {
            "task": self.splits.description,
            "n_features": int(train.X.shape[1]),
            "train": {"rows": len(train), "positives": train.positives},
            "val": {"rows": len(val), "positives": val.positives},
            "baseline_val_f1": round(self._baseline_val_f1, 6),
            "tau": self.tau,
            "max_steps": self._budget.max_steps,
            "paid_tools": list(PAID_TOOLS),
            # Only where the task limits training: a task without the limit reads as it always did.
            **({"max_train_rows": self._budget.max_train_rows} if self._budget.max_train_rows is not None else {}),
        }

    def _class_weights(self) -> tuple[float, float] | None:
        if self.state.setup.beta is None:
            return None
        positives = int(self._train_y.sum())
        return effective_number_weights((len(self._train_y) - positives, positives), self.state.setup.beta)

    def _loss_spec(self) -> LossSpec:
        focal = self.state.setup.focal
        return LossSpec(self._class_weights(), *(focal if focal else (None, None)))

    def _retrain(self) -> None:
        """Fresh weights from the training stream, then the free retraining epochs."""
        started = time.perf_counter()
        cfg = self.model_cfg
        init_seed = int(self._train_rng.integers(2**31 - 1))
        self._model = new_model(self._train_X.shape[1], tuple(cfg.hidden), cfg.lr, cfg.weight_decay, init_seed)
        self._Xt, self._yt = to_tensors(self._train_X, self._train_y)
        self.timings["training"] += time.perf_counter() - started
        self._fit(self.retrain_epochs, None)
        self._evaluate()

    @property
    def retrain_epochs(self) -> int:
        """The free epochs after a paid action: budget.retrain_epochs, or more on a small
        training set until budget.retrain_min_rows rows are seen (never past one call's cap)."""
        rows = max(len(self._train_y), 1)
        wanted = max(self._budget.retrain_epochs, -(-self._budget.retrain_min_rows // rows))
        return max(1, min(wanted, self._budget.max_train_rows_per_call // rows))

    def _fit(self, epochs: int, lr: float | None) -> None:
        started = time.perf_counter()
        self._model.loss_spec = self._loss_spec()
        self._model.lr = lr if lr is not None else self.model_cfg.lr
        fit(
            self._model, self._Xt, self._yt, epochs=epochs, batch_size=self.model_cfg.batch_size,
            seed=int(self._train_rng.integers(2**31 - 1)), threads=self.model_cfg.threads,
        )
        self.timings["training"] += time.perf_counter() - started

    def _evaluate(self) -> None:
        started = time.perf_counter()
        self._val_proba = self._model.predict_proba(self._X_val).numpy()
        self._val = prf(self._y_val, self._val_proba, self.state.setup.threshold)
        self.timings["evaluation"] += time.perf_counter() - started

    def _pr_auc(self) -> float:
        started = time.perf_counter()
        auc = pr_auc(self._y_val, self._val_proba)
        self.timings["evaluation"] += time.perf_counter() - started
        return auc

    def _val_view(self) -> dict:
        return {
            "val_f1": round(self._val["f1"], 6),
            "val_precision": round(self._val["precision"], 6),
            "val_recall": round(self._val["recall"], 6),
            "threshold": self.state.setup.threshold,
        }

    def _grade(self) -> None:
        started = time.perf_counter()
        self.state.grade = self._grader.grade(self._model, self.state.setup.threshold, self.state.steps_used)
        self.timings["grading"] += time.perf_counter() - started


def recordable(value: Any, limit: int = MAX_RECORDED_STRING) -> Any:
    """Arguments as sent, JSON-safe, with very long strings cut and marked (never a 1 MB record)."""
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + f"...<cut: {len(value) - limit} more chars>"
    if isinstance(value, dict):
        return {recordable(str(k), 200): recordable(v, limit) for k, v in list(value.items())[:100]}
    if isinstance(value, (list, tuple)):
        return [recordable(v, limit) for v in list(value)[:100]]
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
        return short_repr(value, limit)  # JSON readers (and json.dumps past 4,300 digits) choke on such ints
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return short_repr(value, limit)
