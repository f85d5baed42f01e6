"""PRM (Zhou et al., 2018): class response maps scored by peak stimulation.

Its network: ``fer_core/cams/prm.py``."""

from __future__ import annotations

from fer_core.methods import declare_method

METHOD = declare_method("prm", label="PRM", rank=70,
                        impl="fer_core.cams.prm:PRM")
