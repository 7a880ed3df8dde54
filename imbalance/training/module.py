"""The LightningModule: logistic regression or a small MLP emitting one logit per row.

It knows nothing of Hydra or of the environment; the loss is swappable between fits.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn

from imbalance.training.losses import LossSpec, binary_loss


class BinaryClassifier(pl.LightningModule):
    def __init__(self, n_features: int, hidden: tuple[int, ...] = (), lr: float = 1e-3, weight_decay: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        width = n_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        self.lr = lr
        self.weight_decay = weight_decay
        self.loss_spec = LossSpec()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        return binary_loss(self(x), y, self.loss_spec)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)

    @torch.no_grad()
    def predict_proba(self, X: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
        """P(y=1) in float64, so thresholds near 0 or 1 stay distinguishable."""
        self.eval()
        out = [torch.sigmoid(self(X[i : i + chunk]).double()) for i in range(0, len(X), chunk)]
        return torch.cat(out) if out else torch.empty(0, dtype=torch.float64)
