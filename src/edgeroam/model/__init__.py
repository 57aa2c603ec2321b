"""Plain typed data of edgeroam; imports nothing else of the package."""

from edgeroam.model.base import Identifier, Model
from edgeroam.model.customer import Customer
from edgeroam.model.event import Event, EventCategory, Severity
from edgeroam.model.functions import Criticality, Flavor, FunctionSpec, ParameterSpec
from edgeroam.model.instance import Instance, LifecycleStage, Role
from edgeroam.model.operation import (
    Operation,
    OperationKind,
    OperationRequest,
    OperationState,
    Step,
)
from edgeroam.model.params import ParameterError, validate_params
from edgeroam.model.reason import Reason
from edgeroam.model.telemetry import Reading
from edgeroam.model.topology import (
    Coordinates,
    Host,
    HostKind,
    HostState,
    Incentives,
    Link,
    LinkKind,
    Resources,
    Site,
    SiteKind,
)

__all__ = [
    "Coordinates",
    "Criticality",
    "Customer",
    "Event",
    "EventCategory",
    "Flavor",
    "FunctionSpec",
    "Host",
    "HostKind",
    "HostState",
    "Identifier",
    "Incentives",
    "Instance",
    "LifecycleStage",
    "Link",
    "LinkKind",
    "Model",
    "Operation",
    "OperationKind",
    "OperationRequest",
    "OperationState",
    "ParameterError",
    "ParameterSpec",
    "Reading",
    "Reason",
    "Resources",
    "Role",
    "Severity",
    "Site",
    "SiteKind",
    "Step",
    "validate_params",
]
