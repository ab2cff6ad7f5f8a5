"""Celery settings, read from the environment (see app/settings.py for the variables)."""

from kombu import Queue

from app import settings
from beat_schedule import beat_schedule  # noqa: F401  (Celery reads it from this module)

_settings = settings.load()

broker_url = _settings.redis_url
result_backend = _settings.redis_url

# Payloads are ids and small dicts; JSON keeps pickles (and code execution) off the wire.
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
result_accept_content = ["json"]

# Training is serialised: it has its own queue, so a deployment can give it one dedicated
# worker (-Q train); a plain `celery -A worker worker` consumes both queues.
task_default_queue = "celery"
task_queues = (Queue("celery"), Queue("train"))
task_routes = {"pipeline.train": {"queue": "train"}}

# Ack after the task has run, so a worker killed mid-task has its message delivered again.
# Every task is idempotent (keyed by batch id), so a second delivery does no harm.
task_acks_late = True
task_reject_on_worker_lost = True
worker_cancel_long_running_tasks_on_connection_loss = True
# One message at a time per process: tasks are short, and prefetched messages would wait
# behind a long evaluation while another worker sits idle.
worker_prefetch_multiplier = 1
# Redis redelivers an unacked message after this long. It must exceed the longest task
# (the hard limit below) or a slow task would be run twice in parallel.
broker_transport_options = {"visibility_timeout": 3600}
task_soft_time_limit = 600
task_time_limit = 660

# Flower and GET /tasks/<id> need to see tasks being sent and started.
worker_send_task_events = True
task_send_sent_event = True
task_track_started = True
result_expires = 24 * 3600
result_extended = True

broker_connection_retry_on_startup = True
timezone = "UTC"
enable_utc = True

if _settings.local_home is not None:
    beat_schedule_filename = str(_settings.local_home / "celerybeat-schedule")
    # Beat opens its schedule file at start; the folder must exist even on a fresh clone.
    _settings.local_home.mkdir(parents=True, exist_ok=True)
