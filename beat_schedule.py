"""The schedule: a batch of BATCH_SIZE records every GENERATE_EVERY seconds (the built-in dataset
only: another declaration's data comes from outside), a look in the inbox as often, the
recovery of batches whose chain was lost (app.tasks.pipeline.recover) every RECOVER_EVERY
seconds, and the sweep of what killed steps left on disk every SWEEP_EVERY seconds."""

from app import settings

_settings = settings.load()
RECOVER_EVERY = 10
SWEEP_EVERY = 600
# With no worker to take them, periodic tasks would pile up in the queue and flood the
# workers when one comes back; one not started within a few periods is dropped instead.
_EXPIRES = max(3 * _settings.generate_every, 30)

beat_schedule = {
    "look-in-inbox": {
        "task": "pipeline.inbox",
        "schedule": float(_settings.generate_every),
        "options": {"expires": _EXPIRES},
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
if _settings.dataset().generated:
    beat_schedule["generate-batch"] = {
        "task": "pipeline.generate",
        "schedule": float(_settings.generate_every),
        "kwargs": {"batch_size": _settings.batch_size},
        "options": {"expires": _EXPIRES},
    }
