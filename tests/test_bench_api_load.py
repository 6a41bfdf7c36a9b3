"""The load benchmark's pure helpers (bench/api_load.py): percentiles, RSS slope, the targets."""

from __future__ import annotations

import importlib.util
import math
import os
import sys

import pytest

from clearbg_app.settings import PROJECT_ROOT


def _load():
    sys.path.insert(0, str(PROJECT_ROOT / "bench"))  # api_load imports bench/inference.py's helpers
    spec = importlib.util.spec_from_file_location("api_load", PROJECT_ROOT / "bench" / "api_load.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["api_load"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


api_load = _load()
Answer, StepResult, Soak = api_load.Answer, api_load.StepResult, api_load.Soak


def step(server: str, clients: int, ok: int, seconds: float = 1.0, elapsed: float = 10.0, **codes) -> StepResult:
    """`ok` answers of 200 taking `seconds` each, plus `codes` such as s503=4 (0.01 s each) or lost=2."""
    answers = [Answer("full", seconds, 200) for _ in range(ok)]
    for code, count in codes.items():
        if code == "lost":
            answers += [Answer("full", 30.0, None, "ReadTimeout") for _ in range(count)]
        else:
            answers += [Answer("preview", 0.01, int(code[1:])) for _ in range(count)]
    return StepResult(server, clients, elapsed, answers)


def soak(start: float, per_minute: float, seconds: float = 300) -> Soak:
    samples = [(t, start + per_minute * t / 60) for t in range(0, int(seconds) + 1, 5)]
    return Soak("ClearBG", seconds, samples, step("ClearBG", 16, 10))


def test_percentiles_interpolate_between_ranks():
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert api_load.percentile(values, 50) == 3.0
    assert api_load.percentile(values, 0) == 1.0
    assert api_load.percentile(values, 100) == 5.0
    assert api_load.percentile(values, 95) == pytest.approx(4.8)
    assert api_load.percentile([7.0], 99) == 7.0
    assert math.isnan(api_load.percentile([], 50))


def test_rss_slope_is_megabytes_per_minute():
    assert api_load.rss_slope_mb_per_min([(0, 500), (60, 510), (120, 520)]) == pytest.approx(10.0)
    assert api_load.rss_slope_mb_per_min([(0, 500), (30, 490), (60, 500), (90, 490)]) == pytest.approx(-4.0)
    assert api_load.rss_slope_mb_per_min([(0, 500)]) == 0.0
    assert api_load.rss_slope_mb_per_min([(5, 500), (5, 600)]) == 0.0


def test_soak_slope_leaves_out_the_warm_up():
    warm = Soak("ClearBG", 300, [(0, 400), (30, 600)] + [(t, 600) for t in range(60, 301, 10)], step("ClearBG", 16, 1))
    assert warm.start_mb == 400 and warm.peak_mb == 600 and warm.end_mb == 600
    assert warm.slope == pytest.approx(0.0)
    assert warm.growth_mb == 0
    assert soak(500, 12).slope == pytest.approx(12.0)


def test_step_figures_count_every_request():
    r = step("ClearBG", 16, ok=20, elapsed=10, s503=30, s500=1, lost=2)
    assert (r.sent, r.answered, r.lost) == (53, 51, 2)
    assert r.throughput == pytest.approx(2.0)
    assert r.unexpected_5xx == 1
    assert r.statuses == {"200": 20, "503": 30, "500": 1, "ReadTimeout": 2}
    assert r.latency(50, only_ok=True) == 1.0
    assert r.latency(50) == 0.01  # lost requests have no latency; quick 503s count


def test_targets_pass_when_clearbg_is_ahead():
    ours = [step("ClearBG", 1, 10), step("ClearBG", 16, 20, seconds=2, s503=40)]
    theirs = [step("rembg", 1, 9), step("rembg", 16, 15, seconds=12)]
    checks = api_load.check_targets(ours, theirs, soak(800, 0.5))
    assert [passed for _, passed, _ in checks] == [True, True, True, True, True]


@pytest.mark.parametrize(
    "ours, theirs, the_soak, failed",
    [
        ([step("ClearBG", 4, 10, s500=1)], [step("rembg", 4, 9)], None, "no 5xx other than deliberate 503s"),
        ([step("ClearBG", 4, 10, lost=1)], [step("rembg", 4, 9)], None, "every request answered"),
        ([step("ClearBG", 4, 10)], [step("rembg", 4, 11)], None, "throughput >= rembg at every N"),
        ([step("ClearBG", 64, 10, seconds=9)], [step("rembg", 64, 9, seconds=8)], None, "p95 lower than rembg at N >= 16"),
        ([step("ClearBG", 4, 10)], [], soak(800, 9), "RSS flat at N=16"),
    ],
)
def test_each_target_can_fail(ours, theirs, the_soak, failed):
    results = {target: passed for target, passed, _ in api_load.check_targets(ours, theirs, the_soak)}
    assert results[failed] is False
    assert [t for t, passed in results.items() if passed is False] == [failed]


def flat_target(the_soak: Soak) -> bool | None:
    return {t: passed for t, passed, _ in api_load.check_targets([step("ClearBG", 16, 10)], [], the_soak)}["RSS flat at N=16"]


def test_rss_is_flat_while_its_baseline_grows_under_three_percent_of_the_start():
    assert soak(800, 6).growth_mb == pytest.approx(18.25)  # medians at 87.5 s and 270 s
    assert flat_target(soak(800, 6)) is True
    assert flat_target(soak(800, 9)) is False  # +27 MB, over 24


def test_a_spike_of_images_in_flight_at_the_end_is_not_growth():
    samples = [(t, 800 + (20 if t % 10 else -20)) for t in range(0, 296, 5)] + [(300, 1000)]
    spiky = Soak("ClearBG", 300, samples, step("ClearBG", 16, 1))
    assert spiky.slope > 5  # least squares follows the last sample: +30 MB over the soak
    assert abs(spiky.growth_mb) <= 20
    assert flat_target(spiky) is True


def test_unmeasured_targets_are_reported_as_such():
    results = {t: passed for t, passed, _ in api_load.check_targets([step("ClearBG", 4, 10)], [], None)}
    assert results["RSS flat at N=16"] is None
    assert results["throughput >= rembg at every N"] is None


def test_process_tree_figures_include_this_process():
    assert os.getpid() in api_load.tree_pids(os.getpid())
    assert api_load.tree_rss_mb(os.getpid()) > 10
    assert api_load.tree_cpu_seconds(os.getpid()) > 0


def test_arguments():
    args = api_load.parse_args(["--clients", "1, 8", "--sizes", "full", "--set", "inference_workers=1"])
    assert args.clients == [1, 8] and args.sizes == ["full"] and args.set == [("inference_workers", "1")]
    with pytest.raises(SystemExit):
        api_load.parse_args(["--set", "inference_workers"])


def test_the_benchmark_server_passes_the_production_checks(tmp_path, monkeypatch):
    """The settings the benchmark starts ClearBG with: production refuses to start on any problem, so a
    newly required setting must reach the benchmark too (it broke the run once, unnoticed)."""
    from clearbg_app.settings import Settings

    model = PROJECT_ROOT.parent / "shared" / "models" / "u2net.onnx"
    env = api_load.clearbg_env(tmp_path, f"sqlite:///{tmp_path / 'bench.db'}", model, api_load.parse_args([]))
    for name, value in env.items():
        if name.startswith("CLEARBG_"):
            monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.is_production
    assert settings.problems() == []
