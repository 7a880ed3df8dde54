"""Training: batches sliced straight from tensors, and a quiet, deterministic Trainer.

A DataLoader over a TensorDataset collates row by row, about 20x slower here than
slicing whole batches out of the tensors; Lightning itself is cheap once the loader is.
"""

from __future__ import annotations

import logging
import signal
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytorch_lightning as pl
import torch

from imbalance.training.module import BinaryClassifier

for _name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch"):
    logging.getLogger(_name).setLevel(logging.WARNING)


BATCHES_PER_CHUNK = 32  # mini-batches per Lightning step (see module.py)


class TensorBatches:
    """Shuffled rows sliced from in-memory tensors, one new permutation per epoch, in chunks
    of `batches_per_chunk` whole mini-batches (the module steps through each chunk)."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor, batch_size: int, generator: torch.Generator, batches_per_chunk: int = BATCHES_PER_CHUNK):
        self.X, self.y, self.generator = X, y, generator
        self.chunk = batch_size * batches_per_chunk

    def __len__(self) -> int:
        return (len(self.y) + self.chunk - 1) // self.chunk

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self.y), generator=self.generator)
        X, y = self.X[order], self.y[order]
        for start in range(0, len(y), self.chunk):
            yield X[start : start + self.chunk], y[start : start + self.chunk]


def make_trainer(max_epochs: int) -> pl.Trainer:
    """CPU, no progress bars, no logger folder, no checkpoints, no sanity checks."""
    return pl.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        devices=1,
        barebones=True,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic=False,
    )


def new_model(n_features: int, hidden: tuple[int, ...], lr: float, weight_decay: float, seed: int) -> BinaryClassifier:
    """Initial weights come from `seed` alone, not from whatever the global RNG holds."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return BinaryClassifier(n_features, tuple(hidden), lr, weight_decay)


@contextmanager
def intra_op_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op thread count for a block, restored afterwards (None: leave it).

    The models are tiny: splitting a 512-row batch over threads costs more in wake-ups than
    it saves, and on a busy machine (parallel episodes) an OpenMP barrier can stall a step
    by milliseconds. One thread per episode, and episodes side by side, is the fast shape.
    """
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit(
    model: BinaryClassifier, X: torch.Tensor, y: torch.Tensor, *, epochs: int, batch_size: int,
    seed: int | None = None, generator: torch.Generator | None = None, threads: int | None = None,
) -> None:
    """Train `model` in place for `epochs` more epochs, continuing its optimizer (see module.py).

    The shuffling order comes from `seed`, or from `generator` (a stream a caller can carry
    across fits: then N epochs in one fit equal the same N epochs split over several fits).
    """
    if (seed is None) == (generator is None):
        raise ValueError("fit needs exactly one of seed or generator")
    if generator is None:
        generator = torch.Generator().manual_seed(seed)
    batches = TensorBatches(X, y, batch_size, generator)
    model.batch_size = batch_size
    with warnings.catch_warnings(), intra_op_threads(threads):
        # Lightning's advice on DataLoader workers and barebones mode does not apply here.
        warnings.simplefilter("ignore", category=UserWarning)
        # torch 2.13 deprecates LeafSpec, which Lightning 2.6 still builds once per batch.
        warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
        trainer = make_trainer(epochs)
        try:
            trainer.fit(model, train_dataloaders=batches)
        except SystemExit:
            if not trainer.interrupted:
                raise
            # Lightning answers Ctrl-C with sys.exit(1) and ignores SIGINT from then on; give the
            # caller the interruption it was, so the episode's run ends KILLED, not FAILED.
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt from None
    # A finished Trainer sits in reference cycles (with the model and its own parts) until
    # the cyclic garbage collector runs, which large arrays do not prompt: drop its links
    # to the training data now, or every fit of an episode keeps a copy alive.
    model.trainer = None
    batches.X = batches.y = None
    model.eval()


def to_tensors(X: np.ndarray, y: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    Xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    yt = None if y is None else torch.from_numpy(np.asarray(y, dtype=np.float32))
    return Xt, yt
