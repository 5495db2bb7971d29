"""One LarPO run: `build` (the composition root: one short builder per component), `fit` (fit and
summarise), `iteration` (one iteration of Algorithm 1 and its evaluation, as plain code) and
`loop` (its Lightning adapter), over the collaborators `sampling`, `ranking` and `reference`;
`diagnostics` (what an iteration tells its user), `resume` (checkpoints and the loop's state in
them), `module` (the LightningModule), `datamodule` (the training lists), `sft` (`larpo-sft`);
the sweep plumbing `jobs` (finished, interrupted and reusable jobs) and `lock` (one process per
run directory). The run's sizes come from `larpo.shape`, its clock from `larpo.clock`."""
