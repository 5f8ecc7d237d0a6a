"""Detection on other machines: frames to a pool of workers through a NATS server, results back.

:class:`BrokerLink` (:mod:`.link`) is the process's connection to NATS,
kept up by itself; :class:`RemoteDetection` (:mod:`.detection`) is a
camera's ``remote:GROUP`` detector, which sends frames to GROUP's workers
(request/reply with a deadline, a few in flight, the newest frame first)
and takes their results in as a local detector's; :func:`run_worker`
(:mod:`.worker`) is ``camstream worker``. :mod:`.protocol` says what crosses
the wire. nats-py is an extra (``camstream[nats]``): nothing here imports it
until a broker is asked for.
"""

from .detection import RemoteDetection
from .link import BrokerLink, parse_broker_url
from .protocol import subject
from .worker import run_worker

__all__ = ["BrokerLink", "RemoteDetection", "parse_broker_url", "run_worker", "subject"]
