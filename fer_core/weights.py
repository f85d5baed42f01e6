"""``python -m fer_core.weights fetch MODEL ... [--cache DIR]``: ImageNet weights into a hub cache.

Run once where the internet is reachable; point the workers at the same folder
(``HF_HUB_CACHE=DIR``, or ``HF_HOME`` with DIR = ``$HF_HOME/hub``) and set ``HF_HUB_OFFLINE=1``
there. ``fer_core.models.hub`` says what is read and from where.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from fer_core.cli import cli_main, exit_with


@cli_main()
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fer_core.weights",
                                description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch", help="download timm models' ImageNet weights")
    fetch.add_argument("models", nargs="+", help="timm model names, e.g. resnet50")
    fetch.add_argument("--cache", type=Path, help="hub cache folder (default: HF_HUB_CACHE, "
                                                  "$HF_HOME/hub or ~/.cache/huggingface/hub)")
    args = p.parse_args(argv)
    from fer_core.models import hub

    cache = args.cache.resolve() if args.cache else hub.hub_cache()
    for model in args.models:
        found = hub.cached_file(model, cache)
        path = found or hub.download(model, cache)
        print(f"{model}: {path}{' (already cached)' if found else ''}", flush=True)
    print(f"workers: export HF_HUB_CACHE={cache} HF_HUB_OFFLINE=1")
    return 0


if __name__ == "__main__":
    exit_with(main())
