"""The gateway: accepts events over HTTP, keeps them in a transactional outbox, relays them to Kafka,
and reports each event's status from the plans and outcomes it hears on the bus."""
