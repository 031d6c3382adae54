"""Experiments and figures end to end at small size, and bad config values."""

import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args):
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_figures_entry_point_rejects_an_unknown_name(capsys):
    from paper_figures.__main__ import main as draw

    assert draw(["quartic_trajectories", "hard_instanse"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "NAME must be one of" in err and "hard_instanse" in err


def test_figures_in_several_processes_name_the_figure_that_failed(tmp_path, capsys):
    """`--jobs 2` (make's way: forked workers, from a process without JAX; and spawned ones
    from this process, which has JAX's threads): a figure whose record is missing fails the
    command with one line naming that figure; --jobs is checked like any other value."""
    from paper_figures.__main__ import main as draw

    args = ["hard_instance", "norm_type", "--jobs", "2", "--results", str(tmp_path),
            "--out", str(tmp_path / "figs")]
    r = _run("paper_figures", *args)
    assert draw(args) == 1
    for err in (r.stderr, capsys.readouterr().err):
        lines = err.strip().splitlines()
        assert sorted(line.split(":")[1] for line in lines) == [
            " figure hard_instance", " figure norm_type"], err
        assert all("no run record" in line for line in lines)
    assert r.returncode == 1 and not list(tmp_path.glob("figs/*.png"))
    assert draw(["hard_instance", "--jobs", "0"]) == 2
    assert "--jobs must be a positive integer" in capsys.readouterr().err


def test_a_figure_worker_that_dies_fails_the_command_instead_of_hanging(tmp_path):
    """A drawing process killed mid-figure (out of memory, a signal): one line saying so and
    exit 1, not a figure left pending for ever (as with multiprocessing.Pool)."""
    script = (
        "import os, sys\n"
        "import paper_figures.__main__ as m\n"
        "def draw_one(job):\n"
        "    os._exit(9)\n"
        "draw_one.__module__, draw_one.__qualname__ = m.__name__, 'draw_one'\n"
        "m.draw_one = draw_one\n"
        f"sys.exit(m.main(['hard_instance', 'norm_type', '--jobs', '2', "
        f"'--results', {str(tmp_path)!r}]))\n")
    # a Pool hangs here: the timeout fails the test
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1, r.stderr
    err = r.stderr.strip()
    assert err.count("\n") == 0 and "a process drawing the figures died" in err, err


@pytest.mark.slow  # the CLI-to-figure path runs fast in test_extending's walk-through
def test_quartic_experiment_and_figure(tmp_path):
    out = tmp_path / "quartic_trajectories"
    r = _run("experiments.quartic_trajectories", "steps=400", f"out={out}")
    assert r.returncode == 0, r.stderr
    assert (out / "record.json").exists() and (out / "traces.npz").exists()
    from research import results
    record, traces = results.read_record(out)
    m = record["metrics"]
    # the contrast the figure shows: clipped GD never diverges, h = 0.01 does from x0 = 50
    assert not any(m["clipped_gd"]["diverged"]) and m["gd_common"]["diverged"][-1]
    assert traces["gd_common/f_gap"].shape == (4, 401)
    figs = tmp_path / "figs"
    # through `python -m paper_figures NAME` (make's entry point), in this process
    from paper_figures.__main__ import main as draw

    assert draw(["quartic_trajectories", "--results", str(tmp_path), "--out", str(figs)]) == 0
    png = mpimg.imread(figs / "quartic_trajectories.png")
    assert png.shape[0] > 300 and len(np.unique(png.reshape(-1, png.shape[-1]), axis=0)) > 10
    pdf = (figs / "quartic_trajectories.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and b"/Type /Page" in pdf


@pytest.mark.parametrize(("experiment", "override", "field"), [
    ("descent_audit", "audit=[quartic,quintic]", "audit"),
    ("descent_audit", "audit=[cliff]", "audit"),
    ("descent_audit", "problems.power.n=-1", "problems.power"),
    ("descent_audit", "+problems.quartic.colour=red", "colour"),
    ("quartic_trajectories", "optimizers.gd_common.lr=0", "optimizers.gd_common.lr"),
    ("quartic_trajectories", "problems.quartic.L1=-1", "problems.quartic"),
    ("max_step", "optimizers.network.gamma=-1", "optimizers.network.gamma"),
    ("hard_instance", "problems.hard.delta=0", "problems.hard.delta"),
    ("clipping_seeds", "optimizers.normalized_gd.beta=-1", "optimizers.normalized_gd.beta"),
    ("clipping_mlp", "optimizers.sgd.momentum=1.5", "optimizers.sgd.momentum"),
    ("clipping_rnn", "optimizers.sgd.lr=0", "optimizers.sgd.lr"),
    ("max_step", "cosh_range=[5.0,1.0]", "cosh_range"),
    ("max_step", "network.points=7", "network.points"),
    ("iteration_complexity", "eps=0", "eps"),
    ("iteration_complexity", "quartic_x0=[1.0,-2.0]", "quartic_x0"),
    ("hard_instance", "M=[0.001]", "M"),
    ("hard_instance", "sweep_steps=1", "sweep_steps"),
    ("stochastic", "record_every=7", "record_every"),
    ("clipping_mlp", "+variants.bad={clipsomething: 1.0}", "variants.bad"),
    ("clipping_mlp", "variants.clipnorm.clipnorm=0", "clipnorm"),
    ("clipping_rnn", "recurrent_scale=-1", "recurrent_scale"),
    ("clipping_seeds", "chain.max_norm=0", "chain.max_norm"),
    ("stochastic", "bias.thresholds=[0.1,-1.0]", "bias.thresholds"),
    ("stochastic", "regimes=[cliff]", "regimes"),
    ("smoothness", "regimes=[warp_speed]", "regimes"),
    ("smoothness", "models.rnn.clip=0", "models.rnn.clip"),
    ("smoothness", "log_every=7", "log_every"),
    ("clipping_networks", "models.char_lm.target=0", "models.char_lm.target"),
    ("clipping_networks", "models.rnn.lrs=[0.1,-1.0]", "models.rnn.lrs"),
    ("clipping_networks", "models.rnn.record_every=7", "models.rnn.record_every"),
    ("clipping_networks", "models.resnet_digits.problem=quintic", "models.resnet_digits.problem"),
    ("clipping_networks", "models.rnn.problem.seed=3", "models.rnn.problem.seed"),
    ("clipping_networks", "models.rnn.problem.batch_size=0", "models.rnn.problem.batch_size"),
    ("smoothness", "models.mlp.problem.hidden=-1", "models.mlp"),
    ("clipping_networks", "+models.rnn.colour=red", "models.rnn"),
    ("clipping_networks", "run_models=[transformer]", "run_models"),
    ("clipping_networks", "selection_seeds=[0,0]", "selection_seeds"),
    ("clipping_networks", "evaluation_seeds=[0,1]", "evaluation_seeds"),
])
def test_bad_config_of_each_experiment(tmp_path, cli_in_process, experiment, override, field):
    out = tmp_path / "rec"
    code, _, err = cli_in_process(f"experiments.{experiment}", override, f"out={out}")
    assert code == 2, err
    assert field in err and err.strip().count("\n") == 0
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(("override", "field"), [
    ("steps=0", "steps"),
    ("eps=-1", "eps"),
    ("optimizers.gd_common.lr=0", "optimizers.gd_common.lr"),
    ("x0=[1.0,nan]", "x0"),
    ("x0=[1.0,inf]", "x0"),
    ("x0=[1.0,abc]", "x0"),
    ("x0=[]", "x0"),
])
def test_bad_config_exits_nonzero_and_writes_nothing(tmp_path, cli_in_process, override, field):
    out = tmp_path / "rec"
    code, _, err = cli_in_process("experiments.quartic_trajectories", override, f"out={out}")
    assert code == 2, err
    assert field in err and err.strip().count("\n") == 0  # one sentence
    assert not out.exists() and not any(tmp_path.iterdir())


def test_bad_config_from_a_real_process_is_one_line_and_exit_2(tmp_path):
    """The in-process tests above, once through a real ``python -m``."""
    out = tmp_path / "rec"
    r = _run("experiments.hard_instance", "M=[0.001]", f"out={out}")
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: M") and r.stderr.strip().count("\n") == 0, r.stderr
    assert not any(tmp_path.iterdir())


def test_bigger_machine_presets_are_valid_overrides():
    """Every override the figure index offers for a bigger machine names existing fields
    with values of their types (an unknown key or a typo would fail here, not on the
    reader's machine)."""
    from omegaconf import OmegaConf

    from experiments import registry
    from experiments.common import CONF_DIR, check_types

    presets = [(n, registry.get(n).bigger) for n in registry.names()]
    presets = [(n, b[0]) for n, b in presets if b is not None]
    assert len(presets) >= 4
    for name, overrides in presets:
        defaults = OmegaConf.load(CONF_DIR / f"{name}.yaml")
        cfg = OmegaConf.load(CONF_DIR / f"{name}.yaml")
        OmegaConf.set_struct(cfg, True)
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(overrides.split()))
        check_types(cfg, OmegaConf.to_container(defaults))
        assert cfg != defaults, name
