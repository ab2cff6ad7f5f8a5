"""The schedule: a batch of BATCH_SIZE records every GENERATE_EVERY seconds, the recovery of
batches whose chain was lost (app.tasks.pipeline.recover) every RECOVER_EVERY seconds, and the
sweep of what killed steps left on disk every SWEEP_EVERY seconds."""

from app import settings

_settings = settings.load()
RECOVER_EVERY = 10
SWEEP_EVERY = 600

beat_schedule = {
    "generate-batch": {
        "task": "pipeline.generate",
        "schedule": float(_settings.generate_every),
        "kwargs": {"batch_size": _settings.batch_size},
        # With no worker to take them, batches would pile up in the queue and flood training
        # when one comes back; a batch not started within a few periods is dropped instead.
        "options": {"expires": max(3 * _settings.generate_every, 30)},
    },
    "recover-stalled-batches": {
        "task": "pipeline.recover",
        "schedule": float(RECOVER_EVERY),
        "options": {"expires": RECOVER_EVERY},
    },
    "sweep-debris": {
        "task": "pipeline.sweep",
        "schedule": float(SWEEP_EVERY),
        "options": {"expires": SWEEP_EVERY},
    },
}
