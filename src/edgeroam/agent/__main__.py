"""`python -m edgeroam.agent --config FILE`: the agent without the rest of the CLI."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from edgeroam.agent.agent import Agent, install_signal_handlers
from edgeroam.agent.config import AgentConfigError, load_agent_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edgeroam-agent", description=__doc__)
    parser.add_argument("--config", type=Path, required=True, help="agent config (JSON/YAML)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    return run_agent(args.config, verbose=args.verbose)


def run_agent(path: Path, *, verbose: bool = False) -> int:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        config = load_agent_config(path)
        agent = Agent(config)
    except AgentConfigError as exc:
        print(f"agent: {exc}", file=sys.stderr)
        return 2
    install_signal_handlers(agent)
    logging.getLogger("edgeroam.agent").info(
        "agent of %s reporting to %s every %.2f s",
        config.host,
        config.controller,
        config.interval_s,
    )
    try:
        agent.run()
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
