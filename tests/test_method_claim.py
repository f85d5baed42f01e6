"""The method's claim on the synthetic data, over several seeds (docs/method.md §5, §7).

AU guidance (λ > 0 at layer 5) must raise the test ATT-COS of the aligned layer by more than the
seed-to-seed spread of either arm: one lucky seed cannot pass, and the arms are paired (same
seeds, same data, same validation split), as in the sweeps.
"""

import statistics

import pytest

from fer_core.config import ExperimentConfig
from fer_core.engine import Trainer

SEEDS = (0, 1, 2)
SIZES = dict(
    dataset="synthetic", img_size=48, output_stride=16, synthetic_n=280, epochs=2,
    batch_size=16, lr=0.05, layers="5",
)  # fmt: skip


def _test_att_cos(lambda_au: float, seed: int, cache: str) -> float:
    cfg = ExperimentConfig.from_flat({**SIZES, "lambda_au": lambda_au, "seed": seed})
    return Trainer(cfg, progress=False, cache_dir=cache).fit()["test_att_cos"]


@pytest.mark.slow(reason="trains paired seeds with and without the AU term")
def test_au_guidance_raises_att_cos_beyond_seed_noise(tmp_path):
    cache = str(tmp_path / "cache")
    base = [_test_att_cos(0.0, s, cache) for s in SEEDS]
    guided = [_test_att_cos(4.0, s, cache) for s in SEEDS]
    spread = max(max(base) - min(base), max(guided) - min(guided))
    gain = statistics.mean(guided) - statistics.mean(base)
    paired = [g - b for g, b in zip(guided, base, strict=True)]
    assert min(paired) > 0, f"a seed where guidance did not help: base {base}, guided {guided}"
    assert gain > spread, f"gain {gain:.3f} within seed spread {spread:.3f}: {base} vs {guided}"
