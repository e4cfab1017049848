"""The worker pool (``ecgentry.parallel.run_tasks``): a worker killed mid-task costs only that task, which runs
once more in a fresh worker and is reported as WorkerCrashed when it kills that one too."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from ecgentry.parallel import WorkerCrashed, WorkerInitFailed, run_tasks

_STATE: dict[str, str] = {}


def _init(marker_dir: str) -> None:
    _STATE["dir"] = marker_dir


def _fail_init(marker_dir: str) -> None:
    raise FileNotFoundError("no model here")


def _task(task: tuple[str, str]) -> str:
    """``("ok", x)`` -> x; ``("die", x)`` kills its worker every time; ``("die-once", x)`` kills the first worker
    that runs it (a marker file remembers), then returns x."""
    kind, value = task
    if kind == "die" or (kind == "die-once" and not (Path(_STATE["dir"]) / value).exists()):
        if kind == "die-once":
            (Path(_STATE["dir"]) / value).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return f"{value} from {os.getpid()}"


def test_a_killed_worker_costs_only_its_task(tmp_path):
    tasks = [("ok", "a"), ("die-once", "b"), ("ok", "c"), ("die", "d"), ("ok", "e"), ("ok", "f")]
    results = dict(run_tasks(_task, tasks, 2, _init, (str(tmp_path),)))
    assert sorted(results) == list(range(len(tasks)))
    for i in (0, 2, 4, 5):
        assert results[i].startswith(tasks[i][1] + " from ")
    first_pid = (tmp_path / "b").read_text()
    assert results[1].startswith("b from ") and not results[1].endswith(" " + first_pid)  # a fresh worker
    assert isinstance(results[3], WorkerCrashed) and "2 tries" in str(results[3])


def test_worker_initialisation_failure_is_raised(tmp_path):
    with pytest.raises(WorkerInitFailed, match="no model here"):
        list(run_tasks(_task, [("ok", "a"), ("ok", "b")], 2, _fail_init, (str(tmp_path),)))


def test_run_writes_a_crashed_record_as_nan_with_fallback_labels(tmp_path, monkeypatch):
    """``python -m ecgentry run``: a record whose worker died on every try is written, NaN of the header's shape
    and the fallback labels; the other records are written as usual."""
    import numpy as np

    import ecgentry.parallel as parallel
    import helper_code as hc
    from ecgentry.__main__ import main

    data = tmp_path / "data"
    data.mkdir()
    leads = ["I", "II", "III"]
    for name in ("a", "b"):
        lines = [f"{name} 3 100 250"] + [f"{name}.dat 16 1000/mV 16 0 0 0 0 {lead}" for lead in leads]
        (data / f"{name}.hea").write_text("\n".join(lines + ["# Image: nothing.png"]) + "\n")
    model = tmp_path / "model"
    model.mkdir()
    (model / "entry.json").write_text('{"fallback_labels": ["NORM"], "classes": ["NORM", "CD"]}')

    def fake_run_tasks(func, tasks, workers, initializer, initargs=(), progress=None, retries=1):
        yield 0, parallel.WorkerCrashed("worker process died (exit code -9) on each of 2 tries")
        yield 1, ("b", np.ones((250, 3)), ["CD"], None)

    monkeypatch.setattr(parallel, "run_tasks", fake_run_tasks)
    out = tmp_path / "out"
    assert main(["run", "-d", str(data), "-m", str(model), "-o", str(out), "--workers", "2"]) == 0
    signal, _ = hc.load_signals(str(out / "a"))
    assert signal.shape == (250, 3) and np.isnan(signal).all()
    assert hc.load_labels(str(out / "a")) == ["NORM"]
    signal, _ = hc.load_signals(str(out / "b"))
    assert np.allclose(signal, 1.0) and hc.load_labels(str(out / "b")) == ["CD"]
