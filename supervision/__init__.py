"""Generic supervision for Trio tasks: restart with backoff, restart intensity, statistics."""

from supervision.policy import RestartPolicy, RestartTracker
from supervision.supervisor import ChildStatistics, ChildStats, SupervisorGaveUp, failure_cause, supervise
from supervision.words import counts_in_words, most_frequent_first, sole_exception

__all__ = [
    "ChildStatistics",
    "ChildStats",
    "RestartPolicy",
    "RestartTracker",
    "SupervisorGaveUp",
    "counts_in_words",
    "failure_cause",
    "most_frequent_first",
    "sole_exception",
    "supervise",
]
