"""One LarPO run: `build` (one short builder per component), `fit` (fit and summarise), `loop`
(Algorithm 1 as a Lightning callback) over its collaborators `sampling`, `ranking` and
`reference` (evaluation is its own package, `larpo.evaluation`); `module` (the LightningModule),
`datamodule` (the training lists), `sft` (`larpo-sft`); the sweep plumbing `jobs` (finished,
interrupted and reusable jobs) and `lock` (one process per run directory); `schema` holds the
loop's own keys (`candidate_list`, `optimizer`)."""
