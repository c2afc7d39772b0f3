"""Delivery channels (SMTP email, Slack, file outbox) and the exactly-once outbox protocol."""
