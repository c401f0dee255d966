"""The topic input, transport-neutral: what a topic input is (``input``), how its records are
positioned (``positions``), how one partition's messages become the graph's items (``partition``),
its wall-clock ticks (``ticks``), and which transport a URL names (``dispatch``). The transports
(``connectors.kafka``, ``connectors.eventhubs_amqp``) import this package; it imports them only in
``dispatch``.
"""
