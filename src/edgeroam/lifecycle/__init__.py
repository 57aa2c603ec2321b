"""Operations: planning, persistence, execution through a driver, retries, rollback, recovery."""

from edgeroam.lifecycle.engine import BusyError, LifecycleConfig, LifecycleEngine, OperationError

__all__ = ["BusyError", "LifecycleConfig", "LifecycleEngine", "OperationError"]
