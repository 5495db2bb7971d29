"""Loggers: `wandb_logger` (W&B, offline unless told otherwise, and its end-of-run summary);
`schema` holds the `logger` group's typed keys. `logger=csv` is Lightning's CSVLogger."""
