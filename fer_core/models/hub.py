"""ImageNet weights as timm users load them: timm's pretrained tag, the Hugging Face hub cache.

``pretrained="imagenet"`` names the default pretrained tag timm gives a model
(``timm.models.get_pretrained_cfg``: ``resnet50`` → the hub repository ``timm/resnet50.a1_in1k``).
Its file is read from the hub's cache, in the layout ``huggingface_hub`` writes and reads::

    <cache>/models--timm--resnet50.a1_in1k/refs/main            (the snapshot's commit hash)
    <cache>/models--timm--resnet50.a1_in1k/snapshots/<hash>/model.safetensors

where ``<cache>`` is ``HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``
(read when a model is built, so a worker's environment decides). timm prefers
``model.safetensors`` and falls back to ``pytorch_model.bin``; so does this module.

With ``HF_HUB_OFFLINE`` set (cluster workers without internet), a missing file is an error that
names the command fetching it, ``python -m fer_core.weights fetch <model> --cache DIR``, run once
where the internet is reachable into the folder the workers share. Without it the file is
downloaded on first use, as timm would.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from fer_core.cli import UserError

IMAGENET = "imagenet"
"""The ``pretrained`` value meaning timm's default ImageNet tag through the hub."""
FILENAMES = ("model.safetensors", "pytorch_model.bin")
"""What timm reads from a hub repository, in its order of preference."""
TRUE = ("1", "true", "yes", "on")


def hub_cache() -> Path:
    """The hub cache this process reads: ``HF_HUB_CACHE``, ``$HF_HOME/hub`` or the default."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path("~/.cache/huggingface/hub").expanduser()


def offline() -> bool:
    """Whether the hub may not be contacted (``HF_HUB_OFFLINE``)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in TRUE


def hub_repo(model: str) -> str:
    """The hub repository of ``model``'s default pretrained tag, e.g. ``timm/resnet50.a1_in1k``."""
    import timm

    cfg = timm.models.get_pretrained_cfg(model) if timm.is_model(model) else None
    repo = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    if not repo:
        raise UserError(f"pretrained=imagenet: timm has no hub weights for {model!r}; give a "
                        "local weight file (pretrained=/path/to/weights) or pretrained=None")
    return repo


def fetch_command(models: Iterable[str], cache: Path | None = None) -> str:
    """The one command that puts ``models``' weights into ``cache``."""
    where = f" --cache {cache}" if cache is not None else ""
    return f"python -m fer_core.weights fetch {' '.join(sorted(set(models)))}{where}"


def cached_file(model: str, cache: Path | None = None) -> Path | None:
    """``model``'s ImageNet weight file in the hub cache, or None (nothing is downloaded)."""
    from huggingface_hub import try_to_load_from_cache

    repo = hub_repo(model)
    for name in FILENAMES:
        found = try_to_load_from_cache(repo, name, cache_dir=str(cache or hub_cache()))
        if isinstance(found, str):  # else None or the "known absent" marker
            return Path(found)
    return None


def require(models: Iterable[str], cache: Path | None = None) -> None:
    """Fail in one line, before any trial, when an offline machine lacks some weights."""
    models = sorted(set(models))
    if not models or not offline():
        return
    cache = cache or hub_cache()
    missing = [m for m in models if cached_file(m, cache) is None]
    if missing:
        raise UserError(f"ImageNet weights of {', '.join(missing)} are not in the hub cache "
                        f"{cache} and HF_HUB_OFFLINE is set: run `{fetch_command(missing, cache)}`"
                        " where the internet is reachable, into the folder the workers share "
                        "(HF_HUB_CACHE)")


def imagenet_file(model: str) -> Path:
    """``model``'s weight file: from the cache, else downloaded (refused when offline)."""
    found = cached_file(model)
    if found is not None:
        return found
    require([model])  # offline: the one-line error naming the fetch command
    return download(model, hub_cache())


def download(model: str, cache: Path) -> Path:
    """Download ``model``'s ImageNet weights into ``cache`` (safetensors when the repo has it)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import EntryNotFoundError

    repo = hub_repo(model)
    for name in FILENAMES:
        try:
            return Path(hf_hub_download(repo, name, cache_dir=str(cache)))
        except EntryNotFoundError:
            continue
    raise UserError(f"hub repository {repo} has none of {', '.join(FILENAMES)}")


def require_for(configs: Iterable[dict]) -> None:
    """``require`` for the models of flat configs that ask for ``pretrained=imagenet``."""
    require({c["backbone"] for c in configs if c.get("pretrained") == IMAGENET})
