"""Parallelism: `shard` (data-parallel sharding of the loop's work: each rank computes its share,
results are gathered) and `fsdp` (fully sharded training on CPU or GPU); `schema` holds the
`trainer` group's typed keys."""
