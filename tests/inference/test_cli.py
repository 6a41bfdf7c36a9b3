"""The command line: batch removal over files and folders, and the models commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image

from clearbg_app.inference.__main__ import main
from tests.inference.conftest import MODEL_PATH, encode, subject_image


def test_batch_keeps_names_and_reports_bad_files_at_the_end(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "first.jpg").write_bytes(encode(subject_image(), "JPEG"))
    (folder / "broken.jpg").write_text("not an image")
    (folder / "notes.txt").write_text("ignored: not an image suffix")
    single = tmp_path / "second.png"
    single.write_bytes(encode(subject_image((120, 90))))
    out = tmp_path / "out"
    missing = tmp_path / "missing.jpg"
    code = main(["-q", "remove", str(folder), str(missing), str(single), "-o", str(out), "--format", "webp"])
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == ["first.webp", "second.webp"]
    assert Image.open(out / "second.webp").size == (120, 90)
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2
    assert "broken.jpg" in errors[0] and "not an image" in errors[0]
    assert "missing.jpg" in errors[1] and "No such file" in errors[1]


def test_all_good_exits_zero_with_mask_output(tmp_path):
    source = tmp_path / "a.png"
    source.write_bytes(encode(subject_image()))
    assert main(["-q", "remove", str(source), "-o", str(tmp_path / "out"), "--only-mask", "--crop"]) == 0
    assert Image.open(tmp_path / "out" / "a.png").mode == "L"


def test_models_list_and_download_failure_run_as_a_module(tmp_path):
    root = str(Path(__file__).resolve().parents[2])
    env_root = {"CLEARBG_DATA_DIR": str(tmp_path), "CLEARBG_MODEL_PATH": str(MODEL_PATH), "PYTHONPATH": root}
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "clearbg_app.inference", *args], capture_output=True, text=True, env=env_root, timeout=60
    )
    listing = run("models", "list")
    assert listing.returncode == 0 and "u2netp" in listing.stdout and "present" in listing.stdout
    rows = {line.split()[0]: line for line in listing.stdout.splitlines()}
    assert "default" in rows["u2net"] and "fast mode" in rows["u2netp"]
    assert "birefnet-portrait" in listing.stdout
    register = run("models", "register", "mine", str(MODEL_PATH))
    assert register.returncode == 0 and "mine" in run("models", "list").stdout
    unknown = run("models", "download", "nope")
    assert unknown.returncode == 1 and unknown.stderr.count("\n") == 1 and "known models" in unknown.stderr


def test_model_flag_picks_a_model_and_refuses_unknown_names(tmp_path, capsys):
    source = tmp_path / "a.png"
    source.write_bytes(encode(subject_image()))
    assert main(["-q", "remove", str(source), "-o", str(tmp_path / "small"), "--model", "u2netp", "--only-mask"]) == 0
    assert main(["-q", "remove", str(source), "-o", str(tmp_path / "large"), "--only-mask"]) == 0
    small, large = (Image.open(tmp_path / folder / "a.png") for folder in ("small", "large"))
    assert small.size == large.size == (240, 180) and small.tobytes() != large.tobytes()  # two models
    capsys.readouterr()
    assert main(["-q", "remove", str(source), "-o", str(tmp_path / "none"), "--model", "nope"]) == 1
    assert capsys.readouterr().err == "No model called 'nope' here; available models: u2net, u2netp.\n"
    assert not (tmp_path / "none").exists()


def test_alpha_matting_flag(tmp_path):
    source = tmp_path / "a.png"
    source.write_bytes(encode(subject_image()))
    assert main(["-q", "remove", str(source), "-o", str(tmp_path / "out"), "--alpha-matting"]) == 0
    assert Image.open(tmp_path / "out" / "a.png").mode == "RGBA"
