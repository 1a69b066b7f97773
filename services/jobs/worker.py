"""A distributed worker process: `python -m services.jobs.worker [--threads N] [--queues analysis,default]`.

Runs on any machine that reaches the database (SHOEBOX_DATABASE_URL), the broker (SHOEBOX_BROKER_URL)
and the blob store (a shared SHOEBOX_BLOB_DIR or SHOEBOX_BLOB_BACKEND=s3). A GPU machine runs
`--queues analysis` with SHOEBOX_ONNX_PROVIDERS=CUDAExecutionProvider,CPUExecutionProvider; CPU workers
take `default` (and `analysis` too, if they should help). SIGTERM or SIGINT: the tasks in hand finish,
the rest stay on the broker for other workers.
"""

import argparse
import logging
import signal
import threading
from types import FrameType

import dramatiq
from sqlalchemy.exc import DBAPIError

from core.config import Settings, get_settings
from db.session import get_engine, session_factory
from services.inference.models import ModelSet, check_manifest
from services.jobs.distributed import QUEUES, broker_queue, install_runtime, make_broker
from services.jobs.registry import register_job_types
from services.jobs.service import JobContext

log = logging.getLogger("shoebox.worker")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.jobs.worker", description=__doc__)
    parser.add_argument(
        "--threads", type=int, default=None, help="tasks run at once (default SHOEBOX_JOB_WORKERS)"
    )
    parser.add_argument(
        "--queues",
        default=",".join(QUEUES),
        help=f"comma-separated queues to take (default {','.join(QUEUES)})",
    )
    parser.add_argument("--warm-up", action="store_true", help="load every model before taking tasks")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("pika").setLevel(logging.WARNING)
    settings: Settings = get_settings()
    queues = [queue.strip() for queue in args.queues.split(",") if queue.strip()]
    unknown = sorted(set(queues) - set(QUEUES))
    if unknown:
        parser.error(f"unknown queues {unknown}; known: {', '.join(QUEUES)}")
    threads = args.threads or settings.job_workers

    register_job_types()
    check_manifest()
    engine = get_engine(settings.database_url, settings.db_statement_timeout_ms)
    models = ModelSet(settings)
    if args.warm_up:
        models.warm_up()
    context = JobContext(
        sessions=session_factory(engine), store=settings.open_blob_store(), settings=settings, models=models
    )
    try:
        runtime = install_runtime(context, queues=queues)
    except DBAPIError as error:
        parser.exit(
            2,
            f"cannot register with the database ({type(error.orig).__name__}): start the API "
            "first, it creates and migrates the tables\n",
        )
    broker = make_broker(settings)
    worker = dramatiq.Worker(
        broker, queues={broker_queue(settings.broker_namespace, q) for q in queues}, worker_threads=threads
    )
    # One message in hand per thread: a task waits on the broker, where any idle worker can take it,
    # instead of in a busy worker's prefetch buffer.
    worker.queue_prefetch = threads
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker.start()
    log.info("worker %s taking %s with %d threads", runtime.worker_id, ",".join(queues), threads)
    stop.wait()
    log.info("worker %s stopping: finishing the tasks in hand", runtime.worker_id)
    worker.stop()
    broker.close()


if __name__ == "__main__":
    main()
