"""How a policy is measured (the `eval` keys, `contract.PolicyEvaluator`): `evaluator` (the gold
judge's metrics of sampled and greedy answers, the policy as a retriever, a validation split),
`exact` (the policy's distribution over a window of answers), `judged` (a reward model as judge,
length-controlled win rate), `list_stats` (how much information a ranked list carries), `cache`
(the starting policy's evaluation, computed once); `schema` holds the `eval` keys."""
