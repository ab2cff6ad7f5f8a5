"""A rehearsal of the pipeline on a throwaway home: the first batch in a process costs what
pandas, pandera and pyarrow set up on first use, so the worker pays it before serving."""

from __future__ import annotations

import tempfile

from loguru import logger

from app.data.batches import generate_batch, normalize_batch
from app.lifecycle.home import Home
from app.lifecycle.learning import Learner

ROWS = 200


def rehearse() -> bool:
    """Generate, normalize and train two small batches in a temporary home, silently; and
    import what the first challenger's publication would (skops: half a second idle, seconds
    on a busy machine, in each pool process). The challenger is not fitted here: its OpenMP
    threads must not be started before the pool forks. Whether it went through: a rehearsal
    that fails is a warning, never a worker that cannot start."""
    import skops.io  # noqa: F401 - imported for the pool processes to inherit

    logger.disable("app")
    try:
        with tempfile.TemporaryDirectory(prefix="pipeline-warmup-") as folder:
            home = Home(folder)
            learner = Learner(home)
            for number in range(2):  # the second step scores a parent, as every later one does
                batch_id = f"warmup-{number}"
                generate_batch(home.lake, home.ledger, batch_id, ROWS)
                normalize_batch(home.lake, home.ledger, batch_id, home.dataset)
                learner.train([batch_id])
    except Exception as error:  # noqa: BLE001 - a speed-up must never keep the worker from starting
        failure = f"{type(error).__name__}: {error}"
    else:
        return True
    finally:
        logger.enable("app")
    logger.warning("the worker starts cold: its rehearsal failed ({})", failure)
    return False
