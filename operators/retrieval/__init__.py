"""Similar historical setups: group-weighted z-scoring and one FAISS index per partition."""

from operators.retrieval.groups import VECTOR_GROUPS, group_codes
from operators.retrieval.memory import SCOPES, Memory, Neighbours, build_memory
from operators.retrieval.partition import EXACT_MAX_ROWS, Partition, PartitionKey, partition_key
from operators.retrieval.scaling import VectorScaling, fit_scaling

__all__ = ["EXACT_MAX_ROWS", "VECTOR_GROUPS", "Memory", "Neighbours", "Partition", "PartitionKey", "SCOPES",
           "VectorScaling", "build_memory", "fit_scaling", "group_codes", "partition_key"]
