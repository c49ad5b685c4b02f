"""Process entry point of one demo service (started by the fleet, one process per service).

    python -m timetravel.demo.serve --service ratings --port 8123 --world '{"seed": 42}' \
        [--clock-file F] [--faults '{"error_rate": 0.2}']

The admin token is read from $TIMETRAVEL_DEMO_ADMIN_TOKEN (never from argv: ps shows argv).
"""

from __future__ import annotations

import argparse
import json
import os

import uvicorn

from timetravel.demo.clock import Clock
from timetravel.demo.faults import FaultSettings
from timetravel.demo.services import create_service_app
from timetravel.demo.world import World

ADMIN_TOKEN_ENV = "TIMETRAVEL_DEMO_ADMIN_TOKEN"


def main() -> None:
    parser = argparse.ArgumentParser(description="Run one demo microservice.")
    parser.add_argument("--service", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--world", default="{}", help="World(**json) arguments")
    parser.add_argument("--clock-file", default=None)
    parser.add_argument("--faults", default="{}", help="FaultSettings as JSON")
    parser.add_argument("--seed", type=int, default=0, help="fault injection seed")
    args = parser.parse_args()
    world = World(**json.loads(args.world))
    app = create_service_app(
        args.service,
        world,
        clock=Clock(args.clock_file),
        faults=FaultSettings.model_validate_json(args.faults),
        admin_token=os.environ.get(ADMIN_TOKEN_ENV),
        seed=args.seed,
    )
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
