"""Committed transactions to receivers: one worker per sink, the dispatcher in front of them and
the acknowledgement rule, retries, dead letters, and the activity feed the UI reads."""
