"""The prepared GPU check (benchmarks/gpu_check.sh) at its toy size on the CPU, and the
training benchmark's precision choice."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def _train_throughput():
    spec = importlib.util.spec_from_file_location(
        "train_throughput", ROOT / "benchmarks" / "train_throughput.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_check_tiny_writes_sane_figures(tmp_path):
    out = tmp_path / "gpu"
    env = {**os.environ, "PYTHON": sys.executable}
    run = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), str(out), "--tiny"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    summary = json.loads((out / "gpu_check.json").read_text())
    assert {name: s["exit_status"] for name, s in summary["stages"].items()} == {
        "train": 0, "separate": 0, "score": 0}
    train = summary["train"]
    assert train["ours_clips_per_s"] > 0 and train["reference_clips_per_s"] > 0
    assert train["ratio"] == pytest.approx(
        train["ours_clips_per_s"] / train["reference_clips_per_s"])
    assert train["hours_for_200k_steps_x128"] == pytest.approx(
        200000 * 128 / train["ours_clips_per_s"] / 3600)
    assert train["batch_size"] == 2 and train["precision"] in ("fp32", "bf16")
    assert len(train["ours_clips_per_s_rounds"]) == train["rounds"] == 1
    assert summary["separate"]["clip_rtf"] > 0 and summary["separate"]["files"][0]["rtf"] > 0
    assert summary["score"]["pairs"] == 4 and summary["score"]["museval_s"] > 0
    assert summary["gpu_util_percent_mean"] is None  # no nvidia-smi on the CPU


def test_gpu_check_refuses_unknown_option(tmp_path):
    run = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), str(tmp_path),
                          "--huge"], capture_output=True, text=True)
    assert run.returncode == 2 and "--tiny" in run.stderr


def test_train_benchmark_never_assumes_bf16(monkeypatch):
    import torch
    tt = _train_throughput()
    monkeypatch.setattr(tt, "cpu_has_bf16", lambda: False)
    cpu = torch.device("cpu")
    assert tt.choose_precision("auto", cpu) == "fp32"
    with pytest.raises(SystemExit, match="no bf16 support"):
        tt.choose_precision("bf16", cpu)
    monkeypatch.setattr(tt, "cpu_has_bf16", lambda: True)
    assert tt.choose_precision("auto", cpu) == "bf16"
    assert tt.choose_precision("fp32", cpu) == "fp32"


def test_train_benchmark_runs_the_reference_as_shipped_in_a_child(tmp_path):
    out = tmp_path / "tt.json"
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "train_throughput.py"),
                          "--widths", "8,16,32,64,64", "--batch-size", "2", "--n-samples", "8191",
                          "--precision", "fp32", "--threads", "1", "--rounds", "2", "--steps", "1",
                          "--reference-malloc", "default", "--out", str(out)],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["malloc"] == "keep" and figures["reference_malloc"] == "default"
    assert figures["ours_clips_per_s"] > 0 and figures["reference_clips_per_s"] > 0
    assert len(figures["ratio_rounds"]) == 2 and figures["reference_params"] > 0
    # ours keeps its pages; the reference, with glibc's default, faults some in every step
    assert figures["ours_page_faults_per_step"] < figures["reference_page_faults_per_step"]
