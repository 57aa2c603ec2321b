"""The paced sender: its bounds, its refusal to send outside the testbed, its pacing."""

from __future__ import annotations

import socket
import threading

import pytest

from edgeroam.testbed.sender import SenderError, check, send


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"proto": "tcp"}, "proto must be icmp or udp"),
        ({"dst": "example.org"}, "is not an IPv4 address"),
        ({"dst": "224.0.0.1"}, "is not a unicast address"),
        ({"rate_mbps": 0}, "rate must be within"),
        ({"rate_mbps": 20_000}, "rate must be within"),
        ({"size": 20}, "size must be within"),
        ({"size": 9000}, "size must be within"),
        ({"duration_s": 0}, "duration must be within"),
        ({"duration_s": 3600}, "duration must be within"),
        ({"count": 0}, "count must be within"),
    ],
)
def test_parameters_are_bounded(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {
        "proto": "udp",
        "dst": "127.0.0.1",
        "rate_mbps": 1.0,
        "size": 100,
        "duration_s": 1.0,
        "count": None,
        **kwargs,
    }
    with pytest.raises(SenderError, match=message):
        check(**args)  # type: ignore[arg-type]


def test_it_refuses_to_send_outside_a_testbed_namespace() -> None:
    # This test process is not in any /run/netns/er7-* namespace.
    with pytest.raises(SenderError, match=r"refusing to send to 192\.0\.2\.1 from outside"):
        send("udp", "192.0.2.1", 1.0, duration_s=0.1, prefix="er7-")


def _receiver() -> tuple[socket.socket, list[int]]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.5)
    return sock, []


@pytest.mark.root
def test_udp_on_loopback_is_paced_and_counted_exactly(root: None) -> None:
    sock, sizes = _receiver()
    port = sock.getsockname()[1]

    def drain() -> None:
        try:
            while True:
                sizes.append(len(sock.recv(65535)))
        except TimeoutError:
            pass

    reader = threading.Thread(target=drain)
    reader.start()
    result = send("udp", "127.0.0.1", 20.0, size=1000, duration_s=1.0, port=port)
    reader.join()
    sock.close()
    assert result.errors == 0
    assert len(sizes) == result.sent_packets  # loopback loses nothing
    assert sum(sizes) == result.sent_packets * (1000 - 28)  # IP and UDP headers aside
    assert result.sent_bytes == result.sent_packets * 1000
    assert result.mbps == pytest.approx(20.0, rel=0.1)


@pytest.mark.root
def test_count_stops_the_sender_exactly(root: None) -> None:
    sock, _ = _receiver()
    result = send("udp", "127.0.0.1", 500.0, size=200, count=37, port=sock.getsockname()[1])
    sock.close()
    assert result.sent_packets == 37 and result.elapsed_s < 1.0


@pytest.mark.root
def test_icmp_echo_requests_are_well_formed(root: None) -> None:
    # The kernel answers only echo requests whose checksum is right (incremental per packet).
    result = send("icmp", "127.0.0.1", 1.0, size=300, count=20, count_replies=True)
    assert result.sent_packets == 20
    assert result.replies == 20
