"""Write the latest benchmark table into docs/performance.md, between the markers
``<!-- bench:start -->`` and ``<!-- bench:end -->``, from benchmarks/results.json.

Run by `make bench` after the benchmarks, so the page always shows what they measured, and
on which machine (its platform and CPU count, from results.json), since absolute times mean
little without it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.common import RESULTS

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "performance.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def table(r: dict) -> str:
    rows = []
    if "engine" in r:
        e = r["engine"]
        rows += [
            ("engine", e["workload"], ""),
            ("", "`engine.run`, thinned traces", f"{e['engine_ns_per_traj_step_thinned']} ns "
             f"per trajectory-step (target ≤ 3: "
             f"{_met(e['engine_ns_per_traj_step_thinned'] <= 3)})"),
            ("", "`engine.run`, full traces", f"{e['engine_ns_per_traj_step_full_traces']} ns"),
            ("", "Python loop over a jitted optax step",
             f"{e['python_loop_ns_per_step']:,} ns per step"),
            ("", "ratio loop / engine (thinned)", f"{e['ratio_loop_over_engine_thinned']:,}× "
             f"(target ≥ 1,000×: {_met(e['ratio_loop_over_engine_thinned'] >= 1000)})"),
        ]
        if "ratio_safe_over_plain_norm" in e:
            rows += [
                ("", "overflow-safe norm / plain sqrt(sum g²), `engine.run` thinned",
                 f"{e['ratio_safe_over_plain_norm']}× ({e['norm_plain_ns_per_traj_step_thinned']}"
                 f" → {e['norm_safe_ns_per_traj_step_thinned']} ns; target ≤ 1.10: "
                 f"{_met(e['ratio_safe_over_plain_norm'] <= 1.10)})"),
                ("", e["norm_workload_16d"],
                 f"{e['ratio_safe_over_plain_norm_16d']}× "
                 f"({e['norm_plain_ns_per_traj_step_16d']} → "
                 f"{e['norm_safe_ns_per_traj_step_16d']} ns)"),
            ]
    if "sweeps" in r and "t_command_as_typed_s" in r["sweeps"]:
        s = r["sweeps"]
        rows += [
            ("sweeps (batching sweeper)", s["workload"], s.get("note", "")),
            ("", "(t) the multirun command as typed (one batched job)",
             f"{s['t_command_as_typed_s']} s (target ≤ 10 s: "
             f"{_met(s['t_command_as_typed_s'] <= 10)})"),
            ("", "(r) the same, re-run on the finished sweep",
             f"{s['r_finished_sweep_rerun_s']} s (target ≤ 2 s: "
             f"{_met(s['r_finished_sweep_rerun_s'] <= 2)})"),
            ("", "(j) max_batch=250, joblib (2 workers)", f"{s['j_max_batch_250_joblib_s']} s"),
            ("", "(a) hydra/sweeper=basic: a job per point, one compile",
             f"{s['a_basic_sweeper_jobs_s']} s ({s['per_job_ms_a']} ms per job)"),
            ("", "(c) a job per point, a compile per job (naive)",
             f"{s['c_naive_jobs_compile_each_s']} s ({s['per_job_ms_c']} ms per job)"),
            ("", "ratio (c) / (t)", f"{s['ratio_c_over_t']}× (target ≥ 20×: "
             f"{_met(s['ratio_c_over_t'] >= 20)})"),
            ("", "cost of one more non-batchable job (problem or optimizer family)",
             f"{s['per_nonbatchable_job_ms']} ms"),
        ]
    if "smoothness" in r:
        m = r["smoothness"]
        for name, v in m["models"].items():
            hess = next(val for key, val in v.items() if key.startswith("hessian_norm"))
            rows.append(("smoothness estimators" if name == next(iter(m["models"])) else "",
                         f"{name}: extra cost of one estimate, in gradients",
                         f"trajectory {v['trajectory_extra_in_gradients']} (target ≤ 1: one "
                         f"gradient evaluation plus two norms); "
                         f"Hessian norm ({m['hvp_iters']} HVPs"
                         + (", skipped by `make figures`" if m.get("hvp_iters_in_config") == 0
                            else "") + f") {hess}; one HVP "
                         f"{v['hvp_in_gradients']}; one gradient {v['grad_ms']} ms"))
        if "experiment_wall_s" in m:
            rows.append(("", "`python -m experiments.smoothness`",
                         f"{m['experiment_wall_s']} s (target ≤ 180 s: "
                         f"{_met(m['experiment_wall_s'] <= 180)})"))
    if "figures" in r:
        f = r["figures"]
        slow = sorted(f["stages_s"].items(), key=lambda kv: -kv[1])[:3]
        rows += [
            ("`make figures`",
             f"all stages from scratch, {f.get('experiments_at_once', 1)} experiments at a time "
             "(after set-up)",
             f"{f['total_s']} s: experiments {f['experiments_s']} s, figures and reports "
             f"{f['figures_and_reports_s']} s (target ≤ 600 s: {_met(f['total_s'] <= 600)})"),
            ("", "slowest stages (each its own wall time)",
             "; ".join(f"{k} {v} s" for k, v in slow)),
        ]
    out = ["| benchmark | measure | latest |", "|---|---|---|"]
    out += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    out += ["", machine_line(r)]
    return "\n".join(out)


def machine_line(r: dict) -> str:
    """The machine (architecture, CPU count, platform) and date of every section, with the
    load average then: absolute times only compare on the same machine at the same load."""
    runs = sorted({(v["machine"], v["measured"]) for v in r.values()})
    loads = {k: v["load_average_1min"] for k, v in r.items() if "load_average_1min" in v}
    text = "Measured on " + "; ".join(f"{m} ({d})" for m, d in runs) + "."
    if loads:
        text += (" 1-minute load average while each section ran: "
                 + ", ".join(f"{k} {v}" for k, v in sorted(loads.items())) + ".")
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--out", type=Path, default=PAGE)
    args = ap.parse_args(argv)
    text = args.out.read_text()
    if START not in text or END not in text:
        print(f"{args.out} has no {START} ... {END} block", file=sys.stderr)
        return 1
    body = table(json.loads(args.results.read_text()))
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    args.out.write_text(head + START + "\n" + body + "\n" + END + tail)
    print(body)
    print(f"[bench] {args.out} table updated from {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
