"""The email channel: one SMTP message per person, sent once, outcome recorded and announced."""
