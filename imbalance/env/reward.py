"""What a trainer is paid for an episode: a function of the grade, never a change to it.

- `pass` (default): 1.0 when the episode passes (TEST F1 >= tau within the budget), else 0.0.
  The benchmark's own verdict, so training reward and evaluation agree.
- `normalized`: TEST F1 mapped linearly so the *baseline* scores 0 and the *oracle* 1,
  clipped to [0, 1]. A dense signal for training where passes are rare.

The baseline is the TEST F1 of the model `reset()` trains (plain cross-entropy) at the
starting threshold 0.5: what submitting at once would earn, and the TEST counterpart of the
`baseline_val_f1` the agent is shown. The grader computes it privately at reset; it reaches
nobody before submission. The oracle is the task's best reachable TEST F1: the Bayes-optimal
F1 of a synthetic source, or a reference from calibration (`oracle_f1`, stored in task-set
rows). So 0 is "did nothing", 1 is "as good as any classifier can be", and the free moves
(training, the threshold sweep) already earn part of the way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imbalance.config.schema import REWARD_MODES, Config, SyntheticSource

if TYPE_CHECKING:
    from imbalance.env.results import Grade

MIN_SPAN = 1e-6  # an oracle at or below the baseline: any F1 above the baseline counts as the oracle's


def normalized_f1(test_f1: float, baseline_f1: float, oracle_f1: float) -> float:
    """(F1 - baseline) / (oracle - baseline), clipped to [0, 1]."""
    span = max(oracle_f1 - baseline_f1, MIN_SPAN)
    return min(max((test_f1 - baseline_f1) / span, 0.0), 1.0)


def episode_reward(mode: str, *, passed: bool, test_f1: float, baseline_f1: float, oracle_f1: float | None) -> float:
    if mode == "pass":
        return 1.0 if passed else 0.0
    if mode == "normalized":
        if oracle_f1 is None:
            raise ValueError("reward=normalized needs an oracle F1")
        return normalized_f1(test_f1, baseline_f1, oracle_f1)
    raise ValueError(f"unknown reward mode {mode!r}; one of {', '.join(REWARD_MODES)}")


def oracle_f1(config: Config) -> float | None:
    """The task's oracle F1 (reward=normalized's 1): `oracle_f1` when set (task-set rows set
    it), else the synthetic source's Bayes-optimal F1; None where neither is known."""
    if config.oracle_f1 is not None:
        return config.oracle_f1
    if isinstance(config.source, SyntheticSource):
        from imbalance.data.synthetic import bayes_optimal_f1

        return bayes_optimal_f1(config.source)
    return None


def config_reward(config: Config, grade: Grade) -> float:
    """The reward of a graded episode of `config`, in its mode."""
    oracle = oracle_f1(config) if config.reward == "normalized" else None
    return episode_reward(config.reward, passed=grade.passed, test_f1=grade.test_f1, baseline_f1=grade.baseline_test_f1, oracle_f1=oracle)
