"""How a message to the outside went (an alert, a ping), as the log records it. Imports
nothing heavy: the idle tick's heartbeat uses it."""

from enum import StrEnum


class DeliveryStatus(StrEnum):
    SENT = "sent"
    FAILED = "failed"
    TIMEOUT = "timeout"
    ABANDONED = "abandoned"  # cronflow stopped before the exchange ended
