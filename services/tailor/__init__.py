"""The tailor: one event becomes the right message for each target group, and never reaches a group it must not."""
