"""The ETSI-style Alarm value: consistent states and its three transitions."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edgeroam.model import AckState, Alarm, AlarmEventType, PerceivedSeverity


def alarm(**kw: object) -> Alarm:
    base: dict[str, object] = {
        "id": "alarm-000001",
        "managed_object": "host:srv-1",
        "event_type": AlarmEventType.ENVIRONMENTAL_ALARM,
        "probable_cause": "power_problem",
        "perceived_severity": PerceivedSeverity.MAJOR,
        "raised_at": 10.0,
        "changed_at": 10.0,
    }
    base.update(kw)
    return Alarm.model_validate(base)


def test_life_of_an_alarm() -> None:
    a = alarm()
    assert a.active and a.ack_state is AckState.UNACKNOWLEDGED
    rated = a.rerate(PerceivedSeverity.CRITICAL, 12.0, ("battery_pct=9 %",))
    assert rated.perceived_severity is PerceivedSeverity.CRITICAL and rated.changed_at == 12.0
    acked = rated.acknowledge("ops", 13.0)
    assert acked.ack_state is AckState.ACKNOWLEDGED and acked.acknowledged_by == "ops"
    assert acked.active
    cleared = acked.clear(20.0)
    assert not cleared.active
    assert cleared.perceived_severity is PerceivedSeverity.CLEARED
    assert cleared.ack_state is AckState.ACKNOWLEDGED  # the acknowledgement is kept
    assert a.active  # values: the original is unchanged


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cleared_at": 5.0, "perceived_severity": "CLEARED"}, "cleared_at is before raised_at"),
        ({"cleared_at": 15.0}, "CLEARED goes with cleared_at"),
        ({"perceived_severity": "CLEARED"}, "CLEARED goes with cleared_at"),
        ({"ack_state": "ACKNOWLEDGED"}, "ACKNOWLEDGED goes with acknowledged_at"),
        ({"managed_object": "srv-1"}, "managed_object"),
        ({"probable_cause": "Power Problem"}, "probable_cause"),
        ({"event_type": "FIRE_ALARM"}, "event_type"),
    ],
)
def test_inconsistent_alarms_are_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        alarm(**change)
