"""Bronze as an input: ``bronze.mbo`` read back, one (session, contract) per partition.

``catalog`` finds the partitions and the instruments they need, ``records`` rebuilds a
partition's records in Databento's MBO layout in their original order, ``source`` is the Bytewax
source over them.
"""
