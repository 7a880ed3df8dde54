"""Every random choice derives from the one configured `seed`.

Each consumer (split, SMOTE, training, agent) asks for its own named stream, so adding
a consumer never shifts the numbers another one sees, and no helper restarts a stream by
re-seeding from the same integer.
"""

import zlib

import numpy as np


def derive_seed(seed: int, purpose: str) -> int:
    """A 31-bit seed for `purpose`, stable across processes and Python versions."""
    sequence = np.random.SeedSequence(entropy=int(seed), spawn_key=(zlib.crc32(purpose.encode()),))
    return int(sequence.generate_state(1, dtype=np.uint32)[0] >> 1)


def generator(seed: int, purpose: str) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, purpose))
