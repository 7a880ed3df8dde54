"""The candidate tasks of a many-task version (v2), before calibration admits them (scripts/calibrate_taskset.py).

Each candidate is a data set, a tier and the overrides that make the task. The *strategy*
tier is data with tens of minority rows or a minority of its own shape, where the right paid
actions (class weights, SMOTE, focal loss) beat a well-trained model with a tuned threshold;
calibration admits a strategy task only when playing without paid actions passes at most 30% of seeds. The
*control* tier is data where a well-trained model with a swept threshold is hard to beat: the
grade measures training and tuning, and an agent is not rewarded for paying for tools there.
`split` says which task-set split plays it: train and eval never share a data set or a family
(car_good and car_vgood are one family; the mixture shapes are separate synthetic data sets).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    dataset: str  # the row's `dataset` field
    tier: str  # "strategy" or "control"
    split: str  # "train" or "eval"
    overrides: tuple[str, ...]


LIMITED = ("budget.max_train_rows=0",)
# Small data sets: a third of the rows in TEST and a quarter in validation, so that a grade rests
# on 10-25 positives rather than 6-15 (tens of minority rows is the point of these tasks).
SMALL = ("source.val_frac=0.25", "source.test_frac=0.3")


def bench(name: str, *more: str) -> tuple[str, ...]:
    return ("source=benchmark", f"source.dataset={name}", *more)


CANDIDATES: tuple[Candidate, ...] = (
    # Measured and rejected: with free training limited, any paid action is also training, so
    # the random agent's paid actions pay and it passes 12-50% of seeds (docs/calibration.md).
    Candidate("mixture-broad-limited", "strategy", "eval", ("source=mixture", "source.minority_scale=2", "source.separation=1", *LIMITED)),
    Candidate("mixture-few-limited", "strategy", "eval", ("source=mixture", "source.n_train=1500", "source.n_val=1000", "source.n_test=1000",
                                                          "source.modes=2", "source.minority_scale=0.6", "source.separation=3", *LIMITED)),
    Candidate("car_vgood-limited", "strategy", "eval", bench("car_vgood", *LIMITED)),
    Candidate("vehicle1-limited", "strategy", "eval", bench("vehicle1", *LIMITED)),
    # strategy tier (tens of minority rows, where class weights or SMOTE beat a tuned threshold), eval split
    Candidate("car_good", "strategy", "eval", bench("car_good", *SMALL)),
    Candidate("flaref", "strategy", "eval", bench("flaref", *SMALL)),
    Candidate("ecoli2", "strategy", "eval", bench("ecoli2", *SMALL)),
    Candidate("led7digit", "strategy", "eval", bench("led7digit_0_2_4_5_6_7_8_9_vs_1", *SMALL)),
    Candidate("pc1", "strategy", "eval", bench("pc1", *SMALL)),
    Candidate("mixture-few", "strategy", "eval", ("source=mixture", "source.n_train=1500", "source.n_val=1000", "source.n_test=1000", "source.modes=2",
                                                  "source.minority_scale=0.6", "source.separation=3")),
    # strategy tier, train split
    Candidate("yeast4", "strategy", "train", bench("yeast4", *SMALL)),
    Candidate("abalone9_18", "strategy", "train", bench("abalone9_18", *SMALL)),
    Candidate("abalone_17_vs_7_8_9_10", "strategy", "train", bench("abalone_17_vs_7_8_9_10", *SMALL)),
    Candidate("winequality_red_4", "strategy", "train", bench("winequality_red_4", *SMALL)),
    Candidate("kr_vs_k_three_vs_eleven", "strategy", "train", bench("kr_vs_k_three_vs_eleven", *SMALL)),
    Candidate("mixture-modes3", "strategy", "train", ("source=mixture", "source.n_train=1500", "source.n_val=1000", "source.n_test=1000", "source.modes=3",
                                                      "source.minority_scale=0.7", "source.separation=3")),
    # synthetic shapes with many rows (40-100 positives in validation and TEST): less noise than real small sets
    Candidate("mixture-broad", "strategy", "eval", ("source=mixture", "source.minority_scale=2", "source.separation=1")),
    Candidate("mixture-noise", "strategy", "train", ("source=mixture", "source.label_noise=0.2", "source.modes=2")),
    # limited training where the tools trade off: SMOTE interpolates noisy labels, or between modes
    Candidate("mixture-noise-limited", "strategy", "train", ("source=mixture", "source.label_noise=0.2", "source.modes=2", *LIMITED)),
    Candidate("mixture-modes4-limited", "strategy", "eval", ("source=mixture", "source.n_train=20000", "source.n_val=5000", "source.n_test=5000",
                                                             "source.minority_frac=0.01", "source.modes=4", "source.minority_scale=0.5", "source.separation=3",
                                                             *LIMITED)),
    # limited training with 100-200 positives in validation and TEST: the grade rests on the
    # strategy, not on which few positives a draw put where
    Candidate("mixture-modes4-big", "strategy", "eval", ("source=mixture", "source.n_train=20000", "source.n_val=10000", "source.n_test=20000",
                                                         "source.minority_frac=0.01", "source.modes=4", "source.minority_scale=0.5", "source.separation=3",
                                                         *LIMITED)),
    Candidate("mixture-broad-big", "strategy", "eval", ("source=mixture", "source.n_val=5000", "source.n_test=10000", "source.minority_scale=2",
                                                        "source.separation=1", *LIMITED)),
    Candidate("mixture-noise-big", "strategy", "train", ("source=mixture", "source.n_val=5000", "source.n_test=10000", "source.label_noise=0.2",
                                                         "source.modes=2", *LIMITED)),
    Candidate("mixture-modes3-big", "strategy", "train", ("source=mixture", "source.n_val=5000", "source.n_test=10000", "source.modes=3",
                                                          "source.minority_scale=0.7", "source.separation=3", *LIMITED)),
    # control tier
    Candidate("page_blocks0", "control", "eval", bench("page_blocks0")),
    Candidate("kc1", "control", "eval", bench("kc1")),
    Candidate("vowel0", "control", "eval", bench("vowel0")),
    Candidate("yeast3", "control", "train", bench("yeast3")),
    Candidate("segment0", "control", "train", bench("segment0")),
    Candidate("shuttle_c0", "control", "train", bench("shuttle_c0_vs_c4")),
    # The real credit-card file, a stratified fifth of it (about 100 frauds, 20 in TEST): the
    # whole file costs a minute per episode, too slow for rollouts.
    Candidate("creditcard", "control", "train", bench("creditcard", "source.sample_n=60000")),
    Candidate("mixture-wide", "control", "eval", ("source=mixture", "source.n_features=12", "source.separation=3")),
)
