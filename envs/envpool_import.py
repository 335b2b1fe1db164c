"""`import envpool`, without the registrations of env families this workbench never makes.

EnvPool's package init registers every family it ships (envpool/entry.py). Two of them cost
most of that import: jumanji's imports matplotlib.pyplot and its renderers, MuJoCo
playground's its own stack; together about 0.8 s of the 1.3 s `import envpool` takes here.
Every sandboxed evaluation is a fresh worker process that imports EnvPool, and a run makes
dozens (the pattern baseline alone about thirty short looks), so a run paid that again and
again. Their registration modules are replaced by empty ones before the import; the
families we make (Atari, MuJoCo gym) register as before.
"""

from __future__ import annotations

import sys
import types

UNUSED_REGISTRATIONS = ("envpool.jumanji", "envpool.jumanji.registration",
                        "envpool.mujoco.playground", "envpool.mujoco.playground.registration")  # fmt: skip


def import_envpool():
    """The envpool module, its unused families' registrations skipped (once per process)."""
    if "envpool" not in sys.modules:
        for name in UNUSED_REGISTRATIONS:
            sys.modules.setdefault(name, types.ModuleType(name))
    import envpool

    return envpool
