"""Mixed-precision selection: use the fast number format the hardware has.

``auto`` picks ``mixed_float16`` on a GPU, ``mixed_bfloat16`` on CPUs with
native bfloat16 instructions (AVX512_BF16 or AMX; about 1.8x faster training of
the tile CNN on such a 2-core machine) and ``float32`` elsewhere. Models whose
registry entry says ``cpu_bfloat16=False`` (depthwise convolutions, which are
slower in bfloat16 on a CPU) get ``float32`` on every CPU. Variables stay
float32 and every model's output layer computes in float32.
"""

from __future__ import annotations

import contextlib

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")


def cpu_has_bfloat16() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str = "auto", cpu_bfloat16: bool = True) -> str:
    """The dtype policy ``precision`` names; ``"auto"`` as the module says (``cpu_bfloat16``: the model trains
    faster in bfloat16 on a CPU that has it)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}.")
    if precision != "auto":
        return precision
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_bfloat16 and cpu_has_bfloat16() else "float32"


@contextlib.contextmanager
def precision_policy(precision: str = "auto", cpu_bfloat16: bool = True):
    """Build models under a dtype policy (:func:`resolve_precision`), restoring the previous global policy
    afterwards."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(resolve_precision(precision, cpu_bfloat16))
    try:
        yield keras.mixed_precision.global_policy().name
    finally:
        keras.mixed_precision.set_global_policy(previous)
