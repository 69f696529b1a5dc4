"""The scheduler service: time only (digest periods, releases of held events), on APScheduler 3."""
