"""The console: where communicators work. It holds no content of its own: it shows what the gateway says, and
writes only through the gateway's use cases, always as the signed-in person (their session passed on)."""
