"""The Celery app of the step workers: `celery -A tracking_pipeline.celery_app worker -Q dagster`.

dagster-celery's tasks on the broker and backend of TRACKING_CELERY_BROKER / TRACKING_CELERY_BACKEND (the same
variables the runs' celery executor reads, see defs/executors.py). A worker executes the steps it receives in its
own process against the instance at DAGSTER_HOME and the TRACKING_* settings of its environment.
"""

from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from tracking_pipeline.defs.executors import batch_events, celery_urls

batch_events()
_broker, _backend = celery_urls()
app = make_app(CeleryExecutor.for_cli(broker=_broker, backend=_backend).app_args())
execute_plan = create_task(app)
