"""A worker process of ``GuardedJoblibLauncher``: it runs the jobs the launcher sends over its
socket one at a time, sends back each one's ``JobReturn``, and ends when the launcher closes
the socket or dies. (The leading underscore keeps Hydra's plugin scanner from importing it.)"""

import sys
from multiprocessing.connection import Connection


def serve(fd: int) -> None:
    import cloudpickle
    from hydra.core.utils import JobReturn, JobStatus
    from hydra_plugins.hydra_joblib_launcher._core import execute_job

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
