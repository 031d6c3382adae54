"""research.runtime: importing the library changes no process setting; configure does, once,
for this process and its children; code that needs float64 says so in one sentence."""

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from research import runtime

IMPORT_EVERYTHING = textwrap.dedent("""
    import json, os, sys
    import jax
    before = (dict(os.environ), bool(jax.config.jax_enable_x64), jax.config.jax_num_cpu_devices)
    import research
    from research import (audit, clipping, complexity, engine, optimizers, problems, results,
                          smoothness, stats, sweep, theory, training)
    after = (dict(os.environ), bool(jax.config.jax_enable_x64), jax.config.jax_num_cpu_devices)
    keys = set(before[0]) | set(after[0])
    changed = sorted(k for k in keys if before[0].get(k) != after[0].get(k))
    print(json.dumps({"env": changed, "x64": [before[1], after[1]],
                      "devices": [before[2], after[2]]}))
""")


def _clean_env():
    import os

    return {k: v for k, v in os.environ.items()
            if k not in ("JAX_ENABLE_X64", "JAX_NUM_CPU_DEVICES", "XLA_FLAGS")}


def test_importing_research_changes_no_global_setting():
    import json

    out = subprocess.run([sys.executable, "-c", IMPORT_EVERYTHING], env=_clean_env(),
                         capture_output=True, text=True, check=True)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["env"] == []
    assert seen["x64"] == [False, False]
    assert seen["devices"][0] == seen["devices"][1]


def test_configure_sets_float64_and_devices_for_children():
    code = textwrap.dedent("""
        from research import runtime
        runtime.configure(cpu_devices=3)
        import os, subprocess, sys
        import jax, jax.numpy as jnp
        child = subprocess.run([sys.executable, "-c",
            "import jax, jax.numpy as jnp; print(jnp.ones(1).dtype, jax.device_count())"],
            capture_output=True, text=True, check=True).stdout.split()
        print(jnp.ones(1).dtype, jax.device_count(), *child)
    """)
    out = subprocess.run([sys.executable, "-c", code], env=_clean_env(), capture_output=True,
                         text=True, check=True)
    assert out.stdout.split() == ["float64", "3", "float64", "3"]


def test_a_device_count_too_late_is_one_sentence():
    code = textwrap.dedent("""
        import jax, jax.numpy as jnp
        jnp.ones(1).block_until_ready()
        from research import runtime
        try:
            runtime.configure(cpu_devices=jax.device_count() + 1)
        except RuntimeError as e:
            print("ERR", e)
    """)
    out = subprocess.run([sys.executable, "-c", code], env=_clean_env(), capture_output=True,
                         text=True, check=True)
    line = out.stdout.strip()
    assert line.startswith("ERR cpu_devices=") and "configure" in line
    assert "\n" not in line


def test_float64_checks_name_the_function_and_the_fix():
    code = textwrap.dedent("""
        import numpy as np
        from research import audit
        try:
            audit.descent_audit(np.ones((1, 3)), np.ones((1, 3)), np.ones((1, 3)), 1.0, 1.0)
        except RuntimeError as e:
            print("ERR", e)
    """)
    out = subprocess.run([sys.executable, "-c", code], env=_clean_env(), capture_output=True,
                         text=True, check=True)
    assert out.stdout.startswith("ERR descent_audit needs float64")
    assert "research.runtime.configure(x64=True)" in out.stdout


def test_configure_refuses_a_nonpositive_device_count():
    with pytest.raises(ValueError, match="cpu_devices must be a positive integer"):
        runtime.configure(cpu_devices=0)


@pytest.mark.slow  # a JAX process of its own, for a setting only a cluster task meets
@pytest.mark.skipif(shutil.which("taskset") is None or not hasattr(os, "sched_getaffinity"),
                    reason="needs taskset and CPU affinity")
def test_default_devices_are_the_cores_this_process_may_use_not_the_machines():
    # a cluster task pinned to one core must not split its batches over the node's cores
    code = ("from research import runtime; runtime.configure(); import jax; "
            "print(jax.device_count())")
    out = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code], env=_clean_env(),
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
