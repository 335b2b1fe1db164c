"""Probes: discover an environment's structure from controlled rollouts, one package per
environment family (atari/). A family's probe module provides

    probe_game(spec, out_dir, meter, obs_mode=..., seed=...) -> report   (writes probe.json, probe.md)
    ProbeReport                                                           (the report's pydantic model)

and is registered in PROBES (one line). Every env step a probe takes goes on the meter it
is given (runtime.steps hands it one and writes the ledger row).
"""

from __future__ import annotations

import importlib
from types import ModuleType

PROBES = {
    "atari": "probe.atari",
}


def probe_for(family: str) -> ModuleType:
    """The probe module of an environment family."""
    try:
        return importlib.import_module(PROBES[family])
    except KeyError:
        raise KeyError(f"no probe for the {family!r} family; known: {', '.join(PROBES)}") from None
