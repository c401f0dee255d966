"""Azure Event Hubs over AMQP 1.0 (``azure-eventhub``): the path for namespaces without a Kafka
endpoint (the Basic tier, the local emulator), behind the same interfaces as the Kafka path:
the topic source (``source``) and the producers' message sink (``producer``)."""
