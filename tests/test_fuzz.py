"""Coverage-guided fuzzing in the suite: `tests/fuzz_targets.py` under atheris, seeded with the
crafted files, bounded by a run count (about a minute in all). A crash fails the test with the
input that caused it (libFuzzer writes it next to the test's temporary files)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from clearbg_app.settings import PROJECT_ROOT
from tests.crafted_images import fuzzer_finds, supported_variants, unsupported_files


@pytest.mark.parametrize(
    ("target", "runs", "seeds"),
    [("decode", 40_000, lambda: supported_variants() + unsupported_files() + fuzzer_finds()), ("params", 100_000, list)],
)
def test_fuzzing_finds_nothing_but_clean_refusals(tmp_path, target, runs, seeds):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for case in seeds():
        (corpus / case.name).write_bytes(case.data)
    # Memory is bounded per allocation (-malloc_limit_mb), not by libFuzzer's peak-RSS check: Linux carries
    # a process's peak RSS across exec, so a child of a big pytest process (GBs after the whole suite)
    # "starts" at its parent's peak and the RSS check fails at once (seen in a full CI run).
    command = [
        sys.executable, "-m", "tests.fuzz_targets", target, f"-runs={runs}", "-seed=20261201", "-max_len=20000",
        "-timeout=30", "-rss_limit_mb=0", "-malloc_limit_mb=2048", f"-artifact_prefix={tmp_path}/", str(corpus),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=400)
    crashes = sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(("crash-", "timeout-", "oom-")))
    assert result.returncode == 0 and not crashes, (crashes, result.stderr[-4000:])
    assert f"Done {runs} runs" in result.stderr
