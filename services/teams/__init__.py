"""The Teams channel: one Adaptive Card per target group's channel, through a Workflows webhook."""
