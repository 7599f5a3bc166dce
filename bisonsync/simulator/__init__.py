"""An Email Bison simulator for tests and benchmarks: state, ASGI app, webhook firer, uvicorn runner."""

from bisonsync.simulator.app import create_simulator_app
from bisonsync.simulator.faults import Faults, Target
from bisonsync.simulator.firer import TOKEN_HEADER, GroundTruth, WebhookFirer
from bisonsync.simulator.server import LoopbackServer, SimulatorServer
from bisonsync.simulator.state import Counters, SimulatedBison

__all__ = [
    "TOKEN_HEADER",
    "Counters",
    "Faults",
    "GroundTruth",
    "LoopbackServer",
    "SimulatedBison",
    "SimulatorServer",
    "Target",
    "WebhookFirer",
    "create_simulator_app",
]
