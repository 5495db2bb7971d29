"""The embedded digits world: multi-digit addition with a per-digit gold judge and SFT noise
structured per digit (`task`), and its data source (`source`). Its SFT stage is the shared one
(`larpo.worlds.sft`)."""
