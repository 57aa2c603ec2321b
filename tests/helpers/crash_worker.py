"""A controller process for tests/test_crash_recovery.py to kill with SIGKILL.

Usage: crash_worker.py DB_PATH STATE_PATH LATENCY_S

Builds a Controller on a SQLite store with a SimDriver that persists its world to STATE_PATH,
loads the small test world, instantiates a few functions and waits for them, then asks for
migrations and more instantiations at once and keeps ticking on wall-clock time until killed.
It prints "ready <instances>" once the second batch was requested; the test kills it after that.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from edgeroam.controller import Controller  # noqa: E402
from edgeroam.drivers.sim import SimDriver  # noqa: E402
from edgeroam.model import OperationKind, OperationRequest  # noqa: E402
from edgeroam.policies.registry import PolicyRegistry  # noqa: E402
from edgeroam.store import Store  # noqa: E402
from tests.conftest import make_world, reason  # noqa: E402

FIRST = (("fw", "edge-a"), ("fw", "edge-a"), ("dns", "edge-b"))
MIGRATE_TO = "edge-b"
SECOND = (("dns", "cloud-1"), ("fw", "cloud-1"), ("cache", "edge-b"))


def main(db_path: str, state_path: str, latency: float) -> None:
    store = Store(f"sqlite:///{db_path}")
    driver = SimDriver(latency_s=latency, state_path=Path(state_path))
    controller = Controller(driver, store=store, registry=PolicyRegistry())
    make_world(controller, time.time())

    requested: list[str] = []

    def instantiate(function: str, host: str) -> str:
        requested.append(function)
        request = OperationRequest(
            kind=OperationKind.INSTANTIATE,
            subject=f"new-{function}-{len(requested)}",  # the subject is a busy key: keep apart
            function=function,
            hosts=(host,),
            reason=reason("crash_test", "instantiate for the crash test"),
        )
        return controller.request(request, time.time()).id

    first = [instantiate(f, h) for f, h in FIRST]
    while controller.engine.active:
        controller.tick(time.time())
        time.sleep(0.005)
    created = [
        name
        for op_id in first
        if (op := controller.operation(op_id)) is not None
        for name in op.created_instances
    ]

    for name in created:
        if controller.inventory.instances[name].host != MIGRATE_TO:
            controller.request(
                OperationRequest(
                    kind=OperationKind.MIGRATE,
                    subject=name,
                    instances=(name,),
                    hosts=(MIGRATE_TO,),
                    reason=reason("crash_test", "migrate for the crash test"),
                ),
                time.time(),
            )
    for function, host in SECOND:
        instantiate(function, host)
    print("ready", *created, flush=True)
    while True:
        controller.tick(time.time())
        time.sleep(0.002)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
