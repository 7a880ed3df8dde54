"""Losses for one binary logit per row, computed from logits in a numerically stable form.

- cross-entropy: softplus form of -log sigmoid, never log(0).
- class weights: effective number of samples (Cui et al. 2019), w_c ~ (1 - beta) / (1 - beta^n_c),
  normalised so the weights sum to the number of classes (2).
- focal loss (Lin et al. 2017): -alpha_t (1 - p_t)^gamma log p_t with log p_t = logsigmoid(+-z),
  so p_t = exp(log p_t) never under- or overflows. Class weights, when set, multiply it
  as in Cui et al.'s class-balanced focal loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossSpec:
    """What the agent configured: class weights (negative, positive) and/or focal parameters."""

    class_weights: tuple[float, float] | None = None
    focal_alpha: float | None = None
    focal_gamma: float | None = None

    @property
    def name(self) -> str:
        if self.focal_gamma is not None:
            return "focal" + ("+class_weights" if self.class_weights else "")
        return "weighted_ce" if self.class_weights else "ce"


def effective_number_weights(counts: tuple[int, int], beta: float) -> tuple[float, float]:
    """Class-balanced weights from class counts; beta=0 gives equal weights, beta->1 inverse frequency."""
    raw = []
    for n in counts:
        if beta == 0.0:
            effective = 1.0
        elif beta == 1.0:
            effective = float(n)
        else:  # (1 - beta^n) / (1 - beta), computed without cancellation for beta near 1
            effective = -math.expm1(n * math.log(beta)) / -math.expm1(math.log(beta))
        raw.append(1.0 / effective)
    total = sum(raw)
    return (2 * raw[0] / total, 2 * raw[1] / total)


def binary_loss(logits: torch.Tensor, targets: torch.Tensor, spec: LossSpec) -> torch.Tensor:
    """Mean loss over the batch; `targets` are 0/1 floats of the same shape as `logits`."""
    log_p_pos = F.logsigmoid(logits)
    log_p_neg = F.logsigmoid(-logits)
    log_pt = torch.where(targets > 0.5, log_p_pos, log_p_neg)
    per_row = -log_pt
    if spec.focal_gamma is not None:
        alpha = 0.5 if spec.focal_alpha is None else spec.focal_alpha
        alpha_t = torch.where(targets > 0.5, alpha, 1.0 - alpha)
        # (1 - p_t)^gamma = exp(gamma * log(1 - p_t)) = exp(gamma * log_sigmoid(-+z)): stable.
        log_one_minus_pt = torch.where(targets > 0.5, log_p_neg, log_p_pos)
        per_row = alpha_t * torch.exp(spec.focal_gamma * log_one_minus_pt) * per_row
    if spec.class_weights is not None:
        w_neg, w_pos = spec.class_weights
        per_row = per_row * torch.where(targets > 0.5, w_pos, w_neg)
    return per_row.mean()
