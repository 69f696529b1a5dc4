"""The embedded platform: a local Kafka-protocol broker, local mail and Teams sinks, every service in one process."""
