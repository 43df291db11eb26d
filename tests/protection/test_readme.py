"""The README's "Data protection" walk-through runs as written, in order, as a new user would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pynomaly_security.crypto import generate_master_key

README = Path(__file__).resolve().parents[2] / "README.md"


def _blocks() -> list[tuple[str, str]]:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Data protection\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else len(text)]
    return re.findall(r"```(python|bash)\n(.*?)```", section, flags=re.DOTALL)


def test_readme_data_protection_walkthrough(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every python and bash snippet of the section runs and prints what the README says."""
    blocks = _blocks()
    assert [lang for lang, _ in blocks] == ["bash", *["python"] * 2, "bash", *["python"] * 4]
    for name in list(os.environ):
        if name.startswith("PYNOMALY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PYNOMALY_MASTER_KEY", generate_master_key())
    monkeypatch.chdir(tmp_path)
    # The README's commands name the repository's venv (.venv/bin/python), as a user
    # types them at the repository's root: here, the venv running the tests.
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    namespace: dict[str, object] = {"__name__": "readme"}
    outputs: list[str] = []
    for lang, code in blocks:
        if lang == "python":
            exec(compile(code, str(README), "exec"), namespace)
            outputs.append(capsys.readouterr().out)
        else:
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", code],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            outputs.append(done.stdout)
    out = "\n".join(outputs)
    assert "pn1.f.1." in out
    assert "123-45-6789\n234-56-7890" in out
    assert '"rotated": 1' in out and '"scanned": 2' in out and '"target": "token_vault"' in out
    assert "card credit_card PCI 0 19" in out
    assert not any(line.startswith("note ") for line in out.splitlines())  # Luhn-invalid card
    assert "'card': '****1111'" in out and "'password': '[REDACTED]'" in out
    assert "dob date_of_birth PII 0 10" in out and "'dob': '[REDACTED]'" in out
    assert '"card": "****1111"' in out and '"email": "a***@example.com"' in out
    assert "4111 1111 1111 1111\nTrue" in out
    assert "privacy budget of dataset 'customers' exhausted" in out
