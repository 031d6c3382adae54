"""The launchers' errors, in a module of their own: Hydra's plugin scanner runs every plugin
module again (the leading underscore exempts this one), which would make a second class of
the same name that an ``except`` written against the first does not catch."""

from collections.abc import Sequence


class WorkerLost(RuntimeError):
    """Jobs whose worker ended without a result; ``lost`` holds (job number, what
    happened). The message is one line."""

    def __init__(self, lost: Sequence[tuple[int, str]]):
        self.lost = list(lost)
        super().__init__("; ".join(f"job {n} lost its worker ({how})" for n, how in self.lost))

    @classmethod
    def merge(cls, errors: Sequence["WorkerLost"]) -> "WorkerLost":
        return cls([item for err in errors for item in err.lost])
