"""``python -m pynomaly_security anomaly train / evaluate`` on a small fixture corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pynomaly_security.__main__ import main

from ._traffic import anomalies, normal

pytest.importorskip("sklearn")


def _corpus(tmp_path: Path) -> Path:
    path = tmp_path / "traffic.jsonl"
    rows = [{**r, "set": "train"} for r in normal(600)]
    rows += [{**r, "set": "test"} for r in normal(200, seed=7)]
    rows += [{**r, "set": "test"} for _ in range(5) for _, r in anomalies()]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_train_then_evaluate_prints_roc_auc_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Train on the normal training lines, evaluate on the test lines: ROC-AUC first,
    then PR-AUC, detection at three false-alarm rates, intervals, baselines, categories."""
    corpus = _corpus(tmp_path)
    assert main(["anomaly", "train", str(corpus), "--output", str(tmp_path / "m")]) == 0
    capsys.readouterr()
    code = main(
        ["anomaly", "evaluate", str(corpus), "--model", str(tmp_path / "m"), "--rounds", "20"]
    )
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    name, value = out[0].split()
    assert name == "ROC-AUC" and float(value) > 0.99
    assert out[1].startswith("PR-AUC ")
    assert [line.split()[0] for line in out[2:5]] == [
        "detection@0.1%FA",
        "detection@0.5%FA",
        "detection@1%FA",
    ]
    text = "\n".join(out)
    assert "baseline: isolation forest alone" in text and "baseline: profile alone" in text
    assert "letters_in_zip" in text  # per category


def test_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A line that is not a labelled request, or a model that is not ours: exit 2."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"method": "GET"}\n')
    assert main(["anomaly", "train", str(bad), "--output", str(tmp_path / "m")]) == 2
    assert "line 1" in capsys.readouterr().err
    assert main(["anomaly", "evaluate", str(bad), "--model", str(tmp_path / "none")]) == 2
    assert "model refused" in capsys.readouterr().err
