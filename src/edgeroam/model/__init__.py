"""Plain typed data of edgeroam; imports nothing else of the package."""

from edgeroam.model.alarm import AckState, Alarm, AlarmEventType, PerceivedSeverity
from edgeroam.model.base import Identifier, Model
from edgeroam.model.customer import Customer
from edgeroam.model.event import Event, EventCategory, Severity
from edgeroam.model.functions import Criticality, Flavor, FunctionSpec, ParameterSpec
from edgeroam.model.group import Group, GroupKind, LoadMetric, PlannedOperation, Ratio
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
from edgeroam.model.traffic import CpeAction, FlowMatch, TrafficBehaviour, TrafficRule

#: Every kind of inventory object, by the name the store, API and controller use for it.
INVENTORY_MODELS: dict[str, type[Model]] = {
    "site": Site,
    "customer": Customer,
    "flavor": Flavor,
    "function": FunctionSpec,
    "host": Host,
    "link": Link,
    "instance": Instance,
    "group": Group,
}

__all__ = [
    "INVENTORY_MODELS",
    "AckState",
    "Alarm",
    "AlarmEventType",
    "Coordinates",
    "CpeAction",
    "Criticality",
    "Customer",
    "Event",
    "EventCategory",
    "Flavor",
    "FlowMatch",
    "FunctionSpec",
    "Group",
    "GroupKind",
    "Host",
    "HostKind",
    "HostState",
    "Identifier",
    "Incentives",
    "Instance",
    "LifecycleStage",
    "Link",
    "LinkKind",
    "LoadMetric",
    "Model",
    "Operation",
    "OperationKind",
    "OperationRequest",
    "OperationState",
    "ParameterError",
    "ParameterSpec",
    "PerceivedSeverity",
    "PlannedOperation",
    "Ratio",
    "Reading",
    "Reason",
    "Resources",
    "Role",
    "Severity",
    "Site",
    "SiteKind",
    "Step",
    "TrafficBehaviour",
    "TrafficRule",
    "validate_params",
]
