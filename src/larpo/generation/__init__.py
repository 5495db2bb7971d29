"""Generators: `contract.Generator`, `hf` (transformers `generate`), `vllm`; `export` writes a
policy's answers for AlpacaEval (`larpo-generate`); `schema` holds the group's typed keys."""
