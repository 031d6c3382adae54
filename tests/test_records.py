"""The typed record schemas shared by experiments (writers) and claims (readers)."""

import json

from experiments import claims, records
from research import results


def _audit(**phi):
    summary = {"steps": 3, "violations": 0, "underflow_skipped": 0,
               "slack_quantiles": [1.0, "inf"], **phi}
    return {"problems": {"quartic": {"L0": 4.0, "L1": 2, "methods": {"gd": {"phi": summary}}}}}


def test_check_accepts_a_matching_record_with_non_finite_numbers():
    assert records.check("descent_audit", _audit()) == []
    assert records.check("no_schema_experiment", {"anything": 1}) == []


def test_check_names_each_mismatch():
    bad = _audit(steps=2.5, violations=True)
    del bad["problems"]["quartic"]["L1"]
    bad["problems"]["quartic"]["methods"]["gd"]["phi"]["slack_quantiles"] = [1.0, "many"]
    problems = records.check("descent_audit", bad)
    assert "metrics.problems.quartic.L1: missing" in problems
    assert any(p.startswith("metrics.problems.quartic.methods.gd.phi.steps: expected int")
               for p in problems)
    assert any(".violations: expected int, got True" in p for p in problems)
    assert any("slack_quantiles[1]: expected Num" in p for p in problems)
    assert records.check("descent_audit", None) == ["metrics: expected an object, got NoneType"]


def test_every_schema_names_an_experiment_a_claim_reads():
    read = {n for c in claims.REGISTRY for n in c.needs}
    from experiments import registry

    schemas = {n for n in registry.names() if registry.schema(n) is not None}
    assert schemas and schemas <= read


def test_a_record_off_its_schema_fails_its_claims_naming_the_field(tmp_path):
    metrics = _audit()
    del metrics["problems"]["quartic"]["methods"]["gd"]["phi"]["violations"]
    results.write_record(tmp_path / "descent_audit", config={}, metrics=metrics)
    done, _ = claims.evaluate(tmp_path)
    phi = next(c for c in done if c.id == "phi_inequality")
    assert phi.holds is False and "phi.violations: missing" in phi.measured
    # and the experiment side refuses to write such a record
    import pytest
    from omegaconf import OmegaConf

    from experiments.common import Progress, write
    cfg = OmegaConf.create({"out": str(tmp_path / "again")})
    with pytest.raises(RuntimeError, match="violations: missing"):
        write(cfg, Progress("descent_audit"), metrics)
    assert not (tmp_path / "again").exists()
    assert json.loads((tmp_path / "descent_audit" / "record.json").read_text())


def test_a_claim_reads_a_record_only_as_the_type_its_experiment_declares():
    import pytest

    loaded = {"hard_instance": {"config": {"cap": 10}, "metrics": {"by_M": []}}}
    typed = records.read(loaded, "hard_instance", records.HardInstance)
    assert typed["config"]["cap"] == 10 and typed["metrics"] == {"by_M": []}
    with pytest.raises(TypeError, match="hard_instance's records are HardInstance, not MaxStep"):
        records.read(loaded, "hard_instance", records.MaxStep)



def test_every_claim_module_reads_records_through_their_declared_type():
    # a bare rec["<name>"] would hand the claim an untyped dict the type checker cannot hold
    # against the schema the writer is checked with
    import re
    from pathlib import Path

    bare = [f"{p.name}: {m.group(0)}" for p in Path("experiments/claims").glob("*.py")
            for m in re.finditer(r'\brec\["\w+"\]', p.read_text())]
    assert bare == []
