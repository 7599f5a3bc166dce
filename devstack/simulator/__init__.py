"""An Email Bison simulator for tests and benchmarks: state, ASGI app, webhook firer, uvicorn runner."""

from devstack.simulator.app import create_simulator_app
from devstack.simulator.faults import Faults, Target
from devstack.simulator.firer import TOKEN_HEADER, GroundTruth, WebhookFirer
from devstack.simulator.server import LoopbackServer, SimulatorServer
from devstack.simulator.state import Counters, SimulatedBison

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
