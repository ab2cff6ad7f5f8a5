"""The generation schedule: a batch of BATCH_SIZE records every GENERATE_EVERY seconds."""

from app import settings

_settings = settings.load()

beat_schedule = {
    "generate-batch": {
        "task": "pipeline.generate",
        "schedule": float(_settings.generate_every),
        "kwargs": {"batch_size": _settings.batch_size},
        # With no worker to take them, batches would pile up in the queue and flood training
        # when one comes back; a batch not started within a few periods is dropped instead.
        "options": {"expires": max(3 * _settings.generate_every, 30)},
    },
}
