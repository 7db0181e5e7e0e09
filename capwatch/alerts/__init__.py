"""Alert: turn big company moves into events, once each, and deliver them through real channels.

- ``config``: rules and channels (``alerts.toml``), checked at start-up;
- ``rules``: events from the rules' SQL (``transforms/alerts/candidates.sql``), one per (rule, company, date);
- ``channels``: sending one event to one channel (JSON, Slack, SMTP, apprise);
- ``deliver``: every pending event to every channel, each attempt recorded in ``alert_deliveries``.
"""

from capwatch.alerts.channels import send
from capwatch.alerts.config import AlertConfig, AlertConfigError, Channel, Rule, load_config
from capwatch.alerts.deliver import DeliveryReport, deliver, pending
from capwatch.alerts.rules import Event, evaluate, find_event, message_for

__all__ = [
    "AlertConfig",
    "AlertConfigError",
    "Channel",
    "DeliveryReport",
    "Event",
    "Rule",
    "deliver",
    "evaluate",
    "find_event",
    "load_config",
    "message_for",
    "pending",
    "send",
]
