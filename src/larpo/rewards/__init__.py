"""Reward models (the rerankers), one module per kind, each satisfying `contract.RewardModel`:
`judge` (the data source's gold judge), `classifier` (a transformers sequence classifier),
`pairrm` (LLM-Blender's list-relative ranker), `verifier` (final-number checking); `schema`
holds the group's typed keys. An embedded world's own reward model lives in its world."""
