"""A worker process of ``GuardedJoblibLauncher``: it runs the jobs the launcher sends over its
socket one at a time, sends back each one's ``JobReturn``, and ends when the launcher closes
the socket or dies. (The leading underscore keeps Hydra's plugin scanner from importing it.)"""

import sys
from multiprocessing.connection import Connection


def execute_job(number: int, overrides, hydra_context, config, task_function,
                singleton_state):
    """Run job ``number`` of a sweep in this process, as a Hydra launcher does: Hydra's
    process state from the launcher, the job's own config with its number, then the task."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.singleton import Singleton
    from hydra.core.utils import run_job, setup_globals
    from omegaconf import open_dict

    setup_globals()
    Singleton.set_state(singleton_state)
    job_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
    with open_dict(job_config):  # the job's id and number, as the sweep's other jobs get them
        job_config.hydra.job.id = f"{job_config.hydra.job.name}_{number}"
        job_config.hydra.job.num = number
    HydraConfig.instance().set_config(job_config)
    return run_job(hydra_context=hydra_context, config=job_config, task_function=task_function,
                   job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")


def serve(fd: int) -> None:
    import cloudpickle
    from hydra.core.utils import JobReturn, JobStatus

    conn = Connection(fd)
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):  # the launcher closed the socket, or died
            return
        number, overrides, shared = cloudpickle.loads(message)
        try:
            ret = execute_job(number, overrides, *cloudpickle.loads(shared))
        except BaseException as err:  # noqa: BLE001 (a job's sys.exit(2) is the launcher's)
            ret = JobReturn(overrides=overrides, status=JobStatus.FAILED, _return_value=err)
        try:
            data = cloudpickle.dumps(ret)
        except Exception as err:  # noqa: BLE001 (an unpicklable result still ends the job)
            data = cloudpickle.dumps(JobReturn(
                overrides=overrides, status=JobStatus.FAILED,
                _return_value=RuntimeError(f"job {number}'s result cannot be sent back: {err}")))
        conn.send_bytes(data)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
