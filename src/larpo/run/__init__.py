"""One LarPO run: `build` (one short builder per component), `fit` (fit and summarise), `loop`
(Algorithm 1 as a Lightning callback) over its collaborators `sampling`, `ranking`,
`reference`, `evaluation`; `module` (the LightningModule), `datamodule` (the training lists),
`sft` (`larpo-sft`); `schema` holds the loop's own keys (`candidate_list`, `eval`)."""
