"""The worker's rehearsal before its pool forks (worker.py's worker_init)."""

import tempfile

from loguru import logger

from app.lifecycle import warmup


def test_the_rehearsal_leaves_nothing_behind_and_keeps_the_logs_on(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert warmup.rehearse(), "the rehearsal went through"
    assert list(tmp_path.iterdir()) == [], "the throwaway home is removed"
    lines = []
    sink = logger.add(lines.append, level="INFO")
    try:
        # loguru enables by the calling module's name: this line is logged as from app.probe.
        exec("logger.info('after')", {"logger": logger, "__name__": "app.probe"})
    finally:
        logger.remove(sink)
    assert any("after" in line for line in lines)


def test_a_failed_rehearsal_is_a_warning_not_a_worker_that_cannot_start(monkeypatch):
    def broken(*_args, **_kwargs):
        raise OSError("no space left on device")

    monkeypatch.setattr(warmup, "generate_batch", broken)
    lines = []
    sink = logger.add(lines.append, level="WARNING")
    try:
        assert not warmup.rehearse()
    finally:
        logger.remove(sink)
    assert any("rehearsal failed (OSError: no space left on device)" in line for line in lines)
