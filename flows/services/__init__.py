"""Local services that benchmarks and tests start on 127.0.0.1 and stop by PID: a Kafka-protocol
broker (tansu), librdkafka's mock cluster, an MLflow model server, and the process helper they
share. The dataflow never uses them.
"""
