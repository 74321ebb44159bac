"""Generic supervision for Trio tasks: restart with backoff, restart intensity, statistics."""

from supervision.policy import RestartPolicy, RestartTracker
from supervision.supervisor import ChildStats, SupervisorGaveUp, failure_cause, supervise

__all__ = ["ChildStats", "RestartPolicy", "RestartTracker", "SupervisorGaveUp", "failure_cause", "supervise"]
