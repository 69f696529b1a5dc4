"""The preference centre: people's choices (digest cadence, awareness news by email, newsletters and
digests at all) and RFC 8058 one-click unsubscribe, announced on the bus at every change."""
