"""Celery settings, read from the environment (see app/settings.py for the variables)."""

from kombu import Queue

from app import redis_client as _redis_client, settings
from beat_schedule import beat_schedule  # noqa: F401  (Celery reads it from this module)

_settings = settings.load()
# A plain Redis URL or a Sentinel one: app.redis_client knows which, and what each needs.
_redis = _redis_client.celery_settings(_settings.redis_url)

broker_url = _redis["broker_url"]
result_backend = _redis["result_backend"]

# Payloads are ids and small dicts; JSON keeps pickles (and code execution) off the wire.
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
result_accept_content = ["json"]

# Training is serialised: it has its own queue, so a deployment can give it one dedicated
# worker (-Q train); a plain `celery -A worker worker` consumes every queue.
task_default_queue = "celery"
# Recovery has a queue of its own: its messages expire after RECOVER_EVERY seconds, and behind
# a backlog of generate and normalize messages every one of them expired, so batches whose
# chain a Redis failover lost were never sent on (seen under load in tests/faults/test_failover.py).
# A worker takes from each of its queues in turn, so recovery never waits behind the others.
task_queues = (Queue("celery"), Queue("train"), Queue("recover"))
task_routes = {"pipeline.train": {"queue": "train"}, "pipeline.recover": {"queue": "recover"}}

# The delivery policy (the retry counts and quarantine are in app/tasks/base.py):
# ack after the task has run, so a worker killed mid-task has its message delivered again;
# with reject_on_worker_lost a pool process that dies under its task has the message requeued
# at once, instead of the task being marked failed. Every task is idempotent (keyed by batch
# id), so a second delivery does no harm; a task that keeps killing its process is quarantined
# after MAX_DELIVERIES. A task that raised, or passed its time limit, is acked: its failure is
# recorded once, never retried by the broker.
task_acks_late = True
task_reject_on_worker_lost = True
task_acks_on_failure = True
task_acks_on_timeout = True
worker_cancel_long_running_tasks_on_connection_loss = True
# One message at a time per process: tasks are short, and prefetched messages would wait
# behind a long evaluation while another worker sits idle.
worker_prefetch_multiplier = 1
# Time limits: the soft one raises SoftTimeLimitExceeded in the task, which cleans up (locks
# released, nothing published: a version exists only once its metadata does) and fails; the
# hard one kills the process a minute later if that did not work. Train and evaluate take
# seconds; these bound a task gone wrong, not a slow one.
task_soft_time_limit = 600
task_time_limit = 660
# Redis redelivers a message nobody acked after this long. A message is unacked while it
# waits for a free pool process (at most one running task's time, prefetch being 1) and
# while it runs, so it must exceed twice the hard limit, or a slow task would run twice in
# parallel; retries' countdowns (60 s at most) are held unacked too. A worker that was killed
# leaves its messages unacked for this long: the batch recovery (pipeline.recover, every few
# seconds from beat) does not wait for it.
broker_transport_options = {"visibility_timeout": 3600, **_redis["transport_options"]}
# With Sentinel, the primary's name (master_name) for the results too.
result_backend_transport_options = dict(_redis["transport_options"])

# A Redis that restarts or fails over: workers retry forever (a worker that gave up would sit
# idle under `make run`), check idle connections, and the result backend retries too.
broker_connection_retry_on_startup = True
broker_connection_max_retries = None
redis_socket_keepalive = True
redis_backend_health_check_interval = 10
result_backend_always_retry = True
# A primary demoted under a live connection answers ReadOnlyError to every write, which kombu
# reports as a channel error, not a connection error: without this the worker's consumer would
# not reconnect and would keep writing to the old primary (celery#7946).
broker_channel_error_retry = True

# Flower and GET /tasks/<id> need to see tasks being sent and started.
worker_send_task_events = True
task_send_sent_event = True
task_track_started = True
result_expires = 24 * 3600
result_extended = True

timezone = "UTC"
enable_utc = True

# Beat through RedBeat: the schedule and when each entry last ran live in Redis, not in a
# celerybeat-schedule file, and a lock lets one beat of many send anything. Each beat that
# does not hold the lock tries again every beat_max_loop_interval seconds; the holder extends
# it on every tick (at least that often), so when the holder dies (its host gone, or killed
# and restarted by make run) a beat takes over within redbeat_lock_timeout plus one retry,
# about 12 s, and continues the schedule from the last run Redis recorded: no slot is sent
# twice. A holder starved of CPU for longer than the timeout loses the lock, and its next
# tick raises before it sends anything (beat exits; make run restarts it).
beat_scheduler = "redbeat.RedBeatScheduler"
# Its password goes in redbeat_redis_options, whose "password" Celery masks when a worker's
# settings are shown (Flower's worker page): Celery masks broker_url but not redbeat_redis_url.
# With Sentinel the options name the sentinels and the primary (see app.redis_client).
redbeat_redis_url = _redis["redbeat_redis_url"]
redbeat_key_prefix = "pipeline:redbeat"
beat_max_loop_interval = 2
redbeat_lock_timeout = 10
# While Redis is away, beat's own calls wait for it (retrying, forever) instead of ending beat.
redbeat_redis_options = {"retry_period": -1, **_redis["redbeat_redis_options"]}
