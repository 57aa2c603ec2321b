"""The agent process: report every interval, carry out actions as they come.

Two loops share one HTTP client: the reporter posts a batch of readings every `interval_s`
(aligned to its own schedule, so a slow post does not shift later samples), and the action
loop long-polls the controller for work, executes it and posts the outcomes with the host's
current state. Errors talking to the controller are logged and retried; the agent never exits
because the controller is away — the controller notices the silence (heartbeat) instead.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

import httpx

from edgeroam.agent.config import AgentConfig
from edgeroam.agent.executor import Executor
from edgeroam.agent.reporter import LinkReader, Reporter, netlink_reader
from edgeroam.drivers.netns import ActionBatch, ActionResult, ResultsReport
from edgeroam.testbed.nft import Nft

log = logging.getLogger("edgeroam.agent")
API = "/api/v1"


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        *,
        client: httpx.Client | None = None,
        links: LinkReader | None = None,
        nft: Nft | None = None,
    ) -> None:
        self.config = config
        token = config.read_token()
        self.client = client or httpx.Client(
            base_url=config.controller.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(5.0, read=config.command_wait_s + 5.0),
        )
        self.executor = Executor(config, nft or Nft())
        self.reporter = Reporter(config, self.executor, links or netlink_reader())
        self.stop = threading.Event()
        self._unsent: list[ActionResult] = []
        self.sent_batches = 0
        self.failed_posts = 0

    # -- reporting ----------------------------------------------------------------------------
    def report_once(self) -> bool:
        readings = self.reporter.sample()
        body = {"readings": [r.model_dump(mode="json") for r in readings]}
        try:
            response = self.client.post(f"{API}/telemetry", json=body)
        except httpx.HTTPError as exc:
            self._post_failed(f"telemetry: {exc}")
            return False
        if response.status_code != 200:
            self._post_failed(f"telemetry refused ({response.status_code}): {response.text[:300]}")
            return False
        self.sent_batches += 1
        return True

    def _post_failed(self, message: str) -> None:
        self.failed_posts += 1
        if self.failed_posts <= 3 or self.failed_posts % 100 == 0:
            log.warning("%s (failure %d)", message, self.failed_posts)

    def report_loop(self) -> None:
        interval = self.config.interval_s
        next_at = time.monotonic()
        while not self.stop.is_set():
            try:
                self.report_once()
            except Exception:  # a broken sample must not end the heartbeat
                log.exception("sampling failed")
            next_at += interval
            delay = next_at - time.monotonic()
            if delay < 0:  # fell behind (machine busy): skip, do not burst
                next_at = time.monotonic()
                delay = 0.0
            self.stop.wait(delay)

    # -- actions ------------------------------------------------------------------------------
    def actions_once(self, wait: float | None = None) -> int:
        """One long poll; returns how many actions were carried out."""
        host = self.config.host
        wait = self.config.command_wait_s if wait is None else wait
        try:
            response = self.client.get(f"{API}/agents/{host}/actions", params={"wait": wait})
        except httpx.HTTPError as exc:
            self._post_failed(f"actions: {exc}")
            self.stop.wait(0.5)
            return 0
        if response.status_code != 200:
            self._post_failed(f"actions refused ({response.status_code}): {response.text[:300]}")
            self.stop.wait(1.0)
            return 0
        batch = ActionBatch.model_validate(response.json())
        results = [self.executor.execute(a) for a in batch.actions]
        self._unsent += results
        if results or self._unsent:
            self.send_results()
        return len(results)

    def send_results(self) -> bool:
        report = ResultsReport(results=tuple(self._unsent), state=self.executor.state())
        try:
            response = self.client.post(
                f"{API}/agents/{self.config.host}/actions/results",
                json=report.model_dump(mode="json"),
            )
        except httpx.HTTPError as exc:
            self._post_failed(f"results: {exc}")
            return False
        if response.status_code != 200:
            self._post_failed(f"results refused ({response.status_code}): {response.text[:300]}")
            return False
        self._unsent = []
        return True

    def actions_loop(self) -> None:
        while not self.stop.is_set():
            try:
                self.actions_once()
            except Exception:
                log.exception("action loop failed")
                self.stop.wait(1.0)

    # -- process ------------------------------------------------------------------------------
    def run(self) -> None:
        for problem in self.executor.restore():
            log.warning("restore: %s", problem)
        self.send_results()  # announce what runs here before the first action arrives
        reporter = threading.Thread(target=self.report_loop, name="agent-report", daemon=True)
        reporter.start()
        try:
            self.actions_loop()
        finally:
            self.stop.set()
            reporter.join(timeout=5)
            self.client.close()


def install_signal_handlers(agent: Agent) -> None:
    """SIGTERM/SIGINT end the agent at once, even in the middle of a long poll."""

    def stop(signum: int, _frame: FrameType | None) -> None:
        agent.stop.set()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
