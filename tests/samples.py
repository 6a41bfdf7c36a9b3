"""The sample photos shared with the benchmarks (/work/shared/testdata/u2net_samples)."""

from __future__ import annotations

from clearbg_app.settings import PROJECT_ROOT

SAMPLES = PROJECT_ROOT.parent / "shared" / "testdata" / "u2net_samples"


def sample_bytes(name: str) -> bytes:
    return (SAMPLES / "images" / name).read_bytes()
